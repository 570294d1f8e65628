//! Lifecycle hooks (`on_new_user`, `on_user_login`, `on_user_logout`) sent to the extensions in
//! `INSTALLED_EXTENSIONS` order. A failing hook is logged and counted; the request goes on.
//!
//! Until extensions load from shared libraries, the original's `sample_extension` is built in:
//! it logs each call through the host's log.

use std::sync::Arc;

use serde_json::Value;

use crate::config::{Config, parse_extensions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    NewUser,
    UserLogin,
    UserLogout,
}

impl Hook {
    pub fn name(self) -> &'static str {
        match self {
            Hook::NewUser => "on_new_user",
            Hook::UserLogin => "on_user_login",
            Hook::UserLogout => "on_user_logout",
        }
    }
}

pub trait Extension: Send + Sync {
    fn name(&self) -> &str;
    fn call(&self, hook: Hook, user: &Value) -> Result<(), String>;
}

/// The original's `sample_extension`: one line per hook call.
struct SampleExtension;

impl Extension for SampleExtension {
    fn name(&self) -> &str {
        "sample_extension"
    }

    fn call(&self, hook: Hook, user: &Value) -> Result<(), String> {
        tracing::info!(target: "sample_extension", hook = hook.name(), user = %user, "hook called");
        Ok(())
    }
}

#[derive(Clone, Default)]
pub struct Hooks {
    extensions: Vec<Arc<dyn Extension>>,
}

/// An extension named in `INSTALLED_EXTENSIONS` that cannot be found.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugins.extensions: extension `{0}` not found; available: sample_extension")]
pub struct UnknownExtension(pub String);

impl Hooks {
    pub fn from_config(config: &Config) -> Result<Hooks, Vec<UnknownExtension>> {
        let mut extensions: Vec<Arc<dyn Extension>> = Vec::new();
        let mut errors = Vec::new();
        for name in parse_extensions(&config.plugins.extensions).unwrap_or_default() {
            match name.replace('-', "_").as_str() {
                "sample_extension" => extensions.push(Arc::new(SampleExtension)),
                _ => errors.push(UnknownExtension(name)),
            }
        }
        if errors.is_empty() {
            Ok(Hooks { extensions })
        } else {
            Err(errors)
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.extensions
            .iter()
            .map(|e| e.name().to_string())
            .collect()
    }

    /// Calls `hook` on every extension in order, off the async workers.
    pub async fn fire(&self, hook: Hook, user: Value) {
        if self.extensions.is_empty() {
            return;
        }
        let extensions = self.extensions.clone();
        let run = tokio::task::spawn_blocking(move || {
            for ext in &extensions {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    ext.call(hook, &user)
                }))
                .unwrap_or_else(|_| Err("panicked".into()));
                let outcome = if result.is_ok() { "ok" } else { "error" };
                if let Err(e) = result {
                    tracing::warn!(extension = ext.name(), hook = hook.name(), error = %e, "extension hook failed");
                }
                metrics::counter!("authhost_hook_calls_total", "extension" => ext.name().to_string(), "hook" => hook.name(), "outcome" => outcome)
                    .increment(1);
            }
        });
        if run.await.is_err() {
            tracing::warn!(hook = hook.name(), "extension hooks task failed");
        }
    }
}
