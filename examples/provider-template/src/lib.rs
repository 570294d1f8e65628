//! A permission provider for authhost.
//!
//! authhost calls `get_permissions(service, userid)` for every `authorize` request of a service
//! alias configured with this plugin; `service` is that alias. Answer a JSON object: its
//! values can be anything (booleans, numbers, lists, objects).

use authhost_plugin_api::{PermissionProvider, Value, config, export_provider, json, log};
use serde::Deserialize;

/// The plugin's `[plugins.config.<alias>]` table, read by serde: a wrong type or a misspelt
/// key is refused at start with its place (`admins[1]: invalid type: ...`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// `admins = ["<userid>", ...]`
    #[serde(default)]
    admins: Vec<String>,
}

pub struct TemplateProvider {
    admins: Vec<String>,
}

impl PermissionProvider for TemplateProvider {
    fn new(settings: Value) -> Result<Self, String> {
        let Settings { admins } = config(settings)?;
        log::info(&format!("provider-template started with {} admin(s)", admins.len()));
        Ok(TemplateProvider { admins })
    }

    fn get_permissions(&self, service: &str, userid: &str) -> Result<Value, String> {
        let admin = self.admins.iter().any(|a| a == userid);
        Ok(json!({ "service": service, "read": true, "write": admin }))
    }
}

// The plugin is named after the crate (`CARGO_CRATE_NAME`: the library file's name without
// `lib` and `.so`), so renaming the crate renames the plugin and nothing else needs an edit.
export_provider!(TemplateProvider, env!("CARGO_CRATE_NAME"), env!("CARGO_PKG_VERSION"));
