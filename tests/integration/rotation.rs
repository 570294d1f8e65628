//! The key rotation procedure of docs/operations.md, walked step by step on one database:
//! add the next key (it verifies, signs nothing), switch (the old key retired), remove the old
//! key. Users stay logged in through the switch, also while replicas are switched one at a
//! time; tokens of a removed key stop verifying. Runs on SQLite, and on PostgreSQL with
//! AUTHHOST_TEST_POSTGRES.

use authhost_tests::*;
use serde_json::Value;

async fn jwks(s: &TestServer) -> Value {
    s.client
        .get(format!("{}/.well-known/jwks.json", s.base))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json")
}

/// The `kid`s of the JWKS, in order.
async fn jwks_kids(s: &TestServer) -> Vec<String> {
    jwks(s).await["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_string())
        .collect()
}

/// Whether `token` verifies with the key its `kid` names in the server's JWKS.
async fn verifies_with_jwks(s: &TestServer, token: &str) -> bool {
    let jwks = jwks(s).await;
    let (header, _) = jwt_parts(token);
    let Some(jwk) = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == header["kid"])
    else {
        return false;
    };
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        jwk["n"].as_str().expect("n"),
        jwk["e"].as_str().expect("e"),
    )
    .expect("key");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.validate_aud = false;
    jsonwebtoken::decode::<Value>(token, &key, &v).is_ok()
}

async fn permission_token(s: &TestServer, token: &str) -> String {
    let body = s
        .get_json(&format!("authorize?jwt={token}&service=example"))
        .await;
    body["token"]
        .as_str()
        .expect("permission token")
        .to_string()
}

/// A server's options on `db`, `key` signing, `extra_toml` appended: one step of a rotation.
fn on_db(db: &TestDb, key: usize, extra_toml: String) -> Options {
    Options {
        key,
        db: Some(db.clone()),
        extra_toml,
        ..Options::default()
    }
}

