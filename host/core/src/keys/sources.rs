//! Where the PEM texts come from: the key settings (`PRIVATE_KEY`/`PUBLIC_KEY` or
//! `keys.*_file`), the extra public key files, and, with nothing configured and dev login on,
//! the development pair in `data_dir`.

use std::path::Path;

use super::{KeyError, files, invalid};
use crate::config::Config;

/// A PEM text and the name of the setting or file it came from, for messages.
pub struct Pem {
    pub source: String,
    pub text: String,
}

/// The PEM texts to load, and the problems found reading them.
pub struct Sources {
    pub private: Pem,
    pub public: Option<Pem>,
    pub extra_public: Vec<Pem>,
    pub retired: Vec<Pem>,
    pub next: Vec<Pem>,
    pub errors: Vec<KeyError>,
}

/// A value given inline (`Some`) wins over its `_file` setting.
fn inline_or_file(
    inline: Option<&str>,
    inline_name: &str,
    file: Option<&Path>,
    file_name: &str,
    errors: &mut Vec<KeyError>,
) -> Option<Pem> {
    if let Some(text) = inline {
        return Some(Pem {
            source: inline_name.to_string(),
            text: text.to_string(),
        });
    }
    let path = file?;
    match std::fs::read_to_string(path) {
        Ok(text) => Some(Pem {
            source: format!("{file_name} ({})", path.display()),
            text,
        }),
        Err(e) => {
            errors.push(invalid(
                file_name,
                format!("cannot read {}: {e}", path.display()),
            ));
            None
        }
    }
}

/// Reads every configured key. Fails at once only when there is no private key to load.
pub fn read(config: &Config) -> Result<Sources, Vec<KeyError>> {
    let mut errors = Vec::new();
    let keys = &config.keys;
    // As before the split: any private key text counts, a blank public key is none.
    let private = inline_or_file(
        Some(keys.private_key.expose()).filter(|t| !t.is_empty()),
        "keys.private_key (PRIVATE_KEY)",
        keys.private_key_file.as_deref(),
        "keys.private_key_file",
        &mut errors,
    );
    let public = inline_or_file(
        Some(keys.public_key.as_str()).filter(|t| !t.trim().is_empty()),
        "keys.public_key (PUBLIC_KEY)",
        keys.public_key_file.as_deref(),
        "keys.public_key_file",
        &mut errors,
    );
    let (private, public) = match (private, public) {
        (Some(p), public) => (p, public),
        (None, _) if !errors.is_empty() => return Err(errors),
        (None, Some(_)) => {
            return Err(vec![invalid(
                "keys.private_key_file",
                "a public key is configured but no private key (PRIVATE_KEY or keys.private_key_file)",
            )]);
        }
        (None, None) if config.dev_login_enabled() => {
            let (path, text) = files::dev_keys(&config.server.data_dir).map_err(|e| vec![e])?;
            tracing::warn!(
                path = %path.display(),
                "NO SIGNING KEY CONFIGURED: using a development key pair generated into data_dir. \
                 Configure PRIVATE_KEY/PUBLIC_KEY (or keys.*_file) before real use."
            );
            // The public half is derived from the private key.
            let source = format!("dev key ({})", path.display());
            (Pem { source, text }, None)
        }
        (None, None) => {
            return Err(vec![invalid(
                "keys.private_key_file",
                "no signing key configured: set PRIVATE_KEY/PUBLIC_KEY or keys.private_key_file \
                 (`authhost keygen --out DIR` makes a pair)",
            )]);
        }
    };
    let extra_public = read_list(
        "keys.extra_public_key_files",
        &keys.extra_public_key_files,
        &mut errors,
    );
    let retired = read_list(
        "keys.retired_private_key_files",
        &keys.retired_private_key_files,
        &mut errors,
    );
    let next = read_list(
        "keys.next_private_key_files",
        &keys.next_private_key_files,
        &mut errors,
    );
    Ok(Sources {
        private,
        public,
        extra_public,
        retired,
        next,
        errors,
    })
}

/// The files of the list setting `name`, each named `name[i] (path)` in messages.
fn read_list(name: &str, paths: &[std::path::PathBuf], errors: &mut Vec<KeyError>) -> Vec<Pem> {
    let mut pems = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let source = format!("{name}[{i}] ({})", path.display());
        match std::fs::read_to_string(path) {
            Ok(text) => pems.push(Pem { source, text }),
            Err(e) => errors.push(invalid(&source, format!("cannot read it: {e}"))),
        }
    }
    pems
}

/// Where `load` would generate the development key pair, when it would: no key configured, dev
/// login on, and no pair in `data_dir` yet. `authhost check` reports it instead of writing it.
pub fn dev_keys_to_generate(config: &Config) -> Option<std::path::PathBuf> {
    let keys = &config.keys;
    let nothing_configured = keys.private_key.expose().is_empty()
        && keys.private_key_file.is_none()
        && keys.public_key.trim().is_empty()
        && keys.public_key_file.is_none();
    let path = config.server.data_dir.join("dev-private.pem");
    (nothing_configured && config.dev_login_enabled() && !path.exists()).then_some(path)
}
