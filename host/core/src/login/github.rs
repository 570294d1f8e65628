//! GitHub: OAuth2 (PKCE S256) for the access token, then the REST API for the profile and the
//! e-mails. All three base URLs are configurable for GitHub Enterprise (and tests).
//!
//! GitHub answers token errors with HTTP 200 and an `error` field, and gives `email: null` for
//! private addresses: the e-mail always comes from `/user/emails`, verified ones only.

use std::future::Future;
use std::pin::Pin;

use oauth2::basic::{BasicClient, BasicErrorResponse, BasicRequestTokenError};
use oauth2::http::header::{CONTENT_TYPE, HeaderValue};
use oauth2::{
    AsyncHttpClient, AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointNotSet, EndpointSet, HttpClientError, HttpRequest, HttpResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use openidconnect::reqwest;
use serde::Deserialize;

use super::{LoginError, UpstreamProfile};
use crate::config::ProviderConfig;

/// An OAuth2 client with the authorization and token endpoints set.
type OAuthClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

pub struct GitHubUpstream {
    name: String,
    /// Client id and secret (sent in the form body), both endpoints, the callback URL.
    oauth: OAuthClient,
    api_url: String,
    scopes: Vec<String>,
    http: reqwest::Client,
}

fn parse_url(key: &str, text: &str) -> Result<url::Url, String> {
    match url::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(u),
        _ => Err(format!("{key} `{text}` is not an http(s) URL")),
    }
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
        let oauth = BasicClient::new(ClientId::new(p.client_id.clone()))
            .set_client_secret(ClientSecret::new(p.client_secret.expose().to_string()))
            // GitHub takes the client secret in the form body only.
            .set_auth_type(AuthType::RequestBody)
            .set_auth_uri(AuthUrl::from_url(auth_url))
            .set_token_uri(TokenUrl::from_url(token_url))
            .set_redirect_uri(
                RedirectUrl::new(redirect.to_string()).map_err(|e| format!("callback URL: {e}"))?,
            );
        Ok(GitHubUpstream {
            name: name.to_string(),
            oauth,
            api_url,
            scopes: p
                .scopes
                .clone()
                .unwrap_or_else(|| vec!["read:user".into(), "user:email".into()]),
            http,
        })
    }

    pub fn authorize_url(&self, state: &str, pkce_verifier: &str) -> String {
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            pkce_verifier.to_string(),
        ));
        let state = CsrfToken::new(state.to_string());
        let mut request = self
            .oauth
            .authorize_url(|| state)
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge);
        if self.scopes.is_empty() {
            // oauth2 leaves out an empty `scope`; `scopes = []` has always sent `scope=`.
            request = request.add_extra_param("scope", "");
        }
        request.url().0.to_string()
    }

    fn upstream(&self, what: &str, e: impl std::fmt::Display) -> LoginError {
        LoginError::Upstream(format!("{}: {what}: {e}", self.name))
    }

    /// What a failed token request means: a timeout, GitHub refusing the code, or a broken answer.
    fn token_error(
        &self,
        e: BasicRequestTokenError<HttpClientError<reqwest::Error>>,
    ) -> LoginError {
        let refused = |e: BasicErrorResponse| {
            let detail = e.error_description().map_or("", String::as_str);
            self.upstream("token refused", format!("{} {detail}", e.error()))
        };
        match e {
            RequestTokenError::Request(HttpClientError::Reqwest(e)) if e.is_timeout() => {
                LoginError::Timeout
            }
            RequestTokenError::Request(HttpClientError::Reqwest(e)) => {
                self.upstream("token request", e)
            }
            RequestTokenError::Request(e) => self.upstream("token request", e),
            // An HTTP 4xx/5xx whose body is an OAuth2 error.
            RequestTokenError::ServerResponse(e) => refused(e),
            // GitHub's HTTP 200 with `error` instead of a token: oauth2 only reads error bodies
            // on other statuses, so a 200 that is no token is read here as an error.
            RequestTokenError::Parse(parse, body) => {
                match serde_json::from_slice::<BasicErrorResponse>(&body) {
                    Ok(e) => refused(e),
                    Err(_) => self.upstream("token answer", parse),
                }
            }
            RequestTokenError::Other(e) => self.upstream("token answer", e),
        }
    }

    pub async fn exchange(
        &self,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<UpstreamProfile, LoginError> {
        let token = self
            .oauth
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(&TokenEndpoint(&self.http))
            .await
            .map_err(|e| self.token_error(e))?;
        let access = token.access_token().secret();
        let user: User = self.api(access, "/user").await?;
        let emails: Vec<Email> = self.api(access, "/user/emails").await?;
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

/// The HTTP client for the token request: `call_token_endpoint` (a named type rather than a
/// closure, so the exchange's future stays `Send` for any lifetime).
struct TokenEndpoint<'a>(&'a reqwest::Client);

impl<'c> AsyncHttpClient<'c> for TokenEndpoint<'_> {
    type Error = HttpClientError<reqwest::Error>;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Self::Error>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(call_token_endpoint(self.0, request))
    }
}

