//! Where this host may send a browser (`next`): an exact allowlist, never a prefix match on text.
//!
//! An allowlist entry is an origin (`https://app.example.org`), or an origin with a path prefix
//! (`https://app.example.org/app/`) matched on path-segment boundaries after the URL parser has
//! resolved dot segments. Relative paths (`/somewhere`) stay on this host. Anything the URL
//! parser would silently repair (backslashes, control characters, whitespace) is refused up
//! front, because browsers repair it differently.

use url::Url;

/// One entry of `[redirects] allowed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedTarget {
    origin: String,
    /// Always starts with `/`; `/` means the whole origin.
    path_prefix: String,
}

impl AllowedTarget {
    pub fn parse(entry: &str) -> Result<AllowedTarget, String> {
        let url =
            strict_absolute(entry).ok_or_else(|| format!("`{entry}` is not an http(s) URL"))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("`{entry}` must not have a query or fragment"));
        }
        Ok(AllowedTarget {
            origin: url.origin().ascii_serialization(),
            path_prefix: url.path().to_string(),
        })
    }

    fn allows(&self, url: &Url) -> bool {
        if url.origin().ascii_serialization() != self.origin {
            return false;
        }
        let prefix = self.path_prefix.trim_end_matches('/');
        let path = url.path();
        prefix.is_empty() || path == prefix || path.starts_with(&format!("{prefix}/"))
    }
}

/// The serialized origin of `text` when it is exactly an http(s) origin.
pub fn parse_origin(text: &str) -> Option<String> {
    let url = strict_absolute(text)?;
    (url.path() == "/" && url.query().is_none() && url.fragment().is_none())
        .then(|| url.origin().ascii_serialization())
}

/// Parses an absolute http(s) URL, refusing anything a browser might read differently.
fn strict_absolute(text: &str) -> Option<Url> {
    if text.is_empty()
        || text
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return None;
    }
    let url = Url::parse(text).ok()?;
    let lower = text.to_ascii_lowercase();
    let scheme_ok = (url.scheme() == "http" && lower.starts_with("http://"))
        || (url.scheme() == "https" && lower.starts_with("https://"));
    if !scheme_ok || url.host_str().is_none_or(str::is_empty) {
        return None;
    }
    if !url.username().is_empty() || url.password().is_some() || text.contains('@') {
        return None;
    }
    // The authority as written: no extra slashes before it (`https:///host`) and no
    // percent-encoding in it (`app%2eexample.org`), both of which parsers quietly repair.
    let authority = text.split_once("://").map_or("", |(_, rest)| rest);
    let authority = authority.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('%') {
        return None;
    }
    Some(url)
}

/// The redirect allowlist of this host.
#[derive(Debug, Clone)]
pub struct RedirectPolicy {
    allowed: Vec<AllowedTarget>,
    own: Url,
}

/// Why a `next` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`next` is not an allowed redirect target")]
pub struct RedirectRefused;

impl RedirectPolicy {
    /// `external_address` is this host's own public base; relative paths resolve against it.
    pub fn new(allowed: &[String], external_address: &str) -> Result<RedirectPolicy, String> {
        let own = Url::parse(external_address).map_err(|e| format!("external address: {e}"))?;
        let allowed = allowed
            .iter()
            .map(|e| AllowedTarget::parse(e))
            .collect::<Result<_, _>>()?;
        Ok(RedirectPolicy { allowed, own })
    }

    /// Returns the target to redirect to, or why not.
    pub fn check(&self, next: &str) -> Result<String, RedirectRefused> {
        if next.len() > 4096
            || next
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        {
            return Err(RedirectRefused);
        }
        if next.starts_with('/') {
            // `//host` and `/\host` are scheme-relative to a browser: another host.
            if next.starts_with("//") {
                return Err(RedirectRefused);
            }
            let resolved = self.own.join(next).map_err(|_| RedirectRefused)?;
            if resolved.origin() != self.own.origin() {
                return Err(RedirectRefused);
            }
            return Ok(next.to_string());
        }
        let url = strict_absolute(next).ok_or(RedirectRefused)?;
        // This host's own pages are as allowed as the relative paths to them.
        if url.origin() == self.own.origin() || self.allowed.iter().any(|a| a.allows(&url)) {
            Ok(url.to_string())
        } else {
            Err(RedirectRefused)
        }
    }
}

/// Sets `name=value` in the query of `target` the way the original did: blank parameters are
/// dropped, a repeated key keeps its first position and its last value, an existing `name`
/// keeps its place, and the fragment is preserved.
pub fn merge_query_param(target: &str, name: &str, value: &str) -> String {
    let (before_fragment, fragment) = match target.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (target, None),
    };
    let (base, query) = match before_fragment.split_once('?') {
        Some((b, q)) => (b, q),
        None => (before_fragment, ""),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if v.is_empty() {
            continue;
        }
        match pairs.iter_mut().find(|(existing, _)| *existing == k) {
            Some(slot) => slot.1 = v.into_owned(),
            None => pairs.push((k.into_owned(), v.into_owned())),
        }
    }
    match pairs.iter_mut().find(|(k, _)| k == name) {
        Some(slot) => slot.1 = value.to_string(),
        None => pairs.push((name.to_string(), value.to_string())),
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let mut out = format!("{base}?{query}");
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RedirectPolicy {
        RedirectPolicy::new(
            &[
                "https://app.example.org".into(),
                "https://docs.example.org/guide/".into(),
            ],
            "http://127.0.0.1:8000",
        )
        .expect("valid")
    }

    #[test]
    fn allows_listed_origins_paths_and_relative() {
        let p = policy();
        for ok in [
            "https://app.example.org/",
            "https://app.example.org/x?y=1#z",
            "https://APP.example.org/x",
            "https://docs.example.org/guide",
            "https://docs.example.org/guide/page",
            "/somewhere?x=1",
            "/",
        ] {
            assert!(p.check(ok).is_ok(), "{ok} should be allowed");
        }
    }

    #[test]
    fn refuses_hostile_targets() {
        let p = policy();
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "http:evil.example",
            "https:evil.example",
            "https://app.example.org@evil.example/",
            "https://evil.example#@app.example.org",
            "https://app.example.org.evil.example/",
            "https://app.example.organ/",
            "http://app.example.org/",
            "https://app.example.org:444/",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "https://app.example.org/\r\nSet-Cookie: x",
            " https://app.example.org/",
            "https://docs.example.org/guidebook",
            "https://docs.example.org/guide/../admin",
            "https://docs.example.org/guide/%2e%2e/admin",
            "https://docs.example.org/",
            "evil.example",
            "",
        ] {
            assert!(p.check(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn merges_like_the_original() {
        assert_eq!(
            merge_query_param("http://a.org/p?x=1&x=2&e=&jwt=old#f", "jwt", "NEW"),
            "http://a.org/p?x=2&jwt=NEW#f"
        );
        assert_eq!(
            merge_query_param("/abs/path?q=a+b%20c", "jwt", "T"),
            "/abs/path?q=a+b+c&jwt=T"
        );
        assert_eq!(merge_query_param("", "jwt", "T"), "?jwt=T");
    }
}
