//! Loading plugin libraries the way the host does: check the file's own interface version and
//! kind first (plain C symbols, so a mismatch can be named), then let abi_stable check the
//! layout of every type reachable from the root module. Libraries are never unloaded; a
//! rebuilt plugin must be loaded from a new path.
//!
//! Each library is loaded through its own header, not `RootModule::load_from_file`, whose
//! per-type cache would hand every library the first one's module. Both kinds share this
//! loader, [`Library`], [`Instance`] and its one call path; the kind is a parameter.

use std::fmt;
use std::path::{Path, PathBuf};

use abi_stable::library::{LibraryError, RawLibrary, RootModule, lib_header_from_raw_library};
use abi_stable::std_types::{RResult, RStr, RString};
use serde_json::Value;

use crate::abi::{
    CALL_GET_PERMISSIONS, CallFailure, FAILURE_PANIC, FAILURE_UNSUPPORTED, HostLogger,
    INTERFACE_VERSION_SYMBOL, KIND_SYMBOL, Kind, PluginModuleRef,
};
use crate::{Hook, INTERFACE_VERSION};

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

fn kind_name(code: u32) -> &'static str {
    Kind::from_code(code).map_or("unknown", Kind::name)
}

/// Opens `path`, checks interface version and kind, and initialises root module `M` (always
/// [`PluginModuleRef`], except in the ABI-evolution test).
pub(crate) fn load_root<M: RootModule>(path: &Path, expected: Kind) -> Result<M, LoadError> {
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
    if kind != expected.code() {
        return Err(LoadError::WrongKind {
            path: path.into(),
            found: kind_name(kind),
            expected: expected.name(),
        });
    }
    // SAFETY: the library stays loaded for the life of the process (it is leaked below).
    let header = unsafe { lib_header_from_raw_library(&raw) }.map_err(|e| layout_error(path, e))?;
    std::mem::forget(raw);
    header
        .init_root_module::<M>()
        .map_err(|e| layout_error(path, e))
}

/// How a host whose interface has appended functions loads a plugin built before them.
/// abi_stable accepts a root module only when the host's declaration has no more fields than
/// the library's, so such a plugin is refused by the newest declaration `New`; it is then
/// checked against the previous declaration `Old` (kept, under the same type name, when a
/// function is appended) and read through `New` by `upgrade`: the accessors of the appended
/// functions see the library's own field count and answer `None`, "not implemented".
/// Interface version 2 has no appended function yet, so only the ABI-evolution test uses this.
#[cfg_attr(not(feature = "abi-evolution-test"), allow(dead_code))]
pub(crate) fn load_evolved<New: RootModule, Old: RootModule>(
    path: &Path,
    kind: Kind,
    upgrade: impl FnOnce(Old) -> New,
) -> Result<New, LoadError> {
    match load_root::<New>(path, kind) {
        Err(LoadError::Layout { .. }) => load_root::<Old>(path, kind).map(upgrade),
        loaded => loaded,
    }
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

/// Why a call into a plugin gave no answer, as the plugin made it: read from the boundary's
/// typed failure (never from its message) or from its answer. The host's side of a call can fail
/// in more ways (a deadline, a worker that died); the host's own error type adds those.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The plugin returned an error.
    Failed(String),
    /// The plugin panicked; the panic was caught inside it.
    Panicked(String),
    /// The plugin answered, but not what the call expects (not JSON, not an object).
    BadAnswer(String),
    /// The plugin does not implement the call: one of the other kind, or an optional function
    /// appended to the interface after the plugin was built.
    NotImplemented(String),
}

impl CallError {
    /// A plugin's answer that JSON cannot read (in this process or a worker's host alike).
    pub fn not_json(e: serde_json::Error) -> CallError {
        CallError::BadAnswer(format!("answer is not JSON: {e}"))
    }

