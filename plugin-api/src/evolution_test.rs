//! Test-only: the root module as the next interface would have it, one optional function
//! appended after the last prefix field, declared exactly as a future `PluginModule` would be.
//! A host built with this type loading a plugin built against today's [`crate::abi::PluginModule`]
//! is the situation the evolution rule in `docs/plugins.md` promises to handle: the plugin
//! loads and the new function reads as `None`, "not implemented".
//!
//! abi_stable matches layouts by type name and package, not module path, so these types must be
//! named `PluginModule` and live in this crate. `panicking` is the same extension declared with
//! `missing_field(panic)`, the attribute interface 1 had, to show what the rule guards against.

/// Declares the extended root module with missing fields handled as `$missing`, and `load`.
macro_rules! extended_module {
    ($missing:ident) => {
        use std::path::Path;

        use abi_stable::library::RootModule;
        use abi_stable::sabi_types::VersionStrings;
        use abi_stable::std_types::{RResult, RStr, RString};
        use abi_stable::{StableAbi, declare_root_module_statics, package_version_strings};

        use crate::abi::{CallFailure, HostLogger, Kind};
        use crate::load::{LoadError, load_evolved};

        /// The next interface's root module: today's fields, then `describe`.
        #[repr(C)]
        #[derive(StableAbi)]
        #[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
        #[sabi(missing_field($missing))]
        pub struct PluginModule {
            pub interface_version: u32,
            pub kind: u32,
            pub name: RStr<'static>,
            pub version: RStr<'static>,
            pub set_logger: extern "C" fn(HostLogger, RStr<'_>),
            pub new_instance: extern "C" fn(config: RStr<'_>) -> RResult<usize, CallFailure>,
            pub drop_instance: extern "C" fn(handle: usize),
            #[sabi(last_prefix_field)]
            pub call: extern "C" fn(
                handle: usize,
                call: u8,
                service: RStr<'_>,
                user: RStr<'_>,
            ) -> RResult<RString, CallFailure>,
            /// The appended optional function.
            pub describe: extern "C" fn() -> RString,
        }

        impl RootModule for PluginModuleRef {
            declare_root_module_statics! {PluginModuleRef}
            const BASE_NAME: &'static str = "authhost_plugin";
            const NAME: &'static str = "authhost_plugin";
            const VERSION_STRINGS: VersionStrings = package_version_strings!();
        }

        /// Loads `path` as a host built with the extended interface would: through this
        /// declaration, or, for a plugin built before `describe` existed, through the previous
        /// one (today's).
        pub fn load(path: &Path, kind: Kind) -> Result<PluginModuleRef, LoadError> {
            load_evolved::<PluginModuleRef, crate::abi::PluginModuleRef>(path, kind, |older| {
                // SAFETY: the previous declaration is a prefix of this one (same fields in the
                // same order), and abi_stable checked it against the library; the accessor of
                // the appended field reads the library's own field count.
                PluginModuleRef(unsafe { older.0.cast() })
            })
        }
    };
}

extended_module!(option);

/// The same extension declared with `missing_field(panic)`.
pub mod panicking {
    extended_module!(panic);
}
