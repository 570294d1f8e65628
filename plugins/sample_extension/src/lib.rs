//! The original's `sample_extension`: appends one JSON line per hook call,
//! `{"hook": "on_new_user", "user": {...}}`, to the file named by `path`. Without a `path` it
//! logs through the host instead, and then only `{"hook": ..., "userid": ...}`: the profile
//! (e-mail, name) stays out of the host's log.

use authhost_plugin_api::sink::JsonLines;
use authhost_plugin_api::{Extension, Value, export_extension, json};

pub struct SampleExtension {
    out: JsonLines,
    /// Lines go to a file of the operator's choosing (else to the host's log).
    to_file: bool,
}

impl SampleExtension {
    fn record(&self, hook: &str, user: &Value) -> Result<(), String> {
        if self.to_file {
            self.out.write(&json!({ "hook": hook, "user": user }))
        } else {
            let userid = user.get("id").cloned().unwrap_or(Value::Null);
            self.out.write(&json!({ "hook": hook, "userid": userid }))
        }
    }
}

impl Extension for SampleExtension {
    fn new(config: Value) -> Result<Self, String> {
        Ok(SampleExtension {
            out: JsonLines::from_config(&config)?,
            to_file: config.get("path").and_then(Value::as_str).is_some(),
        })
    }

    fn on_new_user(&self, user: &Value) -> Result<(), String> {
        self.record("on_new_user", user)
    }

    fn on_user_login(&self, user: &Value) -> Result<(), String> {
        self.record("on_user_login", user)
    }

    fn on_user_logout(&self, user: &Value) -> Result<(), String> {
        self.record("on_user_logout", user)
    }
}

export_extension!(
    SampleExtension,
    "sample_extension",
    env!("CARGO_PKG_VERSION")
);
