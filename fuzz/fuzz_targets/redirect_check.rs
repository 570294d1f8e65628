//! `RedirectPolicy::check` on arbitrary `next`: never a panic, and an allowed target always lands
//! (per the url crate, a WHATWG parser) on an allowlisted origin, within its path prefix, or on
//! this host.
#![no_main]

use std::sync::OnceLock;

use authhost::redirects::RedirectPolicy;
use libfuzzer_sys::fuzz_target;
use url::Url;

const ALLOWED: [&str; 3] = [
    "https://app.example.org",
    "https://docs.example.org/guide/",
    "http://localhost:8080/",
];
const EXTERNAL: &str = "http://127.0.0.1:8000";

fn policy() -> &'static RedirectPolicy {
    static POLICY: OnceLock<RedirectPolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let allowed: Vec<String> = ALLOWED.iter().map(|s| s.to_string()).collect();
        RedirectPolicy::new(&allowed, EXTERNAL).expect("policy")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(next) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(target) = policy().check(next) else {
        return;
    };
    let own = Url::parse(EXTERNAL).expect("own");
    let landing = match Url::parse(&target) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => own.join(&target).expect("relative"),
        Err(e) => panic!("allowed target {target:?} does not parse: {e}"),
    };
    let origin = landing.origin();
    let allowed = origin == own.origin()
        || ALLOWED
            .iter()
            .any(|a| Url::parse(a).expect("entry").origin() == origin);
    assert!(allowed, "{next:?} allowed as {target:?}");
    if origin
        == Url::parse("https://docs.example.org/")
            .expect("docs")
            .origin()
    {
        let path = landing.path();
        assert!(
            path == "/guide" || path.starts_with("/guide/"),
            "{next:?} -> {target:?}"
        );
    }
    assert_eq!(policy().check(&target), Ok(target.clone()), "{next:?}");
});
