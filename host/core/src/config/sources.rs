//! The environment layers over the file: `AUTHHOST_<SECTION>__<KEY>` and the original's
//! variables.

use std::path::PathBuf;

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

use super::{ClientAuth, Config, EnvMap, ProviderConfig, ProviderKind};

/// `AUTHHOST_<SECTION>__<KEY>` variables, e.g. `AUTHHOST_SERVER__LISTEN`.
pub(super) struct AuthhostEnv(pub(super) EnvMap);

impl Provider for AuthhostEnv {
    fn metadata(&self) -> Metadata {
        Metadata::named("AUTHHOST_* environment variable(s)")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut root = Dict::new();
        for (name, value) in &self.0 {
            let Some(rest) = name.strip_prefix("AUTHHOST_") else {
                continue;
            };
            if !rest.contains("__") {
                continue; // AUTHHOST_CONFIG, AUTHHOST_PLUGIN_PATH, AUTHHOST_LOG: not config keys
            }
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            let value = env_value(&path, value);
            insert_path(&mut root, &path, value);
        }
        Ok(Profile::Default.collect(root))
    }
}

/// Converts an environment string to the type of the field it sets (figment does not convert
/// strings to numbers or booleans by itself), so `"14"` fills a number but a numeric secret
/// stays a string. Lists may be written inline: `["a", "b"]`.
fn env_value(path: &[String], raw: &str) -> Value {
    let t = raw.trim();
    let parsed = match field_kind(path) {
        Some(Value::Bool(..)) => t.parse::<bool>().ok().map(Value::from),
        Some(Value::Num(..)) => t.parse::<i64>().ok().map(Value::from),
        Some(Value::Array(..)) | Some(Value::Dict(..)) => inline_toml(t),
        _ => None,
    };
    parsed.unwrap_or_else(|| Value::from(raw.to_string()))
}

fn inline_toml(text: &str) -> Option<Value> {
    let mut table = toml::from_str::<toml::Table>(&format!("v = {text}")).ok()?;
    Value::serialize(table.remove("v")?).ok()
}

/// The value at `path` in a configuration with every optional field filled: its variant tells
/// the field's type. Provider names and client ids map to one probe each; plugin tables are
/// free-form.
fn field_kind(path: &[String]) -> Option<Value> {
    static PROBE: std::sync::OnceLock<Option<Value>> = std::sync::OnceLock::new();
    let probe = PROBE.get_or_init(|| {
        let mut c = Config::default();
        c.database.max_connections = Some(1);
        c.providers.insert(
            "probe".into(),
            ProviderConfig {
                enabled: Some(true),
                kind: Some(ProviderKind::Oidc),
                issuer: Some(String::new()),
                auth_url: Some(String::new()),
                token_url: Some(String::new()),
                api_url: Some(String::new()),
                scopes: Some(vec![]),
                client_auth: Some(ClientAuth::ClientSecretBasic),
                timeout_ms: Some(1),
                ..ProviderConfig::default()
            },
        );
        c.clients.insert(
            "probe".into(),
            super::ClientConfig {
                audience: Some(String::new()),
                ..super::ClientConfig::default()
            },
        );
        c.plugins.python = Some(super::PythonConfig {
            venv: Some(PathBuf::new()),
            path: Vec::new(),
        });
        c.keys.private_key_file = Some(PathBuf::new());
        c.keys.public_key_file = Some(PathBuf::new());
        Value::serialize(&c).ok()
    });
    let mut node = probe.as_ref()?;
    for (i, part) in path.iter().enumerate() {
        // Provider names and client ids map to one probe each.
        let key = if i == 1
            && path
                .first()
                .is_some_and(|p| p == "providers" || p == "clients")
        {
            "probe"
        } else {
            part
        };
        node = node.as_dict()?.get(key)?;
    }
    Some(node.clone())
}

pub(super) fn insert_path(dict: &mut Dict, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if entry.as_dict().is_none() {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

/// The original service's variables; they keep their meaning and override everything else.
pub(super) struct OriginalEnv(pub(super) EnvMap);

impl Provider for OriginalEnv {
    fn metadata(&self) -> Metadata {
        Metadata::named("the original's environment variable(s)")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let env = &self.0;
        let get = |k: &str| {
            env.get(k)
                .map(|v| v.as_str())
                .filter(|v| !v.trim().is_empty())
        };
        let mut root = Dict::new();
        let mut set = |path: &[&str], v: &str| {
            let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
            insert_path(&mut root, &path, Value::from(v.to_string()));
        };
        if let Some(v) = get("PRIVATE_KEY") {
            set(&["keys", "private_key"], v);
        }
        if let Some(v) = get("PUBLIC_KEY") {
            set(&["keys", "public_key"], v);
        }
        if let Some(v) = get("PRIVATE_KEY_FILE") {
            set(&["keys", "private_key_file"], v);
        }
        if let Some(v) = get("PUBLIC_KEY_FILE") {
            set(&["keys", "public_key_file"], v);
        }
        // The original enabled a provider only when both halves were set.
        if let (Some(k), Some(s)) = (get("GOOGLE_KEY"), get("GOOGLE_SECRET")) {
            set(&["providers", "google", "client_id"], k);
            set(&["providers", "google", "client_secret"], s);
        }
        if let (Some(k), Some(s)) = (get("GITHUB_KEY"), get("GITHUB_SECRET")) {
            set(&["providers", "github", "client_id"], k);
            set(&["providers", "github", "client_secret"], s);
        }
        if let Some(v) = get("DATABASE_URL") {
            set(&["database", "url"], v);
        }
        if let Some(v) = get("EXTERNAL_ADDRESS") {
            set(&["server", "external_address"], v);
        }
        // Present but empty still counts for the lists: `ALLOWED_SERVICES=` means none.
        if let Some(v) = env.get("ALLOWED_SERVICES") {
            set(&["plugins", "services"], v);
        }
        if let Some(v) = env.get("INSTALLED_EXTENSIONS") {
            set(&["plugins", "extensions"], v);
        }
        Ok(Profile::Default.collect(root))
    }
}
