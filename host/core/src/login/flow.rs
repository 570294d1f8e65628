//! The login flow as a state machine without HTTP. `start` seals what the login needs
//! (provider, next, PKCE verifier, nonce, 10 minutes) into the binding cookie it answers with
//! (`sealed`), so starting a login writes nothing anywhere and any replica holding the keys can
//! finish it. `callback` opens the cookie named after the callback's `state` (RFC 9700 §4.7: a
//! callback URL opened in another browser finds no cookie and logs nobody in), checks that the
//! sealed state is the callback's, clears the cookie, exchanges the code, and answers where to
//! send the browser: `next` with `jwt=` or `error=`. Without a cookie that opens there is no
//! `next` to go back to: that is a `FlowError`. Nothing here creates a user on failure. The
//! server turns `Redirect`s and `FlowError`s into responses.
//!
//! No server-side single-use record is kept: an upstream's code works once, PKCE binds it to
//! the verifier that only this cookie holds, and the cookie is cleared when used; a replayed
//! cookie and callback reach the upstream with a spent code and end in `upstream_error`.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::sealed::{OpenError, PendingLogin, Sealer};
use super::session::BrowserSession;
use super::{LoginError, UpstreamProfile, Upstreams};
use crate::db::user::Model as User;
use crate::redirects::{RedirectPolicy, merge_query_param};
use crate::sessions::{SessionError, Sessions};
use crate::tokens::now;
use crate::users::{self, LoginProfile};

/// How long a started login may take.
pub const STATE_SECONDS: i64 = 600;

/// The longest `next` a login carries: it travels in the cookie (a 1,024-byte `next` makes a
/// cookie of about 1.8 KiB).
pub const MAX_NEXT_LEN: usize = 1024;

/// The longest sealed login cookie value a start hands out. Browsers keep cookies up to 4 KiB,
/// but every login in progress adds its cookie to the callback's `Cookie` line, which proxies
/// limit (nginx: 8 KiB per header line by default): small cookies let several logins at once
/// fit. A `next` whose characters JSON must escape can pass `MAX_NEXT_LEN` and still not fit.
pub const MAX_COOKIE_VALUE_LEN: usize = 2048;

/// Why the flow cannot send the browser anywhere.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("no such login provider")]
    UnknownProvider,
    #[error("{0}")]
    BadNext(String),
    /// The callback has no state, or this browser holds no login for it that opens: already
    /// finished, started in another browser, expired long ago (the browser dropped the cookie),
    /// tampered with, or sealed before an upgrade or with a key this host no longer holds.
    #[error(
        "no login in progress for this callback in this browser (already finished, expired, or started elsewhere): start the login again"
    )]
    UnknownState,
    #[error("no randomness available")]
    NoRandomness,
    #[error("cannot seal the login state: {0}")]
    Seal(String),
}

/// A cookie binding a login to the browser that started it, and carrying it sealed; `value`
/// empty with `max_age` 0 removes it. The server renders it (HttpOnly, SameSite=Lax, `Path` =
/// the callback, `Secure` over https).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub name: String,
    pub value: String,
    pub max_age: i64,
}

/// Where to send the browser, and the cookies to set on the way: the binding cookie to set or
/// remove, and after a login the browser session (`super::session`, sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub location: String,
    pub binding: Option<Binding>,
    pub session: Option<String>,
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
    pub db: &'a crate::db::Db,
    pub upstreams: &'a Upstreams,
    pub redirects: &'a RedirectPolicy,
    /// Where the routes live (`/auth/`): the default `next` is its `check`.
    pub prefix: &'a str,
    /// The external address is https: binding cookies get the `__Secure-` prefix.
    pub secure: bool,
    /// Seals logins in progress into their cookies and opens them again.
    pub sealer: &'a Sealer,
    pub sessions: Sessions<'a>,
    /// The OpenID Provider's authorization endpoint with its `?`: a login whose `next` starts
    /// with it resumes an authorization request, which reads the browser session, so no user
    /// token is put in that URL.
    pub authorize_url: &'a str,
}

fn random(bytes: usize) -> Result<String, FlowError> {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| FlowError::NoRandomness)?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

fn fail(provider: &str, next: &str, error: &LoginError, binding: Option<Binding>) -> Redirect {
    tracing::warn!(provider, code = error.code(), error = %error, "login failed");
    metrics::counter!("authhost_login_failures_total", "provider" => provider.to_string(), "error" => error.code())
        .increment(1);
    Redirect {
        location: merge_query_param(next, "error", error.code()),
        binding,
        session: None,
    }
}

