//! `authhost config`: the effective configuration with secrets redacted.

use super::Config;

impl Config {
    /// The effective configuration as TOML, secrets redacted: the `Secret` fields, and in the
    /// plugins' settings (`[plugins.config.*]`, at any depth) every value whose name looks
    /// secret (`looks_secret`).
    pub fn to_redacted_toml(&self) -> String {
        let mut value = match toml::Value::try_from(self) {
            Ok(v) => v,
            Err(e) => return format!("# cannot render configuration: {e}\n"),
        };
        if let Some(tables) = value
            .get_mut("plugins")
            .and_then(|p| p.get_mut("config"))
            .and_then(toml::Value::as_table_mut)
        {
            for (_, settings) in tables.iter_mut() {
                redact_secret_looking(settings);
            }
        }
        // The database URL shows all but its password (a SQLite path has none).
        if let Some(url) = value
            .get_mut("database")
            .and_then(toml::Value::as_table_mut)
            .and_then(|db| db.get_mut("url"))
        {
            *url = toml::Value::String(without_password(self.database.url.expose()));
        }
        toml::to_string_pretty(&value)
            .unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

/// `url` with its password (and a `password` query parameter) replaced by `REDACTED`; a text
/// that is not a URL is all redacted, since where a password sits in it is unknown.
pub fn without_password(url: &str) -> String {
    if url.trim().is_empty() {
        return String::new();
    }
    let Ok(mut parsed) = url::Url::parse(url.trim()) else {
        return "<redacted>".into();
    };
    if parsed.password().is_some() && parsed.set_password(Some("REDACTED")).is_err() {
        return "<redacted>".into();
    }
    if parsed.query_pairs().any(|(k, _)| looks_secret(&k)) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if looks_secret(&k) {
                    "REDACTED".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// Whether a plugin setting's name looks like it holds a secret: it contains `secret`,
/// `password`, `passwd`, `pwd`, `token`, `key`, `credential`, `private` or `dsn`, in any case
/// (`api_key`, `clientSecret`, `TOKEN_URL`, ...).
pub fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "secret",
        "password",
        "passwd",
        "pwd",
        "token",
        "key",
        "credential",
        "private",
        "dsn",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// Replaces every value under a secret-looking name in `value` (tables and arrays, at any
/// depth) with `"<redacted>"`.
fn redact_secret_looking(value: &mut toml::Value) {
    match value {
        toml::Value::Table(table) => {
            for (name, v) in table.iter_mut() {
                if looks_secret(name) {
                    *v = toml::Value::String("<redacted>".into());
                } else {
                    redact_secret_looking(v);
                }
            }
        }
        toml::Value::Array(items) => items.iter_mut().for_each(redact_secret_looking),
        // A URL with a password in it (`postgres://user:pw@host/db`) under any name.
        toml::Value::String(text) => {
            if let Ok(mut url) = url::Url::parse(text)
                && url.password().is_some()
                && url.set_password(Some("<redacted>")).is_ok()
            {
                *text = url.to_string();
            }
        }
        _ => {}
    }
}
