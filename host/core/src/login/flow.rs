//! The login flow as a state machine without HTTP: `start` stores a one-time state (provider,
//! next, PKCE verifier, nonce, 10 minutes) in the database, so any replica can finish the login,
//! and answers where to send the browser and which binding cookie to give it; `callback` checks
//! that cookie (RFC 9700 §4.7: a callback URL opened in another browser must not log that
//! browser in), consumes the state once, exchanges the code, and answers where to send the
//! browser: `next` with `jwt=` or `error=`. Only an unknown state is an error without a place
//! to go back to; nothing here creates a user on failure. The server turns `Redirect`s and
//! `FlowError`s into responses.
//!
//! Each client address (IPv6: its /64) may have `[login] max_pending_per_client` logins
//! pending at once, and all clients together `max_pending_total`; more are refused with the
//! seconds to wait, so a flood of starts cannot fill the table.

use std::net::IpAddr;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use super::{LoginError, UpstreamProfile, Upstreams};
use crate::config::LoginConfig;
use crate::db::login_state::{self, Entity as LoginStates, Model as LoginState};
use crate::redirects::{RedirectPolicy, merge_query_param};
use crate::sessions::{SessionError, Sessions};
use crate::tokens::now;
use crate::users::{self, LoginProfile};

/// How long a started login may take.
pub const STATE_SECONDS: i64 = 600;

/// Why the flow cannot send the browser anywhere.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("no such login provider")]
    UnknownProvider,
    #[error("{0}")]
    BadNext(String),
    #[error("unknown or already used login state")]
    UnknownState,
    #[error("too many logins pending; retry in {retry_after_seconds} s")]
    TooManyPending { retry_after_seconds: i64 },
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("no randomness available")]
    NoRandomness,
}

/// A cookie binding a login to the browser that started it; `value` empty with `max_age` 0
/// removes it. The server renders it (HttpOnly, SameSite=Lax, `Path` = the prefix, `Secure`
/// over https).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub name: String,
    pub value: String,
    pub max_age: i64,
}

/// Where to send the browser, and the binding cookie to set or remove on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub location: String,
    pub binding: Option<Binding>,
}

/// What the upstream sent back to `oauth_callback`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Callback<'a> {
    pub state: Option<&'a str>,
    pub code: Option<&'a str>,
    pub error: Option<&'a str>,
    pub iss: Option<&'a str>,
}

/// The services the flow uses.
pub struct Flow<'a> {
    pub db: &'a DatabaseConnection,
    pub upstreams: &'a Upstreams,
    pub redirects: &'a RedirectPolicy,
    /// Where the routes live (`/auth/`): the default `next` is its `check`.
    pub prefix: &'a str,
    /// The external address is https: binding cookies get the `__Secure-` prefix.
    pub secure: bool,
    pub limits: &'a LoginConfig,
    pub sessions: Sessions<'a>,
}

fn random(bytes: usize) -> Result<String, FlowError> {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| FlowError::NoRandomness)?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// What the database keeps of a binding cookie's value.
fn binding_hash(value: &[u8]) -> String {
    hex::encode(digest(&SHA256, value))
}

fn fail(provider: &str, next: &str, error: &LoginError, binding: Option<Binding>) -> Redirect {
    tracing::warn!(provider, code = error.code(), error = %error, "login failed");
    metrics::counter!("authhost_login_failures_total", "provider" => provider.to_string(), "error" => error.code())
        .increment(1);
    Redirect {
        location: merge_query_param(next, "error", error.code()),
        binding,
    }
}

/// Starts from one client are counted and inserted one at a time on this replica (a lock per
/// stripe of client addresses), so that concurrent starts cannot overshoot the limit.
static START_LOCKS: [tokio::sync::Mutex<()>; 64] =
    [const { tokio::sync::Mutex::const_new(()) }; 64];

fn start_lock(client: &str) -> &'static tokio::sync::Mutex<()> {
    use std::hash::{BuildHasher, BuildHasherDefault};
    let hash =
        BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(client);
    #[allow(clippy::indexing_slicing)] // the remainder of `% 64` is below the array's length
    &START_LOCKS[(hash % 64) as usize]
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

