//! Calling plugins: off the async workers, with a deadline, fail closed. A provider that errs,
//! panics, overruns its deadline or answers something other than a JSON object yields `{}`; a
//! failing hook is logged and counted and the request goes on. (A call that overran keeps its
//! thread until the plugin returns, Rust cannot stop a thread; the pool stands in for it, see
//! `call_pool.rs`.)

use std::sync::Arc;
use std::time::Instant;

use authhost_plugin_api::{HOOK_NEW_USER, HOOK_USER_LOGIN, HOOK_USER_LOGOUT};
use serde_json::{Value, json};

use super::PluginSet;

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

    fn number(self) -> u8 {
        match self {
            Hook::NewUser => HOOK_NEW_USER,
            Hook::UserLogin => HOOK_USER_LOGIN,
            Hook::UserLogout => HOOK_USER_LOGOUT,
        }
    }
}

/// How a call ended, as the metrics label it.
fn outcome<T>(result: &Result<T, String>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) if e.starts_with("panicked") => "panic",
        Err(e) if e == "timeout" => "timeout",
        Err(e) if e.starts_with("busy") => "busy",
        Err(e) if e.starts_with("answer is not") => "invalid",
        Err(_) => "error",
    }
}

impl PluginSet {
    /// Runs a plugin call on the call threads, waiting for a free one included, all within the
    /// deadline.
    async fn run<T: Send + 'static>(
        &self,
        call: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        self.pool.run_within(self.timeout, call).await
    }

    /// The permissions `user` (the profile) has for `service`: `{}` when no provider serves the
    /// alias or the provider gave no usable answer.
    pub async fn permissions(&self, service: &str, user: Value) -> Value {
        let Some(entry) = self.providers.get(service).cloned() else {
            return json!({});
        };
        let started = Instant::now();
        let alias = service.to_string();
        let result = match self
            .run(move || entry.instance.get_permissions_for_user(&alias, &user))
            .await
        {
            Ok(v) if !v.is_object() => Err("answer is not a JSON object".to_string()),
            r => r,
        };
        let label = outcome(&result);
        metrics::counter!("authhost_plugin_calls_total", "service" => service.to_string(), "outcome" => label).increment(1);
        metrics::histogram!("authhost_plugin_call_duration_seconds", "service" => service.to_string())
            .record(started.elapsed().as_secs_f64());
        result.unwrap_or_else(|e| {
            tracing::warn!(service, outcome = label, error = %e, "permission provider gave no answer; answering {{}}");
            json!({})
        })
    }

    /// Calls `hook` on every extension, in order, each with the deadline.
    pub async fn fire(&self, hook: Hook, user: Value) {
        let user = Arc::new(user);
        for ext in &self.extensions {
            let (ext, user) = (ext.clone(), user.clone());
            let name = ext.info.name.clone();
            let result = self
                .run(move || ext.instance.call(hook.number(), &user))
                .await;
            let label = outcome(&result);
            if let Err(e) = &result {
                tracing::warn!(extension = %name, hook = hook.name(), outcome = label, error = %e, "extension hook failed");
            }
            metrics::counter!("authhost_hook_calls_total", "extension" => name, "hook" => hook.name(), "outcome" => label)
                .increment(1);
        }
    }
}
