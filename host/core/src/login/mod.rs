//! Logging in through an upstream: Google and any OpenID Connect provider (`oidc`), GitHub
//! (OAuth2 plus its REST API). The flow itself (start, callback, redirects) is in `flow`, the
//! login in progress sealed into the browser's cookie in `sealed`, the browser's session at
//! authhost (set by every login) in `session`; each upstream only turns a code into a verified
//! profile.

pub mod flow;
mod github;
mod oidc;
pub mod sealed;
pub mod session;

use std::collections::BTreeMap;
use std::time::Duration;

use openidconnect::reqwest;

use crate::config::{Config, ProviderKind};

/// How long one call to an upstream may take, unless `[providers.X] timeout_ms` says.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// What an upstream vouches for after a successful exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamProfile {
    /// The upstream's id of the person (`sub`, GitHub's numeric id).
    pub subject: String,
    /// Verified e-mails only, the preferred (primary) one first.
    pub verified_emails: Vec<String>,
    pub name: Option<String>,
    pub avatar_url: Option<String>,
}

/// Why a login failed; `code()` is what lands in `next?error=`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("the user or the upstream refused: {0}")]
    Denied(String),
    #[error("login state expired")]
    Expired,
    #[error("invalid callback: {0}")]
    InvalidRequest(String),
    #[error("upstream error: {0}")]
    Upstream(String),
    #[error("upstream did not answer in time")]
    Timeout,
    #[error("no verified e-mail")]
    UnverifiedEmail,
    #[error("the account is disabled")]
    AccountDisabled,
    /// The database could not be reached or was busy: nothing was written, the user may
    /// simply retry.
    #[error("the database is unreachable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Server(String),
}

impl LoginError {
    /// A database error: `Unavailable` when it may pass by itself (`is_temporary`), else
    /// `Server`.
    pub fn from_db(e: &sea_orm::DbErr) -> LoginError {
        if crate::db::breaker::is_temporary(e) {
            LoginError::Unavailable(e.to_string())
        } else {
            LoginError::Server(e.to_string())
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            LoginError::Denied(_) => "access_denied",
            LoginError::Expired => "expired_state",
            LoginError::InvalidRequest(_) => "invalid_request",
            LoginError::Upstream(_) => "upstream_error",
            LoginError::Timeout => "upstream_timeout",
            LoginError::UnverifiedEmail => "unverified_email",
            LoginError::AccountDisabled => "account_disabled",
            LoginError::Unavailable(_) => "temporarily_unavailable",
            LoginError::Server(_) => "server_error",
        }
    }
}

enum Kind {
    Oidc(Box<oidc::OidcUpstream>),
    GitHub(Box<github::GitHubUpstream>),
}

/// One configured upstream and how long a call to it may take.
pub struct Upstream {
    kind: Kind,
    timeout: Duration,
}

impl Upstream {
    /// The URL to send the browser to.
    pub async fn authorize_url(
        &self,
        state: &str,
        nonce: &str,
        pkce_verifier: &str,
    ) -> Result<String, LoginError> {
        match &self.kind {
            Kind::Oidc(u) => u.authorize_url(state, nonce, pkce_verifier).await,
            Kind::GitHub(u) => Ok(u.authorize_url(state, pkce_verifier)),
        }
    }

    /// Exchanges the code and returns the verified profile.
    pub async fn exchange(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<UpstreamProfile, LoginError> {
        let work = async {
            match &self.kind {
                Kind::Oidc(u) => u.exchange(code, pkce_verifier, nonce).await,
                Kind::GitHub(u) => u.exchange(code, pkce_verifier).await,
            }
        };
        // Each request has the timeout; the whole exchange (token, profile, e-mails) gets three.
        tokio::time::timeout(self.timeout * 3, work)
            .await
            .unwrap_or(Err(LoginError::Timeout))
    }

    /// Whether the upstream can be used now, for `authhost check`: an OpenID Connect issuer's
    /// discovery document is fetched (within the timeout); GitHub has none to fetch.
    pub async fn reachable(&self) -> Result<String, LoginError> {
        match &self.kind {
            Kind::Oidc(u) => tokio::time::timeout(self.timeout, u.discover())
                .await
                .unwrap_or(Err(LoginError::Timeout))
                .map(|()| format!("discovery document of {} fetched", u.issuer())),
            Kind::GitHub(_) => Ok("GitHub (fixed endpoints, nothing to fetch)".into()),
        }
    }

    /// The issuer an RFC 9207 `iss` callback parameter must equal, if the upstream has one.
    pub fn issuer(&self) -> Option<&str> {
        match &self.kind {
            Kind::Oidc(u) => Some(u.issuer()),
            Kind::GitHub(_) => None,
        }
    }
}

/// The enabled upstreams by name (dev login is handled by its own routes).
pub struct Upstreams {
    by_name: BTreeMap<String, Upstream>,
}

/// An HTTP client for upstreams: no redirects (SSRF), bounded time.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .user_agent(concat!("authhost/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

impl Upstreams {
    /// Builds every enabled provider of `[providers.*]`, reporting each problem by key.
    pub fn from_config(config: &Config) -> Result<Upstreams, Vec<String>> {
        let redirect = callback_url(config);
        let mut by_name = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, p) in &config.providers {
            let kind = p.kind_for(name);
            let enabled = p.enabled != Some(false)
                && !p.client_id.trim().is_empty()
                && !p.client_secret.is_empty();
            if kind == ProviderKind::Dev || !enabled {
                continue;
            }
            let timeout = p.timeout_ms.map_or(UPSTREAM_TIMEOUT, Duration::from_millis);
            let built = http_client(timeout).and_then(|http| match kind {
                ProviderKind::GitHub => github::GitHubUpstream::new(name, p, &redirect, http)
                    .map(|u| Kind::GitHub(Box::new(u))),
                _ => oidc::OidcUpstream::new(name, kind, p, &redirect, http)
                    .map(|u| Kind::Oidc(Box::new(u))),
            });
            match built {
                Ok(kind) => {
                    by_name.insert(name.clone(), Upstream { kind, timeout });
                }
                Err(e) => errors.push(format!("providers.{name}: {e}")),
            }
        }
        if errors.is_empty() {
            Ok(Upstreams { by_name })
        } else {
            Err(errors)
        }
    }

    pub fn get(&self, name: &str) -> Option<&Upstream> {
        self.by_name.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

/// The original's callback URL, the same for every provider: `EXTERNAL_ADDRESS` + prefix +
/// `oauth_callback`, so apps registered for the original keep working.
pub fn callback_url(config: &Config) -> String {
    format!(
        "{}{}oauth_callback",
        config.server.external_address, config.server.prefix
    )
}
