//! Calling plugins: off the async workers, with a deadline, fail closed, through one call path
//! for both kinds. Every way a call can fail is a `CallError` variant (its label is the metrics
//! `outcome`). A provider that errs, panics, overruns its deadline or answers something other
//! than a JSON object yields `{}`; a failing hook is logged and counted and the request goes on. (A call that overran keeps its
//! thread until the plugin returns, Rust cannot stop a thread; the pool stands in for it, see
//! `call_pool.rs`.)

use std::sync::Arc;
use std::time::Instant;

use authhost_plugin_api::load::permissions_answer;
use authhost_plugin_api::{
    CALL_GET_PERMISSIONS, CallError, HOOK_NEW_USER, HOOK_USER_LOGIN, HOOK_USER_LOGOUT,
};
use serde_json::{Value, json};

use super::{Backend, Entry, PluginSet};
use crate::call_pool::PoolError;

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

    pub fn from_name(name: &str) -> Option<Hook> {
        [Hook::NewUser, Hook::UserLogin, Hook::UserLogout]
            .into_iter()
            .find(|h| h.name() == name)
    }

    fn number(self) -> u8 {
        match self {
            Hook::NewUser => HOOK_NEW_USER,
            Hook::UserLogin => HOOK_USER_LOGIN,
            Hook::UserLogout => HOOK_USER_LOGOUT,
        }
    }
}

impl PluginSet {
    /// The one call path of both kinds, answering within the deadline: in this process on the
    /// call threads (waiting for a free one included), or in the library's worker process.
    async fn run(
        &self,
        entry: Arc<Entry>,
        call: u8,
        service: &str,
        user: Arc<Value>,
    ) -> Result<Value, CallError> {
        if let Backend::Worker(instance) = &entry.backend {
            return instance.invoke(call, service, &user, self.timeout).await;
        }
        let service = service.to_string();
        self.pool
            .run_within(self.timeout, move || match &entry.backend {
                Backend::InProcess(instance) => instance.invoke(call, &service, &user),
                Backend::Worker(_) => {
                    Err(CallError::Unavailable("not an in-process plugin".into()))
                }
            })
            .await
            .map_err(CallError::from)
            .and_then(|answer| answer)
    }

    /// The permissions `user` (the profile) has for `service`: `{}` when no provider serves the
    /// alias or the provider gave no usable answer.
    pub async fn permissions(&self, service: &str, user: Value) -> Value {
        let Some(entry) = self.providers.get(service).cloned() else {
            return json!({});
        };
        let started = Instant::now();
        let result = self
            .run(entry, CALL_GET_PERMISSIONS, service, Arc::new(user))
            .await
            .and_then(permissions_answer);
        let label = outcome(&result);
        metrics::counter!("authhost_plugin_calls_total", "service" => service.to_string(), "outcome" => label).increment(1);
        metrics::histogram!("authhost_plugin_call_duration_seconds", "service" => service.to_string())
            .record(started.elapsed().as_secs_f64());
        result.unwrap_or_else(|e| {
            tracing::warn!(service, outcome = label, error = %e, "permission provider gave no answer; answering {{}}");
            json!({})
        })
    }

    /// Delivers `hook` with `user` to the extension configured as `name`, with the deadline;
    /// an error when it fails or is no longer installed. Counted and logged as every call.
    pub async fn deliver(&self, name: &str, hook: Hook, user: Value) -> Result<(), CallError> {
        let Some(ext) = self.extensions.iter().find(|e| e.name == name).cloned() else {
            return Err(CallError::Unavailable(format!(
                "extension `{name}` is not installed now"
            )));
        };
        let label = ext.info.name.clone();
        let result = self
            .run(ext, hook.number(), "", Arc::new(user))
            .await
            .map(drop);
        let outcome = outcome(&result);
        if let Err(e) = &result {
            tracing::warn!(extension = %label, hook = hook.name(), outcome, error = %e, "extension hook failed");
        }
        metrics::counter!("authhost_hook_calls_total", "extension" => label, "hook" => hook.name(), "outcome" => outcome)
            .increment(1);
        result
    }

    /// The extensions' configured names, in order.
    pub fn extension_names(&self) -> Vec<String> {
        self.extensions.iter().map(|e| e.name.clone()).collect()
    }
}

/// How a call ended, as the metrics label it.
fn outcome<T>(result: &Result<T, CallError>) -> &'static str {
    result.as_ref().map_or_else(CallError::label, |_| "ok")
}

impl From<PoolError> for CallError {
    fn from(e: PoolError) -> CallError {
        match e {
            PoolError::Timeout => CallError::Timeout,
            PoolError::Busy => CallError::Busy,
            PoolError::Panicked => CallError::Panicked("in the host's side of the call".into()),
            PoolError::Gone => CallError::Unavailable("the call threads are gone".into()),
        }
    }
}
