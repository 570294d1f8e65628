//! `authhost`: serve, migrate, keygen, token, plugins, config.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use authhost::app::App;
use authhost::config::{Config, process_env};
use authhost::users::{self, LoginProfile};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "authhost",
    version,
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
    /// Load every configured plugin and list it; non-zero exit on any failure.
    Plugins,
    /// Print the effective configuration, secrets redacted.
    Config,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = process_env();
    if let Some(Command::Keygen { out }) = &cli.command {
        return keygen(out);
    }
    let config = match Config::load(cli.config.as_deref(), &env) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::from(2);
        }
    };
    authhost::logging::init(&config.server.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
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
            Command::Serve => serve(config).await,
            Command::Migrate => migrate(config).await,
            Command::Token { email, name, days } => token(config, &email, name, days).await,
            Command::Plugins => plugins(config).await,
            Command::Config => {
                print!("{}", config.to_redacted_toml());
                ExitCode::SUCCESS
            }
            Command::Keygen { .. } => ExitCode::FAILURE,
        }
    })
}

async fn build(config: Config) -> Result<App, ExitCode> {
    App::build(config).await.map_err(|e| {
        eprint!("{e}");
        ExitCode::FAILURE
    })
}

async fn serve(config: Config) -> ExitCode {
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
    tracing::info!(
        %addr,
        prefix = %app.config.server.prefix,
        services = ?app.plugins().providers().iter().map(|(a, p)| format!("{a}:{}", p.name)).collect::<Vec<_>>(),
        extensions = ?app.plugins().extensions().iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
        ready_ms = started.elapsed().as_millis() as u64,
        "authhost ready"
    );
    authhost::server::serve(app, listener, authhost::server::shutdown_signal()).await;
    ExitCode::SUCCESS
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

async fn token(config: Config, email: &str, name: Option<String>, days: Option<u32>) -> ExitCode {
    let app = match build(config).await {
        Ok(a) => a,
        Err(code) => return code,
    };
    let profile = LoginProfile {
        email: email.to_string(),
        name,
        avatar_url: None,
        provider_id: format!("cli:{email}"),
    };
    // An existing account is used as it is: minting a token is not a login that refreshes it.
    let existing = match users::get(&app.db, &users::user_id_for_email(email)).await {
        Ok(u) => u,
        Err(e) => {
            eprintln!("database: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (user, created) = match existing {
        Some(u) => (u, false),
        None => match users::upsert_on_login(&app.db, &profile).await {
            Ok(u) => u,
            Err(e) => {
                eprintln!("database: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    if created {
        app.plugins()
            .fire(
                authhost::plugins::Hook::NewUser,
                users::hook_view(&user, true),
            )
            .await;
    }
    match app
        .tokens
        .mint_user_token(&user.id, user.tokens_valid_after, days)
    {
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
        "{:<10} {:<20} {:<28} {:<10} {:<9} file",
        "kind", "alias", "name", "version", "interface"
    );
    for (alias, p) in plugins.providers() {
        println!(
            "{:<10} {alias:<20} {:<28} {:<10} {:<9} {}",
            "provider",
            p.name,
            p.version,
            p.interface_version,
            p.path.display()
        );
    }
    for p in plugins.extensions() {
        println!(
            "{:<10} {:<20} {:<28} {:<10} {:<9} {}",
            "extension",
            "-",
            p.name,
            p.version,
            p.interface_version,
            p.path.display()
        );
    }
    ExitCode::SUCCESS
}
