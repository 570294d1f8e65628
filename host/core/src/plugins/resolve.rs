//! Where a plugin named in the configuration lives: a value with a `/` is a path; a plain name
//! `foo` (hyphens read as underscores) is `libfoo.so` in the first of `AUTHHOST_PLUGIN_PATH`
//! (colon-separated), then `[plugins] dirs`, that has it.

use std::path::PathBuf;

use authhost_plugin_api::testkit::library_file_name;

use crate::config::Config;

pub fn resolve(name: &str, config: &Config) -> Result<PathBuf, String> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{name}: no such file"))
        };
    }
    let file = library_file_name(name);
    let dirs: Vec<&PathBuf> = config
        .plugins
        .search_path
        .iter()
        .chain(config.plugins.dirs.iter())
        .collect();
    dirs.iter()
        .map(|d| d.join(&file))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            format!(
                "plugin `{name}` not found: no {file} in {}",
                looked.join(", ")
            )
        })
}
