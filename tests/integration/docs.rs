//! Documents that must stay true: every key of the configuration is described in
//! docs/configuration.md (the table operators read), so that a new setting cannot land
//! undocumented.

use authhost::config::{ClientConfig, Config, EnvMap, ProviderConfig};
use serde_json::Value;

fn workspace_file(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `section.key` for every key of every section the configuration serializes, and
/// `providers.<name>.key` for every key of a provider table.
fn configuration_keys() -> Vec<String> {
    let config = Config::from_toml_str("", &EnvMap::new()).expect("defaults are valid");
    let Value::Object(sections) = serde_json::to_value(&config).expect("serializes") else {
        panic!("the configuration is a table of sections");
    };
    let mut keys = Vec::new();
    for (section, value) in sections {
        if section == "providers" {
            let provider = serde_json::to_value(ProviderConfig::default()).expect("serializes");
            for key in provider.as_object().expect("a table").keys() {
                keys.push(format!("providers.<name>.{key}"));
            }
            continue;
        }
        if section == "clients" {
            let client = serde_json::to_value(ClientConfig::default()).expect("serializes");
            for key in client.as_object().expect("a table").keys() {
                keys.push(format!("clients.<id>.{key}"));
            }
            continue;
        }
        match value {
            Value::Object(table) => keys.extend(table.keys().map(|k| format!("{section}.{k}"))),
            _ => keys.push(section),
        }
    }
    keys
}

#[test]
fn every_configuration_key_is_in_docs_configuration_md() {
    let doc = workspace_file("docs/configuration.md");
    let keys = configuration_keys();
    assert!(keys.len() > 40, "too few keys found: {keys:?}");
    let missing: Vec<&String> = keys
        .iter()
        .filter(|key| {
            // `key`, `key/other` (two keys in one row) or `key.<name>` (a table of tables).
            let named = |k: &str| {
                ["`", "/", "."]
                    .iter()
                    .any(|end| doc.contains(&format!("`{k}{end}")))
            };
            // A provider key may be documented for a named provider (`providers.google.x`).
            let any_provider = key.strip_prefix("providers.<name>.").is_some_and(|k| {
                ["dev", "google", "github"]
                    .iter()
                    .any(|p| named(&format!("providers.{p}.{k}")))
            });
            !named(key) && !any_provider
        })
        .collect();
    assert!(
        missing.is_empty(),
        "configuration keys missing from docs/configuration.md: {missing:?}"
    );
}
