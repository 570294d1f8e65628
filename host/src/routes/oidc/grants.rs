//! The token endpoint's OpenID grants: `authorization_code` (a code from `oidc/authorize`,
//! redeemed once by its client with its redirect URI and PKCE verifier) and `refresh_token`
//! (rotated on every use). Both answer an access token (RFC 9068, with the `permissions` of the
//! client's `audience` service), an ID token when `openid` was granted, and a refresh token when
//! `offline_access` was. Refusals are RFC 6749 §5.2 JSON, counted by reason.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::client_auth::{Client, authenticate};
use super::{count_refusal, no_store, oauth_error};
use crate::app::SharedApp;
use crate::http::{ApiError, Params, for_user, json_response};
use crate::oidc_codes::{self, RedeemError};
use crate::oidc_refresh::{self, RefreshError, RefreshGrant};
use crate::tokens::{AccessToken, IdToken, now};
use crate::user_cache::CachedUser;
use crate::users;

/// How long an ID token is valid: it is read once, at login.
pub const ID_TOKEN_SECONDS: i64 = 300;

fn invalid_grant(reason: &'static str, description: &str) -> Response {
    count_refusal(reason);
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

fn missing(name: &str) -> Response {
    count_refusal("invalid_request");
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        &format!("{name} is missing"),
    )
}

fn redeem_reason(e: &RedeemError) -> &'static str {
    match e {
        RedeemError::Unknown => "unknown_code",
        RedeemError::Expired => "expired_code",
        RedeemError::Reused(_) => "code_reused",
        RedeemError::WrongClient => "wrong_client",
        RedeemError::WrongRedirectUri => "wrong_redirect_uri",
        RedeemError::VerifierMissing => "verifier_missing",
        RedeemError::BadVerifier => "bad_verifier",
        RedeemError::Db(_) => "database",
    }
}

fn refresh_reason(e: &RefreshError) -> &'static str {
    match e {
        RefreshError::Unknown => "unknown_refresh_token",
        RefreshError::Expired => "expired_refresh_token",
        RefreshError::Revoked => "revoked_refresh_token",
        RefreshError::Reused => "refresh_token_reused",
        RefreshError::WrongClient => "wrong_client",
        RefreshError::Db(_) => "database",
    }
}

/// The user a grant was for, if they may still have tokens: there, not disabled, not logged
/// out since the login the grant comes from.
async fn grant_user(
    app: &SharedApp,
    user_id: &str,
    auth_time: i64,
) -> Result<Option<Arc<CachedUser>>, ApiError> {
    let user = app.user_cache.get(&app.db, user_id).await?;
    Ok(user.filter(|u| users::token_refusal(&u.user, Some(auth_time)).is_none()))
}

/// A parameter given twice (RFC 6749 §3.2: "MUST NOT be included more than once").
fn repeated(params: &Params) -> Option<Response> {
    const READ: [&str; 8] = [
        "grant_type",
        "client_id",
        "client_secret",
        "code",
        "redirect_uri",
        "code_verifier",
        "refresh_token",
        "scope",
    ];
    let name = READ.iter().find(|n| params.get_all(n).count() > 1)?;
    count_refusal("invalid_request");
    Some(oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        &format!("{name} is given more than once"),
    ))
}

/// What both grants check first: no parameter twice, then the client's authentication.
fn caller<'a>(
    app: &'a SharedApp,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Client<'a>, Box<Response>> {
    if let Some(refusal) = repeated(params) {
        return Err(Box::new(refusal));
    }
    authenticate(app, headers, params)
}

