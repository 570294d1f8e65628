//! Property tests (proptest): the redirect allowlist, user-token verification, the HTTP surface
//! and the configuration parsers, each on many generated inputs.
//!
//! Every property runs a bounded number of cases in the normal suite (`cargo test --workspace`).
//! `PROPTEST_CASES=N` sets the number of cases of every property to N, e.g. 100 times the
//! defaults below:
//!
//! ```sh
//! PROPTEST_CASES=25600 cargo test -p authhost-tests --test properties   # 100 x 256
//! PROPTEST_CASES=12800 cargo test -p authhost-tests --test properties -- http   # 100 x 128
//! ```
//!
//! A failure prints the smallest input proptest could shrink it to; no regression file is written
//! (the input in the message is what to paste into a unit test).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use authhost::config::{Config, EnvMap, parse_extensions, parse_services};
use authhost::keys::KeyRing;
use authhost::redirects::RedirectPolicy;
use authhost::tokens::TokenService;
use authhost_tests::{TestServer, key_pair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::Config as ProptestConfig;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};
use url::{Origin, Url};

// ---------------------------------------------------------------------------------------------
// Case counts
// ---------------------------------------------------------------------------------------------

/// `PROPTEST_CASES` when it is set to a number, else `default`. `ProptestConfig::with_cases`
/// replaces the count that `ProptestConfig::default()` read from the variable, so it is read
/// here. (proptest 1.12's `proptest!` also applies the `PROPTEST_*` variables to the config it is
/// given; both agree, and this keeps the variable working should that change.)
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases(default))
    }
}

/// Inserts each `(position, char)` into `text` at a char boundary.
fn sprinkle(mut text: String, noise: &[(Index, char)]) -> String {
    for (at, c) in noise {
        let boundaries: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(text.len()))
            .collect();
        text.insert(boundaries[at.index(boundaries.len())], *c);
    }
    text
}

// ---------------------------------------------------------------------------------------------
// 1. The redirect allowlist
// ---------------------------------------------------------------------------------------------

const ALLOWED: [&str; 3] = [
    "https://app.example.org",
    "https://docs.example.org/guide/",
    "http://localhost:8080/",
];

const EXTERNAL: [&str; 3] = [
    "http://127.0.0.1:8000",
    "https://auth.example.org",
    "https://auth.example.org/base/",
];

/// Characters that parsers drop, map, or read as delimiters.
const TRICKY_CHARS: [char; 32] = [
    '/', '\\', '@', ':', '.', '%', '#', '?', ' ', '\t', '\n', '\r', '\0', '\u{7f}', '\u{a0}',
    '\u{200b}', '\u{2028}', '\u{3000}', '\u{feff}', '\u{ff0e}', // fullwidth full stop
    '\u{3002}', // ideographic full stop
    '\u{ff0f}', // fullwidth solidus
    '\u{ff3c}', // fullwidth reverse solidus
    '\u{2044}', // fraction slash
    '\u{212a}', // Kelvin sign (folds to k)
    '\u{0430}', // Cyrillic a
    '\u{0131}', // dotless i
    '\u{00df}', // sharp s
    '\u{fe6b}', // small commercial at
    '\u{ff20}', // fullwidth commercial at
    '[', ']',
];

