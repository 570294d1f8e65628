//! Query and form parsing as `authhost::http::Params` does it (`form_urlencoded::parse`), then
//! what the routes do with the values: the `ALLOWED_SERVICES` / `INSTALLED_EXTENSIONS` parsers,
//! the JSONP callback check and the `next` query merge. Never a panic.
#![no_main]

use authhost::config::{parse_extensions, parse_services};
use authhost::http::valid_callback;
use authhost::redirects::merge_query_param;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(data).into_owned().collect();
    for (key, value) in &pairs {
        let _ = parse_services(value);
        let _ = parse_extensions(value);
        let _ = valid_callback(value);
        let merged = merge_query_param(value, key, "T");
        assert!(merged.contains('?'), "{merged}");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(entries) = parse_services(text) {
            for e in &entries {
                assert!(!e.alias.is_empty() && !e.plugin.is_empty(), "{e:?}");
            }
        }
        let _ = parse_extensions(text);
    }
});
