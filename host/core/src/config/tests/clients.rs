//! `[clients.<id>]`: registered OpenID Provider clients, checked strictly.

use super::*;

#[test]
fn a_client_table_reads_with_its_secret_from_the_environment_and_redacted() {
    let c = Config::from_toml_str(
        r#"
[plugins]
services = "example:sample_permission_provider"
[clients.grafana]
redirect_uris = ["https://grafana.example.org/login/generic_oauth"]
audience = "example"
post_logout_redirect_uris = ["https://grafana.example.org/"]
[clients.spa]
redirect_uris = ["http://127.0.0.1:5173/callback", "http://[::1]:5173/callback"]
"#,
        &env(&[("AUTHHOST_CLIENTS__GRAFANA__SECRET", "s3cret-from-env")]),
    )
    .expect("valid");
    let grafana = &c.clients["grafana"];
    assert_eq!(grafana.secret.expose(), "s3cret-from-env");
    assert!(!grafana.is_public() && grafana.require_pkce);
    assert_eq!(grafana.audience.as_deref(), Some("example"));
    assert!(c.clients["spa"].is_public());
    let shown = c.to_redacted_toml();
    assert!(!shown.contains("s3cret-from-env"), "{shown}");
    assert!(shown.contains("[clients.grafana]"), "{shown}");
}

#[test]
fn every_client_problem_is_reported_with_its_key() {
    let errs = Config::from_toml_str(
        r##"
[plugins]
services = "example:sample_permission_provider"
[clients.a]
redirect_uris = ["http://app.example.org/cb", "https://app.example.org/cb#top", "myapp:/cb"]
audience = "nope"
require_pkce = false
post_logout_redirect_uris = ["https://user:pw@app.example.org/"]
[clients.b]
redirect_uris = []
"##,
        &env(&[]),
    )
    .expect_err("invalid")
    .0;
    assert_errors_name(
        &errs,
        &[
            "clients.a.redirect_uris[0]",
            "clients.a.redirect_uris[1]",
            "clients.a.redirect_uris[2]",
            "clients.a.post_logout_redirect_uris[0]",
            "clients.a.audience",
            "clients.a.require_pkce",
            "clients.b.redirect_uris",
        ],
    );
}

#[test]
fn redirect_uris_are_https_or_loopback_http_without_fragments() {
    for ok in [
        "https://app.example.org/cb",
        "https://app.example.org:8443/cb?x=1",
        "http://127.0.0.1:8080/cb",
        "http://127.9.9.9/cb",
        "http://[::1]/cb",
        "http://localhost:3000/cb",
    ] {
        assert_eq!(redirect_uri_problem(ok), None, "{ok}");
    }
    for bad in [
        "http://app.example.org/cb",
        "http://127.0.0.1.evil.example/cb",
        "https://app.example.org/cb#f",
        "https://u:p@app.example.org/cb",
        "myapp:/cb",
        "javascript:alert(1)",
        "/relative/cb",
        "",
        "https:///cb",
        "https://App.Example.org/cb",
        "https://app.example.org:443/cb",
        "https://app.example.org",
    ] {
        assert!(redirect_uri_problem(bad).is_some(), "{bad}");
    }
}
