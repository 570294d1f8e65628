//! Loading plugin libraries the way the host does: check the file's own interface version and
//! kind first (plain C symbols, so a mismatch can be named), then let abi_stable check the
//! layout of every type reachable from the root module. Libraries are never unloaded; a
//! rebuilt plugin must be loaded from a new path.
//!
//! Each library is loaded through its own header, not `RootModule::load_from_file`, whose
//! per-type cache would hand every provider library the first one's module.

use std::fmt;
use std::path::{Path, PathBuf};

use abi_stable::library::{LibraryError, RawLibrary, RootModule, lib_header_from_raw_library};
use abi_stable::std_types::{RResult, RStr};
use serde_json::Value;

use crate::{
    ExtensionModuleRef, HostLogger, INTERFACE_VERSION, INTERFACE_VERSION_SYMBOL, KIND_EXTENSION,
    KIND_PROVIDER, KIND_SYMBOL, ProviderModuleRef,
};

/// Why a file could not be loaded as a plugin; every variant names the file.
#[derive(Debug, Clone)]
pub enum LoadError {
    /// Not loadable as a shared library at all.
    Open { path: PathBuf, message: String },
    /// A shared library, but not an authhost plugin.
    NotAPlugin { path: PathBuf },
    /// Built for another interface version.
    InterfaceMismatch {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    /// A plugin of the other kind.
    WrongKind {
        path: PathBuf,
        found: &'static str,
        expected: &'static str,
    },
    /// abi_stable refused the layout or version of the root module.
    Layout {
        path: PathBuf,
        summary: String,
        details: String,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Open { path, message } => {
                write!(f, "{}: cannot load the library: {message}", path.display())
            }
            LoadError::NotAPlugin { path } => write!(
                f,
                "{}: not an authhost plugin (it exports no `authhost_plugin_interface_version`)",
                path.display()
            ),
            LoadError::InterfaceMismatch {
                path,
                found,
                expected,
            } => write!(
                f,
                "{}: built for plugin interface version {found}, this host expects version {expected}; rebuild it against authhost-plugin-api {}",
                path.display(),
                env!("CARGO_PKG_VERSION")
            ),
            LoadError::WrongKind {
                path,
                found,
                expected,
            } => {
                write!(
                    f,
                    "{}: is a {found} plugin, but is named where a {expected} is expected",
                    path.display()
                )
            }
            LoadError::Layout { path, summary, .. } => {
                write!(f, "{}: incompatible plugin: {summary}", path.display())
            }
        }
    }
}

impl std::error::Error for LoadError {}

impl LoadError {
    /// The same error naming `path` (e.g. the file an operator configured instead of a copy).
    pub fn with_path(self, path: &Path) -> LoadError {
        let path = path.to_path_buf();
        match self {
            LoadError::Open { message, .. } => LoadError::Open { path, message },
            LoadError::NotAPlugin { .. } => LoadError::NotAPlugin { path },
            LoadError::InterfaceMismatch {
                found, expected, ..
            } => LoadError::InterfaceMismatch {
                path,
                found,
                expected,
            },
            LoadError::WrongKind {
                found, expected, ..
            } => LoadError::WrongKind {
                path,
                found,
                expected,
            },
            LoadError::Layout {
                summary, details, ..
            } => LoadError::Layout {
                path,
                summary,
                details,
            },
        }
    }

    /// The full abi_stable report for a layout mismatch (hundreds of lines), for debug logs.
    pub fn details(&self) -> Option<&str> {
        match self {
            LoadError::Layout { details, .. } => Some(details),
            _ => None,
        }
    }
}

fn kind_name(kind: u32) -> &'static str {
    match kind {
        KIND_PROVIDER => "permission provider",
        KIND_EXTENSION => "extension",
        _ => "unknown",
    }
}

/// Opens `path`, checks interface version and kind, and initialises root module `M`.
fn load_root<M: RootModule>(path: &Path, expected_kind: u32) -> Result<M, LoadError> {
    let raw = RawLibrary::load_at(path).map_err(|e| LoadError::Open {
        path: path.into(),
        message: first_line(&e.to_string()),
    })?;
    // SAFETY: the symbol, when present, was exported by the export macros with this signature.
    let version = unsafe { raw.get::<extern "C" fn() -> u32>(INTERFACE_VERSION_SYMBOL) }
        .map(|f| (*f)())
        .map_err(|_| LoadError::NotAPlugin { path: path.into() })?;
    if version != INTERFACE_VERSION {
        return Err(LoadError::InterfaceMismatch {
            path: path.into(),
            found: version,
            expected: INTERFACE_VERSION,
        });
    }
    // SAFETY: as above.
    let kind = unsafe { raw.get::<extern "C" fn() -> u32>(KIND_SYMBOL) }
        .map(|f| (*f)())
        .map_err(|_| LoadError::NotAPlugin { path: path.into() })?;
    if kind != expected_kind {
        return Err(LoadError::WrongKind {
            path: path.into(),
            found: kind_name(kind),
            expected: kind_name(expected_kind),
        });
    }
    // SAFETY: the library stays loaded for the life of the process (it is leaked below).
    let header = unsafe { lib_header_from_raw_library(&raw) }.map_err(|e| layout_error(path, e))?;
    std::mem::forget(raw);
    header
        .init_root_module::<M>()
        .map_err(|e| layout_error(path, e))
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

/// abi_stable's layout reports run to hundreds of lines; its `Error:` lines say what differs.
fn layout_error(path: &Path, e: LibraryError) -> LoadError {
    let details = e.to_string();
    let mut summary: Vec<&str> = details
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("Error:"))
        .collect();
    summary.dedup();
    let summary = if summary.is_empty() {
        first_line(&details)
    } else {
        summary
            .iter()
            .rev()
            .take(3)
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join(" / ")
    };
    LoadError::Layout {
        path: path.into(),
        summary,
        details,
    }
}

