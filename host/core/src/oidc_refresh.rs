//! Refresh tokens of authhost as an OpenID Provider, in families (RFC 9700 §4.14): the code
//! grant starts a family; every use rotates the token (the old one is spent, a new one of the
//! same family is handed out); a spent token presented again means it leaked, and revokes the
//! whole family, the legitimate holder's current token included. A family lives at most its
//! lifetime from its first token, however often it is rotated. Only SHA-256 hashes are stored.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};

use crate::db::oidc_refresh_token::{ActiveModel, Column, Entity as Tokens, Model};
use crate::oidc_codes::{hash, random_token};

/// How long a spent or expired token is kept to recognise a replay before the sweep.
pub const KEPT_SECONDS: i64 = 86_400;

/// What a refresh token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshGrant {
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub auth_time: i64,
}

/// Why a refresh token was not accepted; every variant but `Db` is the client's
/// `invalid_grant`.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("unknown refresh token")]
    Unknown,
    #[error("expired refresh token")]
    Expired,
    #[error("revoked refresh token")]
    Revoked,
    #[error("refresh token already used: its family is revoked")]
    Reused,
    #[error("refresh token issued to another client: its family is revoked")]
    WrongClient,
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn grant(row: &Model) -> RefreshGrant {
    RefreshGrant {
        client_id: row.client_id.clone(),
        user_id: row.user_id.clone(),
        scope: row.scope.clone(),
        auth_time: row.auth_time,
    }
}

fn row(
    token: &str,
    family: &str,
    grant: &RefreshGrant,
    expires: i64,
    family_expires: i64,
) -> ActiveModel {
    ActiveModel {
        token_hash: Set(hash(token)),
        family_id: Set(family.to_string()),
        client_id: Set(grant.client_id.clone()),
        user_id: Set(grant.user_id.clone()),
        scope: Set(grant.scope.clone()),
        auth_time: Set(grant.auth_time),
        expires_at: Set(expires),
        family_expires_at: Set(family_expires),
        used_at: Set(None),
        revoked_at: Set(None),
        successor_hash: Set(None),
        successor_expires_at: Set(None),
    }
}

/// Families one user may hold at one client at once (a browser or a device each); starting
/// one more revokes the oldest, so a client looping over the code grant fills nothing.
pub const MAX_FAMILIES_PER_CLIENT: usize = 20;

/// Starts a family for `grant`: its first token, valid `lifetime` seconds (the family too).
pub async fn start(
    db: &crate::db::Db,
    grant: &RefreshGrant,
    now: i64,
    lifetime: i64,
) -> Result<String, DbErr> {
    start_family(db, grant, &random_token()?, now, lifetime).await
}

/// Starts the family of the authorization code `code`: a second use of the code revokes it
/// (`revoke_code_family`), as RFC 6749 §4.1.2 asks of what the first use issued.
pub async fn start_for_code(
    db: &crate::db::Db,
    grant: &RefreshGrant,
    code: &str,
    now: i64,
    lifetime: i64,
) -> Result<String, DbErr> {
    start_family(db, grant, &code_family(code), now, lifetime).await
}

/// Revokes the family started by the code `code`, if any.
pub async fn revoke_code_family(db: &crate::db::Db, code: &str, now: i64) -> Result<(), DbErr> {
    revoke_family(db, &code_family(code), now).await
}

/// A code's family id: a hash of the code's own hash, so neither the code nor its row's key
/// can be read from it.
fn code_family(code: &str) -> String {
    hash(&format!("family:{}", hash(code)))
}

async fn start_family(
    db: &crate::db::Db,
    grant: &RefreshGrant,
    family: &str,
    now: i64,
    lifetime: i64,
) -> Result<String, DbErr> {
    let live = Tokens::find()
        .filter(Column::UserId.eq(&grant.user_id))
        .filter(Column::ClientId.eq(&grant.client_id))
        .filter(Column::UsedAt.is_null())
        .filter(Column::RevokedAt.is_null())
        .filter(Column::FamilyExpiresAt.gte(now))
        .order_by_asc(Column::FamilyExpiresAt)
        .all(db)
        .await?;
    let over = (live.len() + 1).saturating_sub(MAX_FAMILIES_PER_CLIENT);
    for oldest in live.iter().take(over) {
        revoke_family(db, &oldest.family_id, now).await?;
    }
    let token = random_token()?;
    let end = now.saturating_add(lifetime);
    Tokens::insert(row(&token, family, grant, end, end))
        .exec(db)
        .await?;
    Ok(token)
}

