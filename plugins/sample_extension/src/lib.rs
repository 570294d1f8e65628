//! The original's `sample_extension`: appends one JSON line per hook call,
//! `{"hook": "on_new_user", "user": {...}}`, to the file named by `path`, or logs it through
//! the host when `path` is unset.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;

use authhost_plugin_api::{Extension, Value, export_extension, json, log};

pub struct SampleExtension {
    file: Option<Mutex<File>>,
}

impl SampleExtension {
    fn record(&self, hook: &str, user: &Value) -> Result<(), String> {
        let line = json!({ "hook": hook, "user": user }).to_string();
        match &self.file {
            Some(file) => {
                let mut f = file
                    .lock()
                    .map_err(|_| "log file lock poisoned".to_string())?;
                writeln!(f, "{line}")
                    .and_then(|()| f.flush())
                    .map_err(|e| e.to_string())
            }
            None => {
                log::info(&line);
                Ok(())
            }
        }
    }
}

impl Extension for SampleExtension {
    fn new(config: Value) -> Result<Self, String> {
        let file = match config.get("path").and_then(Value::as_str) {
            Some(path) => Some(Mutex::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("path {path}: {e}"))?,
            )),
            None => None,
        };
        Ok(SampleExtension { file })
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
