//! Login through a GitHub-like upstream (a fake in this suite), and every failure path of the
//! flow: denial, replayed and expired states, refused codes, upstream errors, unverified e-mail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use authhost_tests::fake_github::FakeGitHub;
use authhost_tests::{Options, TestServer, md5_hex};
use serde_json::{Value, json};

const NEXT: &str = "https://app.example.org/after?keep=1";

async fn start() -> (TestServer, FakeGitHub) {
    start_with(Options::default()).await
}

/// A test server with the GitHub fake as a provider, plus `options` (their TOML appended).
async fn start_with(options: Options) -> (TestServer, FakeGitHub) {
    let gh = FakeGitHub::start().await;
    let extra_toml = format!("{}\n{}", gh.provider_toml(), options.extra_toml);
    let s = TestServer::start_with(Options {
        extra_toml,
        ..options
    })
    .await;
    (s, gh)
}

fn location(r: &reqwest::Response) -> String {
    assert_eq!(r.status(), 302, "expected a redirect");
    r.headers()["location"].to_str().unwrap().to_string()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Starts a login, lets the fake play the user `login`, and returns the callback URL on the
/// test server (the browser's next stop).
async fn to_callback(s: &TestServer, login: &str) -> String {
    let r = s
        .client
        .get(s.url(&format!("login/github?next={}", enc(NEXT))))
        .send()
        .await
        .unwrap();
    let authorize = location(&r);
    let r = s
        .client
        .get(format!("{authorize}&login={login}"))
        .send()
        .await
        .unwrap();
    let callback = location(&r);
    // The callback URL is built from external_address; the test server listens elsewhere.
    let path = callback
        .split_once("/auth/")
        .map(|(_, rest)| rest)
        .expect("callback under the prefix");
    s.url(path)
}

/// The query of the final redirect to `next`.
async fn finish(s: &TestServer, callback: &str) -> Vec<(String, String)> {
    let r = s.client.get(callback).send().await.unwrap();
    let target = location(&r);
    assert!(
        target.starts_with("https://app.example.org/after?"),
        "{target}"
    );
    url::Url::parse(&target)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_lists_github_with_its_login_url() {
    let (s, _gh) = start().await;
    let body = s.get_json(&format!("check?next={}", enc(NEXT))).await;
    assert_eq!(
        body["providers"]["github"]["url"],
        format!("http://127.0.0.1:1/auth/login/github?next={}", enc(NEXT))
    );
    assert!(body["providers"]["dev"].is_object());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorize_redirect_carries_pkce_state_and_the_original_callback() {
    let (s, gh) = start().await;
    let r = s.client.get(s.url("login/github")).send().await.unwrap();
    let url = url::Url::parse(&location(&r)).unwrap();
    assert!(
        url.as_str()
            .starts_with(&format!("{}/login/oauth/authorize?", gh.base))
    );
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "gh-client");
    assert_eq!(q["redirect_uri"], "http://127.0.0.1:1/auth/oauth_callback");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(q["state"].len() >= 40);
    assert_eq!(q["scope"], "read:user user:email");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_email_user_logs_in_with_the_verified_primary() {
    let (s, _gh) = start().await;
    let cb = to_callback(&s, "private").await;
    let q = finish(&s, &cb).await;
    assert_eq!(
        param(&q, "keep"),
        Some("1"),
        "next's own parameters are kept"
    );
    let jwt = param(&q, "jwt").expect("jwt");
    let check = s.get_json(&format!("check?jwt={jwt}")).await;
    assert_eq!(check["authenticated"], true);
    let p = &check["profile"];
    assert_eq!(p["email"], "private@example.org");
    assert_eq!(p["id"], md5_hex("private@example.org").as_str());
    assert_eq!(p["provider_id"], "github:1001");
    assert_eq!(p["name"], "Private Person");
    assert_eq!(p["avatar_url"], "https://avatars.example/u/1001");
    assert!(
        p.get("username").is_none(),
        "no username until the user picks one"
    );

    // The state was used up: replaying the callback is refused without a redirect.
    let r = s.client.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({ "error": "unknown or already used login state" })
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_account_under_a_secondary_verified_email_wins() {
    let (s, _gh) = start().await;
    s.dev_login("old@example.org", "Old Account").await;
    let q = finish(&s, &to_callback(&s, "switcher").await).await;
    let check = s
        .get_json(&format!("check?jwt={}", param(&q, "jwt").unwrap()))
        .await;
    assert_eq!(check["profile"]["email"], "old@example.org");
    assert_eq!(
        check["profile"]["provider_id"], "github:1003",
        "the profile is refreshed on login"
    );
    assert!(
        authhost::users::get(&s.app.db, &md5_hex("new@example.org"))
            .await
            .unwrap()
            .is_none()
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_redirect_with_an_error_and_create_no_user() {
    let (s, _gh) = start().await;
    let users_before = count_users(&s).await;

    let q = finish(&s, &to_callback(&s, "unverified").await).await;
    assert_eq!(param(&q, "error"), Some("unverified_email"));
    assert!(param(&q, "jwt").is_none());

    let q = finish(&s, &to_callback(&s, "deny").await).await;
    assert_eq!(param(&q, "error"), Some("access_denied"));

    let q = finish(&s, &to_callback(&s, "broken").await).await;
    assert_eq!(param(&q, "error"), Some("upstream_error"));

    // A code the upstream refuses (here: already spent, with a fresh state).
    let cb = to_callback(&s, "private").await;
    let code = url::Url::parse(&cb)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let fresh = to_callback(&s, "private").await;
    let fresh_state = url::Url::parse(&fresh)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    finish(&s, &cb).await; // spends `code`
    let q = finish(
        &s,
        &s.url(&format!("oauth_callback?state={fresh_state}&code={code}")),
    )
    .await;
    assert_eq!(param(&q, "error"), Some("upstream_error"));

    // No code at all.
    let cb = to_callback(&s, "private").await;
    let state = url::Url::parse(&cb)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let q = finish(&s, &s.url(&format!("oauth_callback?state={state}"))).await;
    assert_eq!(param(&q, "error"), Some("invalid_request"));

    // An expired state.
    let cb = to_callback(&s, "private").await;
    use sea_orm::{ConnectionTrait, Statement};
    let backend = s.app.db.get_database_backend();
    s.app
        .db
        .execute_raw(Statement::from_string(
            backend,
            "UPDATE login_states SET expires_at = 0",
        ))
        .await
        .unwrap();
    let q = finish(&s, &cb).await;
    assert_eq!(param(&q, "error"), Some("expired_state"));

    assert_eq!(
        count_users(&s).await,
        users_before + 1,
        "only the one successful login created a user"
    );
    s.stop().await;
}

async fn count_users(s: &TestServer) -> i64 {
    count_rows(s, "users").await
}

async fn count_rows(s: &TestServer, table: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = s.app.db.get_database_backend();
    s.app
        .db
        .query_one_raw(Statement::from_string(
            backend,
            format!("SELECT COUNT(*) FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_to_the_flow_get_json() {
    let (s, _gh) = start().await;
    for (path, status) in [
        ("login/nope", 404),
        ("login/github?next=https%3A%2F%2Fevil.example%2F", 400),
        ("login/github?next=%2F%2Fevil.example", 400),
        ("oauth_callback", 400),
        ("oauth_callback?state=made-up&code=x", 400),
        (
            &format!("oauth_callback?state={}&code=x", "s".repeat(5000)),
            400,
        ),
    ] {
        let r = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        assert_eq!(r.headers()["content-type"], "application/json", "{path}");
    }
    s.stop().await;
}

/// RFC 9700 §4.7: a callback URL (state and code) taken from one browser and opened in another
/// must not log the other browser in; the browser that started the login can still finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_opened_in_another_browser_logs_nobody_in() {
    let (s, _gh) = start().await;
    let cb = to_callback(&s, "private").await;

    let other = authhost_tests::browser();
    let r = other.get(&cb).send().await.unwrap();
    let target = url::Url::parse(&location(&r)).unwrap();
    let q: Vec<(String, String)> = target.query_pairs().into_owned().collect();
    assert_eq!(param(&q, "error"), Some("browser_mismatch"));
    assert!(param(&q, "jwt").is_none(), "no token for the other browser");

    // A forged cookie of the right name does not help either.
    let name = {
        let state = url::Url::parse(&cb)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned();
        format!("authhost_login_{}", &state[..16])
    };
    let r = other
        .get(&cb)
        .header("cookie", format!("{name}=guessed"))
        .send()
        .await
        .unwrap();
    assert!(location(&r).contains("error=browser_mismatch"));

    let q = finish(&s, &cb).await;
    let jwt = param(&q, "jwt").expect("the browser that started the login finishes it");
    let check = s.get_json(&format!("check?jwt={jwt}")).await;
    assert_eq!(check["authenticated"], true);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binding_cookie_is_scoped_and_hidden_from_scripts() {
    let (s, _gh) = start().await;
    let r = s.client.get(s.url("login/github")).send().await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("authhost_login_"), "{cookie}");
    for attribute in ["Path=/auth/", "HttpOnly", "SameSite=Lax", "Max-Age=600"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "http external address: not Secure"
    );
    s.stop().await;

    let (s, _gh) = start_with(Options {
        env: [(
            "EXTERNAL_ADDRESS".to_string(),
            "https://auth.example.org".to_string(),
        )]
        .into(),
        ..Options::default()
    })
    .await;
    let r = s.client.get(s.url("login/github")).send().await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    assert!(
        cookie.starts_with("__Secure-authhost_login_"),
        "over https the name carries the __Secure- prefix: {cookie}"
    );
    s.stop().await;
}

async fn pending_states(s: &TestServer) -> i64 {
    count_rows(s, "login_states").await
}

/// A client bound to `ip` (any 127.0.0.0/8 address reaches the test server).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap()
}

/// 10,000 starts from one address (each claiming another address in `X-Forwarded-For`, which
/// is not believed from an untrusted peer) leave at most 1,000 pending states; the refused ones
/// get 429 JSON with `Retry-After`; another address still logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_login_starts_is_bounded_per_address() {
    let (s, _gh) = start().await;
    let s = std::sync::Arc::new(s);
    let mut tasks = Vec::new();
    for worker in 0..16u32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let client = client_from([127, 0, 0, 1]);
            let (mut ok, mut limited) = (0u32, 0u32);
            for i in 0..625u32 {
                let r = client
                    .get(s.url("login/github"))
                    .header(
                        "x-forwarded-for",
                        format!("10.{worker}.{}.{}", i / 256, i % 256),
                    )
                    .send()
                    .await
                    .unwrap();
                match r.status().as_u16() {
                    302 => ok += 1,
                    429 => {
                        let retry: i64 = r.headers()["retry-after"]
                            .to_str()
                            .unwrap()
                            .parse()
                            .unwrap();
                        assert!((1..=600).contains(&retry), "Retry-After {retry}");
                        assert_eq!(r.headers()["content-type"], "application/json");
                        limited += 1;
                    }
                    other => panic!("status {other}"),
                }
            }
            (ok, limited)
        }));
    }
    let (mut ok, mut limited) = (0, 0);
    for t in tasks {
        let (o, l) = t.await.unwrap();
        ok += o;
        limited += l;
    }
    assert_eq!(ok + limited, 10_000);
    let pending = pending_states(&s).await;
    assert!(pending <= 1_000, "{pending} pending states after the flood");
    assert!(limited >= 9_000, "{limited} starts refused");

    // Another address is not held back by the flood.
    let other = client_from([127, 0, 0, 2]);
    let r = other.get(s.url("login/github")).send().await.unwrap();
    assert_eq!(r.status(), 302, "a login from another address starts");
    let s = std::sync::Arc::into_inner(s).unwrap();
    s.stop().await;
}

/// Behind a trusted proxy, the address it reports is the client: a busy office behind one
/// NAT address is one client, and two offices behind the same proxy are two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let (s, _gh) = start_with(Options {
        extra_toml: "[login]\nmax_pending_per_client = 300\n".into(),
        env: [(
            "AUTHHOST_SERVER__TRUSTED_PROXIES".to_string(),
            "[\"127.0.0.1\"]".to_string(),
        )]
        .into(),
        ..Options::default()
    })
    .await;
    let proxy = client_from([127, 0, 0, 1]);
    let start_as = |office: &'static str| {
        proxy
            .get(s.url("login/github"))
            .header("x-forwarded-for", format!("6.6.6.6, {office}"))
            .send()
    };
    // Hundreds of logins a minute from one office are let through up to the limit...
    for _ in 0..300 {
        assert_eq!(start_as("198.51.100.1").await.unwrap().status(), 302);
    }
    assert_eq!(start_as("198.51.100.1").await.unwrap().status(), 429);
    // ...and the other office behind the same proxy is its own client.
    assert_eq!(start_as("198.51.100.2").await.unwrap().status(), 302);
    // The proxy's own line counts, whatever the client wrote in a line before it (bytes that are
    // not text included): the first office is still held back.
    for client_line in [&b"203.0.113.77"[..], &b"\xff\xfe"[..]] {
        let r = proxy
            .get(s.url("login/github"))
            .header(
                "x-forwarded-for",
                reqwest::header::HeaderValue::from_bytes(client_line).unwrap(),
            )
            .header("x-forwarded-for", "198.51.100.1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
    }
    s.stop().await;
}

