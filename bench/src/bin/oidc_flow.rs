//! What the OpenID Provider's token-endpoint benchmark (bench/oidc.sh) feeds wrk with, made
//! through the real flow against a running authhost on 127.0.0.1 with the dev login on and a
//! public client registered; printed one per line.
//!
//!   bench-oidc BASE CLIENT_ID REDIRECT_URI codes|refresh COUNT
//!
//! `codes`: users log in through the dev form (the browser session), each takes up to 40 codes
//! from `oidc/authorize` (the per-user bound is 50); redeeming one (bench/oidc-code.lua, PKCE
//! with RFC 7636's example verifier) makes an access and an ID token. Codes live 60 seconds:
//! make them just before the run. `refresh`: one refresh token (`offline_access`) per user, for
//! bench/oidc-refresh.lua to rotate (an access and an ID token per rotation).

use std::sync::Arc;
use std::time::Instant;

/// RFC 7636 Appendix B: one verifier for every code (the server checks it each time).
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const CODES_PER_USER: usize = 40;

struct Target {
    base: String,
    client_id: String,
    redirect_uri: String,
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("client")
}

/// `count` codes (with `scope`) for the user `n`, logged in through the dev form.
async fn codes_for(t: &Target, n: usize, count: usize, scope: &str) -> Vec<String> {
    let client = browser();
    let email = format!("oidc-bench-{n}@bench.example");
    let r = client
        .post(format!("{}/auth/login/dev", t.base))
        .form(&[("email", email.as_str()), ("name", "Bench")])
        .send()
        .await
        .expect("dev login");
    assert_eq!(r.status(), 302, "dev login");
    let url = format!(
        "{}/auth/oidc/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state=s&nonce=n&code_challenge={CHALLENGE}&code_challenge_method=S256",
        t.base,
        enc(&t.client_id),
        enc(&t.redirect_uri),
        enc(scope)
    );
    let mut codes = Vec::with_capacity(count);
    for _ in 0..count {
        let r = client.get(&url).send().await.expect("authorize");
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let code = url::Url::parse(&location).ok().and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
        });
        codes.push(code.unwrap_or_else(|| panic!("no code in {location:?}")));
    }
    codes
}

/// Codes for `users` users at once (64 at a time).
async fn make_codes(
    t: &Arc<Target>,
    first_user: usize,
    users: usize,
    per_user: usize,
    scope: &str,
) -> Vec<String> {
    let mut all = Vec::new();
    for chunk in (first_user..first_user + users)
        .collect::<Vec<_>>()
        .chunks(64)
    {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|&n| {
                let t = t.clone();
                let scope = scope.to_string();
                tokio::spawn(async move { codes_for(&t, n, per_user, &scope).await })
            })
            .collect();
        for task in tasks {
            all.extend(task.await.expect("codes task"));
        }
    }
    all
}

/// One token request; the answer's `refresh_token` when it succeeded.
async fn token(client: &reqwest::Client, t: &Target, form: &[(&str, &str)]) -> Option<String> {
    let r = client
        .post(format!("{}/auth/token", t.base))
        .form(form)
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    let body: serde_json::Value = r.json().await.ok()?;
    body["access_token"].as_str()?;
    Some(
        body["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

fn redeem_form<'a>(t: &'a Target, code: &'a str) -> [(&'static str, &'a str); 5] {
    [
        ("grant_type", "authorization_code"),
        ("client_id", t.client_id.as_str()),
        ("code", code),
        ("redirect_uri", t.redirect_uri.as_str()),
        ("code_verifier", VERIFIER),
    ]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, base, client_id, redirect_uri, mode, count] = args.as_slice() else {
        eprintln!("usage: bench-oidc BASE CLIENT_ID REDIRECT_URI codes|refresh COUNT");
        std::process::exit(2);
    };
    let count: usize = count.parse().expect("COUNT");
    let t = Arc::new(Target {
        base: base.clone(),
        client_id: client_id.clone(),
        redirect_uri: redirect_uri.clone(),
    });
    // Users are numbered from the time: a second run on one database starts fresh users (the
    // first run's codes may still wait, and they count against the per-user bound).
    let first_user = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as usize % 100_000 * 10_000);
    let made = Instant::now();
    let out: Vec<String> = match mode.as_str() {
        "codes" => {
            let users = count.div_ceil(CODES_PER_USER);
            let mut codes = make_codes(
                &t,
                first_user,
                users,
                CODES_PER_USER,
                "openid email profile",
            )
            .await;
            codes.truncate(count);
            codes
        }
        "refresh" => {
            // One family per user (families are bounded per user and client).
            let codes = make_codes(&t, first_user, count, 1, "openid offline_access").await;
            let client = reqwest::Client::new();
            let mut tokens = Vec::new();
            for code in &codes {
                let refresh = token(&client, &t, &redeem_form(&t, code)).await;
                tokens.push(refresh.filter(|r| !r.is_empty()).expect("a refresh token"));
            }
            tokens
        }
        other => panic!("mode {other}: codes or refresh"),
    };
    eprintln!(
        "{} {mode} in {:.1} s",
        out.len(),
        made.elapsed().as_secs_f64()
    );
    println!("{}", out.join("\n"));
}
