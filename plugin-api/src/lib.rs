//! The stable ABI between authhost and its plugins.
//!
//! A plugin is a `cdylib` that implements [`PermissionProvider`] or [`Extension`] and exports
//! it with [`export_provider!`] or [`export_extension!`]. Authors never touch FFI types: the
//! macros build one abi_stable prefix-type root module ([`PluginModule`], the same for both
//! kinds) whose functions catch panics and turn them into typed failures (a panic must never
//! unwind across the boundary), and carry JSON as text.
//!
//! Versioning promise: [`INTERFACE_VERSION`] changes only when a change would break plugins
//! already built; new optional functions are appended after the last prefix field so older
//! plugins keep loading. The host refuses a plugin built for another interface version, naming
//! the file and both versions.

#[cfg(feature = "abi-evolution-test")]
#[doc(hidden)]
pub mod evolution_test;
pub mod glue;
pub mod load;
pub mod log;
pub mod sink;
pub mod testkit;

pub use abi_stable;
pub use load::CallError;
pub use serde_json;
pub use serde_json::{Value, json};

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RStr, RString};
use abi_stable::{StableAbi, declare_root_module_statics, package_version_strings};

/// Interface version a plugin was built for; the host refuses plugins built for another one.
///
/// History: 1, a root module per kind (2026-11); 2, one root module for both kinds with typed
/// call failures and optional appended functions (2026-11-30).
pub const INTERFACE_VERSION: u32 = 2;

/// Plain C symbols every plugin exports beside its root module, so that the host can name the
/// interface version and kind of a file before abi_stable checks its layout.
pub const INTERFACE_VERSION_SYMBOL: &[u8] = b"authhost_plugin_interface_version\0";
pub const KIND_SYMBOL: &[u8] = b"authhost_plugin_kind\0";

/// The kinds of plugins as numbers, as `authhost_plugin_kind` reports them ([`Kind`]).
pub const KIND_PROVIDER: u32 = 1;
pub const KIND_EXTENSION: u32 = 2;

/// Answers `get_permissions(service, userid)` for the service aliases it is configured under.
pub trait PermissionProvider: Send + Sync + Sized + 'static {
    /// Builds an instance from its `[plugins.config.<alias>]` table (`{}` when there is none).
    fn new(config: Value) -> Result<Self, String>;

    /// The permissions of `userid` for `service` (the alias that was asked for): a JSON object
    /// of any values.
    fn get_permissions(&self, service: &str, userid: &str) -> Result<Value, String>;

    /// The same question with the user's profile (`id`, `email`, `username`, `name`,
    /// `provider_id`), for providers that decide by more than the id. By default it asks
    /// [`get_permissions`](Self::get_permissions).
    fn get_permissions_for_user(&self, service: &str, user: &Value) -> Result<Value, String> {
        let userid = user.get("id").and_then(Value::as_str).unwrap_or_default();
        self.get_permissions(service, userid)
    }
}

/// The event a hook delivery belongs to, `(event id, attempt)`, from the profile a hook
/// receives (`user["hook_event"]`). A delivery can repeat (a retry after an error, a crash or a
/// lost answer): an extension that must act once per event drops ids it has already handled.
/// `None` when the host sent none (a host before durable hooks, a test calling the hook).
pub fn hook_event(user: &Value) -> Option<(u64, u32)> {
    let event = user.get("hook_event")?;
    let id = event.get("id")?.as_u64()?;
    let attempt = event.get("attempt")?.as_u64()?;
    Some((id, u32::try_from(attempt).ok()?))
}

/// Receives lifecycle hooks with the user's profile as JSON. Every hook is optional.
pub trait Extension: Send + Sync + Sized + 'static {
    /// Builds the instance from its `[plugins.config.<extension name>]` table.
    fn new(config: Value) -> Result<Self, String>;

    /// Once, when an account is created (`user["new"]` is `true`).
    fn on_new_user(&self, _user: &Value) -> Result<(), String> {
        Ok(())
    }

    /// On every successful login.
    fn on_user_login(&self, _user: &Value) -> Result<(), String> {
        Ok(())
    }

    /// On logout.
    fn on_user_logout(&self, _user: &Value) -> Result<(), String> {
        Ok(())
    }
}

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
    /// `level`: 1 error, 2 warn, 3 info, 4 debug.
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

/// The symbol abi_stable looks up in a library (`abi_stable::library::ROOT_MODULE_LOADER_NAME`,
/// checked by a test): written out here so that plugin crates need no direct abi_stable
/// dependency, which its own `#[export_root_module]` attribute would require.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin {
    ($adapter:ty, $kind:expr, $name:expr, $version:expr) => {
        #[unsafe(export_name = "_1as_0lib_1header_0root_bmodule_bloader")]
        pub static AUTHHOST_LIB_HEADER: $crate::abi_stable::library::LibHeader = {
            extern "C" fn erased_root_module() -> $crate::abi_stable::library::RootModuleResult {
                $crate::abi_stable::library::__call_root_module_loader(authhost_root_module)
            }
            // SAFETY: `erased_root_module` returns the root module of type `PluginModuleRef`.
            unsafe {
                $crate::abi_stable::library::LibHeader::from_constructor::<$crate::PluginModuleRef>(
                    erased_root_module,
                    $crate::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };

        pub fn authhost_root_module() -> $crate::PluginModuleRef {
            use $crate::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::PluginModule {
                interface_version: $crate::INTERFACE_VERSION,
                kind: $kind,
                name: $crate::abi_stable::std_types::RStr::from_str($name),
                version: $crate::abi_stable::std_types::RStr::from_str($version),
                set_logger: $crate::glue::set_logger,
                new_instance: $crate::glue::new_instance::<$adapter>,
                drop_instance: $crate::glue::drop_instance::<$adapter>,
                call: $crate::glue::call::<$adapter>,
            }
            .leak_into_prefix()
        }

        // Plain C symbols the host reads before abi_stable's layout check, so that a plugin of
        // another interface version or kind can be named as such.
        #[unsafe(no_mangle)]
        pub extern "C" fn authhost_plugin_interface_version() -> u32 {
            $crate::INTERFACE_VERSION
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn authhost_plugin_kind() -> u32 {
            $kind
        }
    };
}

/// Exports a [`PermissionProvider`] as this library's plugin:
/// `export_provider!(MyProvider, "my_provider", env!("CARGO_PKG_VERSION"));`
#[macro_export]
macro_rules! export_provider {
    ($ty:ty, $name:expr, $version:expr) => {
        $crate::__export_plugin!(
            $crate::glue::AsProvider<$ty>,
            $crate::KIND_PROVIDER,
            $name,
            $version
        );
    };
}

/// Exports an [`Extension`] as this library's plugin:
/// `export_extension!(MyExtension, "my_extension", env!("CARGO_PKG_VERSION"));`
#[macro_export]
macro_rules! export_extension {
    ($ty:ty, $name:expr, $version:expr) => {
        $crate::__export_plugin!(
            $crate::glue::AsExtension<$ty>,
            $crate::KIND_EXTENSION,
            $name,
            $version
        );
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_root_module_symbol_is_the_one_abi_stable_looks_up() {
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }

    #[test]
    fn a_kind_reads_back_from_its_word() {
        for kind in [super::Kind::Provider, super::Kind::Extension] {
            assert_eq!(super::Kind::from_word(kind.word()), Some(kind));
        }
        assert_eq!(super::Kind::from_word("permission provider"), None);
    }
}
