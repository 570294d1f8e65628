//! A GitHub-like upstream for tests, behaving as GitHub does where it matters:
//! - `GET /login/oauth/authorize` plays the user approving (or, for `deny`, refusing) and
//!   redirects to `redirect_uri` with `code` and `state`; the test names the user with `login=`;
//! - `POST /login/oauth/access_token` answers form-encoded unless `Accept: application/json`,
//!   reports errors with HTTP 200 (`bad_verification_code`), takes each code once, and checks the
//!   client secret and the PKCE verifier;
//! - `GET /api/user` gives 401 on a bad token, 403 without a User-Agent, `email: null` for
//!   private addresses; `GET /api/user/emails` lists `email`, `primary`, `verified`, `visibility`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "gh-client";
pub const CLIENT_SECRET: &str = "gh-secret";

/// A GitHub account: id, login, public e-mail, and the e-mails list `(email, primary, verified)`.
#[derive(Clone)]
pub struct Account {
    pub id: u64,
    pub login: &'static str,
    pub name: Option<&'static str>,
    pub public_email: Option<&'static str>,
    pub emails: Vec<(&'static str, bool, bool)>,
}

/// The accounts every test can use.
pub fn accounts() -> Vec<Account> {
    vec![
        Account {
            id: 1001,
            login: "private",
            name: Some("Private Person"),
            public_email: None,
            emails: vec![
                ("other@unverified.example", false, false),
                ("private@example.org", true, true),
            ],
        },
        Account {
            id: 1002,
            login: "unverified",
            name: None,
            public_email: Some("unverified@example.org"),
            emails: vec![("unverified@example.org", true, false)],
        },
        Account {
            id: 1003,
            login: "switcher",
            name: Some("Switcher"),
            public_email: Some("new@example.org"),
            emails: vec![
                ("new@example.org", true, true),
                ("old@example.org", false, true),
            ],
        },
        Account {
            id: 1004,
            login: "broken",
            name: None,
            public_email: None,
            emails: vec![],
        },
        Account {
            id: 1005,
            login: "slow",
            name: None,
            public_email: None,
            emails: vec![("slow@example.org", true, true)],
        },
    ]
}

struct Grant {
    login: String,
    challenge: String,
    redirect_uri: String,
}

#[derive(Default)]
struct FakeState {
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, String>,
    counter: u64,
}

type Shared = Arc<Mutex<FakeState>>;

pub struct FakeGitHub {
    pub base: String,
    _task: tokio::task::JoinHandle<()>,
}

impl FakeGitHub {
    pub async fn start() -> FakeGitHub {
        let state: Shared = Arc::default();
        let app = Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(access_token))
            .route("/api/user", get(user))
            .route("/api/user/emails", get(emails))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeGitHub { base, _task: task }
    }

    /// The `[providers.github]` table pointing authhost at this fake.
    pub fn provider_toml(&self) -> String {
        format!(
            "[providers.github]\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n\
             auth_url = \"{b}/login/oauth/authorize\"\ntoken_url = \"{b}/login/oauth/access_token\"\napi_url = \"{b}/api\"\n",
            b = self.base
        )
    }
}

async fn authorize(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    if get("client_id") != CLIENT_ID
        || get("code_challenge_method") != "S256"
        || get("response_type") != "code"
    {
        return (StatusCode::BAD_REQUEST, "bad authorize request").into_response();
    }
    let redirect = get("redirect_uri");
    let login = get("login");
    let target = if login == "deny" {
        format!(
            "{redirect}?error=access_denied&error_description=The+user+has+denied&state={}",
            get("state")
        )
    } else {
        let mut s = state.lock().expect("lock");
        s.counter += 1;
        let code = format!("code{}", s.counter);
        s.codes.insert(
            code.clone(),
            Grant {
                login,
                challenge: get("code_challenge"),
                redirect_uri: redirect.clone(),
            },
        );
        format!("{redirect}?code={code}&state={}", get("state"))
    };
    (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
}

async fn access_token(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let json_wanted = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let answer = |pairs: Vec<(&str, String)>| -> Response {
        if json_wanted {
            let map: serde_json::Map<String, Value> = pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            Json(Value::Object(map)).into_response()
        } else {
            let body = form_encode(&pairs);
            (
                [(header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
                body,
            )
                .into_response()
        }
    };
    let bad = |e: &str| {
        vec![
            ("error", e.to_string()),
            ("error_description", "refused".to_string()),
        ]
    };
    if get("client_id") != CLIENT_ID || get("client_secret") != CLIENT_SECRET {
        return answer(bad("incorrect_client_credentials"));
    }
    // Codes are single-use, like GitHub's.
    let Some(grant) = state.lock().expect("lock").codes.remove(&get("code")) else {
        return answer(bad("bad_verification_code"));
    };
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(get("code_verifier").as_bytes()));
    if computed != grant.challenge || grant.redirect_uri != get("redirect_uri") {
        return answer(bad("bad_verification_code"));
    }
    if grant.login == "slow" {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    }
    let mut s = state.lock().expect("lock");
    s.counter += 1;
    let token = format!("gho_{}", s.counter);
    s.tokens.insert(token.clone(), grant.login);
    answer(vec![
        ("access_token", token),
        ("token_type", "bearer".into()),
        ("scope", "read:user,user:email".into()),
    ])
}

fn form_encode(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.replace(' ', "+").replace(':', "%3A").replace(',', "%2C")
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The account behind the request's token, or GitHub's refusal.
fn account_for(state: &Shared, headers: &HeaderMap) -> Result<Account, (StatusCode, Json<Value>)> {
    if !headers.contains_key(header::USER_AGENT) {
        let message = "Request forbidden by administrative rules. Please make sure your request has a User-Agent header";
        return Err((StatusCode::FORBIDDEN, Json(json!({ "message": message }))));
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .unwrap_or_default();
    let login = state.lock().expect("lock").tokens.get(token).cloned();
    let unauthorized = || {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "message": "Bad credentials" })),
        )
    };
    let login = login.ok_or_else(unauthorized)?;
    accounts()
        .into_iter()
        .find(|a| a.login == login)
        .ok_or_else(unauthorized)
}

async fn user(State(state): State<Shared>, headers: HeaderMap) -> Response {
    match account_for(&state, &headers) {
        Err(refusal) => refusal.into_response(),
        Ok(a) if a.login == "broken" => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        Ok(a) => Json(json!({
            "id": a.id,
            "login": a.login,
            "name": a.name,
            "email": a.public_email,
            "avatar_url": format!("https://avatars.example/u/{}", a.id),
        }))
        .into_response(),
    }
}

async fn emails(State(state): State<Shared>, headers: HeaderMap) -> Response {
    match account_for(&state, &headers) {
        Err(refusal) => refusal.into_response(),
        Ok(a) => Json(
            a.emails
                .iter()
                .map(|(email, primary, verified)| {
                    json!({ "email": email, "primary": primary, "verified": verified, "visibility": if *primary { Value::from("private") } else { Value::Null } })
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
    }
}
