//! The original service's routes (check, authorize, update, public-key, resolve, get_profile,
//! logout) and the routes around them, black-box over HTTP against a server on port 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use authhost_tests::{TestServer, jwt_parts, md5_hex};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_without_token_lists_enabled_providers_with_next() {
    let s = TestServer::start().await;
    let body = s
        .get_json("check?next=https%3A%2F%2Fapp.example.org%2Fx%3Fa%3D1")
        .await;
    assert_eq!(
        body,
        json!({
            "authenticated": false,
            "providers": { "dev": { "url": "http://127.0.0.1:1/auth/login/dev?next=https%3A%2F%2Fapp.example.org%2Fx%3Fa%3D1" } }
        })
    );
    let body = s.get_json("check").await;
    assert_eq!(
        body["providers"]["dev"]["url"],
        "http://127.0.0.1:1/auth/login/dev"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_with_a_valid_token_returns_the_profile() {
    let s = TestServer::start().await;
    let token = s.dev_login("Alice@Example.org", "Alice A").await;
    let body = s.get_json(&format!("check?jwt={token}")).await;
    assert_eq!(body["authenticated"], true);
    let profile = body["profile"].as_object().expect("profile object");
    let mut keys: Vec<&str> = profile.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "avatar_url",
            "email",
            "id",
            "idhash",
            "join_date",
            "name",
            "provider_id"
        ]
    );
    let id = md5_hex("Alice@Example.org");
    assert_eq!(profile["id"], id.as_str());
    assert_eq!(profile["idhash"], id.as_str());
    assert_eq!(profile["email"], "Alice@Example.org");
    assert_eq!(profile["name"], "Alice A");
    assert_eq!(profile["provider_id"], "dev:Alice@Example.org");
    let joined = profile["join_date"].as_str().expect("join_date string");
    chrono::DateTime::parse_from_rfc3339(joined).expect("RFC 3339 join_date");

    // The same token through the header and through Bearer.
    for (name, value) in [
        ("auth-token", token.clone()),
        ("authorization", format!("Bearer {token}")),
    ] {
        let r: Value = s
            .client
            .get(s.url("check"))
            .header(name, value)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["authenticated"], true, "{name}");
    }
    // The header wins over the query, even when it is garbage (the original's rule).
    let r: Value = s
        .client
        .get(s.url(&format!("check?jwt={token}")))
        .header("auth-token", "garbage")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["authenticated"], false);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_with_a_token_of_an_unknown_user_is_not_authenticated() {
    let s = TestServer::start().await;
    let token = s
        .app
        .tokens
        .mint_user_token("no-such-user", None, None)
        .unwrap();
    let body = s.get_json(&format!("check?jwt={token}")).await;
    assert_eq!(body["authenticated"], false);
    assert!(body["providers"].is_object());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_answers_like_the_original() {
    let s = TestServer::start().await;
    let token = s.dev_login("bob@example.org", "Bob").await;
    let uid = md5_hex("bob@example.org");

    for q in [
        "authorize?service=example".to_string(),
        format!("authorize?jwt={token}"),
        "authorize?jwt=bad&service=example".to_string(),
        "authorize?jwt=&service=example".to_string(),
    ] {
        assert_eq!(s.get_json(&q).await, json!({ "permissions": {} }), "{q}");
    }

    // A service alias no provider serves: `{}` as the original answered, but counted (the
    // process-wide counter: other tests add to it too).
    let unknown = "authhost_authorize_unknown_service_total";
    let before = s.metric(unknown).await;
    let body = s.authorize(&token, "exampel").await;
    assert_eq!(body["permissions"], json!({}));
    assert_eq!(body["service"], "exampel");
    assert!(s.metric(unknown).await >= before + 1.0);

    for alias in ["example", "example2"] {
        let body = s
            .get_json(&format!("authorize?jwt={token}&service={alias}"))
            .await;
        assert_eq!(
            body["permissions"],
            json!({ "provider-token": format!("{alias}-{uid}") })
        );
        assert_eq!(body["service"], alias);
        assert_eq!(body["userid"], uid.as_str());
        let (header, claims) = jwt_parts(body["token"].as_str().unwrap());
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], s.app.tokens.keys().signing.kid());
        let raw = authhost_tests::jwt_payload_text(body["token"].as_str().unwrap());
        let positions: Vec<usize> = [
            "\"userid\"",
            "\"permissions\"",
            "\"service\"",
            "\"iat\"",
            "\"exp\"",
            "\"iss\"",
        ]
        .iter()
        .map(|k| {
            raw.find(k)
                .unwrap_or_else(|| panic!("{k} missing from {raw}"))
        })
        .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "claim order: {raw}"
        );
        assert_eq!(
            claims.as_object().unwrap().len(),
            6,
            "no other claims (no aud): {raw}"
        );
        assert_eq!(claims["permissions"], body["permissions"]);
        assert_eq!(claims["iss"], "http://127.0.0.1:1/auth/");
        let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        assert_eq!(lifetime, 3600);
    }

    // A service with no provider still gets a signed token, with no permissions.
    let body = s
        .get_json(&format!("authorize?jwt={token}&service=servis"))
        .await;
    assert_eq!(body["permissions"], json!({}));
    assert_eq!(body["service"], "servis");
    assert!(body["token"].is_string());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_tokens_verify_with_the_published_keys_and_no_audience() {
    let s = TestServer::start().await;
    let token = s.dev_login("carol@example.org", "Carol").await;
    let body = s
        .get_json(&format!("authorize?jwt={token}&service=example"))
        .await;
    let ptoken = body["token"].as_str().unwrap();

    // With the PEM from public-key, as the original's Verifyer does.
    let r = s.client.get(s.url("public-key")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let pem = r.text().await.unwrap();
    assert_eq!(pem, authhost_tests::key_pair(0).1);
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.validate_aud = false;
    let data = jsonwebtoken::decode::<Value>(ptoken, &key, &v).expect("verifies with public-key");
    assert!(data.claims.get("aud").is_none());

    // With the JWKS entry named by kid.
    let jwks: Value = s
        .client
        .get(format!("{}/.well-known/jwks.json", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (header, _) = jwt_parts(ptoken);
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("kid in JWKS");
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        jwk["n"].as_str().unwrap(),
        jwk["e"].as_str().unwrap(),
    )
    .unwrap();
    jsonwebtoken::decode::<Value>(ptoken, &key, &v).expect("verifies with the JWK");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_sets_the_username_once_with_the_original_errors() {
    let s = TestServer::start().await;
    let token = s.dev_login("dave@example.org", "Dave").await;
    let post = |q: String| {
        let c = s.client.clone();
        let url = s.url(&q);
        async move {
            let r = c.post(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let fail = |e: &str| json!({ "success": false, "error": e });
    assert_eq!(post("update?username=x".into()).await, fail("No token"));
    assert_eq!(
        post("update?jwt=bla&username=xx".into()).await,
        fail("Not authenticated")
    );
    let ghost = s.app.tokens.mint_user_token("ghost", None, None).unwrap();
    assert_eq!(
        post(format!("update?jwt={ghost}&username=xx")).await,
        fail("Unknown User")
    );
    assert_eq!(
        post(format!("update?jwt={token}")).await,
        json!({ "success": true })
    );
    for bad in ["a", "-dave", "da ve", "dåve", &"d".repeat(40)] {
        let q = format!("update?jwt={token}&username={}", urlencode(bad));
        assert_eq!(post(q).await, fail("Invalid username"), "{bad}");
    }
    assert_eq!(
        post(format!("update?jwt={token}&username=Dave.X")).await,
        json!({ "success": true })
    );
    assert_eq!(
        post(format!("update?jwt={token}&username=other")).await,
        fail("Cannot modify username, already set")
    );

    let other = s.dev_login("erin@example.org", "Erin").await;
    assert_eq!(
        post(format!("update?jwt={other}&username=DAVE.x")).await,
        fail("Username taken")
    );
    // The form body works too, as in the original.
    let r: Value = s
        .client
        .post(s.url("update"))
        .form(&[("jwt", other.as_str()), ("username", "erin")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r, json!({ "success": true }));

    let checked = s.get_json(&format!("check?jwt={token}")).await;
    assert_eq!(checked["profile"]["username"], "dave.x");
    // GET is not a route for update.
    let r = s
        .client
        .get(s.url(&format!("update?jwt={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({ "error": "method not allowed" })
    );
    s.stop().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn twenty_users_racing_for_one_name_exactly_one_wins() {
    let s = TestServer::start().await;
    let mut tokens = Vec::new();
    for i in 0..20 {
        tokens.push(s.dev_login(&format!("racer{i}@example.org"), "Racer").await);
    }
    let mut tasks = Vec::new();
    for t in tokens {
        let c = s.client.clone();
        let url = s.url(&format!("update?jwt={t}&username=Winner"));
        tasks.push(tokio::spawn(async move {
            c.post(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        let r = t.await.unwrap();
        if r["success"] == true {
            wins += 1;
        } else {
            assert_eq!(r["error"], "Username taken", "{r}");
        }
    }
    assert_eq!(wins, 1);
    let resolved = s.get_json("resolve?username=WINNER").await;
    assert!(resolved["userid"].is_string());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_and_get_profile() {
    let s = TestServer::start().await;
    let token = s.dev_login("frank@example.org", "Frank").await;
    s.client
        .post(s.url(&format!("update?jwt={token}&username=frank")))
        .send()
        .await
        .unwrap();
    let id = md5_hex("frank@example.org");
    assert_eq!(
        s.get_json("resolve?username=FrAnK").await,
        json!({ "userid": id })
    );
    assert_eq!(
        s.get_json("resolve?username=nobody").await,
        json!({ "userid": null })
    );
    assert_eq!(s.get_json("resolve").await, json!({ "userid": null }));

    let body = s.get_json("get_profile?username=Frank").await;
    assert_eq!(body["found"], true);
    let p = body["profile"].as_object().unwrap();
    let mut keys: Vec<&str> = p.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["avatar_url", "gravatar", "id", "join_date", "name"],
        "never the e-mail"
    );
    assert_eq!(p["gravatar"], md5_hex("frank@example.org").as_str());
    assert_eq!(p["name"], "Frank");
    assert_eq!(
        s.get_json("get_profile?username=nobody").await,
        json!({ "found": false, "profile": null })
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_every_earlier_token() {
    let s = TestServer::start().await;
    let token = s.dev_login("gina@example.org", "Gina").await;
    let second = s
        .app
        .tokens
        .mint_user_token(&md5_hex("gina@example.org"), None, None)
        .unwrap();

    // A hostile `next` is refused before anything changes.
    let r = s
        .client
        .get(s.url(&format!(
            "logout?jwt={token}&next=https%3A%2F%2Fevil.example%2F"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    assert_eq!(
        s.get_json(&format!("check?jwt={token}")).await["authenticated"],
        true
    );

    assert_eq!(
        s.get_json(&format!("logout?jwt={token}")).await,
        json!({ "success": true })
    );
    for t in [&token, &second] {
        assert_eq!(
            s.get_json(&format!("check?jwt={t}")).await["authenticated"],
            false
        );
        assert_eq!(
            s.get_json(&format!("authorize?jwt={t}&service=example"))
                .await,
            json!({ "permissions": {} })
        );
        let r: Value = s.post_json(&format!("update?jwt={t}&username=gina")).await;
        assert_eq!(r["error"], "Not authenticated");
    }
    // Logging in again, even within the same second, gives a working token.
    let fresh = s.dev_login("gina@example.org", "Gina").await;
    assert_eq!(
        s.get_json(&format!("check?jwt={fresh}")).await["authenticated"],
        true
    );

    // With an allowed `next`, a redirect; also as POST.
    let r = s
        .client
        .post(s.url("logout"))
        .form(&[
            ("jwt", fresh.as_str()),
            ("next", "https://app.example.org/bye"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "https://app.example.org/bye");
    assert_eq!(
        s.get_json(&format!("check?jwt={fresh}")).await["authenticated"],
        false
    );

    // Without a valid token nothing is revoked and the answer says so.
    assert_eq!(
        s.get_json("logout?jwt=nope").await,
        json!({ "success": false, "error": "Not authenticated" })
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonp_only_for_identifier_callbacks() {
    let s = TestServer::start().await;
    let r = s
        .client
        .get(s.url("resolve?username=x&callback=jQuery_1.cb"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/javascript; charset=utf-8"
    );
    assert_eq!(r.text().await.unwrap(), r#"jQuery_1.cb({"userid":null});"#);
    for bad in ["alert(1)", "a;b", "1x", "a..b", "%3Cscript%3E"] {
        let r = s
            .client
            .get(s.url(&format!("resolve?username=x&callback={bad}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_answer_json() {
    let s = TestServer::start().await;
    for path in ["/nope", "/auth/check/", "/auth/", "/auth/login/nope"] {
        let r = s
            .client
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({ "error": "not found" })
        );
    }
    let r = s.client.delete(s.url("check")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({ "error": "method not allowed" })
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_listed_origins_only() {
    let s = TestServer::start().await;
    let preflight = |origin: &'static str| {
        s.client
            .request(reqwest::Method::OPTIONS, s.url("check"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "auth-token")
            .send()
    };
    let r = preflight("https://app.example.org").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.org"
    );
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    assert!(
        r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("auth-token")
    );
    let r = preflight("https://evil.example").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = s
        .client
        .get(s.url("check"))
        .header("origin", "https://app.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.org"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_metrics_and_jwks() {
    let s = TestServer::start().await;
    let get = |p: &str| s.client.get(format!("{}{p}", s.base)).send();
    let r = get("/healthz").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ok");
    let r = get("/readyz").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ready");

    let token = s.dev_login("hank@example.org", "Hank").await;
    s.get_json(&format!("authorize?jwt={token}&service=example"))
        .await;
    let text = get("/metrics").await.unwrap().text().await.unwrap();
    for needle in [
        "authhost_http_requests_total{route=\"/auth/authorize\",status=\"200\"}",
        "authhost_http_request_duration_seconds_bucket",
        "authhost_plugin_calls_total{service=\"example\",outcome=\"ok\"}",
        "authhost_logins_total{provider=\"dev\"}",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from /metrics:\n{text}"
        );
    }

    let jwks: Value = get("/.well-known/jwks.json")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["kid"], s.app.tokens.keys().signing.kid());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_gets_json_and_the_server_keeps_serving() {
    let s = TestServer::start().await;
    let huge = "a".repeat(1024 * 1024);
    let huge_jwt = format!("eyJhbGciOiJIUzI1NiJ9.{huge}.sig");
    // hyper caps a request target at 64 KiB, so the query gets the largest token it can carry;
    // the header and the form body carry the full megabyte.
    let long_jwt = format!("eyJhbGciOiJIUzI1NiJ9.{}.sig", "a".repeat(60 * 1024));
    let cases: Vec<reqwest::RequestBuilder> = vec![
        s.client.get(s.url(&format!("check?jwt={long_jwt}"))),
        s.client
            .get(s.url("authorize?service=example"))
            .header("auth-token", huge_jwt.as_str()),
        s.client
            .post(s.url("update"))
            .form(&[("jwt", huge_jwt.as_str()), ("username", "x")]),
        s.client.get(s.url("check")).header(
            "auth-token",
            reqwest::header::HeaderValue::from_bytes(b"\xff\xfe\x80garbage").unwrap(),
        ),
        s.client.get(s.url("authorize?jwt=%FF%FE%00&service=%ZZ%")),
        s.client.get(s.url("check?&&&==&jwt&jwt=&next=%")),
        s.client.get(s.url("resolve?username=%00%01%02")),
        s.client.get(s.url("get_profile?username=%E2%28%A1")),
        s.client.get(s.url("check?jwt=a.b.c")),
        s.client.get(s.url("check?jwt=....")),
        s.client
            .post(s.url("update"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(vec![0xffu8, 0x00, b'=', 0x80]),
        s.client
            .post(s.url("update"))
            .header("content-type", "application/json")
            .body("{not json"),
    ];
    for (i, req) in cases.into_iter().enumerate() {
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("case {i}: {}", e.without_url()));
        let status = r.status();
        assert!(status.as_u16() < 500, "case {i}: {status}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert_eq!(ct, "application/json", "case {i}");
        let body: Value = r
            .json()
            .await
            .unwrap_or_else(|e| panic!("case {i}: not JSON: {e}"));
        assert!(body.is_object(), "case {i}");
    }
    let r = s
        .client
        .post(s.url("update"))
        .form(&[("jwt", "x".repeat(3 * 1024 * 1024))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({ "error": "request body too large" })
    );
    // On a new connection: the 413's connection is closed by the server while the client may
    // still be writing the body, and a pooled client could pick that connection up again.
    assert_eq!(
        reqwest::Client::new()
            .get(format!("{}/healthz", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_login_refuses_hostile_next_and_bad_email() {
    let s = TestServer::start().await;
    let r = s
        .client
        .get(s.url("login/dev?next=https%3A%2F%2Fevil.example%2F"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = s
        .client
        .get(s.url("login/dev?next=https%3A%2F%2Fapp.example.org%2Fx"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("<form") && html.contains("https://app.example.org/x"));
    let r = s
        .client
        .post(s.url("login/dev"))
        .form(&[("email", "not-an-email")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = s
        .client
        .post(s.url("login/dev"))
        .form(&[("email", "x@example.org"), ("next", "//evil.example")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The jwt is merged into `next` as the original did.
    let r = s
        .client
        .post(s.url("login/dev"))
        .form(&[
            ("email", "x@example.org"),
            ("next", "https://app.example.org/p?a=1&jwt=old#frag"),
        ])
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(
        loc.starts_with("https://app.example.org/p?a=1&jwt=ey"),
        "{loc}"
    );
    assert!(loc.ends_with("#frag"), "{loc}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_the_server_stop_cleanly() {
    let s = TestServer::start().await;
    let base = s.base.clone();
    s.stop().await;
    let r = reqwest::get(format!("{base}/healthz")).await;
    assert!(r.is_err(), "server still answering after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_client_verifies_permission_tokens_from_the_jwks() {
    let s = TestServer::start().await;
    verify_client::init();
    let token = s.dev_login("vc@example.org", "Vc").await;
    let body = s
        .get_json(&format!("authorize?jwt={token}&service=example"))
        .await;
    let ptoken = body["token"].as_str().unwrap();
    let keys = verify_client::fetch_jwks(&s.base).await.unwrap();
    let issuer = "http://127.0.0.1:1/auth/";
    let claims = verify_client::verify(ptoken, &keys, issuer, "example").unwrap();
    assert_eq!(claims["userid"], md5_hex("vc@example.org").as_str());
    assert_eq!(claims["permissions"], body["permissions"]);
    assert!(
        verify_client::verify(ptoken, &keys, issuer, "other")
            .unwrap_err()
            .contains("not other")
    );
    assert!(verify_client::verify(ptoken, &keys, "https://evil.example/", "example").is_err());
    assert!(
        verify_client::verify(&token, &keys, issuer, "example").is_err(),
        "a user token is no permission token"
    );
    let mut forged: Vec<&str> = ptoken.split('.').collect();
    let other = s
        .get_json(&format!("authorize?jwt={token}&service=example2"))
        .await;
    let other_payload = other["token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_string();
    forged[1] = &other_payload;
    assert!(
        verify_client::verify(&forged.join("."), &keys, issuer, "example2").is_err(),
        "spliced payload"
    );
    s.stop().await;
}

/// `check` with a valid token is answered before the router when the user is cached; that
/// answer must be the router's, and every other request must go to the router.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_shortcut_answers_exactly_as_the_router() {
    use axum::http::{Method, Request};
    let s = TestServer::start_with(authhost_tests::Options {
        env: [("AUTHHOST_DATABASE__USER_CACHE_MS", "600000")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    })
    .await;
    let service = authhost::routes::service(s.app.clone());
    let token = s.dev_login("short@example.org", "Short Cut").await;
    let request = |method: Method, uri: &str, headers: &[(&str, &str)]| {
        let mut r = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.body(()).expect("request")
    };
    let check = format!("{}check", s.prefix);
    let with_token = [("auth-token", token.as_str())];

    // A user the cache has not seen yet goes to the router, which fills the cache.
    assert!(
        service
            .answer_check(&request(Method::GET, &check, &with_token))
            .is_none()
    );
    let routed = s
        .client
        .get(s.url("check"))
        .header("auth-token", &token)
        .send()
        .await
        .expect("check");
    assert_eq!(routed.status(), 200);
    let routed_headers = routed.headers().clone();
    let routed_body = routed.bytes().await.expect("body");

    let bearer = format!("Bearer {token}");
    for headers in [&with_token[..], &[("authorization", bearer.as_str())][..]] {
        let short = service
            .answer_check(&request(Method::GET, &check, headers))
            .expect("a cached user with a valid token is answered by the shortcut");
        assert_eq!(short.status(), 200);
        for (name, value) in short.headers() {
            assert_eq!(routed_headers.get(name), Some(value), "header {name}");
        }
        for name in routed_headers.keys() {
            if name != "date" && name != "content-length" {
                assert!(short.headers().contains_key(name), "shortcut lacks {name}");
            }
        }
        let body = axum::body::to_bytes(short.into_body(), 1 << 20)
            .await
            .expect("body");
        assert_eq!(body, routed_body);
        assert_eq!(
            serde_json::from_slice::<Value>(&body).expect("json")["authenticated"],
            true
        );
    }

    // Everything else is the router's.
    let bad = format!("{token}x");
    let routed_cases: Vec<Request<()>> = vec![
        request(Method::GET, &check, &[]),
        request(Method::GET, &check, &[("auth-token", bad.as_str())]),
        request(Method::GET, &format!("{check}?callback=cb"), &with_token),
        request(Method::GET, &format!("{check}?jwt={token}"), &[]),
        request(
            Method::GET,
            &check,
            &[
                ("auth-token", token.as_str()),
                ("origin", "http://127.0.0.1:1"),
            ],
        ),
        request(Method::POST, &check, &with_token),
        request(Method::HEAD, &check, &with_token),
        request(Method::GET, &format!("{}authorize", s.prefix), &with_token),
    ];
    for r in &routed_cases {
        assert!(
            service.answer_check(r).is_none(),
            "{} {}",
            r.method(),
            r.uri()
        );
    }

    // After a logout the token is refused, so the shortcut must not answer it either.
    assert_eq!(
        s.get_json(&format!("logout?jwt={token}")).await["success"],
        true
    );
    assert!(
        service
            .answer_check(&request(Method::GET, &check, &with_token))
            .is_none()
    );
    s.stop().await;
}
