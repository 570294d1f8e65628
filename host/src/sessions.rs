//! What happens when someone logs in, is given a token by an operator, or logs out: the user
//! record, the hooks in order, the token. Routes and the CLI call these; no HTTP here.

use sea_orm::DbErr;

use crate::app::App;
use crate::db::user::Model as User;
use crate::plugins::Hook;
use crate::tokens::TokenError;
use crate::users::{self, LoginProfile};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("token: {0}")]
    Token(#[from] TokenError),
}

/// A successful login: creates or refreshes the user (username untouched), fires
/// `on_new_user` for a new account and `on_user_login` always, then mints the user token.
pub async fn complete_login(
    app: &App,
    profile: &LoginProfile,
) -> Result<(User, String), SessionError> {
    let (user, created) = users::upsert_on_login(&app.db, profile).await?;
    app.user_cache.invalidate(&user.id);
    let plugins = app.plugins();
    if created {
        plugins
            .fire(Hook::NewUser, users::hook_view(&user, true))
            .await;
    }
    plugins
        .fire(Hook::UserLogin, users::hook_view(&user, false))
        .await;
    metrics::counter!("authhost_logins_total", "provider" => provider_label(&profile.provider_id))
        .increment(1);
    let token = app
        .tokens
        .mint_user_token(&user.id, user.tokens_valid_after, None)?;
    Ok((user, token))
}

fn provider_label(provider_id: &str) -> String {
    provider_id
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `authhost token`: a token for the account of `email`, created (with `on_new_user`) when
/// missing. An existing account is used as it is: this is not a login that refreshes it.
pub async fn operator_token(
    app: &App,
    email: &str,
    name: Option<String>,
    days: Option<u32>,
) -> Result<String, SessionError> {
    let user = match users::get(&app.db, &users::user_id_for_email(email)).await? {
        Some(u) => u,
        None => {
            let profile = LoginProfile {
                email: email.to_string(),
                name,
                avatar_url: None,
                provider_id: format!("cli:{email}"),
            };
            let (user, created) = users::upsert_on_login(&app.db, &profile).await?;
            if created {
                app.plugins()
                    .fire(Hook::NewUser, users::hook_view(&user, true))
                    .await;
            }
            user
        }
    };
    Ok(app
        .tokens
        .mint_user_token(&user.id, user.tokens_valid_after, days)?)
}

/// Revokes every token of `user` issued until now and fires `on_user_logout`.
pub async fn logout(app: &App, user: &User) -> Result<(), SessionError> {
    users::revoke_tokens(&app.db, user, crate::tokens::now()).await?;
    app.user_cache.invalidate(&user.id);
    app.plugins()
        .fire(Hook::UserLogout, users::hook_view(user, false))
        .await;
    Ok(())
}
