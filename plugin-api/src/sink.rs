//! Where an extension writes JSON lines: appended to the file named by its `path` setting
//! (relative to the configuration's folder, [`crate::config_path`]) and flushed per line, or,
//! with no `path`, to the host's log.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;

use serde_json::Value;

pub struct JsonLines {
    file: Option<Mutex<File>>,
}

impl JsonLines {
    /// From the plugin's configuration (`{"path": "..."}` or `{}`).
    pub fn from_config(config: &Value) -> Result<JsonLines, String> {
        let file = match config.get("path").and_then(Value::as_str) {
            Some(path) => {
                let full = crate::config_path(path);
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&full)
                    .map_err(|e| format!("path {}: {e}", full.display()))?;
                Some(Mutex::new(file))
            }
            None => None,
        };
        Ok(JsonLines { file })
    }

    /// Writes `line` as one line of JSON.
    pub fn write(&self, line: &Value) -> Result<(), String> {
        let text = line.to_string();
        match &self.file {
            Some(file) => {
                let mut f = file.lock().map_err(|_| "file lock poisoned".to_string())?;
                writeln!(f, "{text}")
                    .and_then(|()| f.flush())
                    .map_err(|e| e.to_string())
            }
            None => {
                crate::log::info(&text);
                Ok(())
            }
        }
    }
}