pub async fn authorization_code(
    app: &SharedApp,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Response, ApiError> {
    let client = match caller(app, headers, params) {
        Ok(c) => c,
        Err(refusal) => return Ok(*refusal),
    };
    let Some(code) = params.non_empty("code") else {
        return Ok(missing("code"));
    };
    let Some(redirect_uri) = params.non_empty("redirect_uri") else {
        return Ok(missing("redirect_uri"));
    };
    let verifier = params.non_empty("code_verifier");
    let now = now();
    let grant =
        match oidc_codes::redeem(&app.db, code, client.id, redirect_uri, verifier, now).await {
            Ok(g) => g,
            Err(RedeemError::Db(e)) => return Err(e.into()),
            Err(e) => {
                if let RedeemError::Reused(first) = &e {
                    // RFC 6749 §4.1.2: what the first use issued is revoked. Access and ID
                    // tokens are short-lived JWTs; the refresh family is what lives on.
                    oidc_refresh::revoke_code_family(&app.db, code, now).await?;
                    tracing::warn!(
                        client = %first.client_id,
                        user = %first.user_id,
                        "an authorization code was presented again: its refresh tokens are revoked"
                    );
                }
                return Ok(invalid_grant(redeem_reason(&e), &e.to_string()));
            }
        };
    // A verifier for a code that had no challenge: refused, or PKCE could be stripped from a
    // request in transit without the client noticing (OAuth 2.1 §4.1.3).
    if grant.code_challenge.is_none() && verifier.is_some() {
        return Ok(invalid_grant(
            "unexpected_verifier",
            "code_verifier given, but the authorization request had no code_challenge",
        ));
    }
    let Some(user) = grant_user(app, &grant.user_id, grant.auth_time).await? else {
        return Ok(invalid_grant(
            "user_gone",
            "the user logged out, was disabled or removed since this code was issued",
        ));
    };
    let refresh = if grant.scope.split(' ').any(|s| s == "offline_access") {
        let family = RefreshGrant {
            client_id: client.id.to_string(),
            user_id: user.id.clone(),
            scope: grant.scope.clone(),
            auth_time: grant.auth_time,
        };
        let lifetime = app.tokens.user_token_seconds();
        let token = oidc_refresh::start_for_code(&app.db, &family, code, now, lifetime).await?;
        // A replay between the redemption and this start found no family to revoke.
        if oidc_codes::was_reused(&app.db, code).await? {
            oidc_refresh::revoke_code_family(&app.db, code, now).await?;
            return Ok(invalid_grant("code_reused", "code already used"));
        }
        Some(token)
    } else {
        None
    };
    let issued = Issue {
        client: &client,
        user: &user,
        scope: &grant.scope,
        auth_time: grant.auth_time,
        nonce: grant.nonce.as_deref(),
        refresh,
    };
    issued.respond(app).await
}

pub async fn refresh_token(
    app: &SharedApp,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Response, ApiError> {
    let client = match caller(app, headers, params) {
        Ok(c) => c,
        Err(refusal) => return Ok(*refusal),
    };
    let Some(token) = params.non_empty("refresh_token") else {
        return Ok(missing("refresh_token"));
    };
    let now = now();
    let lifetime = app.tokens.user_token_seconds();
    let (grant, next) = match oidc_refresh::rotate(&app.db, token, client.id, now, lifetime).await {
        Ok(rotated) => rotated,
        Err(RefreshError::Db(e)) => return Err(e.into()),
        Err(e) => return Ok(invalid_grant(refresh_reason(&e), &e.to_string())),
    };
    // RFC 6749 §6: a narrower scope may be asked, never a wider one. What was not granted is
    // left out rather than refused: the token is already rotated, and the answer's `scope`
    // says what was given (§3.3).
    let scope = match params.non_empty("scope") {
        None => grant.scope.clone(),
        Some(asked) => {
            let asked: Vec<&str> = asked.split(' ').collect();
            let kept: Vec<&str> = grant
                .scope
                .split(' ')
                .filter(|s| asked.contains(s))
                .collect();
            kept.join(" ")
        }
    };
    let Some(user) = grant_user(app, &grant.user_id, grant.auth_time).await? else {
        oidc_refresh::revoke_user(&app.db, &grant.user_id, now).await?;
        return Ok(invalid_grant(
            "user_gone",
            "the user logged out, was disabled or removed",
        ));
    };
    let issued = Issue {
        client: &client,
        user: &user,
        scope: &scope,
        auth_time: grant.auth_time,
        nonce: None,
        refresh: Some(next),
    };
    issued.respond(app).await
}

/// What a successful grant hands out.
struct Issue<'a> {
    client: &'a Client<'a>,
    user: &'a CachedUser,
    scope: &'a str,
    auth_time: i64,
    nonce: Option<&'a str>,
    refresh: Option<String>,
}

impl Issue<'_> {
    async fn respond(self, app: &SharedApp) -> Result<Response, ApiError> {
        let has = |s: &str| self.scope.split(' ').any(|w| w == s);
        let permissions = match &self.client.config.audience {
            Some(service) => Some(
                app.plugins()
                    .permissions(service, users::provider_view(self.user))
                    .await,
            ),
            None => None,
        };
        let u = &self.user.user;
        let profile = has("profile");
        let owned = OwnedClaims {
            sub: u.id.clone(),
            client_id: self.client.id.to_string(),
            aud: self
                .client
                .config
                .audience
                .clone()
                .unwrap_or_else(|| self.client.id.to_string()),
            scope: self.scope.to_string(),
            permissions,
            id_token: has("openid"),
            auth_time: self.auth_time,
            nonce: self.nonce.map(str::to_string),
            name: u.name.clone().filter(|_| profile),
            email: u.email.clone().filter(|_| has("email")),
            picture: u.avatar_url.clone().filter(|_| profile),
            preferred_username: u.username.clone().filter(|_| profile),
        };
        let lifetime = app.tokens.permission_token_seconds();
        let (access, id) = app
            .sign_off_workers(move |tokens| owned.sign(tokens, lifetime))
            .await
            .map_err(ApiError::Internal)?;
        let mut body = serde_json::Map::new();
        body.insert("access_token".into(), Value::String(access));
        body.insert("token_type".into(), "Bearer".into());
        body.insert("expires_in".into(), lifetime.into());
        body.insert("scope".into(), self.scope.into());
        if let Some(id) = id {
            body.insert("id_token".into(), Value::String(id));
        }
        if let Some(refresh) = self.refresh {
            app.tokens
                .stats
                .refresh_tokens_issued
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            body.insert("refresh_token".into(), Value::String(refresh));
        }
        let reply = no_store(json_response(StatusCode::OK, &Value::Object(body)));
        Ok(for_user(reply, &self.user.id))
    }
}

