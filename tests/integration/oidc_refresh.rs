//! Refresh-token families (authhost as an OpenID Provider), on SQLite and, with
//! `AUTHHOST_TEST_POSTGRES`, PostgreSQL: rotation on every use, a replayed token revoking the
//! family, the family's bounded lifetime, revocation per user, racing rotations.

use authhost::oidc_refresh::{self, KEPT_SECONDS, RefreshError, RefreshGrant};
use authhost_tests::TestDb;

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn grant(user: &str) -> RefreshGrant {
    RefreshGrant {
        client_id: "grafana".into(),
        user_id: user.into(),
        scope: "openid offline_access".into(),
        auth_time: NOW,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_replay_and_revocation() {
    let (_dir, test_db, db) = TestDb::migrated().await;
    let first = oidc_refresh::start(&db, &grant("u1"), NOW, 30 * DAY)
        .await
        .expect("start");
    let (g, second) = oidc_refresh::rotate(&db, &first, "grafana", NOW + 10, 30 * DAY)
        .await
        .expect("rotated");
    assert_eq!(g, grant("u1"));
    assert_ne!(first, second);
    let (_, third) = oidc_refresh::rotate(&db, &second, "grafana", NOW + 20, 30 * DAY)
        .await
        .expect("rotated");
    // The first token again: a replay. The family is revoked, the current token with it.
    let replay = oidc_refresh::rotate(&db, &first, "grafana", NOW + 30, 30 * DAY).await;
    assert!(matches!(replay, Err(RefreshError::Reused)), "{replay:?}");
    let current = oidc_refresh::rotate(&db, &third, "grafana", NOW + 31, 30 * DAY).await;
    assert!(matches!(current, Err(RefreshError::Revoked)), "{current:?}");

    // Another client presenting a token revokes its family too.
    let token = oidc_refresh::start(&db, &grant("u1"), NOW, 30 * DAY)
        .await
        .expect("start");
    let stolen = oidc_refresh::rotate(&db, &token, "other", NOW + 1, 30 * DAY).await;
    assert!(
        matches!(stolen, Err(RefreshError::WrongClient)),
        "{stolen:?}"
    );
    let owner = oidc_refresh::rotate(&db, &token, "grafana", NOW + 2, 30 * DAY).await;
    assert!(matches!(owner, Err(RefreshError::Revoked)), "{owner:?}");

    // The family ends at its lifetime from the first token, rotations or not.
    let token = oidc_refresh::start(&db, &grant("u2"), NOW, 10 * DAY)
        .await
        .expect("start");
    let (_, late) = oidc_refresh::rotate(&db, &token, "grafana", NOW + 9 * DAY, 30 * DAY)
        .await
        .expect("rotated");
    // The successor (inserted by the rotation's trigger) expires with its family, not later.
    use sea_orm::EntityTrait;
    let row = authhost::db::oidc_refresh_token::Entity::find_by_id({
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(late.as_bytes()))
    })
    .one(&db)
    .await
    .expect("read")
    .expect("the successor's row");
    assert_eq!(
        (row.expires_at, row.family_expires_at, row.used_at),
        (NOW + 10 * DAY, NOW + 10 * DAY, None)
    );
    let ended = oidc_refresh::rotate(&db, &late, "grafana", NOW + 10 * DAY + 1, 30 * DAY).await;
    assert!(matches!(ended, Err(RefreshError::Expired)), "{ended:?}");

    // A user's logout revokes every family of theirs, and only theirs.
    let mine = oidc_refresh::start(&db, &grant("u3"), NOW, DAY)
        .await
        .expect("start");
    let theirs = oidc_refresh::start(&db, &grant("u4"), NOW, DAY)
        .await
        .expect("start");
    assert_eq!(
        oidc_refresh::revoke_user(&db, "u3", NOW + 1)
            .await
            .expect("revoke"),
        1
    );
    let gone = oidc_refresh::rotate(&db, &mine, "grafana", NOW + 2, DAY).await;
    assert!(matches!(gone, Err(RefreshError::Revoked)), "{gone:?}");
    assert!(
        oidc_refresh::rotate(&db, &theirs, "grafana", NOW + 2, DAY)
            .await
            .is_ok()
    );

    let unknown = oidc_refresh::rotate(&db, "no-such-token", "grafana", NOW, DAY).await;
    assert!(matches!(unknown, Err(RefreshError::Unknown)), "{unknown:?}");

    // Swept a day after their family ended: nothing before, all after.
    assert_eq!(oidc_refresh::sweep(&db, NOW + 2).await.expect("sweep"), 0);
    let removed = oidc_refresh::sweep(&db, NOW + 30 * DAY + KEPT_SECONDS + 1)
        .await
        .expect("sweep");
    assert_eq!(removed, 9, "every token written above");
    db.close().await.ok();
    test_db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_rotations_of_one_token_give_one_successor() {
    let (_dir, test_db, db) = TestDb::migrated().await;
    for _ in 0..20 {
        let token = oidc_refresh::start(&db, &grant("u1"), NOW, DAY)
            .await
            .expect("start");
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (db, token) = (db.clone(), token.clone());
                tokio::spawn(async move {
                    oidc_refresh::rotate(&db, &token, "grafana", NOW + 1, DAY).await
                })
            })
            .collect();
        let mut rotated = 0;
        for task in tasks {
            match task.await.expect("joined") {
                Ok(_) => rotated += 1,
                Err(RefreshError::Reused | RefreshError::Revoked) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(rotated, 1, "successors of one token");
    }
    db.close().await.ok();
    test_db.drop_database().await;
}
