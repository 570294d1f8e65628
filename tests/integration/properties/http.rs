//! The HTTP surface: random methods, routes, query strings, form bodies and headers never get a
//! server error or an answer that is not JSON where JSON is due.

use std::time::Duration;

use authhost_tests::TestServer;
use proptest::prelude::*;
use proptest::sample::select;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;
use url::{Origin, Url};

use super::config;
use super::redirects::landing_url;

/// The server's route table (`authhost::routes::paths`), with its `{provider}` filled in three
/// ways, plus paths it does not serve.
fn routes() -> Vec<&'static str> {
    let mut routes: Vec<&'static str> = authhost::routes::paths()
        .into_iter()
        .filter(|r| !r.contains('{'))
        .collect();
    routes.extend([
        "login/github",
        "login/google",
        "login/nope",
        "/metrics",
        "nope",
        "check/",
        "/",
    ]);
    routes
}

#[derive(Debug, Clone)]
enum Query {
    /// Form-encoded pairs.
    Pairs(Vec<(String, String)>),
    /// Written as is (the client percent-encodes only what may not stand in a URL).
    Raw(String),
}

#[derive(Debug, Clone)]
enum TokenUse {
    None,
    AuthToken,
    Bearer,
    QueryJwt,
    FormJwt,
}

#[derive(Debug, Clone)]
struct RandomRequest {
    method: &'static str,
    route: &'static str,
    query: Query,
    form: Option<Query>,
    headers: Vec<(&'static str, Vec<u8>)>,
    /// A fresh valid token of a logged-in user, and where it goes.
    token: TokenUse,
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(vec![
            "next", "jwt", "service", "username", "callback", "state", "code", "error", "iss",
            "email", "name", "provider", "",
        ])
        .prop_map(str::to_string),
        1 => "[a-zA-Z_%\\[\\]]{1,8}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    let interesting = select(vec![
        "",
        " ",
        "/",
        "//evil.example",
        "/\\evil.example",
        "https://app.example.org/x",
        "https://evil.example",
        "http://127.0.0.1:1/auth/check",
        "javascript:alert(1)",
        "example",
        "example2",
        "unknown",
        "cb",
        "jQuery1.cb",
        "a.b.",
        "1cb",
        "<script>alert(1)</script>",
        "%",
        "%zz",
        "%ff%fe",
        "%00",
        "\u{0}",
        "\u{feff}",
        "\u{4f60}\u{597d}",
        "\u{1f980}",
        "-",
        "..",
        "null",
        "true",
        "1e999",
        "-1",
        "9223372036854775808",
        "{}",
        "[]",
        "'\"",
        "ivy@example.org",
        "Ivy",
        "ivy",
        "IVY",
        "access_denied",
        "eyJhbGciOiJub25lIn0.e30.",
        "a.b.c",
    ])
    .prop_map(str::to_string);
    let long = (
        select(vec![
            "a",
            "%",
            "\u{e9}",
            "%zz",
            "/",
            "x y",
            "\u{1f980}",
            "=&",
        ]),
        0usize..2500,
    )
        .prop_map(|(piece, n)| {
            let mut s = piece.repeat(n);
            let mut cut = s.len().min(10 * 1024);
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s
        });
    prop_oneof![
        4 => interesting,
        2 => "[ -~]{0,64}",
        2 => any::<String>(),
        1 => long,
    ]
}

fn query() -> impl Strategy<Value = Query> {
    prop_oneof![
        3 => prop::collection::vec((key(), value()), 0..6).prop_map(Query::Pairs),
        1 => prop::collection::vec((key(), value()), 0..6).prop_map(|pairs| {
            Query::Raw(
                pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&"),
            )
        }),
        1 => "[ -~]{0,80}".prop_map(Query::Raw),
    ]
}

/// Bytes valid in an HTTP header value (visible ASCII, space, tab, obs-text).
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    let interesting = select(vec![
        "",
        "Bearer ",
        "Bearer",
        "bearer x",
        "Bearer  a.b.c  ",
        "Basic dXNlcjpwYXNz",
        "null",
        "https://app.example.org",
        "https://evil.example",
        "*",
        "jwt=abc",
        "a=b; c=d",
        "application/x-www-form-urlencoded",
        "application/json",
        "multipart/form-data; boundary=x",
        "eyJhbGciOiJub25lIn0.e30.",
    ])
    .prop_map(|s| s.as_bytes().to_vec());
    prop_oneof![
        3 => interesting,
        2 => "[ -~]{0,100}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(|bytes| {
            bytes
                .into_iter()
                .map(|b| if b == b'\t' || (b' '..0x7f).contains(&b) || b >= 0x80 { b } else { b'x' })
                .collect()
        }),
        1 => (select(vec!["Bearer ", "a", "\u{e9}"]), 0usize..2000)
            .prop_map(|(p, n)| p.repeat(n).into_bytes()),
    ]
}

fn request() -> impl Strategy<Value = RandomRequest> {
    let header = (
        select(vec![
            "auth-token",
            "authorization",
            "origin",
            "cookie",
            "content-type",
            "accept",
            "referer",
            "x-forwarded-for",
            "forwarded",
        ]),
        header_bytes(),
    );
    (
        select(vec![
            "GET", "GET", "GET", "POST", "POST", "HEAD", "OPTIONS", "PUT",
        ]),
        select(routes()),
        query(),
        prop::option::weighted(0.3, query()),
        prop::collection::vec(header, 0..4),
        prop_oneof![
            3 => Just(TokenUse::None),
            1 => Just(TokenUse::AuthToken),
            1 => Just(TokenUse::Bearer),
            1 => Just(TokenUse::QueryJwt),
            1 => Just(TokenUse::FormJwt),
        ],
    )
        .prop_map(
            |(method, route, query, form, headers, token)| RandomRequest {
                method,
                route,
                query,
                form,
                headers,
                token,
            },
        )
}

