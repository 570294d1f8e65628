//! `authhost token --email`: creates the user if needed and prints a user token.

use std::process::ExitCode;

use crate::config::Config;

use super::build;

pub(super) async fn run(
    config: Config,
    email: &str,
    name: Option<String>,
    days: Option<u32>,
) -> ExitCode {
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
