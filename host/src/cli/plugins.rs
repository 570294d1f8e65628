//! `authhost plugins`: loads a copy of the configured plugin set (its own, not a running
//! server's) and lists it.

use std::process::ExitCode;

use crate::config::Config;
use crate::plugins::Kind;

use super::build;

pub(super) async fn run(config: Config) -> ExitCode {
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
