//! What the host hands the bridge for one instance: the module's name and the `[plugins.python]`
//! settings, paths already resolved by the host as every path of its configuration.

use std::path::{Path, PathBuf};

use pyo3::Python;
use serde::Deserialize;

use crate::interpreter;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The module to import, dotted as in `ALLOWED_SERVICES` (`acme.perms`).
    pub module: String,
    /// A virtual environment whose packages the module imports.
    #[serde(default)]
    pub venv: Option<PathBuf>,
    /// Folders put first on `sys.path`.
    #[serde(default)]
    pub path: Vec<PathBuf>,
}

impl Settings {
    pub fn path_strings(&self) -> Vec<String> {
        self.path.iter().map(|p| p.display().to_string()).collect()
    }

    /// The venv's `site-packages`, after checking that it was made for this interpreter's
    /// `major.minor` (compiled packages of another version would not import).
    pub fn site_packages(&self, py: Python<'_>) -> Result<Vec<String>, String> {
        let Some(venv) = &self.venv else {
            return Ok(Vec::new());
        };
        let (major, minor) = interpreter::version(py);
        let made_for = venv_version(venv)?;
        if made_for != (major, minor) {
            return Err(format!(
                "the venv {} is for Python {}.{}, but this bridge runs Python {major}.{minor}: \
                 make the venv with python{major}.{minor} -m venv",
                venv.display(),
                made_for.0,
                made_for.1
            ));
        }
        let site = venv.join(format!("lib/python{major}.{minor}/site-packages"));
        if !site.is_dir() {
            return Err(format!("the venv has no {}", site.display()));
        }
        Ok(vec![site.display().to_string()])
    }
}

/// `major.minor` from a venv's `pyvenv.cfg` (`version = 3.11.7`, or `version_info` in newer
/// Pythons).
fn venv_version(venv: &Path) -> Result<(u8, u8), String> {
    let file = venv.join("pyvenv.cfg");
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("{}: not a virtual environment ({e})", file.display()))?;
    let value = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| matches!(k.trim(), "version" | "version_info"))
        .map(|(_, v)| v.trim().to_string())
        .ok_or_else(|| format!("{}: no version line", file.display()))?;
    let mut parts = value.split('.').map(str::parse::<u8>);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => Ok((major, minor)),
        _ => Err(format!("{}: version `{value}` unreadable", file.display())),
    }
}
