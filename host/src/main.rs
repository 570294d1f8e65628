//! `authhost`: serve (the default), migrate, keys, keygen, token, plugins, config, check, hooks
//! (list, retry), users (list, show, disable, enable, logout, delete) and plugin-worker (the
//! worker process's side, started by the server).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use authhost::app::App;
use authhost::config::{Config, process_env};
use authhost::plugins::Kind;
use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: per-thread arenas without glibc's arena sprawl keep RSS
/// down under many connections and blocking threads, and allocation is a hot path (see
/// docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "authhost",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("AUTHHOST_BUILD_COMMIT"), ")"),
    about = "OAuth login host issuing user and permission tokens"
)]
struct Cli {
    /// Configuration file (default: $AUTHHOST_CONFIG, else ./config.toml when present).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Apply pending database migrations (adopts a dgp-oauth2 database) and exit.
    Migrate,
    /// List every key with its kid and role (signing, retired, published only) and exit.
    Keys,
    /// Write a new RSA-2048 key pair (private.pem, public.pem) into DIR.
    Keygen {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Create the user if needed and print a user token for them on standard output.
    Token {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Token lifetime in days (default: tokens.user_token_days).
        #[arg(long)]
        days: Option<u32>,
    },
    /// Load every configured plugin (a copy of its own, not the running server's) and list it;
    /// non-zero exit on any failure.
    Plugins,
    /// Print the effective configuration, secrets redacted.
    Config,
    /// Check before a deploy that configuration, keys, database, plugins, upstream providers
    /// and addresses are usable: one line per check; non-zero exit on any failure.
    Check,
    /// List hook events still pending or failed; `hooks retry [ID]` requeues failed ones.
    Hooks {
        #[command(subcommand)]
        action: Option<HooksAction>,
    },
    /// Operators' account commands: list, show, disable, enable, logout, delete.
    Users {
        #[command(subcommand)]
        action: authhost::user_admin::UsersAction,
    },
    /// Internal: serve one plugin library for the host that started this process, over fd 3.
    #[command(hide = true)]
    PluginWorker {
        #[arg(long)]
        library: PathBuf,
        #[arg(long)]
        kind: String,
        #[arg(long, default_value_t = 16)]
        threads: usize,
    },
}

#[derive(Subcommand)]
enum HooksAction {
    /// Requeue failed event ID, or every failed event.
    Retry { id: Option<i64> },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = process_env();
    if let Some(Command::Keygen { out }) = &cli.command {
        return keygen(out);
    }
    if let Some(Command::PluginWorker {
        library,
        kind,
        threads,
    }) = &cli.command
    {
        // No configuration, no runtime: a worker only loads its library and answers calls.
        let Some(kind) = authhost::plugins::worker::parse_kind(kind) else {
            eprintln!("1 unknown plugin kind `{kind}`");
            return ExitCode::from(2);
        };
        let code = authhost::plugins::worker::serve::serve(library, kind, *threads);
        return ExitCode::from(u8::try_from(code).unwrap_or(2));
    }
    let config = match Config::load(cli.config.as_deref(), &env) {
        Ok(c) => c,
        Err(e) => {
            if matches!(cli.command, Some(Command::Check)) {
                // `check` reports in its own format, one line per problem.
                for problem in &e.0 {
                    println!("FAIL configuration: {problem}");
                }
                return ExitCode::FAILURE;
            }
            eprint!("{e}");
            return ExitCode::from(2);
        }
    };
    authhost::logging::init(config.server.log_format, config.server.access_log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        // Plugin calls and signatures have their own fixed threads (call_pool.rs); the blocking
        // pool only serves start-up, reloads and file I/O, so it needs few threads.
        .max_blocking_threads(16)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config, cli.config.clone()).await,
            Command::Migrate => migrate(config).await,
            Command::Token { email, name, days } => token(config, &email, name, days).await,
            Command::Plugins => plugins(config).await,
            Command::Keys => keys(&config),
            Command::Hooks { action } => hooks(config, action).await,
            Command::Check => {
                let source = authhost::config::config_path(cli.config.as_deref(), &env)
                    .map_or_else(
                        || "the defaults".to_string(),
                        |(p, _)| p.display().to_string(),
                    );
                authhost::preflight::run(config, &source).await
            }
            Command::Users { action } => match build(config).await {
                Ok(app) => authhost::user_admin::run(&app, action).await,
                Err(code) => code,
            },
            Command::Config => {
                print!("{}", config.to_redacted_toml());
                ExitCode::SUCCESS
            }
            Command::Keygen { .. } | Command::PluginWorker { .. } => ExitCode::FAILURE,
        }
    })
}

