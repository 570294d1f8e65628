//! An audit trail: one JSON line per hook event (`time`, `event`, `userid`, `provider`),
//! appended to the file named by `path` and flushed per event; logged through the host when
//! `path` is unset.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use authhost_plugin_api::{Extension, Value, export_extension, json, log};

pub struct AuditLog {
    file: Option<Mutex<File>>,
}

impl AuditLog {
    fn record(&self, event: &str, user: &Value) -> Result<(), String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| e.to_string())?;
        let provider = user
            .get("provider_id")
            .and_then(Value::as_str)
            .and_then(|p| p.split(':').next())
            .unwrap_or_default();
        let line = json!({
            "time": now.as_secs_f64(),
            "event": event,
            "userid": user.get("id").cloned().unwrap_or(Value::Null),
            "provider": provider,
        })
        .to_string();
        match &self.file {
            Some(file) => {
                let mut f = file
                    .lock()
                    .map_err(|_| "audit file lock poisoned".to_string())?;
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

impl Extension for AuditLog {
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
        Ok(AuditLog { file })
    }

    fn on_new_user(&self, user: &Value) -> Result<(), String> {
        self.record("new_user", user)
    }

    fn on_user_login(&self, user: &Value) -> Result<(), String> {
        self.record("login", user)
    }

    fn on_user_logout(&self, user: &Value) -> Result<(), String> {
        self.record("logout", user)
    }
}

export_extension!(AuditLog, "audit_log", env!("CARGO_PKG_VERSION"));
