//! Writing an authhost plugin: a permission provider or an extension, built as a `cdylib`.
//!
//! A provider implements [`PermissionProvider`] and is exported with [`export_provider!`]; an
//! extension implements [`Extension`] and is exported with [`export_extension!`]. The plugin's
//! `[plugins.config.<alias>]` table arrives as JSON; [`config`] reads it into your own serde
//! type, and [`config_path`] resolves a relative path in it against the configuration's folder,
//! as the host does for its own paths. The user arrives as JSON ([`Value`]) and reads as a typed [`User`] with
//! [`User::from_value`]. [`log`] writes to the host's log, [`sink`] appends JSON lines to a file,
//! and [`testkit`] loads the built library exactly as the host does, for your tests.
//!
//! Authors never touch FFI types: the macros build the root module of the ABI (module `abi`,
//! hidden from these docs, with the host's loader `load` and the macros' `glue`), whose
//! functions catch panics and turn them into typed failures (a panic must never unwind across
//! the boundary) and carry JSON as text.
//!
//! Versioning promise: [`INTERFACE_VERSION`] changes only when a change would break plugins
//! already built; new optional functions are appended after the last prefix field so older
//! plugins keep loading. The host refuses a plugin built for another interface version, naming
//! the file and both versions.
//!
//! # Layout
//! - here: the two traits, the export macros, [`User`], [`Hook`], [`config`], [`config_path`],
//!   [`hook_event`];
//! - [`log`]: the host's log, with [`Level`]; [`sink`]: JSON lines to a file or the log;
//! - [`testkit`]: load the built plugin as the host does, for the author's tests;
//! - `abi` (hidden): the root module, the typed failure, the call and kind numbers;
//! - `load` (hidden): the loader the host and the test kit share; `glue` (hidden): the
//!   `extern "C"` functions behind the macros.

#[doc(hidden)]
pub mod abi;
#[cfg(feature = "abi-evolution-test")]
#[doc(hidden)]
pub mod evolution_test;
#[doc(hidden)]
pub mod glue;
#[doc(hidden)]
pub mod load;
pub mod log;
pub mod sink;
pub mod testkit;
mod user;

#[doc(hidden)]
pub use abi_stable;
pub use log::Level;
pub use serde_json;
pub use serde_json::{Value, json};
pub use user::{HookEvent, User};

/// Interface version a plugin was built for; the host refuses plugins built for another one.
///
/// History: 1, a root module per kind (2026-11); 2, one root module for both kinds with typed
/// call failures and optional appended functions (2026-11-30).
pub const INTERFACE_VERSION: u32 = 2;

/// Answers `get_permissions(service, userid)` for the service aliases it is configured under.
pub trait PermissionProvider: Send + Sync + Sized + 'static {
    /// Builds an instance from its `[plugins.config.<alias>]` table (`{}` when there is none);
    /// [`config`] reads it into a serde type.
    fn new(config: Value) -> Result<Self, String>;

    /// The permissions of `userid` for `service` (the alias that was asked for): a JSON object
    /// of any values.
    fn get_permissions(&self, service: &str, userid: &str) -> Result<Value, String>;

    /// The same question with the user's profile (`id`, `email`, `username`, `name`,
    /// `provider_id`; [`User::from_value`] reads it), for providers that decide by more than
    /// the id. By default it asks [`get_permissions`](Self::get_permissions).
    fn get_permissions_for_user(&self, service: &str, user: &Value) -> Result<Value, String> {
        let userid = user.get("id").and_then(Value::as_str).unwrap_or_default();
        self.get_permissions(service, userid)
    }
}

/// Receives lifecycle hooks with the user's profile as JSON ([`User::from_value`] reads it).
/// Every hook is optional.
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

/// The three hooks, named as the original service's extensions name their functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    /// `on_new_user`: once, when an account is created.
    NewUser,
    /// `on_user_login`: on every successful login.
    UserLogin,
    /// `on_user_logout`: on logout.
    UserLogout,
}

impl Hook {
    pub const ALL: [Hook; 3] = [Hook::NewUser, Hook::UserLogin, Hook::UserLogout];

    /// `on_new_user`, `on_user_login` or `on_user_logout`.
    pub const fn name(self) -> &'static str {
        match self {
            Hook::NewUser => "on_new_user",
            Hook::UserLogin => "on_user_login",
            Hook::UserLogout => "on_user_logout",
        }
    }

    /// The hook a name (`name`) names.
    pub fn from_name(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.name() == name)
    }

    /// The call number this hook crosses the boundary as.
    #[doc(hidden)]
    pub const fn code(self) -> u8 {
        match self {
            Hook::NewUser => abi::HOOK_NEW_USER,
            Hook::UserLogin => abi::HOOK_USER_LOGIN,
            Hook::UserLogout => abi::HOOK_USER_LOGOUT,
        }
    }
}