/// What a loaded library says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub path: PathBuf,
    pub name: String,
    pub version: String,
    pub interface_version: u32,
}

/// A loaded provider library.
#[derive(Clone)]
pub struct ProviderLibrary {
    pub info: PluginInfo,
    module: ProviderModuleRef,
}

impl ProviderLibrary {
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let module = load_root::<ProviderModuleRef>(path, KIND_PROVIDER)?;
        let info = PluginInfo {
            path: path.into(),
            name: module.name().to_string(),
            version: module.version().to_string(),
            interface_version: module.interface_version(),
        };
        Ok(ProviderLibrary { info, module })
    }

    /// Hands the library the host's log callback.
    pub fn set_logger(&self, logger: HostLogger) {
        (self.module.set_logger())(logger, RStr::from_str(&self.info.name));
    }

    /// A new instance with its configuration.
    pub fn instantiate(&self, config: &Value) -> Result<ProviderInstance, String> {
        let text = config.to_string();
        match (self.module.new_instance())(RStr::from_str(&text)) {
            RResult::ROk(handle) => Ok(ProviderInstance {
                module: self.module,
                handle,
            }),
            RResult::RErr(e) => Err(e.into_string()),
        }
    }
}

/// One configured instance of a provider.
pub struct ProviderInstance {
    module: ProviderModuleRef,
    handle: usize,
}

impl ProviderInstance {
    /// The plugin's answer for `userid`; an error for a failure, a panic or an answer that is
    /// not JSON.
    pub fn get_permissions(&self, service: &str, userid: &str) -> Result<Value, String> {
        self.get_permissions_for_user(service, &serde_json::json!({ "id": userid }))
    }

    /// The same with the user's profile (`id`, `email`, `username`, ...).
    pub fn get_permissions_for_user(&self, service: &str, user: &Value) -> Result<Value, String> {
        let user = user.to_string();
        match (self.module.get_permissions())(
            self.handle,
            RStr::from_str(service),
            RStr::from_str(&user),
        ) {
            RResult::ROk(text) => {
                serde_json::from_str(text.as_str()).map_err(|e| format!("answer is not JSON: {e}"))
            }
            RResult::RErr(e) => Err(e.into_string()),
        }
    }
}

impl Drop for ProviderInstance {
    fn drop(&mut self) {
        (self.module.drop_instance())(self.handle);
    }
}

/// A loaded extension library.
#[derive(Clone)]
pub struct ExtensionLibrary {
    pub info: PluginInfo,
    module: ExtensionModuleRef,
}

impl ExtensionLibrary {
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let module = load_root::<ExtensionModuleRef>(path, KIND_EXTENSION)?;
        let info = PluginInfo {
            path: path.into(),
            name: module.name().to_string(),
            version: module.version().to_string(),
            interface_version: module.interface_version(),
        };
        Ok(ExtensionLibrary { info, module })
    }

    pub fn set_logger(&self, logger: HostLogger) {
        (self.module.set_logger())(logger, RStr::from_str(&self.info.name));
    }

    pub fn instantiate(&self, config: &Value) -> Result<ExtensionInstance, String> {
        let text = config.to_string();
        match (self.module.new_instance())(RStr::from_str(&text)) {
            RResult::ROk(handle) => Ok(ExtensionInstance {
                module: self.module,
                handle,
            }),
            RResult::RErr(e) => Err(e.into_string()),
        }
    }
}

/// One configured instance of an extension.
pub struct ExtensionInstance {
    module: ExtensionModuleRef,
    handle: usize,
}

impl ExtensionInstance {
    /// Calls hook number `hook` (`HOOK_*`) with the user's profile.
    pub fn call(&self, hook: u8, user: &Value) -> Result<(), String> {
        let text = user.to_string();
        match (self.module.call_hook())(self.handle, hook, RStr::from_str(&text)) {
            RResult::ROk(()) => Ok(()),
            RResult::RErr(e) => Err(e.into_string()),
        }
    }
}

impl Drop for ExtensionInstance {
    fn drop(&mut self) {
        (self.module.drop_instance())(self.handle);
    }
}
