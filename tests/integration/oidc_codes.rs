//! Authorization codes (authhost as an OpenID Provider), on SQLite and, with
//! `AUTHHOST_TEST_POSTGRES`, PostgreSQL: single use even when two redemptions race, bound to
//! client, redirect URI and PKCE verifier, expiring, swept.

use authhost::oidc_codes::{self, CODE_SECONDS, Grant, KEPT_SECONDS, RedeemError, s256_challenge};
use authhost_tests::TestDb;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const NOW: i64 = 1_800_000_000;

fn grant() -> Grant {
    Grant {
        client_id: "grafana".into(),
        redirect_uri: "https://grafana.example.org/login/generic_oauth".into(),
        user_id: "u1".into(),
        scope: "openid email".into(),
        nonce: Some("n1".into()),
        code_challenge: Some(s256_challenge(VERIFIER)),
        auth_time: NOW - 5,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_is_redeemed_once_by_its_client_with_its_verifier() {
    let (_dir, test_db, db) = TestDb::migrated().await;
    let g = grant();
    let redeem =
        |code: String, client: &'static str, uri: String, verifier: Option<&'static str>| {
            let db = db.clone();
            async move { oidc_codes::redeem(&db, &code, client, &uri, verifier, NOW + 1).await }
        };

    let code = oidc_codes::issue(&db, &g, NOW).await.expect("issue");
    assert_eq!(code.len(), 43, "256 bits, base64url");
    let got = redeem(
        code.clone(),
        "grafana",
        g.redirect_uri.clone(),
        Some(VERIFIER),
    )
    .await;
    assert_eq!(got.expect("redeemed"), g);
    assert!(!oidc_codes::was_reused(&db, &code).await.expect("db"));
    // The second use is a replay, says what the first use was for, and marks the code for the
    // first use to see (it revokes its refresh family when it finds the mark).
    match redeem(
        code.clone(),
        "grafana",
        g.redirect_uri.clone(),
        Some(VERIFIER),
    )
    .await
    {
        Err(RedeemError::Reused(first)) => assert_eq!(*first, g),
        other => panic!("{other:?}"),
    }
    assert!(oidc_codes::was_reused(&db, &code).await.expect("db"));

    // Each wrong presentation is refused, and uses the code up.
    for (client, uri, verifier, expected) in [
        (
            "other",
            g.redirect_uri.clone(),
            Some(VERIFIER),
            "another client",
        ),
        (
            "grafana",
            format!("{}/", g.redirect_uri),
            Some(VERIFIER),
            "redirect_uri",
        ),
        ("grafana", g.redirect_uri.clone(), None, "missing"),
        (
            "grafana",
            g.redirect_uri.clone(),
            Some("wrong-verifier-wrong-verifier-wrong-verif"),
            "does not match",
        ),
    ] {
        let code = oidc_codes::issue(&db, &g, NOW).await.expect("issue");
        let refused = redeem(code.clone(), client, uri, verifier)
            .await
            .expect_err("refused");
        assert!(refused.to_string().contains(expected), "{refused}");
        let again = redeem(code, "grafana", g.redirect_uri.clone(), Some(VERIFIER)).await;
        assert!(matches!(again, Err(RedeemError::Reused(_))), "{again:?}");
    }

    let unknown = redeem(
        "no-such-code".into(),
        "grafana",
        g.redirect_uri.clone(),
        Some(VERIFIER),
    )
    .await;
    assert!(matches!(unknown, Err(RedeemError::Unknown)), "{unknown:?}");

    // Expired after CODE_SECONDS.
    let code = oidc_codes::issue(&db, &g, NOW - CODE_SECONDS - 2)
        .await
        .expect("issue");
    let expired = redeem(code, "grafana", g.redirect_uri.clone(), Some(VERIFIER)).await;
    assert!(matches!(expired, Err(RedeemError::Expired)), "{expired:?}");

    // Without a challenge (a confidential client allowed without PKCE) no verifier is asked.
    let plain = Grant {
        code_challenge: None,
        ..grant()
    };
    let code = oidc_codes::issue(&db, &plain, NOW).await.expect("issue");
    assert!(
        redeem(code, "grafana", g.redirect_uri.clone(), None)
            .await
            .is_ok()
    );

    // The sweep removes what expired more than KEPT_SECONDS ago, and nothing younger.
    let removed = oidc_codes::sweep(&db, NOW + KEPT_SECONDS + CODE_SECONDS + 1)
        .await
        .expect("sweep");
    assert_eq!(removed, 7, "every code issued above");
    let old = oidc_codes::issue(&db, &g, NOW).await.expect("issue");
    assert_eq!(oidc_codes::sweep(&db, NOW + 1).await.expect("sweep"), 0);
    assert!(
        redeem(old, "grafana", g.redirect_uri.clone(), Some(VERIFIER))
            .await
            .is_ok()
    );
    db.close().await.ok();
    test_db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_racing_redemptions_of_one_code_give_one_grant() {
    let (_dir, test_db, db) = TestDb::migrated().await;
    let g = grant();
    for _ in 0..20 {
        let code = oidc_codes::issue(&db, &g, NOW).await.expect("issue");
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (db, code, uri) = (db.clone(), code.clone(), g.redirect_uri.clone());
                tokio::spawn(async move {
                    oidc_codes::redeem(&db, &code, "grafana", &uri, Some(VERIFIER), NOW + 1).await
                })
            })
            .collect();
        let mut granted = 0;
        for task in tasks {
            match task.await.expect("joined") {
                Ok(_) => granted += 1,
                Err(RedeemError::Reused(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(granted, 1);
    }
    db.close().await.ok();
    test_db.drop_database().await;
}
