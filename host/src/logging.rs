//! Logs through tracing-subscriber: readable by default, JSON lines with `log_format = "json"`.
//! `AUTHHOST_LOG` (or `RUST_LOG`) sets the filter.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// `access_log`: keep the access lines (`server.access_log`) whatever level the filter sets.
pub fn init(format: LogFormat, access_log: bool) {
    let mut filter = std::env::var("AUTHHOST_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn"));
    if access_log && let Ok(directive) = format!("{}=info", crate::access_log::TARGET).parse() {
        filter = filter.add_directive(directive);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // A second init (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