/// The event a hook delivery belongs to, `(event id, attempt)`, from the profile a hook
/// receives (`user["hook_event"]`, also [`User::hook_event`]). A delivery can repeat (a retry
/// after an error, a crash or a lost answer): an extension that must act once per event drops
/// ids it has already handled. `None` when the host sent none (a host before durable hooks, a
/// test calling the hook).
pub fn hook_event(user: &Value) -> Option<(u64, u32)> {
    let event = user.get("hook_event")?;
    let id = event.get("id")?.as_u64()?;
    let attempt = event.get("attempt")?.as_u64()?;
    Some((id, u32::try_from(attempt).ok()?))
}

/// Reads a plugin's configuration table into `T`, any `serde::Deserialize` type (add `serde`
/// with its `derive` feature to the plugin's dependencies). A mismatch names the place in the table:
/// `rules[1].email: invalid type: integer, expected a string`. Mark the type
/// `#[serde(deny_unknown_fields)]` to refuse a misspelt key instead of ignoring it.
pub fn config<T: serde::de::DeserializeOwned>(config: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(config).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("{path}: {}", e.into_inner())
        }
    })
}

/// The variable through which the host tells plugins the folder of its configuration file
/// (absolute). Set by the `authhost` binary before any plugin loads, in process and in workers
/// alike; unset when the host runs without a file (then the working directory stands in).
pub const CONFIG_DIR_VARIABLE: &str = "AUTHHOST_CONFIG_DIR";

/// A path from a plugin's settings, read the way the host reads its own: a relative path is
/// relative to the configuration file's folder (so `path = "data/audit.jsonl"` lands beside
/// `config.toml` whatever the working directory), an absolute one stays as written.
pub fn config_path(path: impl AsRef<std::path::Path>) -> std::path::PathBuf {
    let path = path.as_ref();
    match std::env::var_os(CONFIG_DIR_VARIABLE) {
        Some(dir) if path.is_relative() && !dir.is_empty() => std::path::Path::new(&dir).join(path),
        _ => path.to_path_buf(),
    }
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
                $crate::abi_stable::library::LibHeader::from_constructor::<
                    $crate::abi::PluginModuleRef,
                >(
                    erased_root_module,
                    $crate::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };

        pub fn authhost_root_module() -> $crate::abi::PluginModuleRef {
            use $crate::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::abi::PluginModule {
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
            $crate::abi::KIND_PROVIDER,
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
            $crate::abi::KIND_EXTENSION,
            $name,
            $version
        );
    };
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[test]
    fn the_root_module_symbol_is_the_one_abi_stable_looks_up() {
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }

    #[test]
    fn a_kind_reads_back_from_its_word() {
        for kind in [abi::Kind::Provider, abi::Kind::Extension] {
            assert_eq!(abi::Kind::from_word(kind.word()), Some(kind));
        }
        assert_eq!(abi::Kind::from_word("permission provider"), None);
    }

    #[test]
    fn a_hook_reads_back_from_its_name_and_has_its_own_number() {
        let mut codes: Vec<u8> = Hook::ALL.iter().map(|h| h.code()).collect();
        for hook in Hook::ALL {
            assert_eq!(Hook::from_name(hook.name()), Some(hook));
        }
        codes.dedup();
        assert_eq!(codes.len(), 3);
        assert!(!codes.contains(&abi::CALL_GET_PERMISSIONS));
        assert_eq!(Hook::from_name("on_user_signup"), None);
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // read through Debug only
    struct Settings {
        path: String,
        #[serde(default)]
        rules: Vec<Rule>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Rule {
        email: String,
    }

    #[test]
    fn config_names_the_place_of_a_mismatch() {
        let ok: Settings = config(json!({ "path": "a", "rules": [{ "email": "x" }] })).expect("ok");
        assert_eq!(ok.rules.len(), 1);
        let err =
            config::<Settings>(json!({ "path": "a", "rules": [{ "email": "x" }, { "email": 3 }] }))
                .expect_err("refused");
        assert!(
            err.starts_with("rules[1].email: invalid type: integer"),
            "{err}"
        );
        let err = config::<Settings>(json!({ "path": "a", "pth": "b" })).expect_err("refused");
        assert!(err.contains("unknown field `pth`"), "{err}");
        let err = config::<Settings>(json!({})).expect_err("refused");
        assert_eq!(err, "missing field `path`");
    }
}
