//! The login flow: `login/<provider>` stores a one-time state (provider, next, PKCE verifier,
//! nonce, 10 minutes) in the database, so any replica can finish the login, gives the browser a
//! binding cookie, and sends it upstream; `oauth_callback` checks the cookie (RFC 9700 §4.7: a
//! callback URL opened in another browser must not log that browser in), consumes the state
//! once, exchanges the code, and sends the browser to `next` with `jwt=` or `error=`. Only an
//! unknown state gets a JSON 400 (there is no `next` to go back to); nothing here answers 500
//! or creates a user on failure.
//!
//! Each client address (IPv6: its /64) may have `[login] max_pending_per_client` logins
//! pending at once; more get 429 with `Retry-After`, so a flood of starts cannot fill the table.

use std::net::IpAddr;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use super::{LoginError, UpstreamProfile};
use crate::app::App;
use crate::db::login_state::{self, Entity as LoginStates, Model as LoginState};
use crate::http::{ApiError, Params, found};
use crate::redirects::merge_query_param;
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

/// The binding cookie of `state`: one per login, so that two logins started in two tabs of
/// one browser can both finish. Over https it carries the `__Secure-` prefix, so that neither
/// plain http nor a script can set one.
fn cookie_name(app: &App, state: &str) -> String {
    let short: String = state.chars().take(16).collect();
    let prefix = if secure(app) { "__Secure-" } else { "" };
    format!("{prefix}authhost_login_{short}")
}

fn secure(app: &App) -> bool {
    app.config.server.external_address.starts_with("https://")
}

/// What the database keeps of a binding cookie's value.
fn binding_hash(value: &[u8]) -> String {
    hex::encode(digest(&SHA256, value))
}

/// `Set-Cookie` for the binding of `state`: only sent back to this host's routes, never
/// readable by scripts, sent on the upstream's top-level redirect back (Lax), `Secure` when the
/// external address is https. `value` empty (with `max_age` 0) removes it.
fn binding_cookie(app: &App, state: &str, value: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = if secure(app) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={value}; Path={}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}",
        cookie_name(app, state),
        app.config.server.prefix,
    ))
    .ok()
}

/// The value of cookie `name` in the request's `Cookie` headers, read as bytes: another
/// cookie on this host with bytes that are not text must not hide the binding.
fn request_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
        .filter_map(|pair| {
            let at = pair.iter().position(|b| *b == b'=')?;
            Some((pair[..at].trim_ascii(), pair[at + 1..].trim_ascii()))
        })
        .find(|(k, _)| *k == name.as_bytes())
        .map(|(_, v)| v)
}

fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Starts from one client are counted and inserted one at a time on this replica (a lock per
/// stripe of client addresses), so that concurrent starts cannot overshoot the limit.
static START_LOCKS: [tokio::sync::Mutex<()>; 64] =
    [const { tokio::sync::Mutex::const_new(()) }; 64];

fn start_lock(client: &str) -> &'static tokio::sync::Mutex<()> {
    use std::hash::{BuildHasher, BuildHasherDefault};
    let hash =
        BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(client);
    &START_LOCKS[(hash % 64) as usize]
}

