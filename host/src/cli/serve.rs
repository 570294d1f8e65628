//! `authhost serve` (the default): the server until SIGTERM or Ctrl-C, with the admin listener
//! when configured, and `kill -HUP` reloading the plugin set.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::app::App;
use crate::config::{Config, process_env};

use super::build;

pub(super) async fn run(config: Config, config_path: Option<PathBuf>) -> ExitCode {
    let addr = match config.listen_addr() {
        Ok(a) => a,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::from(2);
        }
    };
    let started = std::time::Instant::now();
    let app = match build(config).await {
        Ok(a) => Arc::new(a),
        Err(code) => return code,
    };
    for ignored in app.config.ignored_settings() {
        tracing::warn!("{ignored}");
    }
    if app.config.dev_login_enabled() {
        tracing::warn!(
            "DEV LOGIN IS ON: anyone reaching {addr} can log in as any e-mail. Turn [providers.dev] off for real use."
        );
    }
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("server.listen: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(addr);
    let admin = match app.config.server.admin_listen {
        Some(admin_addr) => match tokio::net::TcpListener::bind(admin_addr).await {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("server.admin_listen: cannot listen on {admin_addr}: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let admin_addr = admin.as_ref().and_then(|l| l.local_addr().ok());
    // Signal handlers go in before the service announces itself: a SIGTERM or SIGHUP that
    // arrives right after "ready" must not meet the default action (terminate).
    let shutdown = crate::server::shutdown_signal();
    #[cfg(unix)]
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    #[cfg(unix)]
    match hangups {
        Ok(hangups) => {
            tokio::spawn(reload_on_sighup(app.clone(), config_path, hangups));
        }
        Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP; plugin reload is off"),
    }
    #[cfg(not(unix))]
    let _ = config_path;
    tracing::info!(
        %addr,
        admin = ?admin_addr,
        prefix = %app.config.server.prefix,
        services = ?app.plugins().providers().iter().map(|(a, p)| format!("{a}:{}", p.name)).collect::<Vec<_>>(),
        extensions = ?app.plugins().extensions().iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
        ready_ms = started.elapsed().as_millis() as u64,
        "authhost ready"
    );
    crate::server::serve_all(app, listener, admin, shutdown).await;
    ExitCode::SUCCESS
}

/// SIGHUP: re-read the configuration and swap in the plugin set it names, if all of it loads.
#[cfg(unix)]
async fn reload_on_sighup(
    app: Arc<App>,
    config_path: Option<PathBuf>,
    mut hangups: tokio::signal::unix::Signal,
) {
    while hangups.recv().await.is_some() {
        tracing::info!("SIGHUP received: reloading plugins (other settings need a restart)");
        let config = match Config::load(config_path.as_deref(), &process_env()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(errors = %e, "reload failed: invalid configuration; keeping the current plugins");
                continue;
            }
        };
        match app.reload_plugins(config).await {
            Ok(()) => {
                let plugins = app.plugins();
                let services: Vec<String> = plugins
                    .providers()
                    .iter()
                    .map(|(a, p)| format!("{a}:{}", p.name))
                    .collect();
                let extensions: Vec<&str> = plugins
                    .extensions()
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect();
                tracing::info!(?services, ?extensions, "plugins reloaded");
            }
            Err(errors) => {
                // One line per distinct problem, as `check` prints them (a library named by two
                // aliases fails once, not once per alias).
                let mut seen = std::collections::HashSet::new();
                let distinct: Vec<&String> = errors.iter().filter(|e| seen.insert(*e)).collect();
                tracing::error!(
                    problems = distinct.len(),
                    "reload failed; keeping the current plugins"
                );
                for problem in distinct {
                    tracing::error!("reload: {problem}");
                }
            }
        }
    }
}
