//! The OpenID Provider's token endpoint under load (bench/oidc.sh): codes redeemed, or refresh
//! tokens rotated, per second, by `CONNS` concurrent callers for `SECONDS`, against a running
//! authhost on 127.0.0.1 with the dev login on and a public client registered.
//!
//!   bench-oidc BASE CLIENT_ID REDIRECT_URI code|refresh CONNS SECONDS
//!
//! `code`: users log in through the dev form (the browser session), each gets up to 40 codes
//! from `oidc/authorize` (the per-user bound is 50), then the callers redeem them
//! (`grant_type=authorization_code`, PKCE: one access and one ID token each). Codes live 60
//! seconds, so they are made just before and enough for the run. `refresh`: each caller gets one
//! refresh token (`offline_access`) and rotates it as fast as it can (one access and one ID
//! token each). Prints `rate <per second> ok <n> errors <n>`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
async fn make_codes(t: &Arc<Target>, users: usize, per_user: usize, scope: &str) -> Vec<String> {
    let mut all = Vec::new();
    for chunk in (0..users).collect::<Vec<_>>().chunks(64) {
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
    let [_, base, client_id, redirect_uri, mode, conns, seconds] = args.as_slice() else {
        eprintln!("usage: bench-oidc BASE CLIENT_ID REDIRECT_URI code|refresh CONNS SECONDS");
        std::process::exit(2);
    };
    let conns: usize = conns.parse().expect("CONNS");
    let seconds: f64 = seconds.parse().expect("SECONDS");
    let t = Arc::new(Target {
        base: base.clone(),
        client_id: client_id.clone(),
        redirect_uri: redirect_uri.clone(),
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conns)
        .build()
        .expect("client");
    let ok = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (started, deadline);
    match mode.as_str() {
        "code" => {
            // Enough for the run at 4,000 per second, a little above the two-signature ceiling.
            let wanted = (seconds * 4000.0) as usize;
            let users = wanted.div_ceil(CODES_PER_USER);
            let made = Instant::now();
            let codes = make_codes(&t, users, CODES_PER_USER, "openid email profile").await;
            eprintln!(
                "{} codes in {:.1} s",
                codes.len(),
                made.elapsed().as_secs_f64()
            );
            let queue = Arc::new(Mutex::new(codes));
            started = Instant::now();
            deadline = started + Duration::from_secs_f64(seconds);
            let tasks: Vec<_> = (0..conns)
                .map(|_| {
                    let (t, client, queue, ok, errors) = (
                        t.clone(),
                        client.clone(),
                        queue.clone(),
                        ok.clone(),
                        errors.clone(),
                    );
                    tokio::spawn(async move {
                        while Instant::now() < deadline {
                            let Some(code) = queue.lock().expect("queue").pop() else {
                                break;
                            };
                            match token(&client, &t, &redeem_form(&t, &code)).await {
                                Some(_) => ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                                None => errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                            };
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("caller");
            }
        }
        "refresh" => {
            // One family per caller, one user per caller (families are bounded per user).
            let codes = make_codes(&t, conns, 1, "openid offline_access").await;
            let mut tokens = Vec::new();
            for code in &codes {
                let refresh = token(&client, &t, &redeem_form(&t, code)).await;
                tokens.push(refresh.filter(|r| !r.is_empty()).expect("a refresh token"));
            }
            started = Instant::now();
            deadline = started + Duration::from_secs_f64(seconds);
            let tasks: Vec<_> = tokens
                .into_iter()
                .map(|mut current| {
                    let (t, client, ok, errors) =
                        (t.clone(), client.clone(), ok.clone(), errors.clone());
                    tokio::spawn(async move {
                        while Instant::now() < deadline {
                            let form = [
                                ("grant_type", "refresh_token"),
                                ("client_id", t.client_id.as_str()),
                                ("refresh_token", current.as_str()),
                            ];
                            match token(&client, &t, &form).await {
                                Some(next) if !next.is_empty() => {
                                    current = next;
                                    ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                }
                                _ => {
                                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                    break;
                                }
                            }
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("caller");
            }
        }
        other => panic!("mode {other}: code or refresh"),
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ok = ok.load(std::sync::atomic::Ordering::Relaxed);
    let errors = errors.load(std::sync::atomic::Ordering::Relaxed);
    println!("rate {:.0} ok {ok} errors {errors}", ok as f64 / elapsed);
}