/// Refuses a start when all clients together have `max_total` logins pending, or `client`
/// has `max` (429 with the seconds until the oldest of them expires).
async fn check_pending(
    db: &DatabaseConnection,
    client: &str,
    max: u32,
    max_total: u32,
) -> Result<(), ApiError> {
    let all = LoginStates::find()
        .filter(login_state::Column::ExpiresAt.gte(now()))
        .count(db)
        .await?;
    if all >= u64::from(max_total) {
        tracing::warn!(
            pending = all,
            "login.max_pending_total reached: login starts refused until pending ones expire"
        );
        metrics::counter!("authhost_login_starts_refused_total", "reason" => "total").increment(1);
        return Err(ApiError::TooManyRequests {
            retry_after_seconds: 60,
        });
    }
    let pending = LoginStates::find()
        .filter(login_state::Column::Client.eq(client))
        .filter(login_state::Column::ExpiresAt.gte(now()))
        .count(db)
        .await?;
    if pending < u64::from(max) {
        return Ok(());
    }
    let oldest: Option<i64> = LoginStates::find()
        .select_only()
        .column(login_state::Column::ExpiresAt)
        .filter(login_state::Column::Client.eq(client))
        .filter(login_state::Column::ExpiresAt.gte(now()))
        .order_by_asc(login_state::Column::ExpiresAt)
        .into_tuple()
        .one(db)
        .await?;
    metrics::counter!("authhost_login_starts_refused_total", "reason" => "client").increment(1);
    Err(ApiError::TooManyRequests {
        retry_after_seconds: oldest.map_or(STATE_SECONDS, |e| e - now() + 1).max(1),
    })
}

/// `GET P login/<provider>?next`: a 302 to the upstream, with the binding cookie.
pub async fn start(
    app: &App,
    provider: &str,
    client: IpAddr,
    params: &Params,
) -> Result<Response, ApiError> {
    let upstream = app.upstreams.get(provider).ok_or(ApiError::NotFound)?;
    let next = checked_next(app, params.get("next"))?;
    let client = crate::client_addr::bucket(client).to_string();
    LoginStates::delete_many()
        .filter(login_state::Column::ExpiresAt.lt(now()))
        .exec(&app.db)
        .await?;
    let one_at_a_time = start_lock(&client).lock().await;
    check_pending(
        &app.db,
        &client,
        app.config.login.max_pending_per_client,
        app.config.login.max_pending_total,
    )
    .await?;
    let (state, nonce, verifier, binding) = (random(32)?, random(32)?, random(48)?, random(32)?);
    LoginStates::insert(login_state::ActiveModel {
        state: Set(state.clone()),
        provider: Set(provider.to_string()),
        next: Set(next.clone()),
        pkce_verifier: Set(verifier.clone()),
        nonce: Set(nonce.clone()),
        expires_at: Set(now() + STATE_SECONDS),
        browser_hash: Set(binding_hash(binding.as_bytes())),
        client: Set(client),
    })
    .exec_without_returning(&app.db)
    .await?;
    drop(one_at_a_time);
    match upstream.authorize_url(&state, &nonce, &verifier).await {
        Ok(url) => Ok(with_cookie(
            found(&url),
            binding_cookie(app, &state, &binding, STATE_SECONDS),
        )),
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

/// `GET P oauth_callback?state&code` (or `&error`): a 302 to `next`. A browser without the
/// binding cookie of `state` gets `error=` and the state stays, so the browser that started
/// the login can still finish it.
pub async fn callback(
    app: &App,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Response, ApiError> {
    let unknown = || ApiError::BadRequest("unknown or already used login state".into());
    let state = params
        .get("state")
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .ok_or_else(unknown)?;
    let pending = LoginStates::find_by_id(state.to_string())
        .one(&app.db)
        .await?
        .ok_or_else(unknown)?;
    let presented = request_cookie(headers, &cookie_name(app, state)).map(binding_hash);
    let bound = presented.is_some_and(|hash| {
        verify_slices_are_equal(hash.as_bytes(), pending.browser_hash.as_bytes()).is_ok()
    });
    if !bound {
        return Ok(fail(
            &pending.provider,
            &pending.next,
            &LoginError::OtherBrowser,
        ));
    }
    let row = consume(&app.db, state).await?.ok_or_else(unknown)?;
    let (provider, next) = (row.provider.as_str(), row.next.as_str());
    let spent = binding_cookie(app, state, "", 0);
    Ok(with_cookie(
        match finish(app, &row, params).await {
            Ok(token) => found(&merge_query_param(next, "jwt", &token)),
            Err(e) => fail(provider, next, &e),
        },
        spent,
    ))
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
    let (_, token) = app
        .sessions()
        .complete_login(&login)
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
