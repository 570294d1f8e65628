//! Calling plugins: off the async workers, with a deadline, fail closed, through one call path
//! for both kinds. Every way a call can fail is a `CallError` variant (its label is the metrics
//! `outcome`). A provider that errs, panics, overruns its deadline or answers something other
//! than a JSON object yields `{}`; a failing hook is logged and counted and the request goes on. (A call that overran keeps its
//! thread until the plugin returns, Rust cannot stop a thread; the pool stands in for it, see
//! `call_pool.rs`.)

use std::sync::Arc;
use std::time::Instant;

use authhost_plugin_api::Hook;
use authhost_plugin_api::abi::CALL_GET_PERMISSIONS;
use authhost_plugin_api::load::permissions_answer;
use serde_json::{Value, json};

use super::{Backend, CallError, Entry, PluginError, PluginSet};
use crate::call_pool::PoolError;

/// An `authorize` for an alias no provider serves still answers `{}` (the original's contract),
/// but is counted, and logged at most once a minute with the name and how many came since the
/// last line, so that a typo in a service's configuration can be found without a log flood.
fn unknown_service(service: &str) {
    use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
    static SINCE_LAST_LINE: AtomicU64 = AtomicU64::new(0);
    static LAST_LINE_AT: AtomicI64 = AtomicI64::new(i64::MIN);
    metrics::counter!("authhost_authorize_unknown_service_total").increment(1);
    let unlogged = SINCE_LAST_LINE.fetch_add(1, Ordering::Relaxed) + 1;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let last = LAST_LINE_AT.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= 60
        && LAST_LINE_AT
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        let shown: String = service.chars().take(100).collect();
        tracing::warn!(
            service = ?shown,
            requests = SINCE_LAST_LINE.swap(0, Ordering::Relaxed).max(unlogged),
            "authorize for a service alias no provider serves: answered {{}} (plugins.services \
             lists the aliases; at most one such line a minute)"
        );
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
                Backend::InProcess(instance) => Ok(instance.invoke(call, &service, &user)?),
                Backend::Worker(_) => {
                    Err(CallError::Unavailable("not an in-process plugin".into()))
                }
            })
            .await
            .map_err(CallError::from)
            .and_then(|answer| answer)
    }

    /// The provider's own answer for `service`, or why there is none; neither counted nor
    /// logged (`authhost plugins call` shows it as it is). `None`: no provider serves `service`.
    pub async fn ask(&self, service: &str, user: Value) -> Option<Result<Value, CallError>> {
        let entry = self.providers.get(service).cloned()?;
        let result = self
            .run(entry, CALL_GET_PERMISSIONS, service, Arc::new(user))
            .await
            .and_then(|answer| Ok(permissions_answer(answer)?));
        Some(result)
    }

    /// The permissions `user` (the profile) has for `service`: `{}` when no provider serves the
    /// alias or the provider gave no usable answer.
    pub async fn permissions(&self, service: &str, user: Value) -> Value {
        let started = Instant::now();
        let Some(result) = self.ask(service, user).await else {
            unknown_service(service);
            return json!({});
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
            .run(ext, hook.code(), "", Arc::new(user))
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
            PoolError::Panicked => {
                PluginError::Panicked("in the host's side of the call".into()).into()
            }
            PoolError::Gone => CallError::Unavailable("the call threads are gone".into()),
        }
    }
}
