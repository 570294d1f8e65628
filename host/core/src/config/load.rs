//! Loading: the file (if any), then the environment layers, then normalisation and
//! validation.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};

use super::sources::{AuthhostEnv, OriginalEnv};
use super::validate::check_choices;
use super::{Config, ConfigError, ConfigErrors, EnvMap, config_path};

impl Config {
    /// Reads the file (if any), applies the environment layers and validates the result.
    pub fn load(explicit: Option<&Path>, env: &EnvMap) -> Result<Config, ConfigErrors> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        let mut base = None;
        if let Some((path, required)) = config_path(explicit, env) {
            if !path.exists() {
                if required {
                    return Err(ConfigErrors::one(
                        path.display().to_string(),
                        "configuration file not found",
                    ));
                }
            } else {
                figment = figment.merge(Toml::file_exact(&path));
                base = path.parent().map(Path::to_path_buf);
            }
        }
        Self::from_figment(figment, env, base.as_deref())
    }

    /// Parses configuration from TOML text plus the environment (tests and tools).
    pub fn from_toml_str(text: &str, env: &EnvMap) -> Result<Config, ConfigErrors> {
        let figment =
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text));
        Self::from_figment(figment, env, None)
    }

    /// `base`: the folder of the configuration file, which relative paths are taken from.
    fn from_figment(
        figment: Figment,
        env: &EnvMap,
        base: Option<&Path>,
    ) -> Result<Config, ConfigErrors> {
        let figment = figment
            .merge(AuthhostEnv(env.clone()))
            .merge(OriginalEnv(env.clone()));
        // A wrong word is reported with every other problem, not alone as a type error would be.
        // Which path settings the environment set: those stay relative to the working directory.
        let from_env: Vec<&str> = super::paths::PATH_KEYS
            .into_iter()
            .filter(|key| {
                figment
                    .find_metadata(key)
                    .is_some_and(|m| m.name.contains("environment"))
            })
            .collect();
        let (figment, mut errors) = check_choices(figment);
        let config: Config = match figment.extract() {
            Ok(config) => config,
            Err(extract_errors) => {
                errors.extend(extract_errors.into_iter().map(|e| ConfigError {
                    key: if e.path.is_empty() {
                        "config".into()
                    } else {
                        e.path.join(".")
                    },
                    message: match &e.metadata {
                        Some(m) => format!("{} (from {})", e.kind, m.name),
                        None => e.kind.to_string(),
                    },
                }));
                return Err(ConfigErrors(errors));
            }
        };
        let mut config = config.normalized();
        if let Some(base) = base {
            config.resolve_paths(base, &|key| from_env.contains(&key));
        }
        if let Some(path) = env.get("AUTHHOST_PLUGIN_PATH") {
            config.plugins.search_path = path
                .split(':')
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect();
        }
        errors.extend(config.validate());
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    fn normalized(mut self) -> Config {
        // The original assumed https:// when EXTERNAL_ADDRESS had no scheme.
        let ext = self
            .server
            .external_address
            .trim()
            .trim_end_matches('/')
            .to_string();
        self.server.external_address = if ext.contains("://") || ext.is_empty() {
            ext
        } else {
            format!("https://{ext}")
        };
        if !self.server.prefix.starts_with('/') {
            self.server.prefix.insert(0, '/');
        }
        if !self.server.prefix.ends_with('/') {
            self.server.prefix.push('/');
        }
        self
    }
}