fn encode_query(q: &Query, extra: Option<(&str, &str)>) -> String {
    let mut text = match q {
        Query::Pairs(pairs) => url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish(),
        Query::Raw(raw) => raw.clone(),
    };
    if let Some((k, v)) = extra {
        let pair = url::form_urlencoded::Serializer::new(String::new())
            .append_pair(k, v)
            .finish();
        if !text.is_empty() {
            text.push('&');
        }
        text.push_str(&pair);
    }
    text
}

struct Answer {
    status: u16,
    content_type: String,
    location: Option<String>,
    body: Vec<u8>,
}

async fn send(server: &TestServer, req: &RandomRequest) -> Result<Answer, String> {
    let token = match req.token {
        TokenUse::None => None,
        // A fresh login each time: a random `logout` may have revoked the previous tokens.
        _ => Some(server.dev_login("prop@example.org", "Prop").await),
    };
    let token = token.as_deref();
    let path = if req.route.starts_with('/') {
        format!("{}{}", server.base, req.route)
    } else {
        server.url(req.route)
    };
    let query = encode_query(
        &req.query,
        token
            .filter(|_| matches!(req.token, TokenUse::QueryJwt))
            .map(|t| ("jwt", t)),
    );
    let mut url = Url::parse(&path).map_err(|e| e.to_string())?;
    url.set_query(Some(&query));
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap();
    let mut builder = server.client.request(method, url);
    for (name, value) in &req.headers {
        let value = HeaderValue::from_bytes(value).map_err(|e| e.to_string())?;
        builder = builder.header(HeaderName::from_static(name), value);
    }
    match (&req.token, token) {
        (TokenUse::AuthToken, Some(t)) => builder = builder.header("auth-token", t),
        (TokenUse::Bearer, Some(t)) => {
            builder = builder.header("authorization", format!("Bearer {t}"))
        }
        _ => {}
    }
    let form_jwt = token.filter(|_| matches!(req.token, TokenUse::FormJwt));
    if req.form.is_some() || form_jwt.is_some() {
        let body = encode_query(
            req.form.as_ref().unwrap_or(&Query::Raw(String::new())),
            form_jwt.map(|t| ("jwt", t)),
        );
        let has_type = req.headers.iter().any(|(n, _)| *n == "content-type");
        if !has_type {
            builder = builder.header("content-type", "application/x-www-form-urlencoded");
        }
        builder = builder.body(body);
    }
    let response = builder
        .send()
        .await
        .map_err(|e| format!("request failed: {e:?}"))?;
    let header = |name: reqwest::header::HeaderName| {
        response
            .headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let status = response.status().as_u16();
    let content_type = header(reqwest::header::CONTENT_TYPE)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let location = header(reqwest::header::LOCATION);
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("body: {e:?}"))?
        .to_vec();
    Ok(Answer {
        status,
        content_type,
        location,
        body,
    })
}

/// Guards the HTTP surface: random methods, routes, query strings, form bodies and headers
/// (with and without a valid token) never get a 5xx, a dropped connection or a hang; errors are
/// JSON, not HTML; and every redirect lands on an allowlisted origin or this host.
#[test]
fn http_random_requests_never_get_a_server_error() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(TestServer::start());
    // The test server's `[redirects] allowed` and `external_address` (see `base_toml`).
    let allowed: Vec<Origin> = ["https://app.example.org/", "http://127.0.0.1:1/"]
        .iter()
        .map(|u| Url::parse(u).unwrap().origin())
        .collect();
    let own = Url::parse("http://127.0.0.1:1/").unwrap();
    proptest!(config(128), |(req in request())| {
        let answer = rt
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(30), send(&server, &req)).await
            })
            .map_err(|_| TestCaseError::fail("no answer within 30 s"))?
            .map_err(TestCaseError::fail)?;
        prop_assert!(answer.status < 500, "status {}: {}", answer.status, String::from_utf8_lossy(&answer.body));
        let is_dev_form = req.route == "login/dev" && req.method == "GET" && answer.status == 200;
        if !answer.body.is_empty() && !matches!(answer.status, 301..=303 | 307 | 308) && !is_dev_form {
            prop_assert!(
                !answer.content_type.contains("html") && answer.body.trim_ascii_start().first() != Some(&b'<'),
                "HTML answer ({} {}): {}", answer.status, answer.content_type, String::from_utf8_lossy(&answer.body)
            );
        }
        if answer.status >= 400 && !answer.body.is_empty() {
            let json: Result<Value, _> = serde_json::from_slice(&answer.body);
            prop_assert!(
                json.as_ref().is_ok_and(|v| v.get("error").is_some()),
                "error answer {} is not JSON with an `error`: {}", answer.status, String::from_utf8_lossy(&answer.body)
            );
        }
        if let Some(location) = answer.location.as_deref() {
            let landing = landing_url(location, &own).map_err(TestCaseError::fail)?;
            prop_assert!(
                allowed.contains(&landing.origin()) || landing.origin() == own.origin(),
                "redirect to {}", location
            );
        }
    });
    rt.block_on(server.stop());
}
