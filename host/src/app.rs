//! Everything a request needs, built and validated once at start (and by each CLI command).

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::config::Config;
use crate::hooks::Hooks;
use crate::keys::KeyRing;
use crate::permissions::Permissions;
use crate::redirects::RedirectPolicy;
use crate::tokens::TokenService;

pub struct App {
    pub config: Config,
    pub db: DatabaseConnection,
    pub tokens: TokenService,
    pub permissions: Permissions,
    pub hooks: Hooks,
    pub redirects: RedirectPolicy,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
}

pub type SharedApp = Arc<App>;

/// Every problem found at start, each naming the key or file at fault.
#[derive(Debug)]
pub struct StartupErrors(pub Vec<String>);

impl std::fmt::Display for StartupErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "authhost cannot start, {} problem(s):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StartupErrors {}

impl App {
    /// Loads keys, plugins and the database, runs migrations (unless turned off) and the token
    /// self-test. All problems are collected before giving up.
    pub async fn build(config: Config) -> Result<App, StartupErrors> {
        crate::crypto::install();
        let mut errors: Vec<String> = Vec::new();
        let keys = KeyRing::load(&config)
            .map_err(|es| errors.extend(es.iter().map(|e| e.to_string())))
            .ok();
        let permissions = Permissions::from_config(&config)
            .map_err(|es| errors.extend(es.iter().map(|e| e.to_string())))
            .ok();
        let hooks = Hooks::from_config(&config)
            .map_err(|es| errors.extend(es.iter().map(|e| e.to_string())))
            .ok();
        let redirects =
            RedirectPolicy::new(&config.redirects.allowed, &config.server.external_address)
                .map_err(|e| errors.push(format!("redirects.allowed: {e}")))
                .ok();
        let db = match crate::db::connect(&config.database_url(), config.database.max_connections)
            .await
        {
            Ok(db) => Some(db),
            Err(e) => {
                errors.push(format!(
                    "database.url (DATABASE_URL): cannot open the database: {e}"
                ));
                None
            }
        };
        if let (Some(db), true) = (&db, config.server.run_migrations)
            && let Err(e) = crate::db::migrate(db).await
        {
            errors.push(format!(
                "database.url (DATABASE_URL): migrations failed: {e}"
            ));
        }
        let (Some(keys), Some(permissions), Some(hooks), Some(redirects), Some(db), true) =
            (keys, permissions, hooks, redirects, db, errors.is_empty())
        else {
            return Err(StartupErrors(errors));
        };
        let tokens = TokenService::new(&config, Arc::new(keys));
        tokens.self_test().map_err(|e| {
            StartupErrors(vec![format!("keys: sign-and-verify self-test failed: {e}")])
        })?;
        Ok(App {
            config,
            db,
            tokens,
            permissions,
            hooks,
            redirects,
            metrics: crate::metrics::handle(),
        })
    }

    /// The URL that starts a login with `provider`, carrying `next`.
    pub fn login_url(&self, provider: &str, next: Option<&str>) -> String {
        let base = format!(
            "{}{}login/{provider}",
            self.config.server.external_address, self.config.server.prefix
        );
        match next {
            Some(next) => {
                let q = form_urlencoded::Serializer::new(String::new())
                    .append_pair("next", next)
                    .finish();
                format!("{base}?{q}")
            }
            None => base,
        }
    }

    /// Enabled login providers, by name. Only dev login until upstream logins land.
    pub fn login_providers(&self) -> Vec<&str> {
        let mut names = Vec::new();
        if self.config.dev_login_enabled() {
            names.push("dev");
        }
        names
    }
}
