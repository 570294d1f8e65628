//! What happens when someone logs in, is given a token by an operator, or logs out: the user
//! record and its hook events in one transaction, the user cache, the first delivery of the
//! hooks in order, the token. The server's routes and the CLI call
//! these through `Sessions`, which borrows just the services a session needs.

use std::sync::Arc;

use sea_orm::{DatabaseTransaction, DbErr};

use crate::db::user::Model as User;
use crate::hooks;
use crate::plugins::{Hook, PluginSet};
use crate::tokens::{TokenError, TokenService};
use crate::user_cache::UserCache;
use crate::user_changes;
use crate::users::{self, LoginProfile};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("token: {0}")]
    Token(#[from] TokenError),
    /// An operator disabled the account (`authhost users disable`): no login, no token.
    #[error("the account is disabled")]
    Disabled,
}

/// The services a session touches.
pub struct Sessions<'a> {
    pub db: &'a crate::db::Db,
    pub user_cache: &'a UserCache,
    /// The plugin set of this request (a reload does not change it midway).
    pub plugins: Arc<PluginSet>,
    pub tokens: &'a TokenService,
}

impl Sessions<'_> {
    /// A successful login: creates or refreshes the user (username untouched), fires
    /// `on_new_user` for a new account and `on_user_login` always, then mints the user token.
    pub async fn complete_login(
        &self,
        profile: &LoginProfile,
    ) -> Result<(User, String), SessionError> {
        let txn = self.db.begin().await?;
        let (user, created) = users::upsert_on_login(&txn, profile).await?;
        if user.disabled_at.is_some() {
            // Nothing of the attempt is kept: the transaction rolls back when dropped.
            return Err(SessionError::Disabled);
        }
        let mut events = Vec::new();
        if created {
            events.push((Hook::NewUser, users::hook_view(&user, true)));
        }
        events.push((Hook::UserLogin, users::hook_view(&user, false)));
        let queued = self.enqueue(&txn, &user.id, &events).await?;
        user_changes::announce(&txn, &user.id).await?;
        self.db.commit(txn).await?;
        self.user_cache.invalidate(&user.id);
        hooks::deliver_now(self.db, &self.plugins, &queued).await;
        metrics::counter!("authhost_logins_total", "provider" => provider_label(&profile.provider_id))
            .increment(1);
        let token = self
            .tokens
            .mint_user_token(&user.id, user.tokens_valid_after, None)?;
        Ok((user, token))
    }

    /// `authhost token`: a token for the account of `email`, created (with `on_new_user`)
    /// when missing. An existing account is used as it is: this is not a login that
    /// refreshes it.
    pub async fn operator_token(
        &self,
        email: &str,
        name: Option<String>,
        days: Option<u32>,
    ) -> Result<String, SessionError> {
        let user = match users::get(self.db, &users::user_id_for_email(email)).await? {
            Some(u) if u.disabled_at.is_some() => return Err(SessionError::Disabled),
            Some(u) => u,
            None => {
                let profile = LoginProfile {
                    email: email.to_string(),
                    name,
                    avatar_url: None,
                    provider_id: format!("cli:{email}"),
                };
                let txn = self.db.begin().await?;
                let (user, created) = users::upsert_on_login(&txn, &profile).await?;
                let queued = if created {
                    let events = [(Hook::NewUser, users::hook_view(&user, true))];
                    self.enqueue(&txn, &user.id, &events).await?
                } else {
                    Vec::new()
                };
                self.db.commit(txn).await?;
                hooks::deliver_now(self.db, &self.plugins, &queued).await;
                user
            }
        };
        Ok(self
            .tokens
            .mint_user_token(&user.id, user.tokens_valid_after, days)?)
    }

    /// Revokes every token of `user` issued until now and fires `on_user_logout`.
    pub async fn logout(&self, user: &User) -> Result<(), SessionError> {
        self.end(user, false).await
    }

    /// `authhost users disable`: marks the account disabled and revokes every token issued so
    /// far (so enabling it later brings none of them back), firing `on_user_logout`.
    pub async fn disable(&self, user: &User) -> Result<(), SessionError> {
        self.end(user, true).await
    }

    /// A logout, and with `disable` the account's disabling, in one transaction.
    async fn end(&self, user: &User, disable: bool) -> Result<(), SessionError> {
        let now = crate::tokens::now();
        let txn = self.db.begin().await?;
        if disable {
            users::set_disabled(&txn, &user.id, Some(now)).await?;
        }
        users::revoke_tokens(&txn, user, now).await?;
        crate::oidc_refresh::revoke_user(&txn, &user.id, now).await?;
        let events = [(Hook::UserLogout, users::hook_view(user, false))];
        let queued = self.enqueue(&txn, &user.id, &events).await?;
        user_changes::announce(&txn, &user.id).await?;
        self.db.commit(txn).await?;
        self.user_cache.invalidate(&user.id);
        hooks::deliver_now(self.db, &self.plugins, &queued).await;
        Ok(())
    }

    /// `authhost users enable`: the account may log in again (its old tokens stay revoked).
    pub async fn enable(&self, user: &User) -> Result<(), SessionError> {
        let txn = self.db.begin().await?;
        users::set_disabled(&txn, &user.id, None).await?;
        user_changes::announce(&txn, &user.id).await?;
        self.db.commit(txn).await?;
        self.user_cache.invalidate(&user.id);
        Ok(())
    }

    /// `authhost users delete`: fires `on_user_logout` (the event carries the profile, so it is
    /// delivered after the row is gone) and removes the row, in one transaction. A later login
    /// with the same e-mail creates a new account (and `on_new_user`).
    pub async fn delete(&self, user: &User) -> Result<(), SessionError> {
        let txn = self.db.begin().await?;
        let events = [(Hook::UserLogout, users::hook_view(user, false))];
        let queued = self.enqueue(&txn, &user.id, &events).await?;
        crate::oidc_refresh::revoke_user(&txn, &user.id, crate::tokens::now()).await?;
        users::delete(&txn, &user.id, crate::tokens::now()).await?;
        user_changes::announce(&txn, &user.id).await?;
        self.db.commit(txn).await?;
        self.user_cache.invalidate(&user.id);
        hooks::deliver_now(self.db, &self.plugins, &queued).await;
        Ok(())
    }

    /// The hook events of a change, written in its transaction (see `crate::hooks`).
    async fn enqueue(
        &self,
        txn: &DatabaseTransaction,
        user_id: &str,
        events: &[(Hook, serde_json::Value)],
    ) -> Result<Vec<i64>, DbErr> {
        let extensions = self.plugins.extension_names();
        if extensions.is_empty() {
            return Ok(Vec::new());
        }
        hooks::enqueue(txn, user_id, events, &extensions).await
    }
}

fn provider_label(provider_id: &str) -> String {
    provider_id
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string()
}