/// A `next` built from URL pieces chosen to confuse an allowlist, with some noise characters.
fn hostile_next() -> impl Strategy<Value = String> {
    let plausible_scheme = select(vec!["https://", "http://", "/"]);
    let scheme = select(vec![
        "",
        "/",
        "//",
        "///",
        "\\",
        "\\\\",
        "/\\",
        "\\/",
        "https://",
        "http://",
        "HTTPS://",
        "hTtP://",
        "https:",
        "http:",
        "https:/",
        "https:///",
        "https:\\\\",
        "https:/\\",
        "javascript:",
        "JaVaScRiPt:",
        "data:",
        "ftp://",
        "ws://",
        "file://",
        "blob:https://",
        " https://",
        "%2f%2f",
        "/%2f",
        "/%5c",
        "https%3a//",
        "./",
        "../",
        "/./",
        "/..//",
        "?",
        "#",
    ]);
    let userinfo = select(vec![
        "user@",
        "u:p@",
        "app.example.org@",
        "https://app.example.org@",
        "@",
        "%40",
        "app.example.org%40",
        ":@",
        "user:app.example.org@",
        "docs.example.org:443@",
    ]);
    let host = select(vec![
        "app.example.org",
        "APP.EXAMPLE.ORG",
        "app.example.org.",
        "app.example.org..",
        "app.example.org.evil.example",
        "evil.example",
        "evilapp.example.org",
        "app.example.organ",
        "pp.example.org",
        "xapp.example.org",
        "app.example.or",
        "docs.example.org",
        "example.org",
        "auth.example.org",
        "AUTH.example.org",
        "auth.example.org.evil.example",
        "127.0.0.1",
        "127.1",
        "0x7f.0.0.1",
        "2130706433",
        "localhost",
        "LOCALHOST",
        "localhost.",
        "localhost.evil.example",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "app%2eexample.org",
        "app.example.org%2f@evil.example",
        "\u{0430}pp.example.org",
        "app\u{3002}example\u{3002}org",
        "app\u{ff0e}example\u{ff0e}org",
        "xn--pp-8cd.example.org",
        "",
        "app.example.org\\@evil.example",
        "evil.example\\.app.example.org",
        "evil.example#.app.example.org",
        "evil.example?.app.example.org",
        "evil.example/app.example.org",
        "evil.example%23@app.example.org",
    ]);
    let port = select(vec![
        ":443",
        ":444",
        ":80",
        ":8000",
        ":8080",
        ":",
        ":0443",
        ":08080",
        ":65536",
        ":99999",
        ":-1",
        ":+443",
        ":8080@evil.example",
    ]);
    let path = select(vec![
        "",
        "/",
        "/x",
        "/guide",
        "/guide/",
        "/guide/page",
        "/Guide/page",
        "/guidebook",
        "/guide/../admin",
        "/guide/%2e%2e/admin",
        "/guide/%2E%2E/admin",
        "/guide/.%2e/admin",
        "/guide/..%2fadmin",
        "/guide%2f..%2fadmin",
        "/guide/..\\admin",
        "/guide/..;/admin",
        "/./guide/x",
        "/admin/../guide/x",
        "//evil.example",
        "/\\evil.example",
        "/%2f%2fevil.example",
        "/%5c%5cevil.example",
        "/base/x",
        "/base/../x",
    ]);
    let tail = select(vec![
        "",
        "",
        "?x=1",
        "#f",
        "#@evil.example",
        "?next=//evil.example",
        "?@evil.example",
        "#\\@evil.example",
        "?a=b#c",
    ]);
    let noise = prop::collection::vec((any::<Index>(), select(TRICKY_CHARS.to_vec())), 0..3);
    let scheme = prop_oneof![2 => plausible_scheme, 3 => scheme];
    let userinfo = prop_oneof![3 => Just(""), 1 => userinfo];
    let port = prop_oneof![3 => Just(""), 1 => port];
    (scheme, userinfo, host, port, path, tail, noise).prop_map(
        |(scheme, userinfo, host, port, path, tail, noise)| {
            sprinkle(
                format!("{scheme}{userinfo}{host}{port}{path}{tail}"),
                &noise,
            )
        },
    )
}

/// Structured hostile targets, plus unstructured printable, URL-alphabet and arbitrary strings.
fn any_next() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => hostile_next(),
        1 => "[ -~]{0,48}",
        1 => "(/|//|https?://|https?:)[a-z.:@/\\\\%0-9?#\\[\\]-]{0,40}",
        1 => any::<String>(),
    ]
}

/// The origin a browser lands on after following `target` from this host, per the url crate
/// (a WHATWG URL parser, as browsers use): absolute targets by their own origin, relative ones
/// resolved against this host's address.
fn landing_url(target: &str, own: &Url) -> Result<Url, String> {
    match Url::parse(target) {
        Ok(url) => Ok(url),
        Err(url::ParseError::RelativeUrlWithoutBase) => own
            .join(target)
            .map_err(|e| format!("relative target: {e}")),
        Err(e) => Err(format!("target does not parse: {e}")),
    }
}

