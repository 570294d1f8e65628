//! Authorization codes of authhost as an OpenID Provider: issued after a login for one client and
//! redirect URI, redeemed once by that client with the PKCE verifier. A code is 256 random bits;
//! only its SHA-256 is stored. Redeeming marks it used in the same statement that checks it was
//! not (`UPDATE ... WHERE used_at IS NULL`), so two redemptions racing on two replicas cannot both
//! win; a second use is reported as `Reused` with the grant, so that the caller can revoke what the
//! first use issued (RFC 6749 §4.1.2).

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter};

use crate::db::oidc_code::{ActiveModel, Column, Entity as Codes, Model};

/// How long a code may wait to be redeemed (OAuth 2.0 suggests at most 10 minutes; a client
/// redeems at once).
pub const CODE_SECONDS: i64 = 60;

/// How long a used or expired code is kept to recognise a replay before the sweep removes it.
pub const KEPT_SECONDS: i64 = 3600;

/// What a code stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub client_id: String,
    pub redirect_uri: String,
    pub user_id: String,
    pub scope: String,
    pub nonce: Option<String>,
    /// The S256 challenge (`BASE64URL(SHA256(verifier))`), when the request had one.
    pub code_challenge: Option<String>,
    pub auth_time: i64,
}

/// Why a code was not redeemed; every variant but `Db` is the client's `invalid_grant`.
#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    #[error("unknown code")]
    Unknown,
    #[error("expired code")]
    Expired,
    #[error("code already used")]
    Reused(Box<Grant>),
    #[error("code issued to another client")]
    WrongClient,
    #[error("redirect_uri differs from the authorization request's")]
    WrongRedirectUri,
    #[error("code_verifier missing")]
    VerifierMissing,
    #[error("code_verifier does not match the code_challenge")]
    BadVerifier,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// What is stored for a code or a refresh token: its SHA-256, hex.
pub(crate) fn hash(secret: &str) -> String {
    hex::encode(digest(&SHA256, secret.as_bytes()))
}

/// 256 random bits, base64url: a code, a refresh token or a family id.
pub(crate) fn random_token() -> Result<String, DbErr> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| DbErr::Custom("no randomness for a token".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// `BASE64URL(SHA256(verifier))`, RFC 7636 §4.2.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()))
}

fn grant(row: Model) -> Grant {
    Grant {
        client_id: row.client_id,
        redirect_uri: row.redirect_uri,
        user_id: row.user_id,
        scope: row.scope,
        nonce: row.nonce,
        code_challenge: row.code_challenge,
        auth_time: row.auth_time,
    }
}

/// Stores `grant` and returns its new code, valid `CODE_SECONDS` from `now`.
pub async fn issue(db: &crate::db::Db, grant: &Grant, now: i64) -> Result<String, DbErr> {
    let code = random_token()?;
    let row = ActiveModel {
        code_hash: Set(hash(&code)),
        client_id: Set(grant.client_id.clone()),
        redirect_uri: Set(grant.redirect_uri.clone()),
        user_id: Set(grant.user_id.clone()),
        scope: Set(grant.scope.clone()),
        nonce: Set(grant.nonce.clone()),
        code_challenge: Set(grant.code_challenge.clone()),
        auth_time: Set(grant.auth_time),
        expires_at: Set(now.saturating_add(CODE_SECONDS)),
        used_at: Set(None),
        reused_at: Set(None),
    };
    Codes::insert(row).exec(db).await?;
    Ok(code)
}

/// Redeems `code` for `client_id` at `redirect_uri` with the PKCE `verifier`. Any presentation
/// of a known, unused code uses it up, even one that fails a check: a code shown by the wrong
/// client or with the wrong verifier is no longer the legitimate client's secret.
pub async fn redeem(
    db: &crate::db::Db,
    code: &str,
    client_id: &str,
    redirect_uri: &str,
    verifier: Option<&str>,
    now: i64,
) -> Result<Grant, RedeemError> {
    let key = hash(code);
    // Check and mark in one statement that answers the row: a single round trip for the usual
    // first use, and racing replicas cannot both get it.
    let claimed = Codes::update_many()
        .col_expr(Column::UsedAt, Expr::value(now))
        .filter(Column::CodeHash.eq(key.clone()))
        .filter(Column::UsedAt.is_null())
        .exec_with_returning(db)
        .await?;
    let Some(row) = claimed.into_iter().next() else {
        // Unknown, or used before: a replay, marked for the first use to see.
        let row = Codes::find_by_id(key.clone())
            .one(db)
            .await?
            .ok_or(RedeemError::Unknown)?;
        Codes::update_many()
            .col_expr(Column::ReusedAt, Expr::value(now))
            .filter(Column::CodeHash.eq(key))
            .exec(db)
            .await?;
        return Err(RedeemError::Reused(Box::new(grant(row))));
    };
    if row.expires_at < now {
        return Err(RedeemError::Expired);
    }
    if row.client_id != client_id {
        return Err(RedeemError::WrongClient);
    }
    if row.redirect_uri != redirect_uri {
        return Err(RedeemError::WrongRedirectUri);
    }
    if let Some(challenge) = &row.code_challenge {
        let verifier = verifier.ok_or(RedeemError::VerifierMissing)?;
        let computed = s256_challenge(verifier);
        verify_slices_are_equal(computed.as_bytes(), challenge.as_bytes())
            .map_err(|_| RedeemError::BadVerifier)?;
    }
    Ok(grant(row))
}

/// Whether `code` was presented again after its first use. The first use asks after starting
/// its refresh-token family: a replay that came between its redemption and that start found no
/// family to revoke, so the first use revokes it (RFC 6749 §4.1.2).
pub async fn was_reused(db: &crate::db::Db, code: &str) -> Result<bool, DbErr> {
    Ok(Codes::find_by_id(hash(code))
        .one(db)
        .await?
        .is_some_and(|row| row.reused_at.is_some()))
}

/// How many codes of `user_id` wait to be redeemed at `now`: the authorization endpoint stops
/// issuing at `MAX_OUTSTANDING_PER_USER`, so a session looping over it fills nothing.
pub async fn outstanding(db: &crate::db::Db, user_id: &str, now: i64) -> Result<u64, DbErr> {
    Codes::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::UsedAt.is_null())
        .filter(Column::ExpiresAt.gte(now))
        .count(db)
        .await
}

/// Codes one user may have waiting at once (a client redeems its code within a second; a
/// browser with many tabs of many clients stays far below).
pub const MAX_OUTSTANDING_PER_USER: u64 = 50;

/// Removes codes that expired more than `KEPT_SECONDS` before `now`; how many.
pub async fn sweep(db: &crate::db::Db, now: i64) -> Result<u64, DbErr> {
    let gone = Codes::delete_many()
        .filter(Column::ExpiresAt.lt(now.saturating_sub(KEPT_SECONDS)))
        .exec(db)
        .await?;
    Ok(gone.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_s256_challenge_is_rfc_7636s_example() {
        // RFC 7636 Appendix B.
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
