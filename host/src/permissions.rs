//! Permission providers: which provider answers for which service alias, and how it is called.
//!
//! Until plugins are loaded from shared libraries, the original's sample provider is built in
//! and answers for the aliases `ALLOWED_SERVICES` maps to `sample_permission_provider`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::config::{Config, parse_services};

/// Answers `get_permissions(service, userid)`; `service` is the alias that was asked for.
pub trait PermissionProvider: Send + Sync {
    fn name(&self) -> &str;
    fn get_permissions(&self, service: &str, userid: &str) -> Result<Value, String>;
}

/// The original's `sample_permission_provider`.
pub struct SampleProvider;

impl PermissionProvider for SampleProvider {
    fn name(&self) -> &str {
        "sample_permission_provider"
    }

    fn get_permissions(&self, service: &str, userid: &str) -> Result<Value, String> {
        Ok(json!({ "provider-token": format!("{service}-{userid}") }))
    }
}

/// The providers of this host by alias, with the call deadline.
pub struct Permissions {
    by_alias: HashMap<String, Arc<dyn PermissionProvider>>,
    timeout: Duration,
}

/// A provider named in `ALLOWED_SERVICES` that cannot be found.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "plugins.services: provider `{plugin}` (alias `{alias}`) not found; available: sample_permission_provider"
)]
pub struct UnknownProvider {
    pub alias: String,
    pub plugin: String,
}

impl Permissions {
    pub fn from_config(config: &Config) -> Result<Permissions, Vec<UnknownProvider>> {
        let entries = parse_services(&config.plugins.services).unwrap_or_default();
        let mut by_alias: HashMap<String, Arc<dyn PermissionProvider>> = HashMap::new();
        let mut errors = Vec::new();
        let sample: Arc<dyn PermissionProvider> = Arc::new(SampleProvider);
        for e in entries {
            match e.plugin.replace('-', "_").as_str() {
                "sample_permission_provider" => {
                    by_alias.insert(e.alias, sample.clone());
                }
                _ => errors.push(UnknownProvider {
                    alias: e.alias,
                    plugin: e.plugin,
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Permissions {
            by_alias,
            timeout: Duration::from_millis(config.plugins.call_timeout_ms),
        })
    }

    /// `(alias, provider name)` pairs, sorted by alias.
    pub fn list(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self
            .by_alias
            .iter()
            .map(|(a, p)| (a.clone(), p.name().to_string()))
            .collect();
        v.sort();
        v
    }

    /// The permissions of `userid` for `service`: `{}` when no provider answers for the alias,
    /// or when the provider fails, panics, overruns its deadline or answers something other
    /// than a JSON object (fail closed). Runs off the async workers.
    pub async fn get(&self, service: &str, userid: &str) -> Value {
        let Some(provider) = self.by_alias.get(service).cloned() else {
            return json!({});
        };
        let started = Instant::now();
        let (service_owned, userid_owned) = (service.to_string(), userid.to_string());
        let call = tokio::task::spawn_blocking(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                provider.get_permissions(&service_owned, &userid_owned)
            }))
        });
        let outcome = match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err("timeout"),
            Ok(Err(_)) | Ok(Ok(Err(_))) => Err("panic"),
            Ok(Ok(Ok(Err(e)))) => {
                tracing::warn!(service, error = %e, "permission provider failed");
                Err("error")
            }
            Ok(Ok(Ok(Ok(v)))) if v.is_object() => Ok(v),
            Ok(Ok(Ok(Ok(_)))) => Err("not_an_object"),
        };
        let elapsed = started.elapsed().as_secs_f64();
        let outcome_label = match &outcome {
            Ok(_) => "ok",
            Err(reason) => reason,
        };
        metrics::counter!("authhost_plugin_calls_total", "service" => service.to_string(), "outcome" => outcome_label)
            .increment(1);
        metrics::histogram!("authhost_plugin_call_duration_seconds", "service" => service.to_string()).record(elapsed);
        outcome.unwrap_or_else(|reason| {
            tracing::warn!(
                service,
                reason,
                "permission provider gave no answer; answering {{}}"
            );
            json!({})
        })
    }
}
