//! Forged and unacceptable user tokens, each refused by `check` and `authorize`; the legacy
//! switch; RS256 user tokens.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use authhost_tests::{Options, TestServer, jwt_parts, key_pair, md5_hex};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Asserts that `check` and `authorize` both refuse `token`.
async fn assert_refused(s: &TestServer, what: &str, token: &str) {
    let check: Value = s.get_json_as("check", token).await;
    assert_eq!(check["authenticated"], false, "check accepted {what}");
    let auth: Value = s.get_json_as("authorize?service=example", token).await;
    assert_eq!(
        auth,
        json!({ "permissions": {} }),
        "authorize accepted {what}"
    );
}

async fn assert_accepted(s: &TestServer, what: &str, token: &str) {
    let check: Value = s.get_json_as("check", token).await;
    assert_eq!(check["authenticated"], true, "check refused {what}");
}

fn hs256(secret: &[u8], header: Header, claims: &Value) -> String {
    encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn with_kid(alg: Algorithm, kid: &str) -> Header {
    let mut h = Header::new(alg);
    h.kid = Some(kid.to_string());
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_unacceptable_user_tokens_are_refused() {
    let s = TestServer::start().await;
    let good = s.dev_login("ivy@example.org", "Ivy").await;
    assert_accepted(&s, "a genuine token", &good).await;
    let uid = md5_hex("ivy@example.org");
    let kid = s.app.tokens.keys().signing.kid().to_string();
    let secret = *s.app.tokens.keys().signing.user_token_secret();
    let iss = "http://127.0.0.1:1/auth/";
    let claims = |iat: i64, exp: i64| json!({ "userid": uid, "iat": iat, "exp": exp, "iss": iss, "typ": "user" });
    let valid = claims(now(), now() + 3600);

    // The control: our own key and valid claims are accepted, so each refusal below is the
    // claim or header under test.
    assert_accepted(
        &s,
        "a correctly crafted token",
        &hs256(&secret, with_kid(Algorithm::HS256, &kid), &valid),
    )
    .await;

    let (header, payload) = jwt_parts(&good);
    let none = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT", "kid": kid })),
        b64(&payload)
    );
    assert_refused(&s, "alg none", &none).await;
    let none_upper = format!(
        "{}.{}.",
        b64(&json!({ "alg": "NONE", "kid": kid })),
        b64(&payload)
    );
    assert_refused(&s, "alg NONE", &none_upper).await;

    let public_pem = key_pair(0).1.as_bytes();
    assert_refused(
        &s,
        "HS256 keyed with the public PEM",
        &hs256(public_pem, with_kid(Algorithm::HS256, &kid), &valid),
    )
    .await;
    assert_refused(
        &s,
        "HS256 keyed with the public PEM, no kid",
        &hs256(public_pem, Header::new(Algorithm::HS256), &valid),
    )
    .await;

    let other = EncodingKey::from_rsa_pem(key_pair(1).0.as_bytes()).unwrap();
    assert_refused(
        &s,
        "RS256 from another key",
        &encode(&with_kid(Algorithm::RS256, &kid), &valid, &other).unwrap(),
    )
    .await;
    assert_refused(
        &s,
        "RS256 from another key, its own kid",
        &encode(&with_kid(Algorithm::RS256, "other"), &valid, &other).unwrap(),
    )
    .await;
    let ours = EncodingKey::from_rsa_pem(key_pair(0).0.as_bytes()).unwrap();
    assert_refused(
        &s,
        "RS256 with our key while HS256 is configured",
        &encode(&with_kid(Algorithm::RS256, &kid), &valid, &ours).unwrap(),
    )
    .await;

    let mut parts: Vec<&str> = good.split('.').collect();
    let mut tampered_claims = payload.clone();
    tampered_claims["userid"] = json!(md5_hex("someone-else@example.org"));
    let tampered_b64 = b64(&tampered_claims);
    parts[1] = &tampered_b64;
    assert_refused(&s, "tampered payload", &parts.join(".")).await;
    assert_eq!(header["alg"], "HS256");

    let h = || with_kid(Algorithm::HS256, &kid);
    assert_refused(
        &s,
        "expired",
        &hs256(&secret, h(), &claims(now() - 7200, now() - 3600)),
    )
    .await;
    let mut no_exp = valid.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_refused(&s, "no exp", &hs256(&secret, h(), &no_exp)).await;
    let mut no_typ = valid.clone();
    no_typ.as_object_mut().unwrap().remove("typ");
    assert_refused(&s, "no typ", &hs256(&secret, h(), &no_typ)).await;
    let mut foreign = valid.clone();
    foreign["iss"] = json!("https://evil.example/");
    assert_refused(&s, "foreign iss", &hs256(&secret, h(), &foreign)).await;
    assert_refused(
        &s,
        "unknown kid",
        &hs256(&secret, with_kid(Algorithm::HS256, "nope"), &valid),
    )
    .await;
    assert_refused(
        &s,
        "no kid (legacy off)",
        &hs256(&secret, Header::new(Algorithm::HS256), &valid),
    )
    .await;

    let perm: Value = s
        .get_json(&format!("authorize?jwt={good}&service=example"))
        .await;
    assert_refused(&s, "a permission token", perm["token"].as_str().unwrap()).await;

    let original_style = hs256(
        key_pair(0).0.as_bytes(),
        Header::new(Algorithm::HS256),
        &json!({ "userid": uid, "exp": now() + 3600 }),
    );
    assert_refused(
        &s,
        "the original's token with legacy_user_tokens off",
        &original_style,
    )
    .await;

    // Issued before the user's logout.
    let before = hs256(&secret, h(), &claims(now() - 10, now() + 3600));
    assert_accepted(&s, "token before logout", &before).await;
    s.get_json(&format!("logout?jwt={good}")).await;
    assert_refused(&s, "a token issued before logout", &before).await;
    assert_refused(&s, "the logged-out token", &good).await;
    s.stop().await;
}

/// The original keyed its HS256 user tokens with sha256 of the PEM text.
fn legacy_secret(pem: &str) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(pem.as_bytes()).to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_user_tokens_are_accepted_only_when_switched_on() {
    let opts = || Options {
        extra_toml: "[tokens]\nlegacy_user_tokens = true\n".into(),
        ..Options::default()
    };
    let s = TestServer::start_with(opts()).await;
    s.dev_login("jack@example.org", "Jack").await;
    let uid = md5_hex("jack@example.org");
    let secret = legacy_secret(&key_pair(0).0);
    let legacy = hs256(
        &secret,
        Header::new(Algorithm::HS256),
        &json!({ "userid": uid, "exp": now() + 3600 }),
    );
    assert_accepted(&s, "the original's token", &legacy).await;
    let auth = s
        .get_json(&format!("authorize?jwt={legacy}&service=example"))
        .await;
    assert_eq!(auth["userid"], uid.as_str());

    let no_exp = hs256(
        &secret,
        Header::new(Algorithm::HS256),
        &json!({ "userid": uid }),
    );
    assert_refused(&s, "the original's token without exp", &no_exp).await;
    let expired = hs256(
        &secret,
        Header::new(Algorithm::HS256),
        &json!({ "userid": uid, "exp": now() - 10 }),
    );
    assert_refused(&s, "the original's expired token", &expired).await;
    let wrong = hs256(
        b"another key",
        Header::new(Algorithm::HS256),
        &json!({ "userid": uid, "exp": now() + 3600 }),
    );
    assert_refused(&s, "an original-style token with another key", &wrong).await;
    let hs512 = encode(
        &Header::new(Algorithm::HS512),
        &json!({ "userid": uid, "exp": now() + 3600 }),
        &EncodingKey::from_secret(&secret),
    )
    .unwrap();
    assert_refused(&s, "the original's token as HS512", &hs512).await;

    // A logout revokes the original's tokens too (they carry no iat).
    let fresh = s.dev_login("jack@example.org", "Jack").await;
    s.get_json(&format!("logout?jwt={fresh}")).await;
    assert_refused(&s, "the original's token after logout", &legacy).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_user_tokens_by_option() {
    let s = TestServer::start_with(Options {
        extra_toml: "[tokens]\nuser_token_algorithm = \"RS256\"\nuser_token_days = 2\n".into(),
        ..Options::default()
    })
    .await;
    let token = s.dev_login("kim@example.org", "Kim").await;
    let (header, claims) = jwt_parts(&token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claims["typ"], "user");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        2 * 86400
    );
    assert_accepted(&s, "an RS256 user token", &token).await;
    // Verifiable by others with the public key.
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(key_pair(0).1.as_bytes()).unwrap();
    let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
    v.validate_aud = false;
    jsonwebtoken::decode::<Value>(&token, &key, &v).unwrap();

    let kid = s.app.tokens.keys().signing.kid().to_string();
    let secret = *s.app.tokens.keys().signing.user_token_secret();
    let valid = json!({ "userid": md5_hex("kim@example.org"), "iat": now(), "exp": now() + 60, "iss": "http://127.0.0.1:1/auth/", "typ": "user" });
    assert_refused(
        &s,
        "HS256 while RS256 is configured",
        &hs256(&secret, with_kid(Algorithm::HS256, &kid), &valid),
    )
    .await;
    let perm = s
        .get_json(&format!("authorize?jwt={token}&service=example"))
        .await;
    assert_refused(
        &s,
        "a permission token (same key, no typ)",
        perm["token"].as_str().unwrap(),
    )
    .await;
    s.stop().await;
}
