//! Plugins: which library answers for which service alias, which extensions get the hooks, and
//! how both are loaded, called and reloaded.
//!
//! A `PluginSet` is immutable once built; the app holds the current one behind an `ArcSwap`, so
//! a reload builds and checks a complete new set, then swaps it in while requests in flight
//! finish on the old one.

mod calls;
mod library_cache;
mod resolve;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use authhost_plugin_api::load::{ExtensionInstance, PluginInfo, ProviderInstance};
use serde_json::Value;

pub use calls::Hook;
pub use library_cache::LibraryCache;

use crate::call_pool::CallPool;
pub use resolve::resolve;

use crate::config::{Config, parse_extensions, parse_services};

/// One configured provider instance, under one alias.
pub struct ProviderEntry {
    pub alias: String,
    pub info: PluginInfo,
    instance: ProviderInstance,
}

/// One configured extension instance.
pub struct ExtensionEntry {
    pub info: PluginInfo,
    instance: ExtensionInstance,
}

/// The providers by alias and the extensions in `INSTALLED_EXTENSIONS` order.
pub struct PluginSet {
    providers: HashMap<String, Arc<ProviderEntry>>,
    extensions: Vec<Arc<ExtensionEntry>>,
    timeout: Duration,
    /// The threads calls run on; shared by every set the app loads.
    pool: Arc<CallPool>,
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
        let mut errors = Vec::new();
        let mut providers = HashMap::new();
        for entry in parse_services(&config.plugins.services).unwrap_or_default() {
            let context = format!("plugins.services: `{}:{}`", entry.alias, entry.plugin);
            let loaded = resolve(&entry.plugin, config)
                .and_then(|path| cache.provider(&path).map_err(|e| e.to_string()))
                .and_then(|library| {
                    let settings = instance_config(config, &entry.alias);
                    library
                        .instantiate(&settings)
                        .map(|instance| (library.info.clone(), instance))
                        .map_err(|e| {
                            format!(
                                "{}: refused its configuration: {e}",
                                library.info.path.display()
                            )
                        })
                });
            match loaded {
                Ok((info, instance)) => {
                    providers.insert(
                        entry.alias.clone(),
                        Arc::new(ProviderEntry {
                            alias: entry.alias,
                            info,
                            instance,
                        }),
                    );
                }
                Err(e) => errors.push(format!("{context}: {e}")),
            }
        }
        let mut extensions = Vec::new();
        for name in parse_extensions(&config.plugins.extensions).unwrap_or_default() {
            let context = format!("plugins.extensions: `{name}`");
            let loaded = resolve(&name, config)
                .and_then(|path| cache.extension(&path).map_err(|e| e.to_string()))
                .and_then(|library| {
                    let settings = instance_config(config, &name);
                    library
                        .instantiate(&settings)
                        .map(|instance| ExtensionEntry {
                            info: library.info.clone(),
                            instance,
                        })
                        .map_err(|e| {
                            format!(
                                "{}: refused its configuration: {e}",
                                library.info.path.display()
                            )
                        })
                });
            match loaded {
                Ok(entry) => extensions.push(Arc::new(entry)),
                Err(e) => errors.push(format!("{context}: {e}")),
            }
        }
        if errors.is_empty() {
            Ok(PluginSet {
                providers,
                extensions,
                timeout: Duration::from_millis(config.plugins.call_timeout_ms),
                pool,
            })
        } else {
            Err(errors)
        }
    }

    /// `(alias, plugin)` of every provider, sorted by alias.
    pub fn providers(&self) -> Vec<(&str, &PluginInfo)> {
        let mut v: Vec<_> = self
            .providers
            .values()
            .map(|p| (p.alias.as_str(), &p.info))
            .collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }

    pub fn extensions(&self) -> Vec<&PluginInfo> {
        self.extensions.iter().map(|e| &e.info).collect()
    }
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
