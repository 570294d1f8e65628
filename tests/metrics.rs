//! Metrics operators alert on: `# HELP` on every family, tokens issued by kind and refused by
//! reason, cache and pool figures, build info, the `process_*` figures. One test in its own
//! binary: the recorder is process-wide, and these families have no per-test labels.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use authhost_tests::{TestServer, key_pair, md5_hex};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_cover_what_operators_alert_on() {
    let s = TestServer::start().await;
    let text = s.metrics_text().await;

    // Every family has its HELP and TYPE.
    let named = |prefix: &str| -> BTreeSet<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_string)
            .collect()
    };
    let (helps, types) = (named("# HELP "), named("# TYPE "));
    assert!(types.len() >= 15, "{text}");
    for family in &types {
        assert!(helps.contains(family), "{family} has no # HELP:\n{text}");
    }
    for family in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(s.metric(family).await > 0.0, "{family}:\n{text}");
    }
    // Whole seconds (the metrics crate's counters are integers): present, maybe still 0.
    assert!(
        text.lines()
            .any(|l| l.starts_with("process_cpu_seconds_total ")),
        "{text}"
    );
    let build = text
        .lines()
        .find(|l| l.starts_with("authhost_build_info{"))
        .expect("build info");
    assert!(
        build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))),
        "{build}"
    );
    assert!(
        build.contains("commit=\"") && !build.contains("commit=\"\""),
        "{build}"
    );
    assert!(build.ends_with(" 1"), "{build}");
    let max = s.metric("authhost_db_pool_max_connections").await;
    assert!(max >= 1.0, "{text}");
    let in_use = s
        .metric("authhost_db_pool_connections{state=\"in_use\"}")
        .await;
    let idle = s
        .metric("authhost_db_pool_connections{state=\"idle\"}")
        .await;
    assert!(
        in_use + idle >= 1.0 && in_use + idle <= max,
        "{in_use} + {idle} of {max}"
    );

    // Issued: a login's user token; permission tokens, signed once then from the cache.
    let issued = |kind: &str| format!("authhost_tokens_issued_total{{kind=\"{kind}\"}}");
    let token = s.dev_login("metered@example.org", "Metered").await;
    assert_eq!(s.metric(&issued("user")).await, 1.0);
    let hits = "authhost_cache_hits_total{cache=\"permission_tokens\"}";
    let misses = "authhost_cache_misses_total{cache=\"permission_tokens\"}";
    for _ in 0..3 {
        let r = s
            .client
            .get(s.url("authorize?service=example"))
            .header("auth-token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(s.metric(&issued("permission")).await, 3.0);
    assert_eq!(s.metric(misses).await, 1.0);
    assert_eq!(s.metric(hits).await, 2.0);
    assert!(
        s.metric("authhost_cache_bytes{cache=\"permission_tokens\"}")
            .await
            > 0.0
    );
    assert!(s.metric("authhost_cache_bytes{cache=\"users\"}").await > 0.0);
    // The shortcut and the router both count user-cache hits.
    let user_hits = "authhost_cache_hits_total{cache=\"users\"}";
    let before = s.metric(user_hits).await;
    for _ in 0..3 {
        assert_eq!(s.get_json_as("check", &token).await["authenticated"], true);
    }
    assert_eq!(s.metric(user_hits).await, before + 3.0);

    // Refused, each under its reason. Forged tokens are built with this host's own key where
    // only one thing is wrong, so the reason is that thing.
    let uid = md5_hex("metered@example.org");
    let kid = s.app.tokens.keys().signing.kid().to_string();
    let secret = *s.app.tokens.keys().signing.user_token_secret();
    let iss = s.app.tokens.issuer().to_string();
    let claims = |exp: i64, typ: &str| json!({ "userid": uid, "iat": now() - 10, "exp": exp, "iss": iss, "typ": typ });
    let header = |kid: &str| {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(kid.to_string());
        h
    };
    let sign = |h: Header, c: &Value| encode(&h, c, &EncodingKey::from_secret(&secret)).unwrap();
    let mut tampered: Vec<String> = token.split('.').map(str::to_string).collect();
    tampered[2] = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let cases = [
        ("malformed", "not-a-token".to_string()),
        ("bad_signature", tampered.join(".")),
        ("expired", sign(header(&kid), &claims(now() - 3600, "user"))),
        (
            "unknown_key",
            sign(header("nope"), &claims(now() + 3600, "user")),
        ),
        (
            "wrong_type",
            sign(header(&kid), &claims(now() + 3600, "permission")),
        ),
        ("wrong_algorithm", {
            let mut h = Header::new(Algorithm::RS256);
            h.kid = Some(kid.clone());
            let ours = EncodingKey::from_rsa_pem(key_pair(0).0.as_bytes()).unwrap();
            encode(&h, &claims(now() + 3600, "user"), &ours).unwrap()
        }),
        ("unknown_user", {
            let mut c = claims(now() + 3600, "user");
            c["userid"] = json!(md5_hex("nobody@example.org"));
            sign(header(&kid), &c)
        }),
    ];
    for (reason, forged) in &cases {
        let sample = format!("authhost_tokens_refused_total{{reason=\"{reason}\"}}");
        let before = s.metric(&sample).await;
        assert_eq!(
            s.get_json_as("check", forged).await["authenticated"],
            false,
            "{reason}"
        );
        assert_eq!(s.metric(&sample).await, before + 1.0, "{reason}");
    }
    // A disabled account's valid token.
    let disabled = "authhost_tokens_refused_total{reason=\"disabled\"}";
    let other = s.dev_login("disabled@example.org", "Disabled").await;
    let user = authhost::users::get(&s.app.db, &md5_hex("disabled@example.org"))
        .await
        .unwrap()
        .unwrap();
    s.app.sessions().disable(&user).await.unwrap();
    let before = s.metric(disabled).await;
    assert_eq!(s.get_json_as("check", &other).await["authenticated"], false);
    assert_eq!(s.metric(disabled).await, before + 1.0);
    let revoked = "authhost_tokens_refused_total{reason=\"revoked\"}";
    assert_eq!(
        s.get_json(&format!("logout?jwt={token}")).await["success"],
        true
    );
    let before = s.metric(revoked).await;
    assert_eq!(s.get_json_as("check", &token).await["authenticated"], false);
    assert_eq!(s.metric(revoked).await, before + 1.0);

    // Database errors, by kind, once the database is gone.
    let errors = "authhost_db_errors_total{kind=\"connection\"}";
    let before = s.metric(errors).await;
    s.app.db.clone().close().await.unwrap();
    let r = s
        .client
        .get(format!("{}/readyz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(
        s.metric(errors).await > before,
        "{}",
        s.metrics_text().await
    );
    s.stop().await;
}
