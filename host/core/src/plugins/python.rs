//! Python modules as plugins. The host knows no Python: a name no plugin library answers to is,
//! when `[plugins.python]` is configured, handed to the bridge library of its kind
//! (`python_provider` or `python_extension`, built from `plugins/python_bridge`), which imports
//! the module in its own interpreter. Each module gets its own worker process, started anew on
//! every reload so that edited `.py` files are read again.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::Kind;
use super::resolve::resolve;
use crate::config::{Config, Isolation};

/// The bridge library to load for a module, and what its instance is given.
pub struct Target {
    pub library: PathBuf,
    pub settings: Value,
}

/// The bridge library's name for `kind`.
fn bridge_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Provider => "python_provider",
        Kind::Extension => "python_extension",
    }
}

/// Whether `name` reads as a Python module path (`acme.perms`): dotted identifiers.
fn is_module_name(name: &str) -> bool {
    name.split('.').all(|part| {
        let mut chars = part.chars();
        chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
            && chars.all(|c| c == '_' || c.is_alphanumeric())
    })
}

/// How to run `name` as a Python module of `kind`, when it can be one: `None` when Python is
/// not configured or `name` is no module name (the caller's "not found" stands alone).
pub fn target(kind: Kind, name: &str, config: &Config) -> Option<Result<Target, String>> {
    let python = config.plugins.python.as_ref()?;
    if !is_module_name(name) {
        return None;
    }
    if config.plugins.isolation == Isolation::InProcess {
        return Some(Err(format!(
            "Python module `{name}` needs plugins.isolation = \"process\": each module runs in a \
             worker process with its own interpreter (one CPython per process can neither be \
             restarted nor re-import an edited module, and a crash in a C extension would take \
             authhost down)"
        )));
    }
    let bridge = bridge_name(kind);
    let library = match resolve(bridge, config) {
        Ok(path) => path,
        Err(e) => {
            return Some(Err(format!(
                "as a Python module it needs the bridge: {e} (build it with \
                 `bash plugins/python_bridge/build.sh`)"
            )));
        }
    };
    let path: Vec<String> = python
        .path
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    Some(Ok(Target {
        library,
        settings: json!({
            "module": name,
            "venv": python.venv.as_ref().map(|v| v.display().to_string()),
            "path": path,
        }),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_are_dotted_identifiers() {
        for ok in [
            "acme",
            "acme.perms",
            "_private.x1",
            "sample_permission_provider",
        ] {
            assert!(is_module_name(ok), "{ok}");
        }
        for bad in [
            "", "acme.", ".acme", "a..b", "1st", "a-b", "a/b", "libx.so/",
        ] {
            assert!(!is_module_name(bad), "{bad}");
        }
    }
}
