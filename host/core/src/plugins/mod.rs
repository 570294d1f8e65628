//! Plugins: which library answers for which service alias, which extensions get the hooks, and
//! how both are loaded, called and reloaded.
//!
//! A `PluginSet` is immutable once built; the app holds the current one behind an `ArcSwap`, so
//! a reload builds and checks a complete new set, then swaps it in while requests in flight
//! finish on the old one.

mod call_error;
mod calls;
mod library_cache;
mod python;
mod resolve;
pub mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use authhost_plugin_api::load::{Instance, PluginInfo};
use serde_json::Value;

pub use authhost_plugin_api::abi::Kind;
pub use authhost_plugin_api::{CONFIG_DIR_VARIABLE, Hook};
pub use call_error::{CallError, PluginError};
pub use library_cache::LibraryCache;

use crate::call_pool::CallPool;
pub use resolve::resolve;
use worker::{Worker, WorkerInstance};

use crate::config::{Config, Isolation};

/// Where an instance lives: in this process, or in its library's worker process.
enum Backend {
    InProcess(Instance),
    Worker(WorkerInstance),
}

/// One configured plugin instance: a provider under one alias, or an extension under its name.
pub struct Entry {
    /// The alias (providers) or the name (extensions) the configuration gives it.
    pub name: String,
    pub info: PluginInfo,
    backend: Backend,
}

/// How failed hook deliveries are retried (`plugins.hook_*`).
#[derive(Debug, Clone, Copy)]
pub struct HookPolicy {
    pub max_attempts: u32,
    pub retry_base: Duration,
    /// How long one delivery holds an event: past the call deadline (a worker restart
    /// included), so no other delivery of it starts meanwhile.
    pub lease: Duration,
}

/// The providers by alias and the extensions in `INSTALLED_EXTENSIONS` order.
pub struct PluginSet {
    providers: HashMap<String, Arc<Entry>>,
    extensions: Vec<Arc<Entry>>,
    timeout: Duration,
    hook_policy: HookPolicy,
    /// The threads calls run on; shared by every set the app loads.
    pool: Arc<CallPool>,
}

impl Entry {
    /// The worker process serving this instance, if it has one.
    pub fn worker(&self) -> Option<&Arc<Worker>> {
        match &self.backend {
            Backend::Worker(w) => Some(w.worker()),
            Backend::InProcess(_) => None,
        }
    }
}

impl PluginSet {
    /// Loads and instantiates every plugin the configuration names. Blocking (it opens
    /// libraries and runs plugin constructors). Every failure is reported, each naming the
    /// alias or extension and the file.
    pub fn load(
        config: &Config,
        cache: &mut LibraryCache,
        pool: Arc<CallPool>,
    ) -> Result<PluginSet, Vec<String>> {
        cache.begin_load();
        let mut errors = Vec::new();
        let mut providers = HashMap::new();
        for entry in config.plugins.services.iter() {
            let context = format!("plugins.services: `{}:{}`", entry.alias, entry.plugin);
            match load_entry(config, cache, Kind::Provider, &entry.alias, &entry.plugin) {
                Ok(loaded) => {
                    providers.insert(entry.alias.clone(), Arc::new(loaded));
                }
                Err(e) => errors.push(format!("{context}: {e}")),
            }
        }
        let mut extensions = Vec::new();
        for name in config.plugins.extensions.iter() {
            let context = format!("plugins.extensions: `{name}`");
            match load_entry(config, cache, Kind::Extension, name, name) {
                Ok(loaded) => extensions.push(Arc::new(loaded)),
                Err(e) => errors.push(format!("{context}: {e}")),
            }
        }
        if errors.is_empty() {
            Ok(PluginSet {
                providers,
                extensions,
                timeout: Duration::from_millis(config.plugins.call_timeout_ms),
                hook_policy: HookPolicy {
                    max_attempts: config.plugins.hook_max_attempts,
                    retry_base: Duration::from_millis(config.plugins.hook_retry_ms),
                    lease: Duration::from_millis(config.plugins.call_timeout_ms)
                        .saturating_mul(2)
                        .saturating_add(Duration::from_secs(60)),
                },
                pool,
            })
        } else {
            Err(errors)
        }
    }

    /// Whether `alias` is a configured service (a provider alias).
    pub fn has_provider(&self, alias: &str) -> bool {
        self.providers.contains_key(alias)
    }

    /// `(alias, plugin)` of every provider, sorted by alias.
    pub fn providers(&self) -> Vec<(&str, &PluginInfo)> {
        let mut v: Vec<_> = self
            .providers
            .values()
            .map(|p| (p.name.as_str(), &p.info))
            .collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }

    pub fn hook_policy(&self) -> HookPolicy {
        self.hook_policy
    }

    /// Every configured instance, providers first.
    pub fn entries(&self) -> impl Iterator<Item = &Arc<Entry>> {
        self.providers.values().chain(self.extensions.iter())
    }

    pub fn extensions(&self) -> Vec<&PluginInfo> {
        self.extensions.iter().map(|e| &e.info).collect()
    }
}

/// Finds, loads and instantiates plugin `plugin` of `kind`, configured as `name` (its
/// `[plugins.config.<name>]` table).
fn load_entry(
    config: &Config,
    cache: &mut LibraryCache,
    kind: Kind,
    name: &str,
    plugin: &str,
) -> Result<Entry, String> {
    // A library of that name wins; else, with `[plugins.python]`, a Python module through
    // the bridge, in a worker of its own (`module`).
    let (path, settings, module, not_a_library) = match resolve(plugin, config) {
        Ok(path) => (path, instance_config(config, name), None, None),
        Err(not_found) => match python::target(kind, plugin, config) {
            None => return Err(not_found),
            Some(Err(e)) => return Err(format!("{not_found}; {e}")),
            Some(Ok(target)) => (
                target.library,
                target.settings,
                Some(plugin),
                Some(not_found),
            ),
        },
    };
    let refused = |file: &std::path::Path, e: CallError| {
        format!("{}: refused its configuration: {e}", file.display())
    };
    let (info, backend) = match config.plugins.isolation {
        Isolation::InProcess => {
            let library = cache.library(&path, kind).map_err(|e| e.to_string())?;
            let instance = library
                .instantiate(&settings)
                .map_err(|e| refused(&library.info.path, e.into()))?;
            (library.info, Backend::InProcess(instance))
        }
        Isolation::Process => {
            let worker = cache.worker(&path, module, kind, config)?;
            let runtime = tokio::runtime::Handle::try_current()
                .map_err(|_| "plugin workers need the async runtime".to_string())?;
            let instance = runtime
                .block_on(worker.instantiate(settings))
                .map_err(|e| match &not_a_library {
                    // Every place looked: the plugin folders, then the module's sys.path.
                    Some(not_found) => format!("{not_found}; as a Python module: {e}"),
                    None => refused(&path, e),
                })?;
            let mut info = worker.info.clone();
            info.path = path.clone();
            if let Some(module) = module {
                // Logs, metrics and `authhost plugins` name the module, not the bridge.
                info.name = format!("python:{module}");
            }
            (info, Backend::Worker(instance))
        }
    };
    Ok(Entry {
        name: name.to_string(),
        info,
        backend,
    })
}

/// `[plugins.config.<name>]` as JSON, `{}` when absent.
fn instance_config(config: &Config, name: &str) -> Value {
    config
        .plugins
        .config
        .get(name)
        .and_then(|table| serde_json::to_value(table).ok())
        .unwrap_or_else(|| Value::Object(Default::default()))
}
