//! Relative paths in a configuration read from a file are relative to that file's folder, so
//! `authhost --config /srv/authhost/config.toml` finds the same plugins, keys, data folder and
//! SQLite file from any working directory. `./config.toml` (the repository's, found in the
//! working directory) keeps its paths as written. Paths from the environment (`DATABASE_URL`,
//! `PRIVATE_KEY_FILE`, `AUTHHOST_*`, `AUTHHOST_PLUGIN_PATH`) are the shell's and stay relative to
//! the working directory, as they always were.

use std::path::{Path, PathBuf};

use super::{Config, Secret};

fn under(base: &Path, path: &mut PathBuf) {
    if path.is_relative() && !path.as_os_str().is_empty() {
        *path = base.join(&*path);
    }
}

/// A `sqlite:` URL whose file path is relative, rewritten under `base`; `None` for anything
/// else (PostgreSQL, absolute paths, in-memory databases).
pub fn sqlite_under(base: &Path, url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    if path.is_empty() || path.starts_with('/') || path.starts_with(":memory:") {
        return None;
    }
    // The folder's own `%`, `?` and `#` would read as URL syntax: escaped (sqlx decodes them).
    let joined = base
        .join(path)
        .display()
        .to_string()
        .replace('%', "%25")
        .replace('?', "%3F")
        .replace('#', "%23");
    Some(match query {
        Some(q) => format!("sqlite://{joined}?{q}"),
        None => format!("sqlite://{joined}"),
    })
}

/// The settings that hold paths, as figment names them.
pub const PATH_KEYS: [&str; 11] = [
    "server.data_dir",
    "plugins.dirs",
    "plugins.worker_program",
    "plugins.python.venv",
    "plugins.python.path",
    "keys.private_key_file",
    "keys.public_key_file",
    "keys.extra_public_key_files",
    "keys.retired_private_key_files",
    "keys.next_private_key_files",
    "database.url",
];

impl Config {
    /// Makes the relative paths of this configuration relative to `base` (the folder of the
    /// configuration file), except those of the settings `keep` names (set by the environment).
    pub(super) fn resolve_paths(&mut self, base: &Path, keep: &dyn Fn(&str) -> bool) {
        if base.as_os_str().is_empty() {
            return;
        }
        let moved = |key: &str| !keep(key);
        if moved("server.data_dir") {
            under(base, &mut self.server.data_dir);
        }
        if moved("plugins.dirs") {
            self.plugins
                .dirs
                .iter_mut()
                .for_each(|dir| under(base, dir));
        }
        if moved("plugins.worker_program")
            && let Some(program) = &mut self.plugins.worker_program
        {
            under(base, program);
        }
        if let Some(python) = &mut self.plugins.python {
            if moved("plugins.python.venv")
                && let Some(venv) = &mut python.venv
            {
                under(base, venv);
            }
            if moved("plugins.python.path") {
                python.path.iter_mut().for_each(|dir| under(base, dir));
            }
        }
        let keys = &mut self.keys;
        for (key, file) in [
            ("keys.private_key_file", &mut keys.private_key_file),
            ("keys.public_key_file", &mut keys.public_key_file),
        ] {
            if let (true, Some(file)) = (moved(key), file) {
                under(base, file);
            }
        }
        for (key, files) in [
            (
                "keys.extra_public_key_files",
                &mut keys.extra_public_key_files,
            ),
            (
                "keys.retired_private_key_files",
                &mut keys.retired_private_key_files,
            ),
            (
                "keys.next_private_key_files",
                &mut keys.next_private_key_files,
            ),
        ] {
            if moved(key) {
                files.iter_mut().for_each(|file| under(base, file));
            }
        }
        if moved("database.url")
            && let Some(url) = sqlite_under(base, self.database.url.expose().trim())
        {
            self.database.url = Secret::new(url);
        }
    }
}
