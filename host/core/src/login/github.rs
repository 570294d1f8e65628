//! GitHub: OAuth2 (PKCE S256) for the access token, then the REST API for the profile and the
//! e-mails. All three base URLs are configurable for GitHub Enterprise (and tests).
//!
//! GitHub answers token errors with HTTP 200 and an `error` field, and gives `email: null` for
//! private addresses: the e-mail always comes from `/user/emails`, verified ones only.

use openidconnect::{PkceCodeChallenge, PkceCodeVerifier, reqwest};
use serde::Deserialize;

use super::{LoginError, UpstreamProfile};
use crate::config::ProviderConfig;

pub struct GitHubUpstream {
    name: String,
    client_id: String,
    client_secret: String,
    auth_url: url::Url,
    token_url: url::Url,
    api_url: String,
    scopes: Vec<String>,
    redirect: String,
    http: reqwest::Client,
}

fn parse_url(key: &str, text: &str) -> Result<url::Url, String> {
    match url::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(u),
        _ => Err(format!("{key} `{text}` is not an http(s) URL")),
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: serde_json::Value,
    login: Option<String>,
    name: Option<String>,
    avatar_url: Option<String>,
}

#[derive(Deserialize)]
struct Email {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

impl GitHubUpstream {
    pub fn new(
        name: &str,
        p: &ProviderConfig,
        redirect: &str,
        http: reqwest::Client,
    ) -> Result<Self, String> {
        let auth_url = parse_url(
            "auth_url",
            p.auth_url
                .as_deref()
                .unwrap_or("https://github.com/login/oauth/authorize"),
        )?;
        let token_url = parse_url(
            "token_url",
            p.token_url
                .as_deref()
                .unwrap_or("https://github.com/login/oauth/access_token"),
        )?;
        let api_url = p
            .api_url
            .as_deref()
            .unwrap_or("https://api.github.com")
            .trim_end_matches('/')
            .to_string();
        parse_url("api_url", &api_url)?;
        Ok(GitHubUpstream {
            name: name.to_string(),
            client_id: p.client_id.clone(),
            client_secret: p.client_secret.expose().to_string(),
            auth_url,
            token_url,
            api_url,
            scopes: p
                .scopes
                .clone()
                .unwrap_or_else(|| vec!["read:user".into(), "user:email".into()]),
            redirect: redirect.to_string(),
            http,
        })
    }

    pub fn authorize_url(&self, state: &str, pkce_verifier: &str) -> String {
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            pkce_verifier.to_string(),
        ));
        let mut url = self.auth_url.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect)
            .append_pair("scope", &self.scopes.join(" "))
            .append_pair("state", state)
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256");
        url.to_string()
    }

    fn upstream(&self, what: &str, e: impl std::fmt::Display) -> LoginError {
        LoginError::Upstream(format!("{}: {what}: {e}", self.name))
    }

    pub async fn exchange(
        &self,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<UpstreamProfile, LoginError> {
        let answer = self
            .http
            .post(self.token_url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.as_str()),
                ("code", code),
                ("redirect_uri", self.redirect.as_str()),
                ("code_verifier", pkce_verifier),
                ("grant_type", "authorization_code"),
            ])
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    LoginError::Timeout
                } else {
                    self.upstream("token request", e)
                }
            })?;
        let status = answer.status();
        let body = answer
            .text()
            .await
            .map_err(|e| self.upstream("token answer", e))?;
        let token: TokenAnswer = serde_json::from_str(&body)
            .or_else(|_| serde_urlencoded_answer(&body))
            .map_err(|_| {
                self.upstream("token answer", format!("HTTP {status}, unreadable body"))
            })?;
        let access = match (token.access_token, token.error) {
            (Some(t), None) => t,
            (_, Some(e)) => {
                let detail = token.error_description.unwrap_or_default();
                return Err(self.upstream("token refused", format!("{e} {detail}")));
            }
            (None, None) => return Err(self.upstream("token answer", "no access_token")),
        };
        let user: User = self.api(&access, "/user").await?;
        let emails: Vec<Email> = self.api(&access, "/user/emails").await?;
        let mut verified: Vec<&Email> = emails.iter().filter(|e| e.verified).collect();
        // Primary first; the flow then prefers any of them that already has an account.
        verified.sort_by_key(|e| !e.primary);
        let subject = match &user.id {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s.clone(),
            _ => return Err(self.upstream("/user", "no id")),
        };
        Ok(UpstreamProfile {
            subject,
            verified_emails: verified.into_iter().map(|e| e.email.clone()).collect(),
            name: user.name.or(user.login),
            avatar_url: user.avatar_url,
        })
    }

    async fn api<T: for<'de> Deserialize<'de>>(
        &self,
        token: &str,
        path: &str,
    ) -> Result<T, LoginError> {
        let answer = self
            .http
            .get(format!("{}{path}", self.api_url))
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    LoginError::Timeout
                } else {
                    self.upstream(path, e)
                }
            })?;
        if !answer.status().is_success() {
            return Err(self.upstream(path, format!("HTTP {}", answer.status())));
        }
        let body = answer.bytes().await.map_err(|e| self.upstream(path, e))?;
        serde_json::from_slice::<T>(&body).map_err(|e| self.upstream(path, e))
    }
}

/// GitHub's form-encoded token answer (when `Accept: application/json` was ignored).
fn serde_urlencoded_answer(body: &str) -> Result<TokenAnswer, ()> {
    let mut t = TokenAnswer {
        access_token: None,
        error: None,
        error_description: None,
    };
    for (k, v) in form_urlencoded::parse(body.as_bytes()) {
        match k.as_ref() {
            "access_token" => t.access_token = Some(v.into_owned()),
            "error" => t.error = Some(v.into_owned()),
            "error_description" => t.error_description = Some(v.into_owned()),
            _ => {}
        }
    }
    if t.access_token.is_some() || t.error.is_some() {
        Ok(t)
    } else {
        Err(())
    }
}
