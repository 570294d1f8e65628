//! User-token verification: no mutation of a valid token (bytes, segments, base64 endings,
//! re-signing with other keys) is accepted.

use std::sync::{Arc, OnceLock};

use authhost::config::{Config, EnvMap};
use authhost::keys::KeyRing;
use authhost::tokens::TokenService;
use authhost_tests::key_pair;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::{Value, json};

use super::config;

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
