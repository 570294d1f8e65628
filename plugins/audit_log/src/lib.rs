//! An audit trail: one JSON line per hook event (`time` in Unix seconds, `event`, `userid`,
//! `provider`), appended to the file named by `path` and flushed per event; logged through the
//! host when `path` is unset.

use std::time::{SystemTime, UNIX_EPOCH};

use authhost_plugin_api::sink::JsonLines;
use authhost_plugin_api::{Extension, Value, export_extension, json};

pub struct AuditLog {
    out: JsonLines,
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
        self.out.write(&json!({
            "time": now.as_secs_f64(),
            "event": event,
            "userid": user.get("id").cloned().unwrap_or(Value::Null),
            "provider": provider,
        }))
    }
}

impl Extension for AuditLog {
    fn new(config: Value) -> Result<Self, String> {
        Ok(AuditLog {
            out: JsonLines::from_config(&config)?,
        })
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