fn check_redirect(external: &str, next: &str) -> Result<(), TestCaseError> {
    let allowed: Vec<String> = ALLOWED.iter().map(|s| s.to_string()).collect();
    let policy = RedirectPolicy::new(&allowed, external).expect("policy");
    let Ok(target) = policy.check(next) else {
        return Ok(());
    };
    let own = Url::parse(external).unwrap();
    let landing =
        landing_url(&target, &own).map_err(|e| TestCaseError::fail(format!("{e}: {target}")))?;
    let origin = landing.origin();
    let mut origins: Vec<Origin> = ALLOWED
        .iter()
        .map(|a| Url::parse(a).unwrap().origin())
        .collect();
    origins.push(own.origin());
    prop_assert!(
        origins.contains(&origin),
        "next {next:?} was allowed as {target:?}, which lands on {:?}",
        origin.ascii_serialization()
    );
    // `https://docs.example.org/guide/` allows that path and what is below it, on a segment
    // boundary and after dot segments are resolved; never `/guidebook` or `/guide/../admin`.
    let docs = Url::parse("https://docs.example.org/").unwrap().origin();
    if origin == docs && origin != own.origin() {
        let path = landing.path();
        prop_assert!(
            path == "/guide" || path.starts_with("/guide/"),
            "next {next:?} was allowed as {target:?}, outside the /guide/ prefix ({path})"
        );
    }
    // What the policy hands out, it accepts again unchanged.
    prop_assert_eq!(
        policy.check(&target),
        Ok(target.clone()),
        "the allowed target of {:?} is not stable",
        next
    );
    Ok(())
}

/// Guards the open-redirect fix: whatever `next` a client sends, `RedirectPolicy::check` only ever
/// returns a target that lands on an allowlisted origin (within its path prefix) or on this host.
#[test]
fn redirects_only_ever_land_on_allowed_origins() {
    proptest!(config(256), |(external in select(EXTERNAL.to_vec()), next in any_next())| {
        check_redirect(external, &next)?;
    });
}

/// The allowlisted targets themselves, with noise: most stay allowed, and the property above
/// must still hold for every one that does (guards against a property that is vacuously true).
#[test]
fn near_misses_of_allowed_targets_stay_safe() {
    let valid = select(vec![
        "https://app.example.org/",
        "https://app.example.org/x?y=1#z",
        "https://docs.example.org/guide",
        "https://docs.example.org/guide/page",
        "http://localhost:8080/a/b",
        "/somewhere?x=1",
        "/",
    ]);
    let noise = prop::collection::vec((any::<Index>(), select(TRICKY_CHARS.to_vec())), 0..3);
    proptest!(config(256), |(external in select(EXTERNAL.to_vec()), base in valid, noise in noise)| {
        let allowed: Vec<String> = ALLOWED.iter().map(|s| s.to_string()).collect();
        let policy = RedirectPolicy::new(&allowed, external).unwrap();
        prop_assert!(policy.check(base).is_ok(), "{} should be allowed", base);
        check_redirect(external, &sprinkle(base.to_string(), &noise))?;
    });
}

// ---------------------------------------------------------------------------------------------
// 2. Token mutations
// ---------------------------------------------------------------------------------------------

/// A token service on test key 0: HS256 user tokens (the default), or RS256 user tokens with the
/// original's (legacy) tokens accepted too.
fn token_service(rs256_and_legacy: bool) -> TokenService {
    authhost::crypto::install();
    let (private, public) = key_pair(0);
    let mut env = EnvMap::new();
    env.insert("PRIVATE_KEY".into(), private.clone());
    env.insert("PUBLIC_KEY".into(), public.clone());
    if rs256_and_legacy {
        env.insert(
            "AUTHHOST_TOKENS__USER_TOKEN_ALGORITHM".into(),
            "RS256".into(),
        );
        env.insert("AUTHHOST_TOKENS__LEGACY_USER_TOKENS".into(), "true".into());
    }
    let config = Config::from_toml_str("", &env).expect("config");
    let keys = KeyRing::load(&config).expect("keys");
    TokenService::new(&config, Arc::new(keys))
}

struct TokenFixture {
    hs256: TokenService,
    rs256_legacy: TokenService,
    /// A user token of `hs256`, one of `rs256_legacy`, and an original-style token (no `kid`,
    /// HS256 with the legacy secret) that `rs256_legacy` accepts.
    hs_token: String,
    rs_token: String,
    legacy_token: String,
}

