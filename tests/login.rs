//! Login through a GitHub-like upstream (a fake in this suite), and every failure path of the
//! flow: denial, replayed, expired, tampered, foreign and missing login cookies, refused codes,
//! upstream errors, unverified e-mail; a flood of starts that fills nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use authhost_tests::fake_github::FakeGitHub;
use authhost_tests::{
    Options, TestServer, location, md5_hex, query_param, query_params, url_encode,
};
use serde_json::{Value, json};

const NEXT: &str = "https://app.example.org/after?keep=1";

/// The refusal of a callback for which this browser holds no login that opens.
const START_AGAIN: &str = "no login in progress for this callback in this browser (already finished, expired, or started elsewhere): start the login again";

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

/// Starts a login, lets the fake play the user `login`, and returns the callback URL on the
/// test server (the browser's next stop).
async fn to_callback(s: &TestServer, login: &str) -> String {
    let r = s
        .client
        .get(s.url(&format!("login/github?next={}", url_encode(NEXT))))
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
async fn finish(s: &TestServer, callback: &str) -> Query {
    let r = s.client.get(callback).send().await.unwrap();
    let target = location(&r);
    assert!(
        target.starts_with("https://app.example.org/after?"),
        "{target}"
    );
    query_params(&target)
}

/// The query of the URL a login ends at.
type Query = std::collections::HashMap<String, String>;

fn param<'a>(query: &'a Query, name: &str) -> Option<&'a str> {
    query.get(name).map(String::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_lists_github_with_its_login_url() {
    let (s, _gh) = start().await;
    let body = s
        .get_json(&format!("check?next={}", url_encode(NEXT)))
        .await;
    assert_eq!(
        body["providers"]["github"]["url"],
        format!(
            "http://127.0.0.1:1/auth/login/github?next={}",
            url_encode(NEXT)
        )
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
    let q = query_params(url.as_str());
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

    // The cookie was cleared: replaying the callback in this browser is refused without a
    // redirect, with the words that tell the user what to do.
    let r = s.client.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({ "error": START_AGAIN })
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
    let code = query_param(&cb, "code");
    let fresh = to_callback(&s, "private").await;
    let fresh_state = query_param(&fresh, "state");
    finish(&s, &cb).await; // spends `code`
    let q = finish(
        &s,
        &s.url(&format!("oauth_callback?state={fresh_state}&code={code}")),
    )
    .await;
    assert_eq!(param(&q, "error"), Some("upstream_error"));

    // No code at all.
    let cb = to_callback(&s, "private").await;
    let state = query_param(&cb, "state");
    let q = finish(&s, &s.url(&format!("oauth_callback?state={state}"))).await;
    assert_eq!(param(&q, "error"), Some("invalid_request"));

    // An expired login: its cookie opens, but the time sealed in it has passed.
    let mut started = Started::new(&s, "private").await;
    let mut login = s.app.login_sealer.open(started.value.as_bytes()).unwrap();
    login.expires_at = chrono::Utc::now().timestamp() - 1;
    started.value = s.app.login_sealer.seal(&login).unwrap();
    let q = finish_redirect(&started.present().await);
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

/// A login started by a client that keeps its cookies by hand: the callback URL the upstream
/// sent back, and the binding cookie's name and value.
struct Started {
    client: reqwest::Client,
    callback: String,
    name: String,
    value: String,
}

impl Started {
    async fn new(s: &TestServer, login: &str) -> Started {
        Started::by(plain_client(), s, "github", login).await
    }

    /// `client` starts a login with `provider` and plays the user `login` upstream.
    async fn by(client: reqwest::Client, s: &TestServer, provider: &str, login: &str) -> Started {
        let r = client
            .get(s.url(&format!("login/{provider}?next={}", url_encode(NEXT))))
            .send()
            .await
            .unwrap();
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
        let (name, value) = cookie.split(';').next().unwrap().split_once('=').unwrap();
        let (name, value) = (name.to_string(), value.to_string());
        let r = client
            .get(format!("{}&login={login}", location(&r)))
            .send()
            .await
            .unwrap();
        let callback = location(&r);
        let callback = s.url(callback.split_once("/auth/").unwrap().1);
        Started {
            client,
            callback,
            name,
            value,
        }
    }

    fn state(&self) -> String {
        query_param(&self.callback, "state")
    }

    /// The callback with `cookie` as the whole `Cookie` line.
    async fn present_line(&self, cookie: reqwest::header::HeaderValue) -> reqwest::Response {
        self.client
            .get(&self.callback)
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
    }

    async fn present_as(&self, cookie: &str) -> reqwest::Response {
        self.present_line(cookie.parse().unwrap()).await
    }

    async fn present(&self) -> reqwest::Response {
        self.present_as(&format!("{}={}", self.name, self.value))
            .await
    }
}

fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The query of a redirect to `next`.
fn finish_redirect(r: &reqwest::Response) -> Query {
    let target = location(r);
    assert!(
        target.starts_with("https://app.example.org/after?"),
        "{target}"
    );
    query_params(&target)
}

/// A refusal without a redirect: 400 JSON telling the user to start again, no cookie set.
async fn assert_start_again(r: reqwest::Response, case: &str) {
    assert_eq!(r.status(), 400, "{case}");
    assert_eq!(r.headers()["content-type"], "application/json", "{case}");
    assert!(r.headers().get("set-cookie").is_none(), "{case}");
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({ "error": START_AGAIN }),
        "{case}"
    );
}

/// RFC 9700 §4.7: a callback URL (state and code) taken from one browser and opened in another
/// must not log the other browser in; the browser that started the login can still finish.
/// Each way of presenting a login cookie that is not this browser's own is refused before the
/// upstream is asked, and counted by reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_without_its_own_login_cookie_logs_nobody_in() {
    let (s, _gh) = start().await;
    let started = Started::new(&s, "private").await;
    let other = Started::new(&s, "private").await;
    let refused =
        |reason: &str| format!("authhost_login_callbacks_refused_total{{reason=\"{reason}\"}}");

    let mut counts_before = std::collections::HashMap::new();
    for reason in [
        "no_cookie",
        "unreadable",
        "other_login",
        "unknown_key",
        "no_state",
    ] {
        counts_before.insert(reason, s.metric(&refused(reason)).await);
    }

    // Another browser: no cookie at all.
    assert_start_again(
        authhost_tests::browser()
            .get(&started.callback)
            .send()
            .await
            .unwrap(),
        "no cookie",
    )
    .await;
    // A forged value under the right name, and a login cookie from before the upgrade (a
    // random value; the state lived in the database then).
    let forged = format!("{}=guessed", started.name);
    assert_start_again(started.present_as(&forged).await, "forged").await;
    let old = format!(
        "{}=4mO0v1nqvZ3kq8VxB6JtQ1yF2xWw9Xc0aP7sR5dL3eH",
        started.name
    );
    assert_start_again(started.present_as(&old).await, "pre-upgrade cookie").await;
    // The real cookie with one character changed.
    let mut tampered = started.value.clone().into_bytes();
    let at = tampered.len() / 2;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{}={}", started.name, String::from_utf8(tampered).unwrap());
    assert_start_again(started.present_as(&tampered).await, "tampered").await;
    // Another login's cookie (valid, sealed here) under this login's name.
    let swapped = format!("{}={}", started.name, other.value);
    assert_start_again(started.present_as(&swapped).await, "other login").await;
    // A cookie sealed with a key this host does not hold, for this very state.
    let stranger = TestServer::start_with(Options {
        key: 1,
        ..Options::default()
    })
    .await;
    let mut login = s.app.login_sealer.open(started.value.as_bytes()).unwrap();
    assert_eq!(login.state, started.state());
    login.next = "https://app.example.org/after?stranger=1".into();
    let foreign = stranger.app.login_sealer.seal(&login).unwrap();
    stranger.stop().await;
    let foreign = format!("{}={foreign}", started.name);
    assert_start_again(started.present_as(&foreign).await, "unknown key").await;
    assert_start_again(
        plain_client()
            .get(s.url("oauth_callback?code=x"))
            .send()
            .await
            .unwrap(),
        "no state",
    )
    .await;
    // The counters are the process's (other tests' servers add to them too): each grew by at
    // least what this test caused.
    for (reason, n) in [
        ("no_cookie", 1.0),
        ("unreadable", 3.0),
        ("other_login", 1.0),
        ("unknown_key", 1.0),
        ("no_state", 1.0),
    ] {
        let grown = s.metric(&refused(reason)).await - counts_before[reason];
        assert!(grown >= n, "{reason}: {grown}");
    }

    // The browser that started the login still finishes it, and the cookie is cleared.
    let r = started.present().await;
    let cleared = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cleared.starts_with(&format!("{}=;", started.name))
            && cleared.contains("Max-Age=0")
            && cleared.contains("Path=/auth/oauth_callback;"),
        "{cleared}"
    );
    let q = finish_redirect(&r);
    let jwt = param(&q, "jwt").expect("the browser that started the login finishes it");
    let check = s.get_json(&format!("check?jwt={jwt}")).await;
    assert_eq!(check["authenticated"], true);
    s.stop().await;
}

