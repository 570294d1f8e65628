//! `authhost plugins`: loads a copy of the configured plugin set (its own, not a running
//! server's) and lists it; `authhost plugins call` asks one of its plugins, for plugin authors
//! (Rust and Python alike), without a server.

use std::process::ExitCode;
use std::time::Instant;

use clap::Subcommand;

use crate::app::App;
use crate::config::Config;
use crate::plugins::{Hook, Kind};
use crate::users::{self, FindError};

use super::build;

#[derive(Subcommand)]
pub enum PluginsAction {
    /// Ask the provider of service alias NAME for USER's permissions, as `authorize` would (or,
    /// with --hook, deliver that hook to extension NAME, or to every extension); prints the
    /// answer as JSON, then how long it took, or the error (a Python traceback included).
    Call {
        /// A service alias; with --hook, an extension name (default: every extension).
        name: Option<String>,
        /// `on_new_user`, `on_user_login` or `on_user_logout`.
        #[arg(long)]
        hook: Option<String>,
        /// The user: e-mail, id or username (an existing account).
        #[arg(long)]
        user: String,
    },
}

pub(super) async fn run(config: Config, action: Option<PluginsAction>) -> ExitCode {
    let app = match build(config).await {
        Ok(a) => a,
        Err(code) => return code,
    };
    match action {
        None => list(&app),
        Some(PluginsAction::Call { name, hook, user }) => {
            call(&app, name.as_deref(), hook.as_deref(), &user).await
        }
    }
}

async fn call(app: &App, name: Option<&str>, hook: Option<&str>, who: &str) -> ExitCode {
    let user = match users::find(&app.db, who).await {
        Ok(user) => user,
        Err(FindError::Db(e)) => {
            eprintln!("database: {e}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!(
                "--user {who}: {e} (a login, or `authhost token --email EMAIL`, creates an account)"
            );
            return ExitCode::FAILURE;
        }
    };
    let plugins = app.plugins();
    let Some(hook) = hook else {
        let Some(service) = name else {
            eprintln!("name the service alias to ask (or --hook HOOK)");
            return ExitCode::from(2);
        };
        let started = Instant::now();
        let Some(result) = plugins.ask(service, users::provider_view(&user)).await else {
            let known: Vec<_> = plugins.providers().into_iter().map(|(a, _)| a).collect();
            eprintln!(
                "no provider serves `{service}`; aliases: {}",
                known.join(", ")
            );
            return ExitCode::FAILURE;
        };
        return report(service, started, result.map(Some));
    };
    let Some(hook) = Hook::from_name(hook) else {
        eprintln!("--hook {hook}: one of on_new_user, on_user_login, on_user_logout");
        return ExitCode::from(2);
    };
    let names: Vec<String> = match name {
        Some(n) => vec![n.to_string()],
        None => plugins.extension_names(),
    };
    if names.is_empty() {
        eprintln!("no extension is configured");
        return ExitCode::FAILURE;
    }
    let mut code = ExitCode::SUCCESS;
    for name in names {
        let started = Instant::now();
        let view = users::hook_view(&user, hook == Hook::NewUser);
        let result = plugins.deliver(&name, hook, view).await.map(|()| None);
        if report(&format!("{name} {}", hook.name()), started, result) != ExitCode::SUCCESS {
            code = ExitCode::FAILURE;
        }
    }
    code
}

/// The answer on standard output (JSON), the time or the error on standard error.
fn report(
    what: &str,
    started: Instant,
    result: Result<Option<serde_json::Value>, crate::plugins::CallError>,
) -> ExitCode {
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(answer) => {
            if let Some(answer) = answer {
                println!("{answer:#}");
            }
            eprintln!("{what}: ok in {ms:.1} ms");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{what}: failed in {ms:.1} ms: {e}");
            ExitCode::FAILURE
        }
    }
}

fn list(app: &App) -> ExitCode {
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
            Kind::Provider => (Kind::Provider.word(), e.name.as_str()),
            Kind::Extension => (Kind::Extension.word(), "-"),
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
