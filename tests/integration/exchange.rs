//! RFC 8693 token exchange at `POST {prefix}token` and the RFC 8414 metadata that points to it:
//! every success and error case of the contract, a legacy user token as subject, the metadata
//! fetched and followed by the example client. Runs on SQLite, and on PostgreSQL with
//! AUTHHOST_TEST_POSTGRES.

use std::sync::Arc;

use authhost::app::App;
use authhost::server::ServerHandle;
use authhost_tests::*;
use serde_json::{Value, json};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Posts `form` to the token endpoint: status, `Cache-Control`, JSON body.
async fn exchange(s: &TestServer, form: &[(&str, &str)]) -> (u16, String, Value) {
    let r = s
        .client
        .post(s.url("token"))
        .form(form)
        .send()
        .await
        .expect("token endpoint");
    let status = r.status().as_u16();
    let cache = r
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().expect("ascii").to_string())
        .unwrap_or_default();
    (status, cache, r.json().await.expect("json"))
}

use authhost_tests::exchange_form as form;

async fn refused(s: &TestServer, form: &[(&str, &str)], error: &str) {
    let (status, cache, body) = exchange(s, form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some(error)),
        "{form:?}: {body}"
    );
    assert!(body["error_description"].is_string(), "{body}");
    assert_eq!(cache, "no-store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_token_is_exchanged_for_the_permission_token_authorize_gives() {
    let s = TestServer::start().await;
    let user = s.dev_login("ex@example.org", "Ex").await;
    for kind in [JWT, ACCESS] {
        let (status, cache, body) = exchange(&s, &form(&user, kind, "example")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(cache, "no-store");
        assert_eq!(body["issued_token_type"], JWT);
        assert_eq!(body["token_type"], "Bearer");
        let expires_in = body["expires_in"].as_i64().expect("expires_in");
        assert!((3590..=3600).contains(&expires_in), "{expires_in}");
        let token = body["access_token"].as_str().expect("access_token");
        // The same token authorize hands out (the permission-token cache serves both).
        let authorized = s
            .get_json(&format!("authorize?jwt={user}&service=example"))
            .await;
        assert_eq!(authorized["token"].as_str(), Some(token));
        let (_, claims) = jwt_parts(token);
        assert_eq!(claims["service"], "example");
        assert_eq!(claims["userid"], md5_hex("ex@example.org").as_str());
        assert_eq!(claims["permissions"], authorized["permissions"]);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_rfc_6749_json_with_status_400() {
    let s = TestServer::start().await;
    let user = s.dev_login("ref@example.org", "Ref").await;
    // A missing parameter, each in turn.
    for missing in ["subject_token", "subject_token_type", "audience"] {
        let f: Vec<_> = form(&user, JWT, "example")
            .into_iter()
            .filter(|(k, _)| *k != missing)
            .collect();
        refused(&s, &f, "invalid_request").await;
    }
    refused(&s, &form(&user, JWT, "example")[1..], "invalid_request").await;
    refused(
        &s,
        &form(&user, "urn:ietf:params:oauth:token-type:saml2", "example"),
        "invalid_request",
    )
    .await;
    let mut two = form(&user, JWT, "example");
    two.push(("audience", "example2"));
    refused(&s, &two, "invalid_request").await;
    let mut other = form(&user, JWT, "example");
    other[0] = ("grant_type", "password");
    refused(&s, &other, "unsupported_grant_type").await;
    // Repeated parameters, delegation, another requested type, `resource`: refused, not ignored.
    let mut twice = form(&user, JWT, "example");
    twice.push(("subject_token", "other"));
    refused(&s, &twice, "invalid_request").await;
    for (name, value) in [
        ("actor_token", user.as_str()),
        ("actor_token_type", JWT),
        (
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:saml2",
        ),
    ] {
        let mut f = form(&user, JWT, "example");
        f.push((name, value));
        refused(&s, &f, "invalid_request").await;
    }
    let mut resource = form(&user, JWT, "example");
    resource.push(("resource", "https://app.example.org/api"));
    refused(&s, &resource, "invalid_target").await;
    let mut requested = form(&user, JWT, "example");
    requested.push(("requested_token_type", JWT));
    assert_eq!(exchange(&s, &requested).await.0, 200);
    // Subject tokens that are not valid user tokens.
    refused(&s, &form("not-a-token", JWT, "example"), "invalid_grant").await;
    let mut damaged = user.clone();
    damaged.pop();
    damaged.push(if user.ends_with('A') { 'B' } else { 'A' });
    refused(&s, &form(&damaged, JWT, "example"), "invalid_grant").await;
    let (_, _, ok) = exchange(&s, &form(&user, JWT, "example")).await;
    let permission = ok["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    refused(&s, &form(&permission, JWT, "example"), "invalid_grant").await;
    // An audience that is not a configured service.
    refused(&s, &form(&user, JWT, "nope"), "invalid_target").await;
    // A logout revokes the subject.
    let r = s
        .client
        .post(s.url("logout"))
        .header("auth-token", &user)
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    refused(&s, &form(&user, JWT, "example"), "invalid_grant").await;
    // Parameters in the URL are refused (a token there ends up in logs).
    let r = s
        .client
        .post(format!("{}?subject_token={user}", s.url("token")))
        .form(&form(&user, JWT, "example"))
        .send()
        .await
        .expect("token endpoint");
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "invalid_request");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_rs256_user_tokens_a_permission_token_is_still_refused_as_subject() {
    // Both kinds are RS256 with the same key here: only the token type tells them apart.
    let s = TestServer::start_with(Options {
        extra_toml: "[tokens]\nuser_token_algorithm = \"RS256\"\n".into(),
        ..Options::default()
    })
    .await;
    let user = s.dev_login("rs@example.org", "Rs").await;
    assert_eq!(jwt_parts(&user).0["alg"], "RS256");
    let (status, _, body) = exchange(&s, &form(&user, JWT, "example")).await;
    assert_eq!(status, 200, "{body}");
    let permission = body["access_token"].as_str().expect("access_token");
    refused(&s, &form(permission, JWT, "example"), "invalid_grant").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_user_token_is_exchanged_when_legacy_tokens_are_on() {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use sha2::{Digest, Sha256};
    let options = |on: bool| Options {
        extra_toml: format!("[tokens]\nlegacy_user_tokens = {on}\n"),
        ..Options::default()
    };
    let s = TestServer::start_with(options(true)).await;
    s.dev_login("old@example.org", "Old").await;
    let secret = Sha256::digest(key_pair(0).0.as_bytes()).to_vec();
    let exp = authhost::tokens::now() + 3600;
    let legacy = encode(
        &Header::default(),
        &json!({ "userid": md5_hex("old@example.org"), "exp": exp }),
        &EncodingKey::from_secret(&secret),
    )
    .expect("encode");
    let (status, _, body) = exchange(&s, &form(&legacy, JWT, "example")).await;
    assert_eq!(status, 200, "{body}");
    let (_, claims) = jwt_parts(body["access_token"].as_str().expect("token"));
    assert_eq!(claims["userid"], md5_hex("old@example.org").as_str());
    s.stop().await;

    let s = TestServer::start_with(options(false)).await;
    refused(&s, &form(&legacy, JWT, "example"), "invalid_grant").await;
    s.stop().await;
}

/// A server whose external address is its real one, so that the metadata can be followed.
async fn reachable_server(dir: &std::path::Path) -> (ServerHandle, Arc<App>, TestDb) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut options = Options::default();
    options.env.insert(
        "AUTHHOST_SERVER__EXTERNAL_ADDRESS".into(),
        format!("http://127.0.0.1:{port}"),
    );
    let db = TestDb::new(dir).await;
    let app = Arc::new(
        App::build(test_config(dir, &db.url, &options))
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let handle = ServerHandle::start(
        app.clone(),
        format!("127.0.0.1:{port}").parse().expect("addr"),
    )
    .await
    .expect("bind");
    (handle, app, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metadata_names_the_issuer_its_jwks_and_the_token_endpoint() {
    let s = TestServer::start().await;
    let issuer = "http://127.0.0.1:1/auth/";
    let paths = [
        "/.well-known/oauth-authorization-server/auth",
        "/.well-known/oauth-authorization-server/auth/",
        "/.well-known/oauth-authorization-server",
    ];
    for path in paths {
        let r = s
            .client
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .expect("metadata");
        assert_eq!(r.status(), 200, "{path}");
        let m: Value = r.json().await.expect("json");
        assert_eq!(m["issuer"], issuer);
        assert_eq!(m["jwks_uri"], "http://127.0.0.1:1/.well-known/jwks.json");
        assert_eq!(m["token_endpoint"], "http://127.0.0.1:1/auth/token");
        assert_eq!(
            m["grant_types_supported"],
            json!(["authorization_code", "refresh_token", GRANT])
        );
        assert_eq!(
            m["token_endpoint_auth_methods_supported"],
            json!(["client_secret_basic", "client_secret_post", "none"])
        );
        assert_eq!(m["subject_token_types_supported"], json!([JWT, ACCESS]));
    }
    assert_eq!(
        verify_client::metadata_url(issuer).expect("url"),
        format!("http://127.0.0.1:1{}", paths[0])
    );
    // The issuer in the metadata is the `iss` of the tokens.
    let user = s.dev_login("meta@example.org", "Meta").await;
    assert_eq!(jwt_parts(&user).1["iss"], issuer);
    s.stop().await;

    // Followed as a service would: issuer → metadata → JWKS, token endpoint → verified token.
    let dir = tempfile::tempdir().expect("tempdir");
    let (handle, app, db) = reachable_server(dir.path()).await;
    let issuer = app.tokens.issuer().to_string();
    verify_client::init();
    let found = verify_client::discover(&issuer).await.expect("discovered");
    let keys = verify_client::fetch_jwks_at(&found.jwks_uri)
        .await
        .expect("jwks");
    let client = browser();
    let login = client
        .post(format!("http://{}/auth/login/dev", handle.addr))
        .form(&[
            ("email", "svc@example.org"),
            ("name", "Svc"),
            ("next", "https://app.example.org/done"),
        ])
        .send()
        .await
        .expect("dev login");
    let user = authhost_tests::query_param(&authhost_tests::location(&login), "jwt");
    let answer: Value = client
        .post(&found.token_endpoint)
        .form(&form(&user, JWT, "example"))
        .send()
        .await
        .expect("token endpoint")
        .json()
        .await
        .expect("json");
    let token = answer["access_token"].as_str().expect("access_token");
    let claims = verify_client::verify(token, &keys, &issuer, "example").expect("verifies");
    assert_eq!(claims["userid"], md5_hex("svc@example.org").as_str());
    handle.shutdown().await;
    app.db.clone().close().await.ok();
    db.drop_database().await;
}