async fn build(config: Config) -> Result<App, ExitCode> {
    App::build(config).await.map_err(|e| {
        eprint!("{e}");
        ExitCode::FAILURE
    })
}

async fn serve(config: Config, config_path: Option<PathBuf>) -> ExitCode {
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
    let admin = match authhost::server::admin_listen_addr(&app.config.server) {
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
    let shutdown = authhost::server::shutdown_signal();
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
    authhost::server::serve_all(app, listener, admin, shutdown).await;
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

async fn migrate(mut config: Config) -> ExitCode {
    config.server.run_migrations = true;
    match authhost::db::connect(&config.database_url(), config.database.max_connections).await {
        Ok(db) => match authhost::db::migrate(&db).await {
            Ok(()) => {
                eprintln!("migrations applied");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("database.url: migrations failed: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("database.url: cannot open the database: {e}");
            ExitCode::FAILURE
        }
    }
}

fn keygen(out: &std::path::Path) -> ExitCode {
    match authhost::keys::write_pair(out, "private.pem", "public.pem") {
        Ok((path, _, _)) => {
            eprintln!(
                "wrote {} and {}",
                path.display(),
                out.join("public.pem").display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `authhost keys`: the key ring as this configuration loads it, one key per line.
fn keys(config: &Config) -> ExitCode {
    authhost::crypto::install();
    match authhost::keys::KeyRing::load(config) {
        Ok(ring) => {
            println!("{:<44} role", "kid");
            for (key, role) in ring.keys() {
                println!("{:<44} {}", key.kid, role.name());
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn token(config: Config, email: &str, name: Option<String>, days: Option<u32>) -> ExitCode {
    let app = match build(config).await {
        Ok(a) => a,
        Err(code) => return code,
    };
    match app.sessions().operator_token(email, name, days).await {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn plugins(config: Config) -> ExitCode {
    let app = match build(config).await {
        Ok(a) => a,
        Err(code) => return code,
    };
    let plugins = app.plugins();
    println!(
        "{:<10} {:<20} {:<28} {:<10} {:<9} {:<14} file",
        "kind", "alias", "name", "version", "interface", "worker"
    );
    let mut entries: Vec<_> = plugins.entries().collect();
    // Providers by alias, then extensions in their order.
    entries.sort_by_key(|e| match e.info.kind {
        Kind::Provider => (0, e.name.clone()),
        Kind::Extension => (1, String::new()), // stable: their configured order
    });
    for e in entries {
        let (kind, alias) = match e.info.kind {
            Kind::Provider => ("provider", e.name.as_str()),
            Kind::Extension => ("extension", "-"),
        };
        let worker = match e.worker().map(|w| w.state()) {
            None => "in-process".to_string(),
            Some((true, 0)) => "up".to_string(),
            Some((true, n)) => format!("up, {n} restarts"),
            Some((false, n)) => format!("down, {n} restarts"),
        };
        println!(
            "{kind:<10} {alias:<20} {:<28} {:<10} {:<9} {worker:<14} {}",
            e.info.name,
            e.info.version,
            e.info.interface_version,
            e.info.path.display()
        );
    }
    ExitCode::SUCCESS
}

async fn hooks(config: Config, action: Option<HooksAction>) -> ExitCode {
    let db = match authhost::db::connect(&config.database_url(), Some(2)).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("database.url (DATABASE_URL): cannot open the database: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = authhost::db::migrate(&db).await {
        eprintln!("database.url (DATABASE_URL): migrations failed: {e}");
        return ExitCode::FAILURE;
    }
    match action {
        Some(HooksAction::Retry { id }) => match authhost::hooks::retry(&db, id).await {
            Ok(n) => {
                println!("{n} event(s) requeued");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        None => match authhost::hooks::list(&db).await {
            Ok(events) => {
                println!(
                    "{:<8} {:<8} {:<15} {:<24} {:<8} {:<32} last error",
                    "id", "status", "hook", "extension", "attempts", "user"
                );
                for e in events {
                    println!(
                        "{:<8} {:<8} {:<15} {:<24} {:<8} {:<32} {}",
                        e.id,
                        e.status,
                        e.hook,
                        e.extension,
                        e.attempts,
                        e.user_id,
                        e.last_error.unwrap_or_default()
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
    }
}
