//! Everything a request needs, built and validated once at start (and by each CLI command).

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::call_pool::CallPool;
use crate::client_addr::TrustedProxies;
use crate::config::Config;
use crate::keys::KeyRing;
use crate::login::Upstreams;
use crate::login::sealed::Sealer;
use crate::plugins::{LibraryCache, PluginSet};
use crate::redirects::RedirectPolicy;
use crate::tokens::TokenService;
use crate::user_cache::UserCache;

pub struct App {
    pub config: Config,
    pub db: crate::db::Db,
    pub tokens: TokenService,
    /// The current plugin set; replaced whole by a reload.
    plugins: ArcSwap<PluginSet>,
    libraries: Arc<Mutex<LibraryCache>>,
    /// The threads plugin calls run on, kept across plugin reloads.
    call_pool: Arc<CallPool>,
    /// The threads permission tokens are signed on, one per core.
    signers: Arc<CallPool>,
    pub redirects: RedirectPolicy,
    /// Enabled login providers other than the dev form.
    pub upstreams: Upstreams,
    /// Seals logins in progress into the browser's cookie (keys derived from the key ring).
    pub login_sealer: Sealer,
    /// The login cookie's `Path`: the callback's path as the browser sees it (the external
    /// address may carry a path of its own before the prefix).
    pub login_cookie_path: String,
    /// The OpenID Provider's authorization endpoint as clients see it, with its `?`.
    pub oidc_authorize_url: String,
    /// The browser session cookie's `Path`: the OpenID Provider's pages (`{prefix}oidc/`) as the
    /// browser sees them.
    pub session_cookie_path: String,
    pub user_cache: UserCache,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
}

pub type SharedApp = Arc<App>;