/// No server-side record of used logins: a replay of the callback with the cookie as it was
/// (kept by an attacker, or a browser that ignored the clearing) reaches the upstream with a
/// code it already spent, and ends in an error without a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_callback_with_its_cookie_gets_no_second_token() {
    let (s, _gh) = start().await;
    let started = Started::new(&s, "private").await;
    let q = finish_redirect(&started.present().await);
    assert!(param(&q, "jwt").is_some());
    let q = finish_redirect(&started.present().await);
    assert_eq!(param(&q, "error"), Some("upstream_error"), "{q:?}");
    assert_eq!(param(&q, "jwt"), None);
    s.stop().await;
}

/// Code injection (RFC 9700 §4.5): a code obtained in one login, presented with another
/// login's state and cookie, is refused by the upstream, since the PKCE verifier sealed in that
/// cookie does not match the code's challenge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_from_another_login_is_refused_through_pkce() {
    let (s, _gh) = start().await;
    let victim = Started::new(&s, "private").await;
    let mut attacker = Started::new(&s, "switcher").await;
    let stolen = query_param(&victim.callback, "code");
    attacker.callback = s.url(&format!(
        "oauth_callback?state={}&code={stolen}",
        attacker.state()
    ));
    let q = finish_redirect(&attacker.present().await);
    assert_eq!(param(&q, "error"), Some("upstream_error"), "{q:?}");
    assert_eq!(param(&q, "jwt"), None);
    s.stop().await;
}

