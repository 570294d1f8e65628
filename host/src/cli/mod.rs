//! The command line: `main` parses the arguments and hands each subcommand to its own module.
//!
//! | subcommand | module |
//! |---|---|
//! | `serve` (the default) | `serve`: the server, SIGHUP reloads |
//! | `migrate` | `migrate` |
//! | `keys`, `keygen` | `keys` |
//! | `token` | `token` |
//! | `plugins` | `plugins` |
//! | `config` | here: prints the configuration, secrets redacted |
//! | `check` | `check`: each part tried as the server would use it |
//! | `hooks [retry]` | `hooks` |
//! | `users ...` | `users` |
//! | `plugin-worker` | `crate::plugins::worker::child` (the worker process's side) |

mod check;
mod hooks;
mod keys;
mod migrate;
mod plugins;
mod serve;
mod token;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::App;
use crate::config::{Config, process_env};

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
    /// non-zero exit on any failure. `plugins call` asks one of them, as `serve` would.
    Plugins {
        #[command(subcommand)]
        action: Option<plugins::PluginsAction>,
    },
    /// Print the effective configuration, secrets redacted.
    Config,
    /// Check before a deploy that configuration, keys, database, plugins, upstream providers
    /// and addresses are usable: one line per check; non-zero exit on any failure.
    Check,
    /// List hook events still pending or failed; `hooks retry [ID]` requeues failed ones.
    Hooks {
        #[command(subcommand)]
        action: Option<hooks::HooksAction>,
    },
    /// Operators' account commands: list, show, disable, enable, logout, delete.
    Users {
        #[command(subcommand)]
        action: users::UsersAction,
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

/// Parses the arguments and runs the subcommand (`serve` when none is given).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = process_env();
    if let Some(Command::Keygen { out }) = &cli.command {
        return keys::keygen(out);
    }
    if let Some(Command::PluginWorker {
        library,
        kind,
        threads,
    }) = &cli.command
    {
        // No configuration, no runtime: a worker only loads its library and answers calls.
        let Some(kind) = crate::plugins::worker::parse_kind(kind) else {
            eprintln!("1 unknown plugin kind `{kind}`");
            return ExitCode::from(2);
        };
        let code = crate::plugins::worker::child::serve(library, kind, *threads);
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
    tell_plugins_the_config_dir(cli.config.as_deref(), &env);
    crate::logging::init(config.server.log_format, config.server.access_log);
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
            Command::Serve => serve::run(config, cli.config.clone()).await,
            Command::Migrate => migrate::run(config).await,
            Command::Token { email, name, days } => token::run(config, &email, name, days).await,
            Command::Plugins { action } => plugins::run(config, action).await,
            Command::Keys => keys::list(&config),
            Command::Hooks { action } => hooks::run(config, action).await,
            Command::Check => {
                let source = crate::config::config_path(cli.config.as_deref(), &env).map_or_else(
                    || "the defaults".to_string(),
                    |(p, _)| p.display().to_string(),
                );
                check::run(config, &source).await
            }
            Command::Users { action } => match build(config).await {
                Ok(app) => users::run(&app, action).await,
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

/// The application for the subcommands that need all of it; start-up errors printed once.
async fn build(config: Config) -> Result<App, ExitCode> {
    App::build(config).await.map_err(|e| {
        eprint!("{e}");
        ExitCode::FAILURE
    })
}

/// Sets `AUTHHOST_CONFIG_DIR` to the configuration file's folder (absolute), through which
/// plugins resolve the relative paths of their settings as the host does its own
/// (the plugin API's `config_path`); workers inherit it. Without a file, the variable is
/// removed: the working directory stands in, and an operator's stray value cannot mislead.
fn tell_plugins_the_config_dir(explicit: Option<&std::path::Path>, env: &crate::config::EnvMap) {
    let name = crate::plugins::CONFIG_DIR_VARIABLE;
    let dir = crate::config::config_path(explicit, env)
        .and_then(|(file, _)| std::path::absolute(file).ok())
        .and_then(|file| file.parent().map(std::path::Path::to_path_buf));
    // SAFETY: called from `main` before the runtime, the logger or any plugin exists, so no
    // other thread can be reading the environment.
    unsafe {
        match dir {
            Some(dir) => std::env::set_var(name, dir),
            None => std::env::remove_var(name),
        }
    }
}
