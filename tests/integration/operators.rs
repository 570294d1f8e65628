//! What operators rely on: the headers every answer carries, walked over every route, and the
//! access log of a real `authhost serve` process, grepped for the tokens it was given.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::process::Stdio;

use authhost_tests::{TOKEN_TYPE_JWT, TestServer, exchange_form};
use reqwest::Method;

/// One request of the walk: the route template it hits, and what it sends.
struct Step {
    route: String,
    method: Method,
    path_and_query: String,
    headers: Vec<(&'static str, String)>,
    form: Vec<(&'static str, String)>,
}

fn step(route: &str, method: Method, path_and_query: &str) -> Step {
    Step {
        route: route.to_string(),
        method,
        path_and_query: path_and_query.to_string(),
        headers: Vec::new(),
        form: Vec::new(),
    }
}

impl Step {
    fn header(mut self, name: &'static str, value: &str) -> Step {
        self.headers.push((name, value.to_string()));
        self
    }
    fn form(mut self, pairs: &[(&'static str, &str)]) -> Step {
        self.form = pairs.iter().map(|(k, v)| (*k, v.to_string())).collect();
        self
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_with_the_security_headers() {
    let s = TestServer::start().await;
    let p = s.prefix.clone();
    let token = s.dev_login("headers@example.org", "Head Ers").await;
    let issuer = s.app.tokens.issuer().to_string();
    let metadata = authhost::routes::route_patterns(&s.app)
        .into_iter()
        .filter(|r| {
            r.starts_with("/.well-known/oauth-authorization-server")
                || r.ends_with("/.well-known/openid-configuration")
        })
        .collect::<Vec<_>>();
    assert!(!metadata.is_empty(), "metadata routes for {issuer}");
    let r = |path: &str| format!("{p}{path}");
    let exchange = exchange_form(&token, TOKEN_TYPE_JWT, "example");
    let mut walk = vec![
        step(&r("check"), Method::GET, &r("check")),
        // Twice with the token in a header: the second is the `check` shortcut's answer.
        step(&r("check"), Method::GET, &r("check")).header("auth-token", &token),
        step(&r("check"), Method::GET, &r("check")).header("auth-token", &token),
        step(
            &r("check"),
            Method::GET,
            &format!("{}?jwt={token}", r("check")),
        ),
        step(
            &r("check"),
            Method::GET,
            &format!("{}?callback=cb", r("check")),
        )
        .header("auth-token", &token),
        step(&r("check"), Method::OPTIONS, &r("check"))
            .header("origin", "https://app.example.org")
            .header("access-control-request-method", "GET"),
        step(
            &r("authorize"),
            Method::GET,
            &format!("{}?service=example", r("authorize")),
        )
        .header("auth-token", &token),
        step(&r("authorize"), Method::GET, &r("authorize")),
        step(&r("update"), Method::POST, &r("update"))
            .header("auth-token", &token)
            .form(&[("username", "headers")]),
        step(&r("public-key"), Method::GET, &r("public-key")),
        step(
            &r("resolve"),
            Method::GET,
            &format!("{}?username=headers", r("resolve")),
        ),
        step(
            &r("get_profile"),
            Method::GET,
            &format!("{}?username=headers", r("get_profile")),
        ),
        step(&r("login/dev"), Method::GET, &r("login/dev")),
        step(
            &r("login/dev"),
            Method::GET,
            &format!("{}?next=https://app.example.org/x", r("login/dev")),
        ),
        step(&r("login/dev"), Method::POST, &r("login/dev")).form(&[
            ("email", "second@example.org"),
            ("next", "https://app.example.org/x"),
        ]),
        step(&r("login/{provider}"), Method::GET, &r("login/nosuch")),
        step(
            &r("oauth_callback"),
            Method::GET,
            &format!("{}?state=x&code=y", r("oauth_callback")),
        ),
        step(&r("token"), Method::POST, &r("token")).form(&exchange),
        step(&r("token"), Method::POST, &r("token")).form(&[("grant_type", "password")]),
        step(&r("token"), Method::POST, &r("token")).form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "nobody"),
        ]),
        step(
            &r("oidc/authorize"),
            Method::GET,
            &format!("{}?client_id=nobody", r("oidc/authorize")),
        ),
        step(&r("oidc/userinfo"), Method::GET, &r("oidc/userinfo")),
        step(&r("oidc/userinfo"), Method::POST, &r("oidc/userinfo"))
            .header("authorization", "Bearer not-a-token"),
        step(&r("oidc/logout"), Method::GET, &r("oidc/logout")),
        step(
            "/.well-known/jwks.json",
            Method::GET,
            "/.well-known/jwks.json",
        ),
        step("/healthz", Method::GET, "/healthz"),
        step("/readyz", Method::GET, "/readyz"),
        step("/metrics", Method::GET, "/metrics"),
        step("unmatched", Method::GET, "/nowhere"),
        step(&r("check"), Method::DELETE, &r("check")),
        // Last: it revokes the token the steps above use.
        step(
            &r("logout"),
            Method::GET,
            &format!("{}?next=https://app.example.org/bye", r("logout")),
        )
        .header("auth-token", &token),
        step(&r("logout"), Method::POST, &r("logout")),
    ];
    for path in &metadata {
        walk.push(step(path, Method::GET, path));
    }

    // The walk covers every route the router has: a new route needs a step here.
    let walked: BTreeSet<&str> = walk.iter().map(|s| s.route.as_str()).collect();
    for route in authhost::routes::route_patterns(&s.app) {
        assert!(walked.contains(route.as_str()), "no step walks {route}");
    }

    let mut jwt_redirects = 0;
    for st in &walk {
        let mut req = s.client.request(
            st.method.clone(),
            format!("{}{}", s.base, st.path_and_query),
        );
        for (k, v) in &st.headers {
            req = req.header(*k, v);
        }
        if !st.form.is_empty() {
            req = req.form(&st.form);
        }
        let resp = req.send().await.expect("request");
        let what = format!("{} {} → {}", st.method, st.path_and_query, resp.status());
        let h = resp.headers();
        assert_eq!(
            h.get("x-content-type-options").map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{what}"
        );
        let cache = h
            .get("cache-control")
            .map(|v| v.to_str().unwrap().to_string());
        let public_document = st.route == "/.well-known/jwks.json" || metadata.contains(&st.route);
        if public_document {
            assert!(
                cache
                    .as_deref()
                    .is_some_and(|c| c.starts_with("public, max-age=")),
                "{what}: {cache:?}"
            );
        } else {
            assert_eq!(cache.as_deref(), Some("no-store"), "{what}");
        }
        if let Some(location) = h.get("location").map(|v| v.to_str().unwrap()) {
            assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
            if location.contains("jwt=") {
                jwt_redirects += 1;
            }
        }
        if st.route == r("login/dev") && st.method == Method::GET {
            assert_eq!(resp.status(), 200);
            let csp = h["content-security-policy"].to_str().unwrap().to_string();
            for part in [
                "default-src 'none'",
                "frame-ancestors 'none'",
                "form-action 'self'",
                "base-uri 'none'",
            ] {
                assert!(csp.contains(part), "{csp} lacks {part}");
            }
            assert!(
                !csp.contains("script-src") && !csp.contains("unsafe"),
                "{csp}"
            );
            // The form's redirect goes to `next`, whose origin browsers check against form-action.
            if st.path_and_query.contains("next=") {
                assert!(
                    csp.contains("form-action 'self' https://app.example.org;"),
                    "{csp}"
                );
            }
            assert_eq!(h["referrer-policy"], "no-referrer");
            assert_eq!(h["x-frame-options"], "DENY");
            // The page's one style is allowed by the hash the policy names.
            let body = resp.text().await.unwrap();
            let style = body
                .split("<style>")
                .nth(1)
                .and_then(|b| b.split("</style>").next())
                .unwrap();
            use base64::Engine;
            use sha2::Digest;
            let hash = base64::engine::general_purpose::STANDARD
                .encode(sha2::Sha256::digest(style.as_bytes()));
            assert!(csp.contains(&format!("'sha256-{hash}'")), "{csp}");
            assert!(!body.contains("<script"), "{body}");
        }
    }
    assert!(
        jwt_redirects >= 1,
        "the dev login's redirect carried no jwt"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_the_server_cannot_parse_gets_the_headers_too() {
    let s = TestServer::start().await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let answer = tokio::task::spawn_blocking(move || {
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.write_all(b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let _ = tcp.read_to_string(&mut answer);
        answer
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("x-content-type-options: nosniff"),
        "{answer}"
    );
    assert!(answer.contains("cache-control: no-store"), "{answer}");
    s.stop().await;
}

/// A free port on 127.0.0.1 (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_names_routes_and_users_and_never_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = dir.path().join("authhost.toml");
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = "127.0.0.1:{port}"
external_address = "{base}"
data_dir = "{data}"
access_log = true
trusted_proxies = ["127.0.0.1"]
[database]
url = "sqlite://{data}/authhost.db?mode=rwc"
[redirects]
allowed = ["https://app.example.org/"]
[plugins]
services = "example:sample_permission_provider"
[providers.dev]
enabled = true
"#,
            data = dir.path().display()
        ),
    )
    .unwrap();
    let log = dir.path().join("stderr.log");
    let child = authhost_tests::authhost_command()
        .args(["--config", config.to_str().unwrap(), "serve"])
        // A quiet filter: the access lines stay on anyway.
        .env("AUTHHOST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .map(authhost_tests::Running)
        .unwrap();
    let client = authhost_tests::browser();
    let ready = async {
        for _ in 0..500 {
            if client
                .get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        false
    };
    assert!(
        ready.await,
        "server did not start: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    let login = client
        .post(format!("{base}/auth/login/dev"))
        .form(&[
            ("email", "logged@example.org"),
            ("next", "https://app.example.org/x"),
        ])
        .send()
        .await
        .unwrap();
    let location = login.headers()["location"].to_str().unwrap().to_string();
    let token = authhost_tests::query_param(&location, "jwt");
    let check: serde_json::Value = client
        .get(format!("{base}/auth/check"))
        .header("auth-token", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let userid = check["profile"]["id"]
        .as_str()
        .expect("profile id")
        .to_string();
    // The same token in every place a client may put it; the shortcut answers the repeats.
    let mut secrets = vec![token.clone()];
    for _ in 0..2 {
        client
            .get(format!("{base}/auth/check"))
            .header("auth-token", &token)
            .send()
            .await
            .unwrap();
    }
    client
        .get(format!("{base}/auth/check"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    client
        .get(format!("{base}/auth/check?jwt={token}"))
        .send()
        .await
        .unwrap();
    let authorized: serde_json::Value = client
        .get(format!("{base}/auth/authorize?service=example&jwt={token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    secrets.push(
        authorized["token"]
            .as_str()
            .expect("permission token")
            .to_string(),
    );
    let exchanged: serde_json::Value = client
        .post(format!("{base}/auth/token"))
        .form(&exchange_form(&token, TOKEN_TYPE_JWT, "example"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    secrets.push(
        exchanged["access_token"]
            .as_str()
            .expect("exchanged token")
            .to_string(),
    );
    client
        .post(format!("{base}/auth/update"))
        .form(&[("jwt", token.as_str()), ("username", "logged")])
        .send()
        .await
        .unwrap();
    client
        .get(format!("{base}/auth/check?jwt=not.a.token"))
        .send()
        .await
        .unwrap();
    client
        .post(format!("{base}/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    // Behind a trusted proxy the client is the address the proxy appended, in its own line,
    // whatever the client wrote in a line before it (bytes that are not text included).
    for client_line in [&b"203.0.113.77"[..], &b"\xff\xfe"[..]] {
        client
            .get(format!("{base}/auth/resolve?username=nobody"))
            .header(
                "x-forwarded-for",
                reqwest::header::HeaderValue::from_bytes(client_line).unwrap(),
            )
            .header("x-forwarded-for", "198.51.100.1")
            .send()
            .await
            .unwrap();
    }

    // Lines are written as requests end; give the last one a moment, then stop the server.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    child.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("authhost::access"))
        .collect();
    assert!(lines.len() >= 12, "one line per request expected:\n{text}");

    for secret in &secrets {
        // The whole token, and each of its parts (a signature alone is enough to matter).
        for part in std::iter::once(secret.as_str()).chain(secret.split('.')) {
            assert!(
                !text.contains(part),
                "the log holds a token part {part}:\n{text}"
            );
        }
    }
    assert!(
        !text.contains("not.a.token"),
        "a query string in the log:\n{text}"
    );
    let line_of = |route: &str| {
        lines
            .iter()
            .filter(|l| {
                l.contains(&format!("route={route} ")) || l.contains(&format!("route=\"{route}\""))
            })
            .copied()
            .collect::<Vec<_>>()
    };
    let resolved = line_of("/auth/resolve");
    assert_eq!(resolved.len(), 2, "{text}");
    assert!(
        resolved.iter().all(|l| l.contains("client=198.51.100.1")),
        "{resolved:?}"
    );
    let checks = line_of("/auth/check");
    assert_eq!(checks.len(), 6, "{text}");
    assert!(
        checks
            .iter()
            .filter(|l| l.contains(&format!("user={userid}"))
                || l.contains(&format!("user=\"{userid}\"")))
            .count()
            >= 5,
        "check lines name the user:\n{text}"
    );
    for route in [
        "/auth/authorize",
        "/auth/token",
        "/auth/update",
        "/auth/logout",
        "/auth/login/dev",
    ] {
        let found = line_of(route);
        assert!(!found.is_empty(), "no line for {route}:\n{text}");
        assert!(
            found
                .iter()
                .all(|l| l.contains("client=127.0.0.1") && l.contains("status=")),
            "{found:?}"
        );
        assert!(
            found.iter().all(|l| l.contains(&userid)),
            "{route} lines lack the user: {found:?}"
        );
    }
}