    fn from_failure(failure: CallFailure) -> CallError {
        let message = failure.message.into_string();
        match failure.reason {
            FAILURE_PANIC => CallError::Panicked(message),
            FAILURE_UNSUPPORTED => CallError::NotImplemented(message),
            _ => CallError::Failed(message),
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Failed(m) => f.write_str(m),
            CallError::Panicked(m) => write!(f, "panicked: {m}"),
            CallError::BadAnswer(m) => write!(f, "bad answer: {m}"),
            CallError::NotImplemented(m) => write!(f, "not implemented: {m}"),
        }
    }
}

impl std::error::Error for CallError {}

/// A provider's answer as permissions: a JSON object, else `BadAnswer`.
pub fn permissions_answer(answer: Value) -> Result<Value, CallError> {
    if answer.is_object() {
        Ok(answer)
    } else {
        Err(CallError::BadAnswer("answer is not a JSON object".into()))
    }
}

/// What a loaded library says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub path: PathBuf,
    pub kind: Kind,
    pub name: String,
    pub version: String,
    pub interface_version: u32,
}

/// A loaded plugin library of either kind.
#[derive(Clone)]
pub struct Library {
    pub info: PluginInfo,
    module: PluginModuleRef,
}

impl Library {
    /// Loads `path`, which must be a plugin of kind `expected`.
    pub fn load(path: &Path, expected: Kind) -> Result<Self, LoadError> {
        let module = load_root::<PluginModuleRef>(path, expected)?;
        let info = PluginInfo {
            path: path.into(),
            kind: expected,
            name: module.name().to_string(),
            version: module.version().to_string(),
            interface_version: module.interface_version(),
        };
        Ok(Library { info, module })
    }

    /// Hands the library the host's log callback.
    pub fn set_logger(&self, logger: HostLogger) {
        (self.module.set_logger())(logger, RStr::from_str(&self.info.name));
    }

    /// A new instance with its configuration.
    pub fn instantiate(&self, config: &Value) -> Result<Instance, CallError> {
        let text = config.to_string();
        match (self.module.new_instance())(RStr::from_str(&text)) {
            RResult::ROk(handle) => Ok(Instance {
                module: self.module,
                handle,
            }),
            RResult::RErr(e) => Err(CallError::from_failure(e)),
        }
    }
}

/// One configured instance of a plugin.
pub struct Instance {
    module: PluginModuleRef,
    handle: usize,
}

impl Instance {
    /// The one call path: call number `call` (`abi::CALL_GET_PERMISSIONS`, `Hook::code`) with the
    /// service alias (empty for hooks) and the user's profile; the plugin's JSON answer.
    pub fn invoke(&self, call: u8, service: &str, user: &Value) -> Result<Value, CallError> {
        let answer = self.invoke_text(call, service, &user.to_string())?;
        serde_json::from_str(answer.as_str()).map_err(CallError::not_json)
    }

    /// The same call with the profile as JSON text, answering the plugin's JSON text unread:
    /// for a caller that only passes both on (a worker process), which would otherwise parse
    /// and print each of them once more.
    pub fn invoke_text(&self, call: u8, service: &str, user: &str) -> Result<RString, CallError> {
        match (self.module.call())(
            self.handle,
            call,
            RStr::from_str(service),
            RStr::from_str(user),
        ) {
            RResult::ROk(text) => Ok(text),
            RResult::RErr(e) => Err(CallError::from_failure(e)),
        }
    }

    /// A provider's answer for `userid`: a JSON object, or an error.
    pub fn get_permissions(&self, service: &str, userid: &str) -> Result<Value, CallError> {
        self.get_permissions_for_user(service, &serde_json::json!({ "id": userid }))
    }

    /// The same with the user's profile (`id`, `email`, `username`, ...).
    pub fn get_permissions_for_user(
        &self,
        service: &str,
        user: &Value,
    ) -> Result<Value, CallError> {
        self.invoke(CALL_GET_PERMISSIONS, service, user)
            .and_then(permissions_answer)
    }

    /// Calls `hook` of an extension with the user's profile.
    pub fn call(&self, hook: Hook, user: &Value) -> Result<(), CallError> {
        self.invoke(hook.code(), "", user).map(drop)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        (self.module.drop_instance())(self.handle);
    }
}