/// Why a callback was refused before any upstream call, counted by reason.
fn refused(reason: &'static str) -> FlowError {
    tracing::debug!(
        reason,
        "login callback refused: no login in progress that opens"
    );
    metrics::counter!("authhost_login_callbacks_refused_total", "reason" => reason).increment(1);
    FlowError::UnknownState
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

    /// `login/<provider>?next`: to the upstream, with the login sealed in the binding cookie.
    pub async fn start(&self, provider: &str, next: Option<&str>) -> Result<Redirect, FlowError> {
        let upstream = self
            .upstreams
            .get(provider)
            .ok_or(FlowError::UnknownProvider)?;
        let next = self.checked_next(next)?;
        let too_long = || {
            FlowError::BadNext(format!(
                "next must be at most {MAX_NEXT_LEN} bytes (fewer with quotes or backslashes) to start a login"
            ))
        };
        if next.len() > MAX_NEXT_LEN {
            return Err(too_long());
        }
        let login = PendingLogin {
            state: random(32)?,
            provider: provider.to_string(),
            next,
            pkce_verifier: random(32)?,
            nonce: random(32)?,
            expires_at: now() + STATE_SECONDS,
        };
        let value = self
            .sealer
            .seal(&login)
            .map_err(|e| FlowError::Seal(e.to_string()))?;
        if value.len() > MAX_COOKIE_VALUE_LEN {
            return Err(too_long());
        }
        match upstream
            .authorize_url(&login.state, &login.nonce, &login.pkce_verifier)
            .await
        {
            Ok(url) => Ok(Redirect {
                location: url,
                binding: Some(Binding {
                    name: self.binding_name(&login.state),
                    value,
                    max_age: STATE_SECONDS,
                }),
                session: None,
            }),
            Err(e) => Ok(fail(provider, &login.next, &e, None)),
        }
    }

    /// `oauth_callback?state&code` (or `&error`): to `next`. `presented` is the value of the
    /// request's cookie of a given name. The cookie is cleared whatever the outcome once it
    /// opens: a login is tried once.
    pub async fn callback(
        &self,
        callback: Callback<'_>,
        presented: impl FnOnce(&str) -> Option<Vec<u8>>,
    ) -> Result<Redirect, FlowError> {
        let state = callback
            .state
            .filter(|s| !s.is_empty() && s.len() <= 128)
            .ok_or_else(|| refused("no_state"))?;
        let name = self.binding_name(state);
        let value = presented(&name).ok_or_else(|| refused("no_cookie"))?;
        let login = self.sealer.open(&value).map_err(|e: OpenError| {
            if e == OpenError::UnknownKey {
                tracing::info!(
                    "a login cookie sealed with a key this host does not hold (removed after a \
                     rotation?) was refused; its login must start again"
                );
            }
            refused(e.reason())
        })?;
        // The cookie of another login put under this name: not this callback's login.
        if verify_slices_are_equal(login.state.as_bytes(), state.as_bytes()).is_err() {
            return Err(refused("other_login"));
        }
        // Checked again: the allowlist may have been narrowed since the start (a restart, or a
        // replica with a newer configuration).
        self.checked_next(Some(&login.next))?;
        let spent = Binding {
            name,
            value: String::new(),
            max_age: 0,
        };
        Ok(match self.finish(&login, callback).await {
            Ok((user, token)) => Redirect {
                binding: Some(spent),
                ..self.logged_in(&login.next, &user, &token)
            },
            Err(e) => fail(&login.provider, &login.next, &e, Some(spent)),
        })
    }

    /// Where a successful login of `user` (any upstream, the dev form) sends the browser:
    /// `next` with the user token, or without it when `next` resumes an authorization request;
    /// with the browser session either way.
    pub fn logged_in(&self, next: &str, user: &User, token: &str) -> Redirect {
        let lifetime = self.sessions.tokens.user_token_seconds();
        let session = match BrowserSession::begin(user, now(), lifetime).seal(self.sealer) {
            Ok(value) => Some(value),
            Err(e) => {
                // The login itself succeeded; only the next client will ask again.
                tracing::warn!(error = %e, "cannot seal the browser session");
                None
            }
        };
        let location = if self.resumes_authorization(next) {
            next.to_string()
        } else {
            merge_query_param(next, "jwt", token)
        };
        Redirect {
            location,
            binding: None,
            session,
        }
    }

    /// Whether `next` (absolute, or a path on this host) is the authorization endpoint.
    pub fn resumes_authorization(&self, next: &str) -> bool {
        if self.authorize_url.is_empty() {
            return false;
        }
        if next.starts_with(self.authorize_url) {
            return true;
        }
        // A path on this host (the allowlist resolves those against the external address).
        next.starts_with('/')
            && !next.starts_with("//")
            && url::Url::parse(self.authorize_url)
                .and_then(|own| own.join(next))
                .is_ok_and(|joined| joined.as_str().starts_with(self.authorize_url))
    }

    async fn finish(
        &self,
        row: &PendingLogin,
        callback: Callback<'_>,
    ) -> Result<(User, String), LoginError> {
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
                "callback from issuer {:?}, expected {expected}",
                iss.chars().take(200).collect::<String>()
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
        self.sessions
            .complete_login(&login)
            .await
            .map_err(|e| match e {
                SessionError::Disabled => LoginError::AccountDisabled,
                SessionError::Database(e) => LoginError::from_db(&e),
                e => LoginError::Server(e.to_string()),
            })
    }

    /// Among the verified e-mails, one that already has an account wins (a user who changed
    /// their primary address keeps their account), else the first (primary) one.
    async fn choose_email(&self, profile: &UpstreamProfile) -> Result<String, LoginError> {
        for email in &profile.verified_emails {
            let existing = users::get(self.db, &users::user_id_for_email(email))
                .await
                .map_err(|e| LoginError::from_db(&e))?;
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
