//! Libraries loaded so far, by the path they were named with. Libraries are never unloaded and
//! a path loads once per process, so a file that changed since it was loaded (a rebuilt plugin)
//! is copied under a new name in `data_dir/plugin-copies/` and loaded from there.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use authhost_plugin_api::Level;
use authhost_plugin_api::abi::{HostLogger, Kind};
use authhost_plugin_api::abi_stable::std_types::RStr;
use authhost_plugin_api::load::{Library, LoadError};

use super::worker::{Spec, Worker};
use crate::config::Config;

/// What identifies one build of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: m.len(),
        modified: m.modified().ok(),
    })
}

/// A worker's file build, and for a module the load that started it.
type WorkerStamp = (Option<Stamp>, Option<u64>);

pub struct LibraryCache {
    /// Both kinds in one map: a path is one library whatever it was named as.
    libraries: HashMap<PathBuf, (Option<Stamp>, Library)>,
    /// Worker processes by library and, for the Python bridge, module (isolation `process`):
    /// kept while a plugin set uses them, so a reload keeps the workers of unchanged files and
    /// starts new ones for changed files. A module's worker is never kept across loads (its
    /// `.py` files may have changed, and CPython cannot re-import in place): its stamp holds
    /// the load it was started for.
    workers: HashMap<(PathBuf, Option<String>), (WorkerStamp, Weak<Worker>)>,
    /// Counts plugin-set loads (`begin_load`).
    load: u64,
    copy_dir: PathBuf,
    copies: usize,
}

/// Receives what plugins log and writes it to the host's log.
extern "C" fn host_log(level: u8, plugin: RStr<'_>, message: RStr<'_>) {
    let (plugin, message) = (plugin.as_str(), message.as_str());
    match Level::from_code(level) {
        Level::Error => tracing::error!(target: "plugin", plugin, "{message}"),
        Level::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
        Level::Info => tracing::info!(target: "plugin", plugin, "{message}"),
        Level::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
    }
}

pub const HOST_LOGGER: HostLogger = HostLogger { log: host_log };

fn log_details(e: &LoadError) {
    if let Some(details) = e.details() {
        tracing::debug!(error = %details, "plugin layout report");
    }
}

impl LibraryCache {
    pub fn new(data_dir: &Path) -> LibraryCache {
        LibraryCache {
            libraries: HashMap::new(),
            workers: HashMap::new(),
            load: 0,
            copy_dir: data_dir.join("plugin-copies"),
            copies: 0,
        }
    }

    /// The path to load `path` from: itself the first time, a fresh copy once it changed.
    fn load_path(&mut self, path: &Path, seen_before: bool) -> Result<PathBuf, LoadError> {
        if !seen_before {
            return Ok(path.to_path_buf());
        }
        std::fs::create_dir_all(&self.copy_dir).map_err(|e| LoadError::Open {
            path: self.copy_dir.clone(),
            message: e.to_string(),
        })?;
        self.copies += 1;
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("plugin");
        let copy = self.copy_dir.join(format!(
            "{stem}-{}-{}{}",
            std::process::id(),
            self.copies,
            std::env::consts::DLL_SUFFIX
        ));
        std::fs::copy(path, &copy).map_err(|e| LoadError::Open {
            path: path.into(),
            message: format!("cannot copy for reload: {e}"),
        })?;
        Ok(copy)
    }

    /// The library at `path`, which must be a plugin of `kind`: loaded once per build of the
    /// file, from a fresh copy when the file changed since.
    pub fn library(&mut self, path: &Path, kind: Kind) -> Result<Library, LoadError> {
        let now = stamp(path);
        if let Some((seen, lib)) = self.libraries.get(path)
            && *seen == now
        {
            if lib.info.kind != kind {
                return Err(LoadError::WrongKind {
                    path: path.to_path_buf(),
                    found: lib.info.kind.name(),
                    expected: kind.name(),
                });
            }
            return Ok(lib.clone());
        }
        let from = self.load_path(path, self.libraries.contains_key(path))?;
        let mut lib = Library::load(&from, kind)
            .inspect_err(log_details)
            .map_err(|e| e.with_path(path))?;
        lib.set_logger(HOST_LOGGER);
        lib.info.path = path.to_path_buf();
        self.libraries
            .insert(path.to_path_buf(), (now, lib.clone()));
        Ok(lib)
    }

    /// A new plugin-set load begins: module workers of earlier loads are not reused.
    pub fn begin_load(&mut self) {
        self.load += 1;
    }

    /// The worker process for the library at `path` (of `kind`), for Python module `module`
    /// when it is the bridge: the running one while the file is unchanged (and, for a module,
    /// within one load), else a new one. Blocking: call from a blocking thread of the runtime.
    pub fn worker(
        &mut self,
        path: &Path,
        module: Option<&str>,
        kind: Kind,
        config: &Config,
    ) -> Result<Arc<Worker>, String> {
        let now = (stamp(path), module.map(|_| self.load));
        let key = (path.to_path_buf(), module.map(str::to_string));
        if let Some((seen, weak)) = self.workers.get(&key)
            && *seen == now
            && let Some(worker) = weak.upgrade()
        {
            if worker.kind() != kind {
                return Err(LoadError::WrongKind {
                    path: path.to_path_buf(),
                    found: worker.kind().name(),
                    expected: kind.name(),
                }
                .to_string());
            }
            return Ok(worker);
        }
        let program = match &config.plugins.worker_program {
            Some(p) => p.clone(),
            None => std::env::current_exe()
                .map_err(|e| format!("cannot find this executable to start plugin workers: {e}"))?,
        };
        let spec = Spec {
            program,
            library: path.to_path_buf(),
            kind,
            threads: config.plugins.max_concurrent_calls,
            memory_mb: config.plugins.worker_memory_mb,
        };
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "plugin workers need the async runtime".to_string())?;
        let timeout = Duration::from_millis(config.plugins.call_timeout_ms);
        let worker = runtime.block_on(Worker::start(spec, timeout))?;
        self.workers.insert(key, (now, Arc::downgrade(&worker)));
        Ok(worker)
    }
}
