//! Google and any OpenID Connect provider, through openidconnect with discovery. The ID token
//! is checked (signature against the provider's keys, `iss`, `aud`, `nonce`, `exp`) and the
//! e-mail must be verified. Discovery happens on first use and is refreshed hourly, or after a
//! token failed verification (the provider may have rotated its keys), so a provider that is
//! down at start does not stop authhost.

use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, reqwest,
};
use tokio::sync::RwLock;

use super::{LoginError, UpstreamProfile};
use crate::config::{ClientAuth, ProviderConfig, ProviderKind};

/// The client type discovery yields (token and userinfo endpoints may or may not exist).
type DiscoveredClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

const REDISCOVER_AFTER: Duration = Duration::from_secs(3600);

pub struct OidcUpstream {
    name: String,
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: ClientSecret,
    auth_type: AuthType,
    scopes: Vec<String>,
    redirect: RedirectUrl,
    http: reqwest::Client,
    discovered: RwLock<Option<(Instant, DiscoveredClient)>>,
}

impl OidcUpstream {
    pub fn new(
        name: &str,
        kind: ProviderKind,
        p: &ProviderConfig,
        redirect: &str,
        http: reqwest::Client,
    ) -> Result<Self, String> {
        let issuer_text = match (kind, p.issuer.as_deref()) {
            (_, Some(i)) if !i.is_empty() => i.to_string(),
            (ProviderKind::Google, _) => "https://accounts.google.com".to_string(),
            _ => return Err("issuer is required".into()),
        };
        let issuer = IssuerUrl::new(issuer_text.clone())
            .map_err(|e| format!("issuer `{issuer_text}`: {e}"))?;
        if !matches!(issuer.url().scheme(), "http" | "https") {
            return Err(format!("issuer `{issuer_text}` is not an http(s) URL"));
        }
        let auth_type = match p.client_auth {
            None | Some(ClientAuth::ClientSecretBasic) => AuthType::BasicAuth,
            Some(ClientAuth::ClientSecretPost) => AuthType::RequestBody,
        };
        let mut scopes = p
            .scopes
            .clone()
            .unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into()]);
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".into());
        }
        Ok(OidcUpstream {
            name: name.to_string(),
            issuer,
            client_id: ClientId::new(p.client_id.clone()),
            client_secret: ClientSecret::new(p.client_secret.expose().to_string()),
            auth_type,
            scopes,
            redirect: RedirectUrl::new(redirect.to_string())
                .map_err(|e| format!("callback URL: {e}"))?,
            http,
            discovered: RwLock::new(None),
        })
    }

    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    /// Fetches the discovery document now (and keeps it as a login would).
    pub async fn discover(&self) -> Result<(), LoginError> {
        self.client().await.map(|_| ())
    }

    fn upstream(&self, what: &str, e: impl std::fmt::Display) -> LoginError {
        LoginError::Upstream(format!("{}: {what}: {e}", self.name))
    }

    async fn client(&self) -> Result<DiscoveredClient, LoginError> {
        if let Some((at, client)) = self.discovered.read().await.as_ref()
            && at.elapsed() < REDISCOVER_AFTER
        {
            return Ok(client.clone());
        }
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| self.upstream("discovery", with_causes(&e)))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            self.client_id.clone(),
            Some(self.client_secret.clone()),
        )
        .set_redirect_uri(self.redirect.clone())
        .set_auth_type(self.auth_type.clone());
        *self.discovered.write().await = Some((Instant::now(), client.clone()));
        Ok(client)
    }

    pub async fn authorize_url(
        &self,
        state: &str,
        nonce: &str,
        pkce_verifier: &str,
    ) -> Result<String, LoginError> {
        let client = self.client().await?;
        let (state, nonce) = (state.to_string(), nonce.to_string());
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(state),
            move || Nonce::new(nonce),
        );
        for scope in self.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            pkce_verifier.to_string(),
        ));
        let (url, _, _) = request.set_pkce_challenge(challenge).url();
        Ok(url.to_string())
    }

    pub async fn exchange(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<UpstreamProfile, LoginError> {
        let client = self.client().await?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| self.upstream("token endpoint", e))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(|e| self.upstream("code exchange", e))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| self.upstream("code exchange", "no ID token"))?;
        let verifier = client.id_token_verifier();
        let claims = match id_token.claims(&verifier, &Nonce::new(nonce.to_string())) {
            Ok(c) => c,
            Err(e) => {
                // Perhaps rotated keys: rediscover before the next login.
                *self.discovered.write().await = None;
                return Err(self.upstream("ID token", e));
            }
        };
        let subject = claims.subject().to_string();
        let mut email = claims
            .email()
            .map(|e| (e.to_string(), claims.email_verified().unwrap_or(false)));
        let mut name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string());
        let mut picture = claims
            .picture()
            .and_then(|p| p.get(None))
            .map(|p| p.to_string());
        if email.is_none() {
            // Some providers put the e-mail in userinfo only.
            let info: CoreUserInfoClaims = client
                .user_info(
                    tokens.access_token().clone(),
                    Some(claims.subject().clone()),
                )
                .map_err(|e| self.upstream("userinfo", e))?
                .request_async(&self.http)
                .await
                .map_err(|e| self.upstream("userinfo", e))?;
            email = info
                .email()
                .map(|e| (e.to_string(), info.email_verified().unwrap_or(false)));
            name = name.or_else(|| info.name().and_then(|n| n.get(None)).map(|n| n.to_string()));
            picture = picture.or_else(|| {
                info.picture()
                    .and_then(|p| p.get(None))
                    .map(|p| p.to_string())
            });
        }
        let verified_emails = match email {
            Some((e, true)) => vec![e],
            _ => Vec::new(),
        };
        Ok(UpstreamProfile {
            subject,
            verified_emails,
            name,
            avatar_url: picture,
        })
    }
}

/// An error and its causes, `: `-separated ("Request failed" alone does not say why).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
