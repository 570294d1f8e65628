//! The ABI itself, for the host and the export macros: the root module every plugin exports,
//! the typed failure and the log callback that cross the boundary, and the numbers they use.
//! A plugin author never names anything here; the macros and the test kit do.
//!
//! Nothing in this module may change shape within an [`INTERFACE_VERSION`](crate::INTERFACE_VERSION):
//! abi_stable checks every type reachable from [`PluginModule`] by name and layout at load time
//! (see `docs/plugins.md`, "Evolution").

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RStr, RString};
use abi_stable::{StableAbi, declare_root_module_statics, package_version_strings};

/// Plain C symbols every plugin exports beside its root module, so that the host can name the
/// interface version and kind of a file before abi_stable checks its layout.
pub const INTERFACE_VERSION_SYMBOL: &[u8] = b"authhost_plugin_interface_version\0";
pub const KIND_SYMBOL: &[u8] = b"authhost_plugin_kind\0";

/// The kinds of plugins as numbers, as `authhost_plugin_kind` reports them ([`Kind`]).
pub const KIND_PROVIDER: u32 = 1;
pub const KIND_EXTENSION: u32 = 2;

/// The kinds of plugins. Both kinds share one root module, one loader and one call path; the
/// kind says which calls a library answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Answers [`CALL_GET_PERMISSIONS`].
    Provider,
    /// Receives the `HOOK_*` calls.
    Extension,
}

impl Kind {
    /// The number `authhost_plugin_kind` and the root module report.
    pub const fn code(self) -> u32 {
        match self {
            Kind::Provider => KIND_PROVIDER,
            Kind::Extension => KIND_EXTENSION,
        }
    }

    pub const fn from_code(code: u32) -> Option<Kind> {
        match code {
            KIND_PROVIDER => Some(Kind::Provider),
            KIND_EXTENSION => Some(Kind::Extension),
            _ => None,
        }
    }

    /// As messages name it.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Provider => "permission provider",
            Kind::Extension => "extension",
        }
    }

    /// The one-word name: `authhost plugins`' kind column and a worker's `--kind` argument.
    pub const fn word(self) -> &'static str {
        match self {
            Kind::Provider => "provider",
            Kind::Extension => "extension",
        }
    }

    /// The kind a one-word name (`word`) names.
    pub fn from_word(word: &str) -> Option<Kind> {
        [Kind::Provider, Kind::Extension]
            .into_iter()
            .find(|k| k.word() == word)
    }
}

/// Call numbers as they cross the boundary: the one a provider answers and the hooks.
pub const CALL_GET_PERMISSIONS: u8 = 1;
pub const HOOK_NEW_USER: u8 = 2;
pub const HOOK_USER_LOGIN: u8 = 3;
pub const HOOK_USER_LOGOUT: u8 = 4;

/// `CallFailure::reason` values.
pub const FAILURE_ERROR: u8 = 1;
pub const FAILURE_PANIC: u8 = 2;
pub const FAILURE_UNSUPPORTED: u8 = 3;

/// Why a call into a plugin failed, as it crosses the boundary: typed, so the host never reads
/// meaning out of the message text.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct CallFailure {
    /// One of the `FAILURE_*` numbers (an unknown one reads as an error).
    pub reason: u8,
    pub message: RString,
}

/// How a plugin's log lines reach the host's log.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct HostLogger {
    /// `level`: a [`Level`](crate::Level) code (1 error, 2 warn, 3 info, 4 debug).
    pub log: extern "C" fn(level: u8, plugin: RStr<'_>, message: RStr<'_>),
}

/// The root module every plugin exports, whatever its kind.
///
/// Evolution rule (see `docs/plugins.md`): fields up to `last_prefix_field` never change within
/// an interface version; a new optional function is appended after it, and because of
/// `missing_field(option)` the host reads it as `None` from a plugin built before it existed
/// ("not implemented") instead of panicking.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
#[sabi(missing_field(option))]
pub struct PluginModule {
    pub interface_version: u32,
    /// `KIND_PROVIDER` or `KIND_EXTENSION`.
    pub kind: u32,
    pub name: RStr<'static>,
    pub version: RStr<'static>,
    /// The host's log callback and the plugin's name as the host will show it.
    pub set_logger: extern "C" fn(HostLogger, RStr<'_>),
    /// Config JSON in, an instance handle out.
    pub new_instance: extern "C" fn(config: RStr<'_>) -> RResult<usize, CallFailure>,
    pub drop_instance: extern "C" fn(handle: usize),
    /// `call` is `CALL_GET_PERMISSIONS` or a `HOOK_*` number; `service` the alias asked for
    /// (empty for hooks); `user` the profile as JSON text. The answer is JSON text (`null` for
    /// hooks).
    #[sabi(last_prefix_field)]
    pub call: extern "C" fn(
        handle: usize,
        call: u8,
        service: RStr<'_>,
        user: RStr<'_>,
    ) -> RResult<RString, CallFailure>,
}

impl RootModule for PluginModuleRef {
    declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "authhost_plugin";
    const NAME: &'static str = "authhost_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
