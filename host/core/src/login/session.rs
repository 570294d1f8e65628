//! The browser's session at authhost: set by every login that succeeds (dev form, GitHub,
//! Google, any OpenID Connect upstream), so that the next OpenID client the user visits logs in
//! without a second upstream round trip.
//!
//! Like a login in progress, it is sealed into the cookie (`login::sealed`, purpose `Session`):
//! no server-side row, any replica holding the keys reads it. It is ended the way user tokens
//! are: a logout (any of them), `users disable`, `users logout` or `users delete` moves the
//! user's `tokens_valid_after` past the session's `auth_time`, so the cookie stops counting on
//! every replica at once, whatever the browser keeps.

use serde::{Deserialize, Serialize};

use super::sealed::{OpenError, Purpose, SealError, Sealer};
use crate::db::user::Model as User;
use crate::stats::Refusal;
use crate::users;

/// How the session cookie is scoped on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieScope {
    /// Plain http (development): no prefix, the provider's pages only.
    Plain,
    /// https, authhost owning the whole host: `__Host-` with `Path=/`, so that no plain-http
    /// page and no sibling subdomain can plant a session.
    WholeHost,
    /// https under a path of a shared host (`https://example.org/sso`): `__Secure-` with the
    /// provider's path, so that the host's other applications never receive the session (which
    /// would let them take codes for any client).
    UnderPath,
}

/// The cookie's name for `scope`.
pub fn cookie_name(scope: CookieScope) -> &'static str {
    match scope {
        CookieScope::Plain => "authhost_session",
        CookieScope::WholeHost => "__Host-authhost_session",
        CookieScope::UnderPath => "__Secure-authhost_session",
    }
}

/// Who logged in at authhost in this browser, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserSession {
    #[serde(rename = "u")]
    pub user_id: String,
    /// When the login happened (the ID token's `auth_time`), after any earlier revocation.
    #[serde(rename = "a")]
    pub auth_time: i64,
    /// Unix seconds after which the cookie no longer counts.
    #[serde(rename = "e")]
    pub expires_at: i64,
}

impl BrowserSession {
    /// The session of a login of `user` at `now`, lasting `lifetime` seconds (the user token's).
    /// Its `auth_time` is after the user's last revocation, as a user token's `iat` is, so a
    /// login in the second of a logout still counts.
    pub fn begin(user: &User, now: i64, lifetime: i64) -> BrowserSession {
        let auth_time = now.max(
            user.tokens_valid_after
                .map_or(i64::MIN, |t| t.saturating_add(1)),
        );
        BrowserSession {
            user_id: user.id.clone(),
            auth_time,
            expires_at: auth_time.saturating_add(lifetime),
        }
    }

    /// The cookie value.
    pub fn seal(&self, sealer: &Sealer) -> Result<String, SealError> {
        sealer.seal_for(Purpose::Session, self)
    }

    /// The session in a presented cookie value, if this host sealed it and it has not expired.
    pub fn open(sealer: &Sealer, value: &[u8], now: i64) -> Result<BrowserSession, OpenError> {
        let session: BrowserSession = sealer.open_for(Purpose::Session, value)?;
        if session.expires_at < now {
            return Err(OpenError::Unreadable);
        }
        Ok(session)
    }

    /// Why the session no longer counts for `user` (its row as read now), if it does not.
    pub fn refusal(&self, user: &User) -> Option<Refusal> {
        if user.id != self.user_id {
            return Some(Refusal::UnknownUser);
        }
        users::token_refusal(user, Some(self.auth_time))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(valid_after: Option<i64>) -> User {
        User {
            id: "u1".into(),
            provider_id: None,
            username: None,
            name: None,
            email: None,
            avatar_url: None,
            join_date: None,
            last_login: None,
            tokens_valid_after: valid_after,
            disabled_at: None,
        }
    }

    #[test]
    fn a_session_ends_with_the_next_revocation_and_not_before() {
        let session = BrowserSession::begin(&user(Some(1_000)), 1_000, 60);
        assert_eq!(
            session.auth_time, 1_001,
            "after the revocation of its second"
        );
        assert_eq!(session.expires_at, 1_061);
        assert_eq!(session.refusal(&user(Some(1_000))), None);
        assert_eq!(
            session.refusal(&user(Some(1_001))),
            Some(Refusal::Revoked),
            "a logout after the login ends it"
        );
        let mut disabled = user(None);
        disabled.disabled_at = Some(5);
        assert_eq!(session.refusal(&disabled), Some(Refusal::Disabled));
        let mut other = user(None);
        other.id = "u2".into();
        assert_eq!(session.refusal(&other), Some(Refusal::UnknownUser));
    }
}