/// Loads plugins off the async workers (opening libraries and running constructors blocks).
pub(crate) async fn load_plugins(
    config: Config,
    libraries: Arc<Mutex<LibraryCache>>,
    pool: Arc<CallPool>,
) -> Result<PluginSet, Vec<String>> {
    tokio::task::spawn_blocking(move || {
        let mut cache = libraries
            .lock()
            .map_err(|_| vec!["plugin library cache poisoned".to_string()])?;
        PluginSet::load(&config, &mut cache, pool)
    })
    .await
    .map_err(|e| vec![format!("plugin loading failed: {e}")])?
}

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
        // Installed first: handles created below (the pools' gauges) bind to it.
        let metrics = crate::metrics::handle();
        let mut errors: Vec<String> = Vec::new();
        let keys = KeyRing::load(&config)
            .map_err(|es| errors.extend(es.iter().map(|e| e.to_string())))
            .ok();
        let libraries = Arc::new(Mutex::new(LibraryCache::new(&config.server.data_dir)));
        let call_pool = CallPool::new("plugin-call", config.plugins.max_concurrent_calls)
            .map_err(|e| {
                errors.push(format!(
                    "plugins.max_concurrent_calls: cannot start the threads: {e}"
                ))
            })
            .ok();
        let plugins = match &call_pool {
            Some(pool) => load_plugins(config.clone(), libraries.clone(), pool.clone())
                .await
                .map_err(|es| errors.extend(es))
                .ok(),
            None => None,
        };
        let upstreams = Upstreams::from_config(&config)
            .map_err(|es| errors.extend(es))
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
        let signers = CallPool::new("sign", cores())
            .map_err(|e| errors.push(format!("cannot start the signing threads: {e}")))
            .ok();
        let (
            Some(keys),
            Some(call_pool),
            Some(signers),
            Some(plugins),
            Some(redirects),
            Some(upstreams),
            Some(db),
            true,
        ) = (
            keys,
            call_pool,
            signers,
            plugins,
            redirects,
            upstreams,
            db,
            errors.is_empty(),
        )
        else {
            return Err(StartupErrors(errors));
        };
        let tokens = TokenService::new(&config, Arc::new(keys));
        tokens.self_test().map_err(|e| {
            StartupErrors(vec![format!("keys: sign-and-verify self-test failed: {e}")])
        })?;
        let login_sealer =
            Sealer::new(tokens.keys()).map_err(|e| StartupErrors(vec![format!("keys: {e}")]))?;
        let callback = crate::login::callback_url(&config);
        let login_cookie_path = url::Url::parse(&callback)
            .map(|u| u.path().to_string())
            .map_err(|e| StartupErrors(vec![format!("server.external_address: {e}")]))?;
        let oidc_base = format!(
            "{}{}oidc/",
            config.server.external_address, config.server.prefix
        );
        let session_cookie_path = url::Url::parse(&oidc_base)
            .map(|u| u.path().to_string())
            .map_err(|e| StartupErrors(vec![format!("server.external_address: {e}")]))?;
        let oidc_authorize_url = format!("{oidc_base}authorize?");
        let user_cache = UserCache::with_notifications(
            std::time::Duration::from_millis(config.database.user_cache_ms),
            std::time::Duration::from_secs(config.database.user_cache_notified_seconds),
            std::time::Duration::from_secs(config.database.stale_if_error_seconds),
            crate::config::mib(config.caches.users_mib),
        );
        let trusted_proxies = TrustedProxies::new(&config.server.trusted_proxies);
        Ok(App {
            config,
            db,
            tokens,
            plugins: ArcSwap::from_pointee(plugins),
            libraries,
            call_pool,
            signers,
            redirects,
            upstreams,
            login_sealer,
            login_cookie_path,
            oidc_authorize_url,
            session_cookie_path,
            user_cache,
            trusted_proxies,
            metrics,
        })
    }

    /// The permission token for `userid` at `service`: from the cache if it holds one, else
    /// signed on the signing threads, so that RSA never holds up the async workers (a `check`
    /// waiting behind two signatures on two workers would wait most of a millisecond).
    pub async fn permission_token(
        self: &Arc<Self>,
        userid: &str,
        service: &str,
        permissions: &serde_json::Value,
    ) -> Result<(String, i64), String> {
        if let Some(hit) = self
            .tokens
            .cached_permission_token(userid, service, permissions)
        {
            return Ok(hit);
        }
        let (app, userid, service, permissions) = (
            self.clone(),
            userid.to_string(),
            service.to_string(),
            permissions.clone(),
        );
        self.signers
            .run(move || {
                app.tokens
                    .sign_permission_token(&userid, &service, &permissions)
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())?
    }

    /// Runs `sign` (RSA signatures) on the signing threads, off the async workers.
    pub async fn sign_off_workers<T: Send + 'static>(
        self: &Arc<Self>,
        sign: impl FnOnce(&TokenService) -> Result<T, crate::tokens::TokenError> + Send + 'static,
    ) -> Result<T, String> {
        let app = self.clone();
        self.signers
            .run(move || sign(&app.tokens).map_err(|e| e.to_string()))
            .await
            .map_err(|e| e.to_string())?
    }

    /// The services a login, an operator token or a logout touches.
    pub fn sessions(&self) -> crate::sessions::Sessions<'_> {
        crate::sessions::Sessions {
            db: &self.db,
            user_cache: &self.user_cache,
            plugins: self.plugins(),
            tokens: &self.tokens,
        }
    }

    /// The services the login flow uses.
    pub fn flow(&self) -> crate::login::flow::Flow<'_> {
        crate::login::flow::Flow {
            db: &self.db,
            upstreams: &self.upstreams,
            redirects: &self.redirects,
            prefix: &self.config.server.prefix,
            secure: self.config.server.external_address.starts_with("https://"),
            sealer: &self.login_sealer,
            sessions: self.sessions(),
            authorize_url: &self.oidc_authorize_url,
        }
    }

    /// The plugin set for this request; a reload does not change a set already taken.
    pub fn plugins(&self) -> Arc<PluginSet> {
        self.plugins.load_full()
    }

    /// Loads the plugin set `config` names and, only if every plugin loads, swaps it in.
    /// Other settings need a restart. On failure the current set stays and the errors say why.
    pub async fn reload_plugins(&self, config: Config) -> Result<(), Vec<String>> {
        let set = load_plugins(config, self.libraries.clone(), self.call_pool.clone()).await?;
        self.plugins.store(Arc::new(set));
        Ok(())
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

    /// Enabled login providers, by name: the dev form first when on, then the upstreams.
    pub fn login_providers(&self) -> Vec<&str> {
        let dev = self.config.dev_login_enabled().then_some("dev");
        dev.into_iter().chain(self.upstreams.names()).collect()
    }
}

/// The machine's cores (1 if it cannot tell).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}
