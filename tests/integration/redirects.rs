//! The redirect allowlist for `next`: a table of hostile targets, every one refused by the
//! policy itself and by the routes that redirect (dev login, logout), plus the targets that must
//! stay allowed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use authhost::redirects::RedirectPolicy;
use authhost_tests::{Options, TestServer};

const ALLOWED: &[&str] = &["https://app.example.org", "https://docs.example.org/guide/"];
const OWN: &str = "http://127.0.0.1:1";

pub(crate) fn hostile() -> Vec<String> {
    let mut v: Vec<String> = [
        // Scheme-relative and backslash tricks: browsers read these as another host.
        "//evil.example",
        "//evil.example/",
        "///evil.example",
        "////evil.example",
        "/\\evil.example",
        "\\/evil.example",
        "\\\\evil.example",
        "/\\/evil.example",
        "https:\\\\evil.example",
        "https:/\\evil.example",
        "https://app.example.org\\@evil.example",
        "https://app.example.org\\.evil.example",
        // Scheme without slashes.
        "http:evil.example",
        "https:evil.example",
        "http:/evil.example",
        "https:/evil.example",
        "http:app.example.org",
        "https:app.example.org/x",
        // Userinfo.
        "https://app.example.org@evil.example/",
        "https://app.example.org:443@evil.example/",
        "https://user:pass@app.example.org/",
        "https://user@app.example.org/",
        "https://evil.example#@app.example.org/",
        "https://evil.example?@app.example.org/",
        "https://evil.example\\@app.example.org/",
        "https://app.example.org%40evil.example/",
        "https://app.example.org%2540evil.example/",
        // Look-alike hosts and an allowed origin as a prefix of a foreign one.
        "https://app.example.org.evil.example/",
        "https://app.example.organ/",
        "https://app.example.org-evil.example/",
        "https://app-example.org/",
        "https://appexample.org/",
        "https://app.example.org.",
        "https://xapp.example.org/",
        "https://evil.example/app.example.org",
        "https://evil.example/?next=https://app.example.org/",
        "https://аpp.example.org/",
        "https://app.exаmple.org/",
        "https://xn--pp-8cd.example.org/",
        "https://app.example.org%2eevil.example/",
        "https://app%2eexample.org/",
        // Other schemes, ports and origins.
        "http://app.example.org/",
        "ftp://app.example.org/",
        "ws://app.example.org/",
        "wss://app.example.org/",
        "https://app.example.org:444/",
        "https://app.example.org:8443/x",
        "https://docs.example.org:444/guide/",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "javascript://app.example.org/%0Aalert(1)",
        "javascript:https://app.example.org/",
        "java\tscript:alert(1)",
        "java\nscript:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "blob:https://app.example.org/uuid",
        "about:blank",
        "mailto:a@app.example.org",
        // Control characters, CRLF and whitespace anywhere.
        "https://app.example.org/\r\nSet-Cookie: x=1",
        "https://app.example.org/%0d%0aSet-Cookie:x=1\r\n",
        "https://app.example.org/\n",
        "https://app.example.org/\t",
        "\thttps://app.example.org/",
        " https://app.example.org/",
        "https://app.example.org/ ",
        "https:// app.example.org/",
        "https://app.example.org /",
        "\u{0}https://app.example.org/",
        "https://app.example.org/\u{0}",
        "https://app.example.org\u{7f}/",
        "\u{200b}https://app.example.org/",
        "https://app.example.org\u{3000}/",
        "/\r\n/evil.example",
        "/\t/evil.example",
        "/ /evil.example",
        "\r\n//evil.example",
        // Paths outside an allowed path prefix, raw and encoded.
        "https://docs.example.org/",
        "https://docs.example.org/guidebook",
        "https://docs.example.org/guide-evil/",
        "https://docs.example.org/GUIDE/",
        "https://docs.example.org/guide/../admin",
        "https://docs.example.org/guide/%2e%2e/admin",
        "https://docs.example.org/guide/%2E%2E/admin",
        "https://docs.example.org/guide/.%2e/admin",
        "https://docs.example.org/guide/%2e./admin",
        "https://docs.example.org/guide/../../admin",
        "https://docs.example.org/guide/./../admin",
        "https://docs.example.org/other/../guide-evil",
        "https://docs.example.org//guide/",
        "https://docs.example.org/guide%2f",
        // Not URLs, or relative forms that are not absolute paths.
        "evil.example",
        "evil.example/path",
        "app.example.org",
        "app.example.org/x",
        "./evil",
        "../evil",
        "?next=//evil.example",
        "#//evil.example",
        "%2F%2Fevil.example",
        "%2f%5cevil.example",
        "https%3A%2F%2Fevil.example",
        "",
        "https://",
        "https:///app.example.org",
        "http://[::1]:80/",
        "http://0x7f000001/",
        "http://2130706433/",
        "https://app.example.org/x".repeat(300).as_str(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Each scheme-relative form again with whitespace or an encoded slash in front.
    for base in ["//evil.example", "/\\evil.example"] {
        for prefix in [" ", "\t", "\n", "%20", "%09"] {
            v.push(format!("{prefix}{base}"));
        }
    }
    v
}

const ALLOWED_TARGETS: &[&str] = &[
    "https://app.example.org",
    "https://app.example.org/",
    "https://app.example.org/deep/path?x=1&y=2#frag",
    "https://APP.example.org/x",
    "https://app.example.org:443/x",
    "https://docs.example.org/guide",
    "https://docs.example.org/guide/",
    "https://docs.example.org/guide/chapter/1",
    "https://docs.example.org/other/../guide/x",
    "/",
    "/auth/check",
    "/some/page?x=1#y",
    "http://127.0.0.1:1/auth/check",
];

#[test]
fn the_policy_refuses_every_hostile_target_and_keeps_the_allowed_ones() {
    let allowed: Vec<String> = ALLOWED.iter().map(|s| s.to_string()).collect();
    let policy = RedirectPolicy::new(&allowed, OWN).unwrap();
    let table = hostile();
    assert!(table.len() >= 100, "{} payloads", table.len());
    let accepted: Vec<&String> = table.iter().filter(|t| policy.check(t).is_ok()).collect();
    assert!(
        accepted.is_empty(),
        "accepted hostile targets: {accepted:#?}"
    );
    for ok in ALLOWED_TARGETS {
        assert!(policy.check(ok).is_ok(), "{ok} should be allowed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_that_redirect_refuse_them_too() {
    let mut env = authhost::config::EnvMap::new();
    env.insert(
        "AUTHHOST_REDIRECTS__ALLOWED".into(),
        format!("{:?}", ALLOWED),
    );
    let s = TestServer::start_with(Options {
        env,
        ..Options::default()
    })
    .await;
    let token = s.dev_login("r@example.org", "R").await;
    let enc = |t: &str| -> String { url::form_urlencoded::byte_serialize(t.as_bytes()).collect() };
    // (An empty `next` means "none": the route's default, this host's `check`.)
    for target in hostile().into_iter().filter(|t| !t.is_empty()) {
        for path in [
            format!("login/dev?next={}", enc(&target)),
            format!("logout?jwt={token}&next={}", enc(&target)),
        ] {
            let r = s.client.get(s.url(&path)).send().await.unwrap();
            assert_eq!(
                r.status(),
                400,
                "{target:?} via {}",
                path.split('?').next().unwrap()
            );
        }
    }
    // Still logged in: no refused logout changed anything.
    assert_eq!(
        s.get_json(&format!("check?jwt={token}")).await["authenticated"],
        true
    );
    for target in ALLOWED_TARGETS {
        let r = s
            .client
            .get(s.url(&format!("login/dev?next={}", enc(target))))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{target}");
    }
    s.stop().await;
}
