//! The original's `sample_permission_provider`: `{"provider-token": "<service>-<userid>"}`.

use authhost_plugin_api::{PermissionProvider, Value, export_provider, json};

pub struct SampleProvider;

impl PermissionProvider for SampleProvider {
    fn new(_config: Value) -> Result<Self, String> {
        Ok(SampleProvider)
    }

    fn get_permissions(&self, service: &str, userid: &str) -> Result<Value, String> {
        Ok(json!({ "provider-token": format!("{service}-{userid}") }))
    }
}

export_provider!(
    SampleProvider,
    "sample_permission_provider",
    env!("CARGO_PKG_VERSION")
);