/// Many addresses together (an IPv6 prefix holds many /64s) are bounded by
/// `max_pending_total`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_logins_of_all_clients_together_are_bounded() {
    let (s, _gh) = start_with(Options {
        extra_toml: "[login]\nmax_pending_per_client = 3\nmax_pending_total = 5\n".into(),
        ..Options::default()
    })
    .await;
    let start_from = |ip: [u8; 4]| client_from(ip).get(s.url("login/github")).send();
    for _ in 0..3 {
        assert_eq!(start_from([127, 0, 0, 1]).await.unwrap().status(), 302);
    }
    assert_eq!(start_from([127, 0, 0, 1]).await.unwrap().status(), 429);
    for _ in 0..2 {
        assert_eq!(start_from([127, 0, 0, 2]).await.unwrap().status(), 302);
    }
    let r = start_from([127, 0, 0, 3]).await.unwrap();
    assert_eq!(r.status(), 429, "the total is reached");
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(pending_states(&s).await, 5);
    s.stop().await;
}

/// Another cookie on this host whose bytes are not text (all cookies travel in one `Cookie`
/// line) must not hide the binding: the browser that started the login still finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_that_is_not_text_does_not_hide_the_binding() {
    let (s, _gh) = start().await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = plain
        .get(s.url(&format!("login/github?next={}", enc(NEXT))))
        .send()
        .await
        .unwrap();
    let binding = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let authorize = location(&r);
    let r = plain
        .get(format!("{authorize}&login=private"))
        .send()
        .await
        .unwrap();
    let callback = location(&r);
    let callback = s.url(callback.split_once("/auth/").unwrap().1);
    let mut line = b"other=\xff\xfe; ".to_vec();
    line.extend_from_slice(binding.as_bytes());
    let r = plain
        .get(&callback)
        .header(
            "cookie",
            reqwest::header::HeaderValue::from_bytes(&line).unwrap(),
        )
        .send()
        .await
        .unwrap();
    let q: Vec<(String, String)> = url::Url::parse(&location(&r))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert!(param(&q, "jwt").is_some(), "{q:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_account_gets_an_error_and_no_token_from_an_upstream_login() {
    let (s, _gh) = start().await;
    let q = finish(&s, &to_callback(&s, "private").await).await;
    assert!(param(&q, "jwt").is_some());
    let id = md5_hex("private@example.org");
    let user = authhost::users::get(&s.app.db, &id).await.unwrap().unwrap();
    s.app.sessions().disable(&user).await.unwrap();
    let q = finish(&s, &to_callback(&s, "private").await).await;
    assert_eq!(param(&q, "error"), Some("account_disabled"), "{q:?}");
    assert_eq!(param(&q, "jwt"), None);
    // Nothing of the refused login was kept.
    let after = authhost::users::get(&s.app.db, &id).await.unwrap().unwrap();
    assert_eq!(after.last_login, user.last_login);
    assert!(after.disabled_at.is_some());
    s.stop().await;
}
