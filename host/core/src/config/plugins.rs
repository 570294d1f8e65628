//! `[plugins]`: which plugins, where they are found, how they run, and `[plugins.python]`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Extensions, Isolation, Services};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    pub dirs: Vec<PathBuf>,
    /// `;`-separated `[alias:]plugin` entries (the original's `ALLOWED_SERVICES`).
    pub services: Services,
    /// `;`-separated extension names (the original's `INSTALLED_EXTENSIONS`).
    pub extensions: Extensions,
    pub call_timeout_ms: u64,
    /// Plugin calls that may run at once, each on its own thread; more wait for a slot
    /// (within their deadline). Bounds threads and memory under load.
    pub max_concurrent_calls: usize,
    /// Per-alias configuration, passed to the plugin as JSON.
    pub config: BTreeMap<String, toml::Table>,
    /// Searched before `dirs`: `AUTHHOST_PLUGIN_PATH`, colon-separated.
    #[serde(skip)]
    pub search_path: Vec<PathBuf>,
    /// `process` (each library in a worker process) or `in_process`.
    pub isolation: Isolation,
    /// Address-space limit of each worker process in MiB; 0 = none.
    pub worker_memory_mb: u64,
    /// The program workers run (`authhost plugin-worker`); empty = this executable. For
    /// embedders and tests whose executable is not `authhost`.
    pub worker_program: Option<PathBuf>,
    /// Deliveries of one hook event before it is kept as failed.
    pub hook_max_attempts: u32,
    /// Wait before the first retry of a failed hook delivery; doubles per attempt (≤ 1 h).
    pub hook_retry_ms: u64,
    /// How often pending hook events are looked for.
    pub hook_poll_ms: u64,
    /// Python modules as plugins (`[plugins.python]`, through the bridge library); absent: a
    /// name that is no plugin library is an error.
    pub python: Option<PythonConfig>,
}

/// `[plugins.python]`: where the bridge's interpreter finds modules and their packages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PythonConfig {
    /// A virtual environment whose `site-packages` modules import from (made with the same
    /// Python `major.minor` as the bridge).
    pub venv: Option<PathBuf>,
    /// Folders put first on `sys.path`.
    pub path: Vec<PathBuf>,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            dirs: [
                "plugins",
                "target/debug",
                "target/debug/deps",
                "target/release",
                "target/release/deps",
            ]
            .map(PathBuf::from)
            .to_vec(),
            services: Services::default(),
            extensions: Extensions::default(),
            call_timeout_ms: 2000,
            max_concurrent_calls: 16,
            config: BTreeMap::new(),
            search_path: Vec::new(),
            isolation: Isolation::Process,
            worker_memory_mb: 0,
            worker_program: None,
            hook_max_attempts: 8,
            hook_retry_ms: 10_000,
            hook_poll_ms: 1000,
            python: None,
        }
    }
}