fn tokens() -> &'static TokenFixture {
    static FIXTURE: OnceLock<TokenFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let hs256 = token_service(false);
        let rs256_legacy = token_service(true);
        let hs_token = hs256.mint_user_token("user-1", None, None).unwrap();
        let rs_token = rs256_legacy.mint_user_token("user-1", None, None).unwrap();
        let legacy_token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &json!({"userid": "user-1", "exp": chrono::Utc::now().timestamp() + 86_400}),
            &jsonwebtoken::EncodingKey::from_secret(rs256_legacy.keys().signing.legacy_secret()),
        )
        .unwrap();
        assert!(hs256.verify_user_token(&hs_token).is_ok());
        assert!(hs256.accept_own_token(&hs_token).is_some());
        assert!(rs256_legacy.verify_user_token(&rs_token).is_ok());
        assert!(rs256_legacy.verify_user_token(&legacy_token).is_ok());
        TokenFixture {
            hs256,
            rs256_legacy,
            hs_token,
            rs_token,
            legacy_token,
        }
    })
}

#[derive(Debug, Clone)]
enum Secret {
    /// The RSA public key PEM as an HMAC secret: the classic algorithm confusion.
    PublicPem,
    Empty,
    Literal(&'static str),
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Flips one of the low 7 bits of a byte (the token is ASCII, so it stays ASCII).
    FlipBit(Index, u8),
    Replace(Index, char),
    Insert(Index, char),
    Delete(Index, usize),
    Truncate(Index),
    SwapCase(Index),
    SwapSegments(usize, usize),
    DuplicateSegment(usize),
    DropSegment(usize),
    Append(&'static str),
    Prepend(&'static str),
    /// Sets a claim and re-encodes the payload, keeping header and signature.
    SetClaim(&'static str, Value),
    RemoveClaim(&'static str),
    ShiftExp(i64),
    /// Re-encodes the same claims differently (key order, whitespace).
    Reserialize(bool),
    SetHeader(&'static str, Value),
    RemoveHeader(&'static str),
    /// Signs header and payload again with `alg` and a key this host never signs with.
    ResignHmac(jsonwebtoken::Algorithm, Secret),
    /// Signs header and payload again with RS256 and the other test key (not in the key ring).
    ResignOtherRsa,
    /// The original payload, base64 with padding or the standard alphabet.
    PaddedPayload,
}

const TOKEN_CHARS: &str =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ %\u{e9}";

fn mutation() -> impl Strategy<Value = Mutation> {
    let token_char = select(TOKEN_CHARS.chars().collect::<Vec<_>>());
    let claim = select(vec![
        "userid",
        "iat",
        "exp",
        "iss",
        "typ",
        "admin",
        "permissions",
        "nbf",
        "aud",
        "sub",
    ]);
    let value = select(vec![
        json!("user-2"),
        json!("user-1"),
        json!(""),
        json!(null),
        json!(0),
        json!(-1),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(1.5),
        json!("user"),
        json!("permission"),
        json!(true),
        json!([]),
        json!({}),
        json!(["user-1"]),
        json!("http://127.0.0.1:8000"),
        json!("https://evil.example"),
    ]);
    let header_key = select(vec![
        "alg", "kid", "typ", "jku", "jwk", "x5u", "crit", "b64", "cty",
    ]);
    let header_value = select(vec![
        json!("none"),
        json!("None"),
        json!("HS256"),
        json!("HS384"),
        json!("HS512"),
        json!("RS256"),
        json!("RS512"),
        json!("PS256"),
        json!("ES256"),
        json!("EdDSA"),
        json!("hs256"),
        json!(""),
        json!(null),
        json!("../../../dev/null"),
        json!("https://evil.example/jwks.json"),
        json!(false),
        json!(["b64"]),
        json!({"kty": "oct", "k": "AAAA"}),
    ]);
    let hmac_alg = select(vec![
        jsonwebtoken::Algorithm::HS256,
        jsonwebtoken::Algorithm::HS384,
        jsonwebtoken::Algorithm::HS512,
    ]);
    let secret = prop_oneof![
        Just(Secret::PublicPem),
        Just(Secret::Empty),
        select(vec!["secret", "user-1", "none"]).prop_map(Secret::Literal),
    ];
    let junk = select(vec![
        "", ".", "..", "=", "==", " ", "\n", "A", ".A", ".e30", "%00", "\u{0}",
    ]);
    prop_oneof![
        (any::<Index>(), 0u8..7).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<Index>(), token_char.clone()).prop_map(|(i, c)| Mutation::Replace(i, c)),
        (any::<Index>(), token_char).prop_map(|(i, c)| Mutation::Insert(i, c)),
        (any::<Index>(), 1usize..8).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<Index>().prop_map(Mutation::Truncate),
        any::<Index>().prop_map(Mutation::SwapCase),
        (0usize..3, 0usize..3).prop_map(|(a, b)| Mutation::SwapSegments(a, b)),
        (0usize..3).prop_map(Mutation::DuplicateSegment),
        (0usize..3).prop_map(Mutation::DropSegment),
        junk.clone().prop_map(Mutation::Append),
        junk.prop_map(Mutation::Prepend),
        (claim.clone(), value).prop_map(|(k, v)| Mutation::SetClaim(k, v)),
        claim.prop_map(Mutation::RemoveClaim),
        (-100_000_000i64..100_000_000).prop_map(Mutation::ShiftExp),
        any::<bool>().prop_map(Mutation::Reserialize),
        (header_key.clone(), header_value).prop_map(|(k, v)| Mutation::SetHeader(k, v)),
        header_key.prop_map(Mutation::RemoveHeader),
        (hmac_alg, secret).prop_map(|(a, s)| Mutation::ResignHmac(a, s)),
        Just(Mutation::ResignOtherRsa),
        Just(Mutation::PaddedPayload),
    ]
}

fn decode_json(segment: &str) -> Option<serde_json::Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn encode_json(map: &serde_json::Map<String, Value>, pretty: bool) -> String {
    let text = if pretty {
        serde_json::to_string_pretty(map).unwrap()
    } else {
        serde_json::to_string(map).unwrap()
    };
    URL_SAFE_NO_PAD.encode(text)
}

/// Edits the JSON of segment `which` (0 header, 1 payload), if the token still has it.
fn edit_segment(
    token: &str,
    which: usize,
    pretty: bool,
    edit: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    if let Some(mut map) = parts.get(which).and_then(|p| decode_json(p)) {
        edit(&mut map);
        parts[which] = encode_json(&map, pretty);
    }
    parts.join(".")
}

fn resign(token: &str, signature: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let mut parts = token.splitn(3, '.');
    let (Some(header), Some(payload)) = (parts.next(), parts.next()) else {
        return token.to_string();
    };
    let signed = format!("{header}.{payload}");
    let sig = URL_SAFE_NO_PAD.encode(signature(signed.as_bytes()));
    format!("{signed}.{sig}")
}

fn char_boundaries(text: &str) -> Vec<usize> {
    text.char_indices().map(|(i, _)| i).collect()
}

fn apply(token: &str, mutation: &Mutation) -> String {
    let mut t = token.to_string();
    let positions = char_boundaries(&t);
    let at = |i: &Index| positions.get(i.index(positions.len().max(1))).copied();
    match mutation {
        Mutation::FlipBit(i, bit) => {
            if let Some(p) = at(i) {
                let mut bytes = t.into_bytes();
                if bytes[p].is_ascii() {
                    bytes[p] ^= 1 << bit;
                }
                t = String::from_utf8(bytes).unwrap();
            }
        }
        Mutation::Replace(i, c) => {
            if let Some(p) = at(i) {
                let old = t[p..].chars().next().unwrap();
                t.replace_range(p..p + old.len_utf8(), &c.to_string());
            }
        }
        Mutation::Insert(i, c) => {
            let p = at(i).unwrap_or(0);
            t.insert(p, *c);
        }
        Mutation::Delete(i, n) => {
            if let Some(p) = at(i) {
                let end = t[p..]
                    .char_indices()
                    .nth(*n)
                    .map_or(t.len(), |(j, _)| p + j);
                t.replace_range(p..end, "");
            }
        }
        Mutation::Truncate(i) => {
            if let Some(p) = at(i) {
                t.truncate(p);
            }
        }
        Mutation::SwapCase(i) => {
            if let Some(p) = at(i) {
                let c = t[p..].chars().next().unwrap();
                let swapped: String = if c.is_ascii_uppercase() {
                    c.to_ascii_lowercase().to_string()
                } else {
                    c.to_ascii_uppercase().to_string()
                };
                t.replace_range(p..p + c.len_utf8(), &swapped);
            }
        }
        Mutation::SwapSegments(a, b) => {
            let mut parts: Vec<&str> = token.split('.').collect();
            if *a < parts.len() && *b < parts.len() {
                parts.swap(*a, *b);
            }
            t = parts.join(".");
        }
        Mutation::DuplicateSegment(a) => {
            let mut parts: Vec<&str> = token.split('.').collect();
            if let Some(p) = parts.get(*a).copied() {
                parts.insert(*a, p);
            }
            t = parts.join(".");
        }
        Mutation::DropSegment(a) => {
            let mut parts: Vec<&str> = token.split('.').collect();
            if *a < parts.len() {
                parts.remove(*a);
            }
            t = parts.join(".");
        }
        Mutation::Append(s) => t.push_str(s),
        Mutation::Prepend(s) => t.insert_str(0, s),
        Mutation::SetClaim(k, v) => {
            t = edit_segment(token, 1, false, |m| {
                m.insert(k.to_string(), v.clone());
            })
        }
        Mutation::RemoveClaim(k) => {
            t = edit_segment(token, 1, false, |m| {
                m.remove(*k);
            })
        }
        Mutation::ShiftExp(d) => {
            t = edit_segment(token, 1, false, |m| {
                if let Some(exp) = m.get("exp").and_then(Value::as_i64) {
                    m.insert("exp".into(), json!(exp.saturating_add(*d)));
                }
            })
        }
        Mutation::Reserialize(pretty) => t = edit_segment(token, 1, *pretty, |_| {}),
        Mutation::SetHeader(k, v) => {
            t = edit_segment(token, 0, false, |m| {
                m.insert(k.to_string(), v.clone());
            })
        }
        Mutation::RemoveHeader(k) => {
            t = edit_segment(token, 0, false, |m| {
                m.remove(*k);
            })
        }
        Mutation::ResignHmac(alg, secret) => {
            let name = format!("{alg:?}");
            let with_alg = edit_segment(token, 0, false, |m| {
                m.insert("alg".into(), json!(name));
            });
            let key: Vec<u8> = match secret {
                Secret::PublicPem => key_pair(0).1.as_bytes().to_vec(),
                Secret::Empty => Vec::new(),
                Secret::Literal(s) => s.as_bytes().to_vec(),
            };
            t = resign(&with_alg, |msg| {
                let key = jsonwebtoken::EncodingKey::from_secret(&key);
                let sig = jsonwebtoken::crypto::sign(msg, &key, *alg).unwrap();
                URL_SAFE_NO_PAD.decode(sig).unwrap()
            });
        }
        Mutation::ResignOtherRsa => {
            let with_alg = edit_segment(token, 0, false, |m| {
                m.insert("alg".into(), json!("RS256"));
            });
            t = resign(&with_alg, |msg| {
                let key =
                    jsonwebtoken::EncodingKey::from_rsa_pem(key_pair(1).0.as_bytes()).unwrap();
                let sig =
                    jsonwebtoken::crypto::sign(msg, &key, jsonwebtoken::Algorithm::RS256).unwrap();
                URL_SAFE_NO_PAD.decode(sig).unwrap()
            });
        }
        Mutation::PaddedPayload => {
            let parts: Vec<&str> = token.split('.').collect();
            if parts.len() == 3
                && let Ok(bytes) = URL_SAFE_NO_PAD.decode(parts[1])
            {
                let padded = base64::engine::general_purpose::STANDARD.encode(bytes);
                t = format!("{}.{padded}.{}", parts[0], parts[2]);
            }
        }
    }
    t
}

/// base64url that ignores the unused low bits of a final character (RFC 4648 §3.5 lets
/// encoders leave them non-zero; a strict decoder refuses them).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_allow_trailing_bits(true),
);

/// Whether `a` and `b` are the same three segments once decoded: the one kind of textual
/// difference that is not a different token.
fn same_bytes(a: &str, b: &str) -> bool {
    let decode = |t: &str| -> Option<Vec<Vec<u8>>> {
        let parts: Vec<&str> = t.split('.').collect();
        (parts.len() == 3)
            .then(|| parts.iter().map(|p| LENIENT.decode(p).ok()).collect())
            .flatten()
    };
    matches!((decode(a), decode(b)), (Some(x), Some(y)) if x == y)
}

fn check_refused(
    service: &TokenService,
    original: &str,
    mutations: &[Mutation],
) -> Result<(), TestCaseError> {
    let mutated = mutations
        .iter()
        .fold(original.to_string(), |t, m| apply(&t, m));
    if mutated == original {
        return Ok(());
    }
    let verdict = service.verify_user_token(&mutated);
    let fast = service.accept_own_token(&mutated);
    if same_bytes(&mutated, original) {
        // Only the unused bits of a final base64url character changed: the decoded token is
        // the original one. Accepting it would be harmless, but the decoders here refuse it.
        prop_assert!(
            verdict.is_err(),
            "accepted a non-canonical encoding: {mutated}"
        );
        return Ok(());
    }
    prop_assert!(
        verdict.is_err(),
        "verify_user_token accepted a mutated token\n original: {}\n mutated:  {}\n verdict: {:?}",
        original,
        mutated,
        verdict
    );
    prop_assert!(
        fast.is_none(),
        "accept_own_token accepted a mutated token\n original: {}\n mutated:  {}",
        original,
        mutated
    );
    Ok(())
}

/// The one textual change `same_bytes` sets apart, tried exhaustively: the final character of the
/// payload or signature replaced by one that differs only in the unused low bits, so the decoded
/// bytes are the original's. Both verification paths decode strictly and refuse these too.
#[test]
fn non_canonical_base64_endings_are_refused() {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let f = tokens();
    for (service, token) in [
        (&f.hs256, &f.hs_token),
        (&f.rs256_legacy, &f.rs_token),
        (&f.rs256_legacy, &f.legacy_token),
    ] {
        let parts: Vec<&str> = token.split('.').collect();
        let mut tried = 0;
        for which in [1, 2] {
            let segment = parts[which];
            let (head, last) = segment.split_at(segment.len() - 1);
            for c in ALPHABET.chars().filter(|c| c.to_string() != last) {
                let alternative = format!("{head}{c}");
                if LENIENT.decode(&alternative).ok() != LENIENT.decode(segment).ok() {
                    continue;
                }
                let mut changed = parts.clone();
                changed[which] = &alternative;
                let changed = changed.join(".");
                assert!(service.verify_user_token(&changed).is_err(), "{changed}");
                assert!(service.accept_own_token(&changed).is_none(), "{changed}");
                tried += 1;
            }
        }
        // The signature always ends in unused bits (32 and 256 bytes are not multiples of 3).
        assert!(tried >= 3, "{token}");
    }
}

/// Guards token integrity on the HS256 fast path and jsonwebtoken: any change to a valid user
/// token's text (bytes, segments, claims re-encoded under the old signature, header algorithm or
/// key, a new signature with a key this host does not sign with) makes it refused.
#[test]
fn mutated_hs256_user_tokens_are_refused() {
    let f = tokens();
    proptest!(config(256), |(mutations in prop::collection::vec(mutation(), 1..4))| {
        check_refused(&f.hs256, &f.hs_token, &mutations)?;
    });
}

/// The same for RS256 user tokens and the original's tokens (no `kid`, legacy secret), with
/// legacy tokens switched on.
#[test]
fn mutated_rs256_and_legacy_tokens_are_refused() {
    let f = tokens();
    proptest!(config(256), |(
        legacy in any::<bool>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    )| {
        let original = if legacy { &f.legacy_token } else { &f.rs_token };
        check_refused(&f.rs256_legacy, original, &mutations)?;
    });
}

// ---------------------------------------------------------------------------------------------
// 3. The HTTP surface
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// 4. Configuration parsers
// ---------------------------------------------------------------------------------------------

fn services_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        select(vec![
            "", ";", ":", " ", ";;", "::", "a", "example", "example:", ":example", "a:b", "a:b:c",
            " a : b ", "\u{e9}", "\t", "\n", "\u{0}", "\u{3000}", "\u{a0}",
        ])
        .prop_map(str::to_string),
        "[a-z:; ]{0,12}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|parts| parts.concat())
}

/// Guards the `ALLOWED_SERVICES` / `INSTALLED_EXTENSIONS` parsers: they never panic, and what they
/// accept is clean (non-empty, trimmed, no separators, no duplicate alias or name).
#[test]
fn service_and_extension_lists_parse_cleanly() {
    proptest!(config(256), |(text in services_text())| {
        if let Ok(entries) = parse_services(&text) {
            for (i, e) in entries.iter().enumerate() {
                for part in [&e.alias, &e.plugin] {
                    prop_assert!(!part.is_empty() && part.trim() == part && !part.contains(';'), "{:?} from {:?}", e, text);
                }
                prop_assert!(!e.alias.contains(':'), "{:?} from {:?}", e, text);
                prop_assert!(entries[..i].iter().all(|o| o.alias != e.alias), "duplicate alias from {:?}", text);
            }
        }
        if let Ok(names) = parse_extensions(&text) {
            for (i, n) in names.iter().enumerate() {
                prop_assert!(!n.is_empty() && n.trim() == n && !n.contains(';'), "{:?} from {:?}", n, text);
                prop_assert!(!names[..i].contains(n), "duplicate extension from {:?}", text);
            }
        }
    });
}

fn env_name() -> impl Strategy<Value = String> {
    let section = select(vec![
        "SERVER",
        "DATABASE",
        "KEYS",
        "TOKENS",
        "REDIRECTS",
        "CORS",
        "PLUGINS",
        "PROVIDERS",
        "CACHES",
        "LOGIN",
        "server",
        "",
        "NOPE",
    ]);
    let key = select(vec![
        "LISTEN",
        "PREFIX",
        "EXTERNAL_ADDRESS",
        "DATA_DIR",
        "LOG_FORMAT",
        "RUN_MIGRATIONS",
        "MAX_CONNECTIONS",
        "MAX_CONNECTIONS_PER_CLIENT",
        "HEADER_READ_TIMEOUT_MS",
        "TRUSTED_PROXIES",
        "ADMIN_LISTEN",
        "URL",
        "USER_CACHE_MS",
        "PRIVATE_KEY",
        "PUBLIC_KEY",
        "PUBLIC_KEY_FILE",
        "EXTRA_PUBLIC_KEY_FILES",
        "USER_TOKEN_DAYS",
        "PERMISSION_TOKEN_SECONDS",
        "USER_TOKEN_ALGORITHM",
        "LEGACY_USER_TOKENS",
        "ISSUER",
        "ALLOWED",
        "ALLOWED_ORIGINS",
        "SERVICES",
        "EXTENSIONS",
        "CALL_TIMEOUT_MS",
        "MAX_CONCURRENT_CALLS",
        "CONFIG",
        "DIRS",
        "DEV",
        "GITHUB",
        "GOOGLE",
        "CORP",
        "ENABLED",
        "KIND",
        "CLIENT_ID",
        "CLIENT_SECRET",
        "SCOPES",
        "TIMEOUT_MS",
        "",
    ]);
    prop_oneof![
        4 => (section, prop::collection::vec(key, 1..4))
            .prop_map(|(s, keys)| format!("AUTHHOST_{s}__{}", keys.join("__"))),
        2 => select(vec![
            "PRIVATE_KEY",
            "PUBLIC_KEY",
            "PUBLIC_KEY_FILE",
            "DATABASE_URL",
            "EXTERNAL_ADDRESS",
            "ALLOWED_SERVICES",
            "INSTALLED_EXTENSIONS",
            "GOOGLE_KEY",
            "GOOGLE_SECRET",
            "GITHUB_KEY",
            "GITHUB_SECRET",
            "AUTHHOST_PLUGIN_PATH",
            "AUTHHOST_CONFIG",
            "AUTHHOST_LOG",
            "AUTHHOST___",
            "AUTHHOST_____",
            "AUTHHOST_A____B",
            "AUTHHOST___X",
        ])
        .prop_map(str::to_string),
        1 => "AUTHHOST_[A-Za-z_]{0,24}",
    ]
}

fn env_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(vec![
            "",
            " ",
            "true",
            "false",
            "TRUE",
            "1",
            "0",
            "-1",
            "14",
            "99999999999999999999",
            "1e3",
            "nan",
            "[]",
            "[\"a\"]",
            "[\"https://app.example.org\"]",
            "[1, \"a\"]",
            "[[",
            "{a = 1}",
            "{}",
            "\"quoted\"",
            "127.0.0.1:8000",
            "0.0.0.0:80",
            "[::1]:1",
            "auth.example.org",
            "http://",
            "https://auth.example.org/",
            "sqlite::memory:",
            "postgres://u@h/db",
            "example:sample_permission_provider;example",
            "a;a",
            ":",
            "HS256",
            "RS256",
            "oidc",
            "/nonexistent/path.pem",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "\u{0}",
            "\u{1f980}",
        ])
        .prop_map(str::to_string),
        2 => "[ -~]{0,40}",
        1 => any::<String>(),
    ]
}

/// Guards start-up: no combination of `AUTHHOST_<SECTION>__<KEY>` and original variables (nor
/// TOML text) makes configuration loading panic; it may only answer errors.
#[test]
fn environment_overlay_never_panics() {
    proptest!(config(256), |(
        env in prop::collection::btree_map(env_name(), env_value(), 0..8),
        toml in prop_oneof![
            4 => Just(String::new()),
            1 => "[a-z_\\[\\]=\" .0-9\n]{0,60}",
            1 => any::<String>(),
        ],
    )| {
        let env: EnvMap = env;
        let _ = Config::from_toml_str(&toml, &env);
    });
}
