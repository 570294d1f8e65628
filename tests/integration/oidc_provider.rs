//! authhost as an OpenID Provider, over HTTP: the code flow through the dev login and the
//! browser session, the token endpoint's code and refresh grants, userinfo, RP-initiated logout,
//! discovery, and every refusal (where it goes, what it says).

use authhost_tests::{
    Options, TestServer, browser, jwt_parts, location, query_param, query_params, try_query_param,
    url_encode,
};
use reqwest::StatusCode;
use serde_json::Value;

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const SPA_CB: &str = "https://app.example.org/cb";
const BACKEND_CB: &str = "https://backend.example.org/cb";
const ISSUER: &str = "http://127.0.0.1:1/auth/";

const CLIENTS: &str = r#"
[clients.spa]
redirect_uris = ["https://app.example.org/cb"]
audience = "example"
post_logout_redirect_uris = ["https://app.example.org/bye"]
[clients.backend]
redirect_uris = ["https://backend.example.org/cb"]
secret = "backend-secret"
[clients.native]
redirect_uris = ["http://127.0.0.1/callback"]
[clients.legacy]
redirect_uris = ["https://legacy.example.org/cb"]
secret = "a b&c:d%"
require_pkce = false
"#;

async fn server() -> TestServer {
    TestServer::start_with(Options {
        extra_toml: CLIENTS.into(),
        ..Options::default()
    })
    .await
}

/// The spa's authorization request with `extra` parameters.
fn authorize_path(extra: &str) -> String {
    format!(
        "oidc/authorize?response_type=code&client_id=spa&redirect_uri={}&scope={}&state=st-1&nonce=n-1&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        url_encode(SPA_CB),
        url_encode("openid email profile offline_access"),
    )
}

async fn get(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client.get(url).send().await.expect("request")
}

/// Logs `email` in through the dev form as the authorization request sends the browser there,
/// and follows the resumed request to the client: the redirect to the client.
async fn log_in_and_authorize(
    s: &TestServer,
    client: &reqwest::Client,
    path: &str,
    email: &str,
) -> String {
    let r = get(client, &s.url(path)).await;
    assert_eq!(r.status(), StatusCode::FOUND, "to the login");
    let to_login = location(&r);
    assert!(to_login.contains("/auth/login/dev?next="), "{to_login}");
    let resume = query_param(&to_login, "next");
    assert!(
        resume.starts_with("http://127.0.0.1:1/auth/oidc/authorize?"),
        "{resume}"
    );
    let r = client
        .post(s.url("login/dev"))
        .form(&[("email", email), ("name", "Ada"), ("next", resume.as_str())])
        .send()
        .await
        .expect("dev login");
    assert_eq!(r.status(), StatusCode::FOUND);
    let back = location(&r);
    assert_eq!(
        back, resume,
        "back to the request, no user token in its URL"
    );
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("authhost_session="))
        .expect("a session cookie")
        .to_string();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/auth/oidc/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let r = get(client, &s.on(&back)).await;
    assert_eq!(r.status(), StatusCode::FOUND, "the resumed request");
    location(&r)
}

/// The code of a redirect to the client, after checking `state` and `iss` (RFC 9207).
fn code_of(redirect: &str, redirect_uri: &str) -> String {
    assert!(redirect.starts_with(redirect_uri), "{redirect}");
    let q = query_params(redirect);
    assert_eq!(
        q.get("state").map(String::as_str),
        Some("st-1"),
        "{redirect}"
    );
    assert_eq!(q.get("iss").map(String::as_str), Some(ISSUER), "{redirect}");
    q.get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code: {redirect}"))
}