/// `next` is checked against the allowlist again at the callback: a replica whose allowlist no
/// longer has it (narrowed since the start) sends nobody there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_is_checked_again_when_the_login_comes_back() {
    let (s, gh) = start().await;
    let narrowed = TestServer::start_with(Options {
        extra_toml: gh.provider_toml(),
        env: [(
            "AUTHHOST_REDIRECTS__ALLOWED".to_string(),
            "[\"https://other.example.org/\"]".to_string(),
        )]
        .into(),
        ..Options::default()
    })
    .await;
    let mut started = Started::new(&s, "private").await;
    started.callback = narrowed.url(started.callback.split_once("/auth/").unwrap().1);
    let r = started.present().await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    narrowed.stop().await;
    s.stop().await;
}

/// Two logins at once in one browser (two tabs, two upstreams), finished in the other order:
/// each has its own cookie, and both end logged in as their own account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_logins_at_once_in_one_browser_both_finish() {
    let gh = FakeGitHub::start().await;
    let second = gh
        .provider_toml()
        .replace("[providers.github]", "[providers.gh2]\nkind = \"github\"");
    let s = TestServer::start_with(Options {
        extra_toml: format!("{}\n{second}", gh.provider_toml()),
        ..Options::default()
    })
    .await;
    let browser = authhost_tests::browser();
    let mut callbacks = Vec::new();
    for (provider, login) in [
        ("github", "private"),
        ("gh2", "switcher"),
        ("github", "private"),
    ] {
        let r = browser
            .get(s.url(&format!("login/{provider}?next={}", url_encode(NEXT))))
            .send()
            .await
            .unwrap();
        let r = browser
            .get(format!("{}&login={login}", location(&r)))
            .send()
            .await
            .unwrap();
        callbacks.push((
            provider,
            s.url(location(&r).split_once("/auth/").unwrap().1),
        ));
    }
    for (provider, callback) in callbacks.iter().rev() {
        let r = browser.get(callback).send().await.unwrap();
        let q = finish_redirect(&r);
        let jwt = param(&q, "jwt").unwrap_or_else(|| panic!("{provider}: {q:?}"));
        let check = s.get_json(&format!("check?jwt={jwt}")).await;
        let expected = if *provider == "gh2" {
            "gh2:1003"
        } else {
            "github:1001"
        };
        assert_eq!(check["profile"]["provider_id"], expected);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binding_cookie_is_sealed_scoped_and_hidden_from_scripts() {
    let (s, _gh) = start().await;
    let long_next = format!("https://app.example.org/{}", "a".repeat(1024 - 24));
    let r = s
        .client
        .get(s.url(&format!("login/github?next={}", url_encode(&long_next))))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("authhost_login_"), "{cookie}");
    for attribute in [
        "Path=/auth/oauth_callback;",
        "HttpOnly",
        "SameSite=Lax",
        "Max-Age=600",
    ] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "http external address: not Secure"
    );
    // The longest `next` a login takes makes a cookie of about 2 KiB, so that several logins in
    // progress fit a proxy's 8 KiB header line; nothing of the login can be read in it.
    assert!(cookie.len() < 2200, "{} bytes", cookie.len());
    assert!(!cookie.contains("app.example.org") && !cookie.contains("aaaa"));
    // One byte more, or a shorter `next` that JSON must escape into more than the cookie
    // takes, is refused before anything is sent upstream.
    for next in [format!("{long_next}a"), format!("/{}", "\"".repeat(1000))] {
        let r = s
            .client
            .get(s.url(&format!("login/github?next={}", url_encode(&next))))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{next}");
        assert!(r.headers().get("set-cookie").is_none());
        let error = r.json::<Value>().await.unwrap()["error"].to_string();
        assert!(error.contains("at most 1024 bytes"), "{error}");
    }
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
    assert!(cookie.contains("; Path=/auth/oauth_callback;"), "{cookie}");
    assert!(
        cookie.starts_with("__Secure-authhost_login_"),
        "over https the name carries the __Secure- prefix: {cookie}"
    );
    s.stop().await;

    // Behind a proxy that serves authhost under a path of its own, the cookie's path is the
    // callback's as the browser sees it.
    let (s, _gh) = start_with(Options {
        env: [(
            "EXTERNAL_ADDRESS".to_string(),
            "https://example.org/sso".to_string(),
        )]
        .into(),
        ..Options::default()
    })
    .await;
    let r = s.client.get(s.url("login/github")).send().await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("; Path=/sso/auth/oauth_callback;"),
        "{cookie}"
    );
    s.stop().await;
}

