//! User tokens for many users, made through the dev login of a running authhost on 127.0.0.1
//! (bench/many-users.sh feeds them to wrk); printed one per line.
//!
//!   bench-tokens BASE COUNT
//!
//! User N is `many-N@bench.example`; 64 logins at a time.

use std::time::Instant;

async fn login(client: reqwest::Client, base: String, n: usize) -> String {
    let email = format!("many-{n}@bench.example");
    let r = client
        .post(format!("{base}/auth/login/dev"))
        .form(&[
            ("email", email.as_str()),
            ("name", "Bench"),
            ("next", &format!("{base}/auth/check")),
        ])
        .send()
        .await
        .expect("dev login");
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    url::Url::parse(&location)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "jwt")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_else(|| panic!("no token for {email} in {location:?}"))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, base, count] = args.as_slice() else {
        eprintln!("usage: bench-tokens BASE COUNT");
        std::process::exit(2);
    };
    let count: usize = count.parse().expect("COUNT");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let made = Instant::now();
    let mut tokens = Vec::with_capacity(count);
    for chunk in (1..=count).collect::<Vec<_>>().chunks(64) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|&n| tokio::spawn(login(client.clone(), base.clone(), n)))
            .collect();
        for t in tasks {
            tokens.push(t.await.expect("login task"));
        }
    }
    for t in &tokens {
        println!("{t}");
    }
    eprintln!(
        "{} tokens in {:.1} s",
        tokens.len(),
        made.elapsed().as_secs_f64()
    );
}
