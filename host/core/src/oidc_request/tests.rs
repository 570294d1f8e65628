use super::*;
use crate::config::Secret;

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn clients() -> BTreeMap<String, ClientConfig> {
    let public = ClientConfig {
        redirect_uris: vec!["https://app.example.org/cb".into()],
        ..ClientConfig::default()
    };
    let confidential = ClientConfig {
        redirect_uris: vec!["https://grafana.example.org/login".into()],
        secret: Secret::new("s3cret"),
        require_pkce: false,
        ..ClientConfig::default()
    };
    BTreeMap::from([
        ("spa".to_string(), public),
        ("grafana".to_string(), confidential),
    ])
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn good() -> Vec<(&'static str, &'static str)> {
    vec![
        ("client_id", "spa"),
        ("redirect_uri", "https://app.example.org/cb"),
        ("response_type", "code"),
        ("scope", "openid email"),
        ("state", "st"),
        ("nonce", "no"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

fn with(change: &[(&'static str, &'static str)]) -> Vec<(String, String)> {
    let mut list: Vec<(&str, &str)> = good()
        .into_iter()
        .filter(|(k, _)| !change.iter().any(|(c, _)| c == k))
        .collect();
    list.extend(change.iter().filter(|(_, v)| *v != "<absent>"));
    pairs(&list)
}

fn error_of(list: &[(String, String)]) -> &'static str {
    match parse(list, &clients()) {
        Err(RequestError::Redirect(r)) => {
            assert_eq!(r.redirect_uri, "https://app.example.org/cb");
            assert_eq!(r.state.as_deref(), Some("st"), "state goes back");
            r.error
        }
        other => panic!("expected a redirected error, got {other:?}"),
    }
}

#[test]
fn a_good_request_parses_with_the_known_scopes_only() {
    let request = parse(&with(&[("scope", "email openid foo email")]), &clients()).expect("ok");
    assert_eq!(request.scopes, vec!["email", "openid"]);
    assert_eq!(request.scope(), "email openid");
    assert_eq!(request.code_challenge.as_deref(), Some(CHALLENGE));
    assert_eq!(request.nonce.as_deref(), Some("no"));
    assert_eq!(request.prompt, Prompt::Default);
}

#[test]
fn unknown_clients_and_unregistered_redirect_uris_get_a_page_never_a_redirect() {
    for change in [
        &[("client_id", "<absent>")][..],
        &[("client_id", "nobody")],
        &[("redirect_uri", "<absent>")],
        &[("redirect_uri", "https://app.example.org/cb/")],
        &[("redirect_uri", "https://app.example.org/cb?x=1")],
        &[("redirect_uri", "https://APP.example.org/cb")],
        &[("redirect_uri", "https://grafana.example.org/login")],
    ] {
        match parse(&with(change), &clients()) {
            Err(RequestError::Page(_)) => {}
            other => panic!("{change:?}: {other:?}"),
        }
    }
    let mut twice = with(&[]);
    twice.push(("client_id".into(), "spa".into()));
    assert!(matches!(
        parse(&twice, &clients()),
        Err(RequestError::Page(_))
    ));
}

#[test]
fn other_errors_go_back_to_the_client_with_their_rfc_codes() {
    let cases: [(&[(&str, &str)], &str); 13] = [
        (&[("response_type", "<absent>")], "invalid_request"),
        (&[("response_type", "token")], "unsupported_response_type"),
        (
            &[("response_type", "code id_token")],
            "unsupported_response_type",
        ),
        (&[("scope", "<absent>")], "invalid_scope"),
        (&[("scope", "admin")], "invalid_scope"),
        (&[("code_challenge_method", "plain")], "invalid_request"),
        (&[("code_challenge_method", "<absent>")], "invalid_request"),
        (&[("code_challenge", "short")], "invalid_request"),
        (
            &[
                ("code_challenge", "<absent>"),
                ("code_challenge_method", "<absent>"),
            ],
            "invalid_request",
        ),
        (&[("prompt", "none login")], "invalid_request"),
        (&[("max_age", "-1")], "invalid_request"),
        (&[("request", "eyJ...")], "request_not_supported"),
        (&[("response_mode", "fragment")], "invalid_request"),
    ];
    for (change, expected) in cases {
        assert_eq!(error_of(&with(change)), expected, "{change:?}");
    }
    let mut twice = with(&[]);
    twice.push(("scope".into(), "openid".into()));
    assert_eq!(error_of(&twice), "invalid_request");
}

#[test]
fn a_confidential_client_may_go_without_pkce_only_when_its_table_says_so() {
    let mut list = pairs(&[
        ("client_id", "grafana"),
        ("redirect_uri", "https://grafana.example.org/login"),
        ("response_type", "code"),
        ("scope", "openid"),
    ]);
    assert!(parse(&list, &clients()).is_ok());
    let mut strict = clients();
    if let Some(c) = strict.get_mut("grafana") {
        c.require_pkce = true;
    }
    assert!(matches!(
        parse(&list, &strict),
        Err(RequestError::Redirect(Refusal {
            error: "invalid_request",
            ..
        }))
    ));
    list.push(("code_challenge".into(), CHALLENGE.into()));
    list.push(("code_challenge_method".into(), "S256".into()));
    assert!(parse(&list, &strict).is_ok());
}

#[test]
fn prompt_and_max_age_decide_whether_a_session_is_fresh_enough() {
    let now = 10_000;
    let parsed =
        |change: &[(&'static str, &'static str)]| parse(&with(change), &clients()).expect("parses");
    assert!(parsed(&[]).accepts_login_at(1, now));
    assert!(!parsed(&[("prompt", "login")]).accepts_login_at(now, now));
    assert!(parsed(&[("prompt", "consent")]).accepts_login_at(1, now));
    assert_eq!(parsed(&[("prompt", "none")]).prompt, Prompt::None);
    assert!(parsed(&[("max_age", "60")]).accepts_login_at(now - 60, now));
    assert!(!parsed(&[("max_age", "60")]).accepts_login_at(now - 61, now));
    // Back from the login it was sent to: that login counts, however long it took.
    let resumed = parsed(&[("max_age", "0"), (LOGIN_AFTER, "9000")]);
    assert!(resumed.accepts_login_at(9_000, now));
    assert!(!resumed.accepts_login_at(8_999, now));
    // prompt=login is never satisfied by a marker the URL brings along; a future marker is now.
    assert!(!parsed(&[("prompt", "login"), (LOGIN_AFTER, "0")]).accepts_login_at(now, now));
    assert!(parsed(&[(LOGIN_AFTER, "99999999999")]).accepts_login_at(now, now));
}

#[test]
fn a_loopback_ip_redirect_uri_takes_any_port_and_nothing_else_does() {
    let ok = [
        ("http://127.0.0.1/cb", "http://127.0.0.1:51004/cb"),
        ("http://127.0.0.1:8080/cb", "http://127.0.0.1:9/cb"),
        ("http://[::1]/cb", "http://[::1]:6000/cb"),
        ("https://app.example.org/cb", "https://app.example.org/cb"),
    ];
    for (registered, presented) in ok {
        assert!(redirect_uri_matches(registered, presented), "{presented}");
    }
    let refused = [
        ("http://127.0.0.1/cb", "http://127.0.0.1:51004/cb/"),
        ("http://127.0.0.1/cb", "http://127.0.0.2:51004/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:51004/cb?x=1"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:051004/cb"),
        ("http://localhost/cb", "http://localhost:51004/cb"),
        (
            "https://app.example.org/cb",
            "https://app.example.org:8443/cb",
        ),
        ("http://127.0.0.1/cb", "https://127.0.0.1:51004/cb"),
    ];
    for (registered, presented) in refused {
        assert!(!redirect_uri_matches(registered, presented), "{presented}");
    }
}
