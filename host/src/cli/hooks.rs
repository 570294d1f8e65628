//! `authhost hooks [retry [ID]]`: hook events pending or failed, and requeueing failed ones.

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Config;

#[derive(Subcommand)]
pub enum HooksAction {
    /// Requeue failed event ID, or every failed event.
    Retry { id: Option<i64> },
}

pub(super) async fn run(config: Config, action: Option<HooksAction>) -> ExitCode {
    let db = match crate::db::connect(&config.database_url(), Some(2)).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("database.url (DATABASE_URL): cannot open the database: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = crate::db::migrate(&db).await {
        eprintln!("database.url (DATABASE_URL): migrations failed: {e}");
        return ExitCode::FAILURE;
    }
    match action {
        Some(HooksAction::Retry { id }) => match crate::hooks::retry(&db, id).await {
            Ok(n) => {
                println!("{n} event(s) requeued");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        None => match crate::hooks::list(&db).await {
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