async fn token_request(s: &TestServer, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = s
        .client
        .post(s.url("token"))
        .form(form)
        .send()
        .await
        .expect("token request");
    let status = r.status();
    assert_eq!(
        r.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    (status, r.json().await.expect("json"))
}

async fn redeem(s: &TestServer, code: &str) -> (StatusCode, Value) {
    token_request(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", code),
            ("redirect_uri", SPA_CB),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

#[tokio::test]
async fn the_code_flow_logs_in_once_and_hands_out_standard_tokens() {
    let s = server().await;
    let client = browser();
    let redirect = log_in_and_authorize(&s, &client, &authorize_path(""), "ada@example.org").await;
    let code = code_of(&redirect, SPA_CB);
    let (status, tokens) = redeem(&s, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid email profile offline_access");
    assert!(tokens["refresh_token"].is_string(), "offline_access asked");

    let user_id = authhost_tests::md5_hex("ada@example.org");
    let (header, id) = jwt_parts(tokens["id_token"].as_str().expect("id token"));
    assert_eq!(header["alg"], "RS256");
    assert_eq!(id["iss"], ISSUER);
    assert_eq!(id["sub"], user_id.as_str());
    assert_eq!(id["aud"], "spa");
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["email"], "ada@example.org");
    assert_eq!(id["name"], "Ada");
    assert!(id["auth_time"].as_i64().is_some());

    let access = tokens["access_token"].as_str().expect("access token");
    let (header, claims) = jwt_parts(access);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["aud"], "example", "the client's audience service");
    assert_eq!(claims["client_id"], "spa");
    // The same permissions `authorize` gives for the service.
    let user_token = s.dev_login("ada@example.org", "Ada").await;
    let expected = s.authorize(&user_token, "example").await;
    assert_eq!(claims["permissions"], expected["permissions"]);
    assert!(claims["permissions"].is_object());
    // As a service verifies it (examples/verify-client): JWKS, typ, issuer, audience.
    verify_client::init();
    let keys = verify_client::fetch_jwks(&s.base).await.expect("jwks");
    let verified = verify_client::verify_access_token(access, &keys, ISSUER, "example")
        .expect("a valid access token for example");
    assert_eq!(verified["permissions"], expected["permissions"]);
    assert!(verify_client::verify_access_token(access, &keys, ISSUER, "example2").is_err());
    let id_token = tokens["id_token"].as_str().expect("id token");
    assert!(verify_client::verify_access_token(id_token, &keys, ISSUER, "spa").is_err());

    let info: Value = client
        .get(s.url("oidc/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .expect("userinfo")
        .json()
        .await
        .expect("json");
    assert_eq!(info["sub"], user_id.as_str());
    assert_eq!(info["email"], "ada@example.org");
    assert_eq!(info["email_verified"], true);

    // The session: the next request logs in without any login page.
    let logins_before = s.metric("authhost_logins_total{provider=\"dev\"}").await;
    let r = get(&client, &s.url(&authorize_path(""))).await;
    let again = code_of(&location(&r), SPA_CB);
    assert_ne!(again, code);
    assert_eq!(
        s.metric("authhost_logins_total{provider=\"dev\"}").await,
        logins_before,
        "no second login (and no second on_user_login)"
    );
    // OpenID Connect Core §3.1.2.1: the same request as a form POST.
    let (_, query) = authorize_path("")
        .split_once('?')
        .map(|(p, q)| (p.to_string(), q.to_string()))
        .expect("query");
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let r = client
        .post(s.url("oidc/authorize"))
        .form(&pairs)
        .send()
        .await
        .expect("POST authorize");
    code_of(&location(&r), SPA_CB);
    // Another browser has no session: it is sent to log in.
    let r = get(&browser(), &s.url(&authorize_path(""))).await;
    assert!(location(&r).contains("/auth/login/dev?next="));
    s.stop().await;
}

#[tokio::test]
async fn unknown_clients_and_hostile_redirect_uris_never_get_a_redirect() {
    let s = server().await;
    let mut targets: Vec<String> = crate::redirects::hostile();
    targets.extend(
        [
            "https://app.example.org/cb/",
            "https://app.example.org/cb?x=1",
            "https://app.example.org/cb#f",
            "https://app.example.org/CB",
            "http://app.example.org/cb",
            BACKEND_CB,
        ]
        .map(String::from),
    );
    for target in targets {
        let path = format!(
            "oidc/authorize?response_type=code&client_id=spa&redirect_uri={}&scope=openid&code_challenge={CHALLENGE}&code_challenge_method=S256",
            url_encode(&target)
        );
        let r = get(&s.client, &s.url(&path)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{target:?}");
        assert!(r.headers().get("location").is_none(), "{target:?}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"], "invalid_request");
    }
    let r = get(
        &s.client,
        &s.url(&authorize_path("").replace("client_id=spa", "client_id=nobody")),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    s.stop().await;
}

#[tokio::test]
async fn other_authorization_errors_go_back_to_the_client_with_state_and_iss() {
    let s = server().await;
    let cases = [
        (
            authorize_path("").replace("code_challenge_method=S256", "code_challenge_method=plain"),
            "invalid_request",
        ),
        (
            authorize_path("").replace(
                &format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"),
                "",
            ),
            "invalid_request",
        ),
        (
            authorize_path("").replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (authorize_path("&prompt=none"), "login_required"),
    ];
    for (path, error) in cases {
        let r = get(&s.client, &s.url(&path)).await;
        assert_eq!(r.status(), StatusCode::FOUND, "{path}");
        let to = location(&r);
        assert!(to.starts_with(SPA_CB), "{to}");
        let q = query_params(&to);
        assert_eq!(q.get("error").map(String::as_str), Some(error), "{path}");
        assert_eq!(q.get("state").map(String::as_str), Some("st-1"));
        assert_eq!(q.get("iss").map(String::as_str), Some(ISSUER));
        assert!(!q.contains_key("code"));
    }
    s.stop().await;
}

#[tokio::test]
async fn a_code_works_once_for_its_client_redirect_uri_and_verifier() {
    let s = server().await;
    let client = browser();
    let first = log_in_and_authorize(&s, &client, &authorize_path(""), "bob@example.org").await;
    let mut codes = vec![code_of(&first, SPA_CB)];
    for _ in 0..4 {
        let r = get(&client, &s.url(&authorize_path(""))).await;
        codes.push(code_of(&location(&r), SPA_CB));
    }
    let refused = |form: Vec<(&'static str, String)>| {
        let s = &s;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, body) = token_request(s, &form).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["error"], "invalid_grant", "{body}");
        }
    };
    let base = |code: &str| {
        vec![
            ("grant_type", "authorization_code".to_string()),
            ("client_id", "spa".to_string()),
            ("code", code.to_string()),
            ("redirect_uri", SPA_CB.to_string()),
            ("code_verifier", VERIFIER.to_string()),
        ]
    };
    // Wrong verifier, no verifier, another redirect URI: each uses its code up.
    let mut wrong = base(&codes[1]);
    wrong[4].1 = "x".repeat(43);
    refused(wrong).await;
    refused(base(&codes[2]).into_iter().take(4).collect()).await;
    let mut other_uri = base(&codes[3]);
    other_uri[3].1 = "https://app.example.org/other".into();
    refused(other_uri).await;
    refused(base(&codes[1])).await;
    // Another (confidential) client cannot redeem the spa's code.
    let (status, body) = token_request(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "backend"),
            ("client_secret", "backend-secret"),
            ("code", &codes[4]),
            ("redirect_uri", SPA_CB),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // Reuse: the second use is refused and revokes the first use's refresh token.
    let (status, tokens) = redeem(&s, &codes[0]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = redeem(&s, &codes[0]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let refresh = tokens["refresh_token"].as_str().expect("refresh token");
    let (status, body) = token_request(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "spa"),
            ("refresh_token", refresh),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(
        s.metric("authhost_oidc_grants_refused_total{reason=\"code_reused\"}")
            .await
            >= 1.0
    );
    s.stop().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_replayed_one_revokes_its_family() {
    let s = server().await;
    let client = browser();
    let redirect = log_in_and_authorize(&s, &client, &authorize_path(""), "cy@example.org").await;
    let (_, tokens) = redeem(&s, &code_of(&redirect, SPA_CB)).await;
    let first = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    let refresh = |token: String| {
        let s = &s;
        async move {
            token_request(
                s,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", "spa"),
                    ("refresh_token", &token),
                ],
            )
            .await
        }
    };
    let (status, second) = refresh(first.clone()).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let second_token = second["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_string();
    assert_ne!(second_token, first);
    let (_, id) = jwt_parts(second["id_token"].as_str().expect("id token"));
    assert!(id.get("nonce").is_none(), "no nonce on refresh");
    // The spent first token again: refused, and the second (the family) with it.
    assert_eq!(refresh(first).await.0, StatusCode::BAD_REQUEST);
    let (status, body) = refresh(second_token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    s.stop().await;
}

#[tokio::test]
async fn confidential_clients_authenticate_with_one_method() {
    let s = server().await;
    let client = browser();
    let path = format!(
        "oidc/authorize?response_type=code&client_id=backend&redirect_uri={}&scope=openid&state=st-1&code_challenge={CHALLENGE}&code_challenge_method=S256",
        url_encode(BACKEND_CB)
    );
    let redirect = log_in_and_authorize(&s, &client, &path, "dee@example.org").await;
    let code = code_of(&redirect, BACKEND_CB);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", BACKEND_CB),
        ("code_verifier", VERIFIER),
    ];
    let send =
        |user: &'static str, secret: &'static str, extra: Vec<(&'static str, &'static str)>| {
            let mut form = form.to_vec();
            form.extend(extra);
            s.client
                .post(s.url("token"))
                .basic_auth(user, Some(secret))
                .form(&form)
                .send()
        };
    let r = send("backend", "wrong", vec![]).await.expect("request");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("www-authenticate").is_some());
    let r = send(
        "backend",
        "backend-secret",
        vec![("client_secret", "backend-secret")],
    )
    .await
    .expect("request");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "two methods");
    // Refusals before the code is looked at leave it usable.
    let r = send("backend", "backend-secret", vec![])
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    let tokens: Value = r.json().await.expect("json");
    let (_, access) = jwt_parts(tokens["access_token"].as_str().expect("access"));
    assert_eq!(
        access["aud"], "backend",
        "no audience service: the client itself"
    );
    assert!(access.get("permissions").is_none());
    assert!(
        tokens.get("refresh_token").is_none(),
        "no offline_access asked"
    );
    s.stop().await;
}

#[tokio::test]
async fn prompt_login_and_max_age_send_a_logged_in_browser_to_log_in_again() {
    let s = server().await;
    let client = browser();
    log_in_and_authorize(&s, &client, &authorize_path(""), "eve@example.org").await;
    for extra in ["&prompt=login", "&max_age=0"] {
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let redirect =
            log_in_and_authorize(&s, &client, &authorize_path(extra), "eve@example.org").await;
        let code = code_of(&redirect, SPA_CB);
        let (_, tokens) = redeem(&s, &code).await;
        assert!(tokens["id_token"].is_string(), "{extra}: {tokens}");
    }
    s.stop().await;
}

#[tokio::test]
async fn rp_initiated_logout_ends_the_session_and_revokes_the_users_tokens() {
    let s = server().await;
    let client = browser();
    let redirect = log_in_and_authorize(&s, &client, &authorize_path(""), "fay@example.org").await;
    let (_, tokens) = redeem(&s, &code_of(&redirect, SPA_CB)).await;
    let id_token = tokens["id_token"].as_str().expect("id token");
    let user_token = s.dev_login("fay@example.org", "Fay").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    // A post-logout target the client did not register: refused, nothing changes.
    let r = get(
        &client,
        &s.url(&format!(
            "oidc/logout?id_token_hint={id_token}&post_logout_redirect_uri={}",
            url_encode("https://evil.example/")
        )),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(s.authenticated(&user_token).await);

    let r = get(
        &client,
        &s.url(&format!(
            "oidc/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=bye-1",
            url_encode("https://app.example.org/bye")
        )),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(location(&r), "https://app.example.org/bye?state=bye-1");
    let cleared = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with("authhost_session=;") && c.contains("Max-Age=0"));
    assert!(cleared, "the session cookie is removed");
    assert!(
        !s.authenticated(&user_token).await,
        "the user's tokens are revoked"
    );
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    let (status, _) = token_request(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "spa"),
            ("refresh_token", refresh),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "refresh families revoked");
    let r = client
        .get(s.url("oidc/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().expect("access"))
        .send()
        .await
        .expect("userinfo");
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "access tokens revoked for userinfo"
    );
    let r = get(&client, &s.url(&authorize_path("&prompt=none"))).await;
    assert_eq!(
        try_query_param(&location(&r), "error").as_deref(),
        Some("login_required")
    );
    s.stop().await;
}

#[tokio::test]
async fn discovery_names_every_required_field_at_the_issuers_path() {
    let s = server().await;
    let doc = s.get_json(".well-known/openid-configuration").await;
    assert_eq!(doc["issuer"], ISSUER);
    for required in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "scopes_supported",
        "claims_supported",
        "code_challenge_methods_supported",
    ] {
        assert!(!doc[required].is_null(), "{required}");
    }
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{ISSUER}oidc/authorize")
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    let rfc8414: Value = s
        .client
        .get(format!(
            "{}/.well-known/oauth-authorization-server/auth",
            s.base
        ))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(rfc8414, doc, "one document at both places");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_session_the_codes_and_the_refresh_families() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = authhost_tests::TestDb::new(dir.path()).await;
    let replica = || {
        TestServer::start_with(Options {
            extra_toml: CLIENTS.into(),
            db: Some(db.clone()),
            ..Options::default()
        })
    };
    let (a, b) = (replica().await, replica().await);
    let client = browser();
    // Logged in on a; the browser's session works on b (one address behind a load balancer).
    let from_a = log_in_and_authorize(&a, &client, &authorize_path(""), "gus@example.org").await;
    let r = get(&client, &b.url(&authorize_path(""))).await;
    let from_b = code_of(&location(&r), SPA_CB);
    // A code issued by a is redeemed at b, and b's at a; each only once across both (the
    // second use revokes the family of the first: a's code is used up for that).
    let (status, _) = redeem(&b, &code_of(&from_a, SPA_CB)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = redeem(&a, &code_of(&from_a, SPA_CB)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, tokens) = redeem(&a, &from_b).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    // A refresh token from a rotates at b; replayed at a, the family is revoked on both.
    let first = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    let rotate = |s: &TestServer, token: String| {
        let url = s.url("token");
        let http = s.client.clone();
        async move {
            http.post(url)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", "spa"),
                    ("refresh_token", token.as_str()),
                ])
                .send()
                .await
                .expect("refresh")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let second = rotate(&b, first.clone()).await;
    let second = second["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("rotated: {second}"))
        .to_string();
    assert_eq!(rotate(&a, first).await["error"], "invalid_grant");
    assert_eq!(rotate(&b, second).await["error"], "invalid_grant");
    a.stop_keep_db().await;
    b.stop_keep_db().await;
    db.drop_database().await;
}

/// A user logged in on `client` (a browser) through the spa's request: its first code.
async fn logged_in(s: &TestServer, client: &reqwest::Client, email: &str) -> String {
    let first = log_in_and_authorize(s, client, &authorize_path(""), email).await;
    code_of(&first, SPA_CB)
}

#[tokio::test]
async fn a_login_that_fails_while_resuming_reaches_the_client_as_an_error() {
    let s = server().await;
    // A disabled account: the dev login fails, and the resumed request tells the client.
    let token = s.dev_login("hal@example.org", "Hal").await;
    assert!(s.authenticated(&token).await);
    let id = authhost_tests::md5_hex("hal@example.org");
    let user = authhost::users::get(&s.app.db, &id)
        .await
        .expect("db")
        .expect("user");
    s.app.sessions().disable(&user).await.expect("disable");
    let client = browser();
    let r = get(&client, &s.url(&authorize_path(""))).await;
    let resume = query_param(&location(&r), "next");
    let r = client
        .post(s.url("login/dev"))
        .form(&[("email", "hal@example.org"), ("next", resume.as_str())])
        .send()
        .await
        .expect("dev login");
    let back = location(&r);
    assert_eq!(
        try_query_param(&back, "error").as_deref(),
        Some("account_disabled")
    );
    let r = get(&client, &s.on(&back)).await;
    let to = location(&r);
    assert!(
        to.starts_with(SPA_CB),
        "to the client, not to another login: {to}"
    );
    let q = query_params(&to);
    assert_eq!(q.get("error").map(String::as_str), Some("access_denied"));
    assert_eq!(q.get("state").map(String::as_str), Some("st-1"));
    assert!(!q.contains_key("code"));
    s.stop().await;
}

#[tokio::test]
async fn grants_refuse_what_changed_since_the_code_and_what_is_malformed() {
    let s = server().await;
    let client = browser();
    // A user who logged out after the code was issued gets no tokens for it.
    let code = logged_in(&s, &client, "ivy@example.org").await;
    let token = s.dev_login("ivy@example.org", "Ivy").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    s.get_json(&format!("logout?jwt={token}")).await;
    let (status, body) = redeem(&s, &code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // Parameters given twice are refused before anything is looked at.
    let (status, body) = token_request(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", "x"),
            ("code", "y"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    s.stop().await;
}

#[tokio::test]
async fn a_client_without_pkce_cannot_add_a_verifier_and_its_secret_is_form_encoded() {
    let s = server().await;
    let client = browser();
    logged_in(&s, &client, "jo@example.org").await;
    let path = format!(
        "oidc/authorize?response_type=code&client_id=legacy&redirect_uri={}&scope=email&state=st-1",
        url_encode("https://legacy.example.org/cb")
    );
    let codes: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..2 {
            let r = get(&client, &s.url(&path)).await;
            v.push(code_of(&location(&r), "https://legacy.example.org/cb"));
        }
        v
    };
    // RFC 6749 §2.3.1: id and secret form-encoded, then Basic.
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode("legacy:a+b%26c%3Ad%25");
    let send = |code: String, verifier: Option<&'static str>| {
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code),
            ("redirect_uri", "https://legacy.example.org/cb".to_string()),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v.to_string()));
        }
        s.client
            .post(s.url("token"))
            .header("authorization", format!("Basic {basic}"))
            .form(&form)
            .send()
    };
    let r = send(codes[0].clone(), Some(VERIFIER))
        .await
        .expect("request");
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "a verifier for a code without challenge"
    );
    let r = send(codes[1].clone(), None).await.expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    let tokens: Value = r.json().await.expect("json");
    assert!(
        tokens.get("id_token").is_none(),
        "no openid scope, no ID token"
    );
    let r = s
        .client
        .get(s.url("oidc/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().expect("access"))
        .send()
        .await
        .expect("userinfo");
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "userinfo needs openid");
    s.stop().await;
}

#[tokio::test]
async fn a_user_has_at_most_fifty_codes_waiting() {
    let s = server().await;
    let client = browser();
    logged_in(&s, &client, "kai@example.org").await;
    for _ in 1..50 {
        let r = get(&client, &s.url(&authorize_path(""))).await;
        code_of(&location(&r), SPA_CB);
    }
    let r = get(&client, &s.url(&authorize_path(""))).await;
    let to = location(&r);
    assert_eq!(
        try_query_param(&to, "error").as_deref(),
        Some("temporarily_unavailable")
    );
    s.stop().await;
}

#[tokio::test]
async fn a_logout_hint_without_the_users_session_revokes_nothing() {
    let s = server().await;
    let client = browser();
    let code = logged_in(&s, &client, "lea@example.org").await;
    let (_, tokens) = redeem(&s, &code).await;
    let id_token = tokens["id_token"].as_str().expect("id token");
    let user_token = s.dev_login("lea@example.org", "Lea").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // Another browser (no session) follows a link with the hint: nothing is revoked.
    let r = get(
        &browser(),
        &s.url(&format!("oidc/logout?id_token_hint={id_token}")),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["logged_out"], false);
    assert!(s.authenticated(&user_token).await);
    s.stop().await;
}

#[tokio::test]
async fn a_native_app_on_loopback_gets_its_code_on_any_port_and_only_there() {
    let s = server().await;
    let client = browser();
    logged_in(&s, &client, "max@example.org").await;
    let path = |uri: &str| {
        format!(
            "oidc/authorize?response_type=code&client_id=native&redirect_uri={}&scope=openid&state=st-1&code_challenge={CHALLENGE}&code_challenge_method=S256",
            url_encode(uri)
        )
    };
    let r = get(&client, &s.url(&path("http://127.0.0.1:49152/callback"))).await;
    let code = code_of(&location(&r), "http://127.0.0.1:49152/callback");
    // Redeemed with another port, a code is refused (and used up).
    let r = get(&client, &s.url(&path("http://127.0.0.1:49153/callback"))).await;
    let other = code_of(&location(&r), "http://127.0.0.1:49153/callback");
    let (status, _) = token_request(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "native"),
            ("code", other.as_str()),
            ("redirect_uri", "http://127.0.0.1:49152/callback"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The code is bound to the URI as presented, port included.
    let form = |uri: &'static str| {
        vec![
            ("grant_type", "authorization_code"),
            ("client_id", "native"),
            ("code", code.as_str()),
            ("redirect_uri", uri),
            ("code_verifier", VERIFIER),
        ]
    };
    let (status, _) = token_request(&s, &form("http://127.0.0.1:49152/callback")).await;
    assert_eq!(status, StatusCode::OK);
    for other in [
        "http://localhost:49152/callback",
        "http://127.0.0.1:49152/other",
    ] {
        let r = get(&client, &s.url(&path(other))).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{other}");
        assert!(r.headers().get("location").is_none());
    }
    s.stop().await;
}

#[tokio::test]
async fn over_https_the_session_cookie_is_host_only_unless_authhost_lives_under_a_path() {
    for (external, name, path) in [
        (
            "https://auth.example.org",
            "__Host-authhost_session=",
            "Path=/;",
        ),
        (
            "https://example.org/sso",
            "__Secure-authhost_session=",
            "Path=/sso/auth/oidc/;",
        ),
    ] {
        let mut options = Options {
            extra_toml: CLIENTS.into(),
            ..Options::default()
        };
        options
            .env
            .insert("AUTHHOST_SERVER__EXTERNAL_ADDRESS".into(), external.into());
        let s = TestServer::start_with(options).await;
        let r = s
            .client
            .post(s.url("login/dev"))
            .form(&[("email", "ned@example.org"), ("name", "Ned")])
            .send()
            .await
            .expect("dev login");
        let cookie = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.contains("authhost_session="))
            .unwrap_or_else(|| panic!("{external}: no session cookie"))
            .to_string();
        assert!(cookie.starts_with(name), "{external}: {cookie}");
        assert!(cookie.contains(path), "{external}: {cookie}");
        assert!(cookie.contains("Secure"), "{external}: {cookie}");
        s.stop().await;
    }
}
