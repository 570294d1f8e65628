//! What happens when someone logs in, is given a token by an operator, or logs out: the user
//! record, the user cache, the hooks in order, the token. The server's routes and the CLI call
//! these through `Sessions`, which borrows just the services a session needs.

use std::sync::Arc;

use sea_orm::{DatabaseConnection, DbErr};

use crate::db::user::Model as User;
use crate::plugins::{Hook, PluginSet};
use crate::tokens::{TokenError, TokenService};
use crate::user_cache::UserCache;
use crate::users::{self, LoginProfile};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("token: {0}")]
    Token(#[from] TokenError),
}

/// The services a session touches.
pub struct Sessions<'a> {
    pub db: &'a DatabaseConnection,
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
        let (user, created) = users::upsert_on_login(self.db, profile).await?;
        self.user_cache.invalidate(&user.id);
        if created {
            self.plugins
                .fire(Hook::NewUser, users::hook_view(&user, true))
                .await;
        }
        self.plugins
            .fire(Hook::UserLogin, users::hook_view(&user, false))
            .await;
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
            Some(u) => u,
            None => {
                let profile = LoginProfile {
                    email: email.to_string(),
                    name,
                    avatar_url: None,
                    provider_id: format!("cli:{email}"),
                };
                let (user, created) = users::upsert_on_login(self.db, &profile).await?;
                if created {
                    self.plugins
                        .fire(Hook::NewUser, users::hook_view(&user, true))
                        .await;
                }
                user
            }
        };
        Ok(self
            .tokens
            .mint_user_token(&user.id, user.tokens_valid_after, days)?)
    }

    /// Revokes every token of `user` issued until now and fires `on_user_logout`.
    pub async fn logout(&self, user: &User) -> Result<(), SessionError> {
        users::revoke_tokens(self.db, user, crate::tokens::now()).await?;
        self.user_cache.invalidate(&user.id);
        self.plugins
            .fire(Hook::UserLogout, users::hook_view(user, false))
            .await;
        Ok(())
    }
}

fn provider_label(provider_id: &str) -> String {
    provider_id
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string()
}
