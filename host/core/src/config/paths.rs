//! Relative paths in a configuration read from a file are relative to that file's folder, so
//! `authhost --config /srv/authhost/config.toml` finds the same plugins, keys, data folder and
//! SQLite file from any working directory. `./config.toml` (the repository's, found in the
//! working directory) keeps its paths as written. `AUTHHOST_PLUGIN_PATH` is the shell's and
//! stays relative to the working directory.

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
    let joined = base.join(path);
    Some(match query {
        Some(q) => format!("sqlite://{}?{q}", joined.display()),
        None => format!("sqlite://{}", joined.display()),
    })
}

impl Config {
    /// Makes every relative path of this configuration relative to `base` (the folder of the
    /// configuration file).
    pub(super) fn resolve_paths(&mut self, base: &Path) {
        if base.as_os_str().is_empty() {
            return;
        }
        under(base, &mut self.server.data_dir);
        self.plugins
            .dirs
            .iter_mut()
            .for_each(|dir| under(base, dir));
        if let Some(program) = &mut self.plugins.worker_program {
            under(base, program);
        }
        let keys = &mut self.keys;
        for file in [&mut keys.private_key_file, &mut keys.public_key_file]
            .into_iter()
            .flatten()
        {
            under(base, file);
        }
        for file in keys
            .extra_public_key_files
            .iter_mut()
            .chain(keys.retired_private_key_files.iter_mut())
            .chain(keys.next_private_key_files.iter_mut())
        {
            under(base, file);
        }
        if let Some(url) = sqlite_under(base, self.database.url.expose().trim()) {
            self.database.url = Secret::new(url);
        }
    }
}