/// Every row of every table, summed: what a flood may not add to.
async fn all_rows(s: &TestServer) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = s.app.db.get_database_backend();
    let list = if s.db.is_postgres() {
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'table'"
    };
    let tables = s
        .app
        .db
        .query_all_raw(Statement::from_string(backend, list))
        .await
        .unwrap();
    let mut total = 0;
    for t in tables {
        let name: String = t.try_get_by_index(0).unwrap();
        total += count_rows(s, &format!("\"{name}\"")).await;
    }
    total
}

/// A client bound to `ip` (any 127.0.0.0/8 address reaches the test server).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap()
}

/// The flood that used to lock everyone out: 100,000 login starts from 200 client addresses,
/// never finished. Every one is answered, the database holds no row more than before, and a
/// login from a new address then completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_login_starts_fills_nothing_and_locks_nobody_out() {
    let (s, _gh) = start().await;
    let rows_before = all_rows(&s).await;
    let s = std::sync::Arc::new(s);
    let mut tasks = Vec::new();
    for address in 0..200u32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let client = client_from([127, 0, 1, address as u8 + 1]);
            let mut redirected = 0u32;
            for _ in 0..500 {
                let r = client.get(s.url("login/github")).send().await.unwrap();
                if r.status() == 302 && r.headers().contains_key("set-cookie") {
                    redirected += 1;
                }
            }
            redirected
        }));
    }
    let mut redirected = 0;
    for t in tasks {
        redirected += t.await.unwrap();
    }
    assert_eq!(
        redirected, 100_000,
        "every start answered with a redirect and its cookie"
    );
    assert_eq!(all_rows(&s).await, rows_before, "the flood wrote nothing");

    let newcomer = Started::by(client_from([127, 0, 2, 1]), &s, "github", "private").await;
    let q = finish_redirect(&newcomer.present().await);
    assert!(param(&q, "jwt").is_some(), "the newcomer logs in: {q:?}");
    let s = std::sync::Arc::into_inner(s).unwrap();
    s.stop().await;
}

/// Another cookie on this host whose bytes are not text (all cookies travel in one `Cookie`
/// line) must not hide the binding: the browser that started the login still finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_that_is_not_text_does_not_hide_the_binding() {
    let (s, _gh) = start().await;
    let started = Started::new(&s, "private").await;
    let mut line = b"other=\xff\xfe; ".to_vec();
    line.extend_from_slice(format!("{}={}", started.name, started.value).as_bytes());
    let r = started
        .present_line(reqwest::header::HeaderValue::from_bytes(&line).unwrap())
        .await;
    let q = finish_redirect(&r);
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