/// The claims, owned, to be signed on the signing threads.
struct OwnedClaims {
    sub: String,
    client_id: String,
    aud: String,
    scope: String,
    permissions: Option<Value>,
    id_token: bool,
    auth_time: i64,
    nonce: Option<String>,
    name: Option<String>,
    email: Option<String>,
    picture: Option<String>,
    preferred_username: Option<String>,
}

impl OwnedClaims {
    fn sign(
        &self,
        tokens: &crate::tokens::TokenService,
        lifetime: i64,
    ) -> Result<(String, Option<String>), crate::tokens::TokenError> {
        let access = tokens.sign_access_token(
            &AccessToken {
                sub: &self.sub,
                aud: &self.aud,
                client_id: &self.client_id,
                scope: &self.scope,
                permissions: self.permissions.as_ref(),
            },
            lifetime,
        )?;
        if !self.id_token {
            return Ok((access, None));
        }
        let id = tokens.sign_id_token(
            &IdToken {
                sub: &self.sub,
                aud: &self.client_id,
                auth_time: self.auth_time,
                nonce: self.nonce.as_deref(),
                name: self.name.as_deref(),
                email: self.email.as_deref(),
                picture: self.picture.as_deref(),
                preferred_username: self.preferred_username.as_deref(),
            },
            ID_TOKEN_SECONDS,
        )?;
        Ok((access, Some(id)))
    }
}