impl Flow<'_> {
    /// `next` after the allowlist, defaulting to this host's `check`.
    pub fn checked_next(&self, next: Option<&str>) -> Result<String, FlowError> {
        match next.filter(|n| !n.trim().is_empty()) {
            Some(n) => self
                .redirects
                .check(n)
                .map_err(|e| FlowError::BadNext(e.to_string())),
            None => Ok(format!("{}check", self.prefix)),
        }
    }

    /// The binding cookie's name for `state`: one per login, so that two logins started in two
    /// tabs of one browser can both finish. Over https it carries the `__Secure-` prefix, so
    /// that neither plain http nor a script can set one.
    pub fn binding_name(&self, state: &str) -> String {
        let short: String = state.chars().take(16).collect();
        let prefix = if self.secure { "__Secure-" } else { "" };
        format!("{prefix}authhost_login_{short}")
    }

    /// Refuses a start when all clients together have `max_pending_total` logins pending, or
    /// `client` has `max_pending_per_client` (with the seconds until the oldest expires).
    async fn check_pending(&self, client: &str) -> Result<(), FlowError> {
        let all = LoginStates::find()
            .filter(login_state::Column::ExpiresAt.gte(now()))
            .count(self.db)
            .await?;
        if all >= u64::from(self.limits.max_pending_total) {
            tracing::warn!(
                pending = all,
                "login.max_pending_total reached: login starts refused until pending ones expire"
            );
            metrics::counter!("authhost_login_starts_refused_total", "reason" => "total")
                .increment(1);
            return Err(FlowError::TooManyPending {
                retry_after_seconds: 60,
            });
        }
        let pending = LoginStates::find()
            .filter(login_state::Column::Client.eq(client))
            .filter(login_state::Column::ExpiresAt.gte(now()))
            .count(self.db)
            .await?;
        if pending < u64::from(self.limits.max_pending_per_client) {
            return Ok(());
        }
        let oldest: Option<i64> = LoginStates::find()
            .select_only()
            .column(login_state::Column::ExpiresAt)
            .filter(login_state::Column::Client.eq(client))
            .filter(login_state::Column::ExpiresAt.gte(now()))
            .order_by_asc(login_state::Column::ExpiresAt)
            .into_tuple()
            .one(self.db)
            .await?;
        metrics::counter!("authhost_login_starts_refused_total", "reason" => "client").increment(1);
        Err(FlowError::TooManyPending {
            retry_after_seconds: oldest.map_or(STATE_SECONDS, |e| e - now() + 1).max(1),
        })
    }

    /// `login/<provider>?next`: to the upstream, with the binding cookie.
    pub async fn start(
        &self,
        provider: &str,
        client: IpAddr,
        next: Option<&str>,
    ) -> Result<Redirect, FlowError> {
        let upstream = self
            .upstreams
            .get(provider)
            .ok_or(FlowError::UnknownProvider)?;
        let next = self.checked_next(next)?;
        let client = crate::client_addr::bucket(client).to_string();
        LoginStates::delete_many()
            .filter(login_state::Column::ExpiresAt.lt(now()))
            .exec(self.db)
            .await?;
        let one_at_a_time = start_lock(&client).lock().await;
        self.check_pending(&client).await?;
        let (state, nonce, verifier, binding) =
            (random(32)?, random(32)?, random(48)?, random(32)?);
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
        .exec_without_returning(self.db)
        .await?;
        drop(one_at_a_time);
        match upstream.authorize_url(&state, &nonce, &verifier).await {
            Ok(url) => Ok(Redirect {
                location: url,
                binding: Some(Binding {
                    name: self.binding_name(&state),
                    value: binding,
                    max_age: STATE_SECONDS,
                }),
            }),
            Err(e) => {
                consume(self.db, &state).await?;
                Ok(fail(provider, &next, &e, None))
            }
        }
    }

    /// `oauth_callback?state&code` (or `&error`): to `next`. `presented` is the value of the
    /// request's cookie of a given name. A browser without the binding cookie of `state` gets
    /// `error=` and the state stays, so the browser that started the login can still finish.
    pub async fn callback(
        &self,
        callback: Callback<'_>,
        presented: impl FnOnce(&str) -> Option<Vec<u8>>,
    ) -> Result<Redirect, FlowError> {
        let state = callback
            .state
            .filter(|s| !s.is_empty() && s.len() <= 128)
            .ok_or(FlowError::UnknownState)?;
        let pending = LoginStates::find_by_id(state.to_string())
            .one(self.db)
            .await?
            .ok_or(FlowError::UnknownState)?;
        let name = self.binding_name(state);
        let bound = presented(&name)
            .map(|v| binding_hash(&v))
            .is_some_and(|hash| {
                verify_slices_are_equal(hash.as_bytes(), pending.browser_hash.as_bytes()).is_ok()
            });
        if !bound {
            return Ok(fail(
                &pending.provider,
                &pending.next,
                &LoginError::OtherBrowser,
                None,
            ));
        }
        let row = consume(self.db, state)
            .await?
            .ok_or(FlowError::UnknownState)?;
        let spent = Binding {
            name,
            value: String::new(),
            max_age: 0,
        };
        let (provider, next) = (row.provider.as_str(), row.next.as_str());
        Ok(match self.finish(&row, callback).await {
            Ok(token) => Redirect {
                location: merge_query_param(next, "jwt", &token),
                binding: Some(spent),
            },
            Err(e) => fail(provider, next, &e, Some(spent)),
        })
    }

    async fn finish(&self, row: &LoginState, callback: Callback<'_>) -> Result<String, LoginError> {
        if row.expires_at < now() {
            return Err(LoginError::Expired);
        }
        let upstream = self.upstreams.get(&row.provider).ok_or_else(|| {
            LoginError::Server(format!("provider {} is no longer configured", row.provider))
        })?;
        if let Some(error) = callback.error.filter(|e| !e.trim().is_empty()) {
            return Err(LoginError::Denied(error.chars().take(100).collect()));
        }
        // RFC 9207: a provider that names itself must be the one this login went to.
        if let (Some(iss), Some(expected)) = (callback.iss, upstream.issuer())
            && iss.trim_end_matches('/') != expected.trim_end_matches('/')
        {
            return Err(LoginError::Upstream(format!(
                "callback from issuer {iss}, expected {expected}"
            )));
        }
        let code = callback
            .code
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| LoginError::InvalidRequest("no code".into()))?;
        let profile = upstream
            .exchange(code, &row.pkce_verifier, &row.nonce)
            .await?;
        let email = self.choose_email(&profile).await?;
        let login = LoginProfile {
            email,
            name: profile.name.clone(),
            avatar_url: profile.avatar_url.clone(),
            provider_id: format!("{}:{}", row.provider, profile.subject),
        };
        let (_, token) = self
            .sessions
            .complete_login(&login)
            .await
            .map_err(|e| match e {
                SessionError::Disabled => LoginError::AccountDisabled,
                e => LoginError::Server(e.to_string()),
            })?;
        Ok(token)
    }

    /// Among the verified e-mails, one that already has an account wins (a user who changed
    /// their primary address keeps their account), else the first (primary) one.
    async fn choose_email(&self, profile: &UpstreamProfile) -> Result<String, LoginError> {
        for email in &profile.verified_emails {
            let existing = users::get(self.db, &users::user_id_for_email(email))
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
}