fn kid(token: &str) -> String {
    jwt_parts(token).0["kid"].as_str().expect("kid").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_keeps_users_logged_in_until_the_old_key_is_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let retired_file = dir.path().join("old-private.pem");
    let next_file = dir.path().join("next-private.pem");
    std::fs::write(&retired_file, &key_pair(0).0).expect("write");
    std::fs::write(&next_file, &key_pair(1).0).expect("write");
    let db = TestDb::new(dir.path()).await;
    let step = |key: usize, keys_toml: String| on_db(&db, key, format!("[keys]\n{keys_toml}"));

    // Before: the old key signs.
    let s = TestServer::start_with(step(0, String::new())).await;
    let user_token = s.dev_login("rotate@example.org", "Rotate").await;
    let old_permission = permission_token(&s, &user_token).await;
    let old_kid = kid(&user_token);
    assert_eq!(jwks_kids(&s).await, std::slice::from_ref(&old_kid));
    s.stop_keep_db().await;

    // 1. Add the next key: in the JWKS, verifying, signing nothing yet.
    let s = TestServer::start_with(step(
        0,
        format!("next_private_key_files = [{next_file:?}]\n"),
    ))
    .await;
    let kids = jwks_kids(&s).await;
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert_eq!(kids[0], old_kid);
    let next_kid = kids[1].clone();
    assert!(s.authenticated(&user_token).await);
    assert_eq!(kid(&s.dev_login("new@example.org", "New").await), old_kid);
    // A replica already switched (next key signing, old key retired) beside this one, as
    // during a rolling switch: each accepts the other's user tokens.
    let switched = TestServer::start_with(step(
        1,
        format!("retired_private_key_files = [{retired_file:?}]\n"),
    ))
    .await;
    let from_switched = switched.dev_login("early@example.org", "Early").await;
    assert_eq!(kid(&from_switched), next_kid);
    assert!(
        s.authenticated(&from_switched).await,
        "a replica not yet switched accepts the next key's tokens"
    );
    assert!(switched.authenticated(&user_token).await);
    switched.stop_keep_db().await;
    s.stop_keep_db().await;

    // 2. Switch: the next key signs, the old one is retired.
    let s = TestServer::start_with(step(
        1,
        format!("retired_private_key_files = [{retired_file:?}]\n"),
    ))
    .await;
    assert_eq!(jwks_kids(&s).await, [next_kid.clone(), old_kid.clone()]);
    assert!(
        s.authenticated(&user_token).await,
        "a user token of the retired key still verifies"
    );
    assert!(verifies_with_jwks(&s, &old_permission).await);
    let public_key = s
        .client
        .get(s.url("public-key"))
        .send()
        .await
        .expect("public-key")
        .text()
        .await
        .expect("text");
    assert_eq!(
        public_key,
        key_pair(1).1,
        "public-key gives the key that signs now"
    );
    let new_token = s.dev_login("rotate@example.org", "Rotate").await;
    assert_eq!(
        kid(&new_token),
        next_kid,
        "new user tokens carry the new key"
    );
    let new_permission = permission_token(&s, &user_token).await;
    assert_eq!(kid(&new_permission), next_kid);
    assert!(verifies_with_jwks(&s, &new_permission).await);
    s.stop_keep_db().await;

    // 3. Remove the old key (after the longest token life): its tokens stop verifying.
    let s = TestServer::start_with(step(1, String::new())).await;
    assert_eq!(jwks_kids(&s).await, std::slice::from_ref(&next_kid));
    assert!(
        !s.authenticated(&user_token).await,
        "a token of a removed key is refused"
    );
    assert!(!verifies_with_jwks(&s, &old_permission).await);
    assert!(s.authenticated(&new_token).await);
    assert!(verifies_with_jwks(&s, &new_permission).await);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwks_has_a_max_age_and_an_etag_that_answers_304() {
    let s = TestServer::start_with(Options {
        extra_toml: "[keys]\njwks_max_age_seconds = 120\n".into(),
        ..Options::default()
    })
    .await;
    let url = format!("{}/.well-known/jwks.json", s.base);
    let r = s.client.get(&url).send().await.expect("jwks");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, max-age=120");
    let etag = r.headers()["etag"].to_str().expect("ascii").to_string();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    let again = s
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("jwks");
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    assert!(again.bytes().await.expect("body").is_empty());
    let other = s
        .client
        .get(&url)
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .expect("jwks");
    assert_eq!(other.status(), 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_listed_twice_is_refused_with_the_setting_that_repeats_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let retired_file = dir.path().join("same.pem");
    std::fs::write(&retired_file, &key_pair(0).0).expect("write");
    let errors = match try_build(&Options {
        extra_toml: format!("[keys]\nretired_private_key_files = [{retired_file:?}]\n"),
        ..Options::default()
    })
    .await
    {
        Ok(_) => panic!("the signing key listed as retired was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        errors.contains("keys.retired_private_key_files[0]") && errors.contains("the same key"),
        "{errors}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_services_user_tokens_survive_the_switch_until_their_key_is_removed() {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().expect("tempdir");
    let retired_file = dir.path().join("old-private.pem");
    // Exactly the PEM text the original was configured with (its key is sha256 of it).
    std::fs::write(&retired_file, &key_pair(0).0).expect("write");
    let db = TestDb::new(dir.path()).await;
    let step = |key: usize, keys_toml: String| {
        on_db(
            &db,
            key,
            format!("[tokens]\nlegacy_user_tokens = true\n[keys]\n{keys_toml}"),
        )
    };
    let s = TestServer::start_with(step(0, String::new())).await;
    s.dev_login("legacy@example.org", "Legacy").await;
    let legacy = encode(
        &Header::default(),
        &serde_json::json!({
            "userid": md5_hex("legacy@example.org"),
            "exp": authhost::tokens::now() + 3600,
        }),
        &EncodingKey::from_secret(&Sha256::digest(key_pair(0).0.as_bytes())),
    )
    .expect("encode");
    assert!(s.authenticated(&legacy).await);
    s.stop_keep_db().await;

    let s = TestServer::start_with(step(
        1,
        format!("retired_private_key_files = [{retired_file:?}]\n"),
    ))
    .await;
    assert!(
        s.authenticated(&legacy).await,
        "an original token survives the switch while its key is retired"
    );
    s.stop_keep_db().await;

    let s = TestServer::start_with(step(1, String::new())).await;
    assert!(
        !s.authenticated(&legacy).await,
        "refused once its key is removed"
    );
    s.stop().await;
}
