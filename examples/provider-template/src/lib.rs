//! A permission provider for authhost.
//!
//! authhost calls `get_permissions(service, userid)` for every `authorize` request of a service
//! alias configured with this plugin; `service` is that alias. Answer a JSON object: its
//! values can be anything (booleans, numbers, lists, objects).

use authhost_plugin_api::{PermissionProvider, Value, export_provider, json, log};

pub struct TemplateProvider {
    /// From `[plugins.config.<alias>] admins = ["<userid>", ...]`.
    admins: Vec<String>,
}

impl PermissionProvider for TemplateProvider {
    fn new(config: Value) -> Result<Self, String> {
        let admins = match config.get("admins") {
            None => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or("admins must be a list of user ids"))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("admins must be a list of user ids".into()),
        };
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
