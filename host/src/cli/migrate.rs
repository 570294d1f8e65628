//! `authhost migrate`: applies pending migrations (adopting a dgp-oauth2 database) and exits.

use std::process::ExitCode;

use crate::config::Config;

pub(super) async fn run(mut config: Config) -> ExitCode {
    config.server.run_migrations = true;
    match crate::db::connect(&config.database_url(), config.database.max_connections).await {
        Ok(db) => match crate::db::migrate(&db).await {
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
