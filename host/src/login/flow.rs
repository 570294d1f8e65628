//! The login flow: `login/<provider>` stores a one-time state (provider, next, PKCE verifier,
//! nonce, 10 minutes) in the database, so any replica can finish the login, and sends the browser
//! upstream; `oauth_callback` consumes the state once, exchanges the code, and sends the browser
//! to `next` with `jwt=` or `error=`. Only an unknown state gets a JSON 400 (there is no `next`
//! to go back to); nothing here answers 500 or creates a user on failure.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};

use super::{LoginError, UpstreamProfile};
use crate::app::App;
use crate::db::login_state::{self, Entity as LoginStates, Model as LoginState};
use crate::http::{ApiError, Params, found};
use crate::redirects::merge_query_param;
use crate::sessions;
use crate::tokens::now;
use crate::users::{self, LoginProfile};

/// How long a started login may take.
pub const STATE_SECONDS: i64 = 600;

fn random(bytes: usize) -> Result<String, ApiError> {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| ApiError::Internal("no randomness".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// `next` after the allowlist, defaulting to this host's `check`.
pub fn checked_next(app: &App, next: Option<&str>) -> Result<String, ApiError> {
    match next.filter(|n| !n.trim().is_empty()) {
        Some(n) => app
            .redirects
            .check(n)
            .map_err(|e| ApiError::BadRequest(e.to_string())),
        None => Ok(format!("{}check", app.config.server.prefix)),
    }
}

fn fail(provider: &str, next: &str, error: &LoginError) -> Response {
    tracing::warn!(provider, code = error.code(), error = %error, "login failed");
    metrics::counter!("authhost_login_failures_total", "provider" => provider.to_string(), "error" => error.code())
        .increment(1);
    found(&merge_query_param(next, "error", error.code()))
}

/// `GET P login/<provider>?next`: a 302 to the upstream.
pub async fn start(app: &App, provider: &str, params: &Params) -> Result<Response, ApiError> {
    let upstream = app.upstreams.get(provider).ok_or(ApiError::NotFound)?;
    let next = checked_next(app, params.get("next"))?;
    let (state, nonce, verifier) = (random(32)?, random(32)?, random(48)?);
    LoginStates::delete_many()
        .filter(login_state::Column::ExpiresAt.lt(now()))
        .exec(&app.db)
        .await?;
    LoginStates::insert(login_state::ActiveModel {
        state: Set(state.clone()),
        provider: Set(provider.to_string()),
        next: Set(next.clone()),
        pkce_verifier: Set(verifier.clone()),
        nonce: Set(nonce.clone()),
        expires_at: Set(now() + STATE_SECONDS),
    })
    .exec_without_returning(&app.db)
    .await?;
    match upstream.authorize_url(&state, &nonce, &verifier).await {
        Ok(url) => Ok(found(&url)),
        Err(e) => {
            consume(&app.db, &state).await?;
            Ok(fail(provider, &next, &e))
        }
    }
}

/// Takes the state out of the database: `Some` for exactly one caller.
async fn consume(db: &DatabaseConnection, state: &str) -> Result<Option<LoginState>, DbErr> {
    if state.is_empty() || state.len() > 128 {
        return Ok(None);
    }
    let Some(row) = LoginStates::find_by_id(state.to_string()).one(db).await? else {
        return Ok(None);
    };
    let deleted = LoginStates::delete_by_id(state.to_string())
        .exec(db)
        .await?;
    Ok((deleted.rows_affected == 1).then_some(row))
}

/// `GET P oauth_callback?state&code` (or `&error`): a 302 to `next`.
pub async fn callback(app: &App, params: &Params) -> Result<Response, ApiError> {
    let unknown = || ApiError::BadRequest("unknown or already used login state".into());
    let state = params.get("state").ok_or_else(unknown)?;
    let row = consume(&app.db, state).await?.ok_or_else(unknown)?;
    let (provider, next) = (row.provider.as_str(), row.next.as_str());
    match finish(app, &row, params).await {
        Ok(token) => Ok(found(&merge_query_param(next, "jwt", &token))),
        Err(e) => Ok(fail(provider, next, &e)),
    }
}

async fn finish(app: &App, row: &LoginState, params: &Params) -> Result<String, LoginError> {
    if row.expires_at < now() {
        return Err(LoginError::Expired);
    }
    let upstream = app.upstreams.get(&row.provider).ok_or_else(|| {
        LoginError::Server(format!("provider {} is no longer configured", row.provider))
    })?;
    if let Some(error) = params.non_empty("error") {
        return Err(LoginError::Denied(error.chars().take(100).collect()));
    }
    // RFC 9207: a provider that names itself must be the one this login went to.
    if let (Some(iss), Some(expected)) = (params.get("iss"), upstream.issuer())
        && iss.trim_end_matches('/') != expected.trim_end_matches('/')
    {
        return Err(LoginError::Upstream(format!(
            "callback from issuer {iss}, expected {expected}"
        )));
    }
    let code = params
        .non_empty("code")
        .ok_or_else(|| LoginError::InvalidRequest("no code".into()))?;
    let profile = upstream
        .exchange(code, &row.pkce_verifier, &row.nonce)
        .await?;
    let email = choose_email(app, &profile).await?;
    let login = LoginProfile {
        email,
        name: profile.name.clone(),
        avatar_url: profile.avatar_url.clone(),
        provider_id: format!("{}:{}", row.provider, profile.subject),
    };
    let (_, token) = sessions::complete_login(app, &login)
        .await
        .map_err(|e| LoginError::Server(e.to_string()))?;
    Ok(token)
}

/// Among the verified e-mails, one that already has an account wins (a user who changed their
/// primary address keeps their account), else the first (primary) one.
async fn choose_email(app: &App, profile: &UpstreamProfile) -> Result<String, LoginError> {
    for email in &profile.verified_emails {
        let existing = users::get(&app.db, &users::user_id_for_email(email))
            .await
            .map_err(|e| LoginError::Server(e.to_string()))?;
        if existing.is_some() {
            return Ok(email.clone());
        }
    }
    profile
        .verified_emails
        .first()
        .cloned()
        .ok_or(LoginError::UnverifiedEmail)
}
