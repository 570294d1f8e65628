//! The redirect allowlist: no generated `next` lands anywhere but an allowed origin.

use authhost::redirects::RedirectPolicy;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use url::{Origin, Url};

use super::{config, sprinkle};

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
pub(super) fn landing_url(target: &str, own: &Url) -> Result<Url, String> {
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