async fn revoke_family(db: &crate::db::Db, family: &str, now: i64) -> Result<(), DbErr> {
    // Until a pass finds nothing left: on PostgreSQL a rotation in flight holds the spent row's
    // lock, so a pass waits for it to commit but does not see the successor it inserted; the
    // next pass does, and a client rotating again meanwhile needs a further one. A pass that
    // revokes nothing saw no live token, so no rotation can be in flight. (Bounded: a family
    // cannot be rotated faster than these passes run.)
    for _ in 0..MAX_REVOKE_PASSES {
        let done = Tokens::update_many()
            .col_expr(Column::RevokedAt, Expr::value(now))
            .filter(Column::FamilyId.eq(family))
            .filter(Column::RevokedAt.is_null())
            .exec(db)
            .await?;
        if done.rows_affected == 0 {
            break;
        }
    }
    Ok(())
}

/// At most this many revocation passes over one family.
const MAX_REVOKE_PASSES: usize = 10;

/// Spends `token` (presented by `client_id`) and hands out its successor in the family, valid
/// `lifetime` seconds but never past the family's end.
pub async fn rotate(
    db: &crate::db::Db,
    token: &str,
    client_id: &str,
    now: i64,
    lifetime: i64,
) -> Result<(RefreshGrant, String), RefreshError> {
    let key = hash(token);
    let next = random_token()?;
    // One statement: it spends the token (of two racing uses only one gets the row) and names
    // the successor, which a trigger inserts from the spent row in the same statement,
    // expiring at `now + lifetime` but never past the family's end (migration 000012).
    let spent = Tokens::update_many()
        .col_expr(Column::UsedAt, Expr::value(now))
        .col_expr(Column::SuccessorHash, Expr::value(hash(&next)))
        .col_expr(
            Column::SuccessorExpiresAt,
            Expr::value(now.saturating_add(lifetime)),
        )
        .filter(Column::TokenHash.eq(key.clone()))
        .filter(Column::UsedAt.is_null())
        .filter(Column::RevokedAt.is_null())
        .filter(Column::ClientId.eq(client_id))
        .filter(Column::ExpiresAt.gte(now))
        .filter(Column::FamilyExpiresAt.gte(now))
        .exec_with_returning(db)
        .await?;
    let Some(found) = spent.into_iter().next() else {
        return Err(refusal(db, &key, client_id, now).await?);
    };
    Ok((grant(&found), next))
}

/// Why the token with hash `key` could not be spent, revoking its family when it was replayed
/// or presented by another client.
async fn refusal(
    db: &crate::db::Db,
    key: &str,
    client_id: &str,
    now: i64,
) -> Result<RefreshError, DbErr> {
    let Some(found) = Tokens::find_by_id(key.to_string()).one(db).await? else {
        return Ok(RefreshError::Unknown);
    };
    if found.revoked_at.is_some() {
        return Ok(RefreshError::Revoked);
    }
    if found.used_at.is_some() {
        revoke_family(db, &found.family_id, now).await?;
        return Ok(RefreshError::Reused);
    }
    if found.client_id != client_id {
        revoke_family(db, &found.family_id, now).await?;
        return Ok(RefreshError::WrongClient);
    }
    Ok(RefreshError::Expired)
}

/// Revokes every family of `user_id` (logout, disable, delete); how many tokens.
pub async fn revoke_user<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    now: i64,
) -> Result<u64, DbErr> {
    let done = Tokens::update_many()
        .col_expr(Column::RevokedAt, Expr::value(now))
        .filter(Column::UserId.eq(user_id))
        .filter(Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(done.rows_affected)
}

/// Removes tokens whose family ended more than `KEPT_SECONDS` before `now`; how many.
pub async fn sweep(db: &crate::db::Db, now: i64) -> Result<u64, DbErr> {
    let gone = Tokens::delete_many()
        .filter(Column::FamilyExpiresAt.lt(now.saturating_sub(KEPT_SECONDS)))
        .exec(db)
        .await?;
    Ok(gone.rows_affected)
}
