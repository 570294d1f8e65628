//! The original's `sample_extension`: appends one JSON line per hook call,
//! `{"hook": "on_new_user", "user": {...}}`, to the file named by `path`, or logs it through
//! the host when `path` is unset.

use authhost_plugin_api::sink::JsonLines;
use authhost_plugin_api::{Extension, Value, export_extension, json};

pub struct SampleExtension {
    out: JsonLines,
}

impl Extension for SampleExtension {
    fn new(config: Value) -> Result<Self, String> {
        Ok(SampleExtension {
            out: JsonLines::from_config(&config)?,
        })
    }

    fn on_new_user(&self, user: &Value) -> Result<(), String> {
        self.out
            .write(&json!({ "hook": "on_new_user", "user": user }))
    }

    fn on_user_login(&self, user: &Value) -> Result<(), String> {
        self.out
            .write(&json!({ "hook": "on_user_login", "user": user }))
    }

    fn on_user_logout(&self, user: &Value) -> Result<(), String> {
        self.out
            .write(&json!({ "hook": "on_user_logout", "user": user }))
    }
}

export_extension!(
    SampleExtension,
    "sample_extension",
    env!("CARGO_PKG_VERSION")
);