/// The token endpoint through the reqwest client, with one GitHub quirk undone: an answer that
/// is not JSON but form-encoded (GitHub's format when it ignores `Accept: application/json`,
/// which oauth2 sends) becomes the JSON object of its OAuth2 fields, which is all oauth2 reads.
async fn call_token_endpoint(
    http: &reqwest::Client,
    request: HttpRequest,
) -> Result<HttpResponse, HttpClientError<reqwest::Error>> {
    const FIELDS: &[&str] = &[
        "access_token",
        "token_type",
        "scope",
        "error",
        "error_description",
        "error_uri",
    ];
    let mut answer = http.call(request).await?;
    if serde_json::from_slice::<serde::de::IgnoredAny>(answer.body()).is_ok() {
        return Ok(answer);
    }
    let fields: serde_json::Map<String, serde_json::Value> = form_urlencoded::parse(answer.body())
        .filter(|(k, _)| FIELDS.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned().into()))
        .collect();
    // Only a form with a token or an error is an answer; anything else stays as it came.
    if fields.contains_key("access_token") || fields.contains_key("error") {
        *answer.body_mut() = serde_json::Value::Object(fields).to_string().into_bytes();
        answer
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::config::Secret;

    /// PKCE verifiers are 43 to 128 characters.
    const VERIFIER: &str = "the-verifier-the-verifier-the-verifier-the-v";

    /// One canned answer of the token endpoint.
    #[derive(Clone)]
    struct Answer {
        status: &'static str,
        content_type: &'static str,
        body: &'static str,
        delay: Duration,
    }

    /// A GitHub stand-in: the token endpoint gives `answer`, `/api/user` and `/api/user/emails`
    /// a fixed profile; the token request (head and body) is kept for the test to look at.
    async fn serve(answer: Answer) -> (String, Arc<Mutex<String>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(String::new()));
        let kept = seen.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let answer = answer.clone();
                let kept = kept.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        let n = socket.read(&mut buf).await.unwrap();
                        request.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&request).to_lowercase();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let length = text
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                            if request.len() >= end + 4 + length || n == 0 {
                                break;
                            }
                        }
                    }
                    let request = String::from_utf8(request).unwrap();
                    let (status, content_type, body) = if request.starts_with("POST /token") {
                        *kept.lock().unwrap() = request;
                        tokio::time::sleep(answer.delay).await;
                        (answer.status, answer.content_type, answer.body)
                    } else if request.starts_with("GET /api/user/emails") {
                        let emails =
                            r#"[{"email":"a@example.org","primary":true,"verified":true}]"#;
                        ("200 OK", "application/json", emails)
                    } else {
                        ("200 OK", "application/json", r#"{"id":7,"login":"a"}"#)
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(body.as_bytes()).await;
                });
            }
        });
        (base, seen)
    }

    fn upstream(base: &str, scopes: Option<Vec<String>>) -> GitHubUpstream {
        let p = ProviderConfig {
            client_id: "id".into(),
            client_secret: Secret::new("se cret"),
            auth_url: Some(format!("{base}/authorize")),
            token_url: Some(format!("{base}/token")),
            api_url: Some(format!("{base}/api")),
            scopes,
            ..ProviderConfig::default()
        };
        let http = super::super::http_client(Duration::from_millis(500)).unwrap();
        GitHubUpstream::new("github", &p, "http://localhost/cb", http).unwrap()
    }

    fn answer(status: &'static str, content_type: &'static str, body: &'static str) -> Answer {
        Answer {
            status,
            content_type,
            body,
            delay: Duration::ZERO,
        }
    }

    async fn exchange(answer: Answer) -> (Result<UpstreamProfile, LoginError>, String) {
        let (base, seen) = serve(answer).await;
        let result = upstream(&base, None).exchange("the-code", VERIFIER).await;
        let request = seen.lock().unwrap().clone();
        (result, request)
    }

    #[test]
    fn the_authorize_url_has_every_parameter() {
        let url = upstream("http://gh.test", None).authorize_url("st", VERIFIER);
        let url = url::Url::parse(&url).unwrap();
        let mut q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        q.sort();
        let challenge =
            PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(VERIFIER.into()));
        let want = [
            ("client_id", "id"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("redirect_uri", "http://localhost/cb"),
            ("response_type", "code"),
            ("scope", "read:user user:email"),
            ("state", "st"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(q, want);
        assert_eq!(url.path(), "/authorize");

        let url = upstream("http://gh.test", Some(vec![])).authorize_url("st", VERIFIER);
        assert!(
            url.contains("&scope=&") || url.ends_with("&scope="),
            "{url}"
        );
    }

    #[tokio::test]
    async fn a_token_is_exchanged_with_the_secret_in_the_body() {
        let body =
            r#"{"access_token":"gho_1","token_type":"bearer","scope":"read:user,user:email"}"#;
        let (result, request) = exchange(answer("200 OK", "application/json", body)).await;
        assert_eq!(result.unwrap().subject, "7");
        let (head, form) = request.split_once("\r\n\r\n").unwrap();
        assert!(!head.to_lowercase().contains("authorization:"), "{head}");
        assert!(
            head.to_lowercase().contains("accept: application/json"),
            "{head}"
        );
        let mut form: Vec<(String, String)> = form_urlencoded::parse(form.as_bytes())
            .into_owned()
            .collect();
        form.sort();
        let want = [
            ("client_id", "id"),
            ("client_secret", "se cret"),
            ("code", "the-code"),
            ("code_verifier", VERIFIER),
            ("grant_type", "authorization_code"),
            ("redirect_uri", "http://localhost/cb"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(form, want);
    }

    #[tokio::test]
    async fn a_form_encoded_token_is_read() {
        let body = "access_token=gho_1&scope=read%3Auser&token_type=bearer";
        let (result, _) = exchange(answer(
            "200 OK",
            "application/x-www-form-urlencoded; charset=utf-8",
            body,
        ))
        .await;
        assert_eq!(result.unwrap().verified_emails, ["a@example.org"]);
    }

    #[tokio::test]
    async fn refusals_say_token_refused_with_the_code() {
        let want = LoginError::Upstream(
            "github: token refused: bad_verification_code The code is wrong.".into(),
        );
        let json = r#"{"error":"bad_verification_code","error_description":"The code is wrong.","error_uri":"https://docs.github.com"}"#;
        let form = "error=bad_verification_code&error_description=The+code+is+wrong.";
        for a in [
            answer("200 OK", "application/json; charset=utf-8", json),
            answer("200 OK", "application/x-www-form-urlencoded", form),
            answer("400 Bad Request", "application/json", json),
        ] {
            let (result, _) = exchange(a).await;
            assert_eq!(result.unwrap_err(), want);
        }
        let (result, _) = exchange(answer(
            "200 OK",
            "application/json",
            r#"{"error":"incorrect_client_credentials"}"#,
        ))
        .await;
        assert_eq!(
            result.unwrap_err(),
            LoginError::Upstream("github: token refused: incorrect_client_credentials ".into())
        );
    }

    #[tokio::test]
    async fn broken_answers_are_upstream_errors() {
        for a in [
            answer("200 OK", "text/html", "<html>"),
            answer("502 Bad Gateway", "text/html", "<html>"),
            answer("200 OK", "application/json", r#"{"scope":""}"#),
        ] {
            let (result, _) = exchange(a).await;
            let e = result.unwrap_err();
            assert!(
                matches!(&e, LoginError::Upstream(m) if m.starts_with("github: token answer: ")),
                "{e:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_slow_token_endpoint_is_a_timeout() {
        let mut a = answer("200 OK", "application/json", "{}");
        a.delay = Duration::from_secs(2);
        let (result, _) = exchange(a).await;
        assert_eq!(result.unwrap_err(), LoginError::Timeout);
    }
}
