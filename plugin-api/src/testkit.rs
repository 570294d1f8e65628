//! For plugin authors' tests: find the library cargo built and load it exactly as the host
//! does (same checks, same boundary), then call it.
//!
//! ```no_run
//! use authhost_plugin_api::{json, testkit};
//! let provider = testkit::load_provider(&testkit::built_library("my_provider")).unwrap();
//! let instance = provider.instantiate(&json!({})).unwrap();
//! assert!(instance.get_permissions("svc", "user").unwrap().is_object());
//! ```

use std::path::{Path, PathBuf};

use crate::abi::Kind;
pub use crate::load::{CallError, Instance, Library, LoadError, PluginInfo};

/// `lib<crate_name>.so` (hyphens read as underscores) in the cargo target folder of the running
/// test: `target/<profile>/` or its `deps/`. Panics with the places it looked if it is missing.
pub fn built_library(crate_name: &str) -> PathBuf {
    let file = library_file_name(crate_name);
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test binary>
    let deps = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let profile = deps.parent().map(Path::to_path_buf).unwrap_or_default();
    let candidates = [profile.join(&file), deps.join(&file)];
    for c in &candidates {
        if c.exists() {
            return c.clone();
        }
    }
    #[allow(clippy::panic)] // the test kit runs in tests only: a missing build fails the test
    {
        panic!(
            "{file} not found in {candidates:?}: build the plugin crate (crate-type cdylib) first"
        );
    }
}

/// `libfoo.so` for `foo` on Linux (the platform's naming elsewhere).
pub fn library_file_name(name: &str) -> String {
    format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    )
}

/// Loads a permission provider library.
pub fn load_provider(path: &Path) -> Result<Library, LoadError> {
    Library::load(path, Kind::Provider)
}

/// Loads an extension library.
pub fn load_extension(path: &Path) -> Result<Library, LoadError> {
    Library::load(path, Kind::Extension)
}
