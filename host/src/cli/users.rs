//! `authhost users ...`: an operator's commands for accounts (list, show, disable, enable,
//! logout, delete), so stopping a compromised account takes no SQL. They change the database;
//! servers see a change within `database.user_cache_ms` (their user cache), every replica alike.

use std::process::ExitCode;

use clap::Subcommand;

use crate::app::App;
use crate::db::user::Model as User;
use crate::users::{self, FindError};

#[derive(Debug, Subcommand)]
pub enum UsersAction {
    /// Users whose id, username, e-mail or name contains TEXT (ignoring case), by id.
    List {
        #[arg(long, value_name = "TEXT")]
        query: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Every field of one user (named by id, username or e-mail).
    Show { who: String },
    /// Refuse the users' tokens and logins; revokes every token issued so far and fires
    /// on_user_logout.
    Disable {
        #[arg(required = true)]
        who: Vec<String>,
    },
    /// Let disabled users log in again (their old tokens stay revoked).
    Enable {
        #[arg(required = true)]
        who: Vec<String>,
    },
    /// Revoke every token issued so far and fire on_user_logout.
    Logout {
        #[arg(required = true)]
        who: Vec<String>,
    },
    /// Fire on_user_logout, then remove the users' rows. Needs --yes.
    Delete {
        #[arg(required = true)]
        who: Vec<String>,
        /// Confirms the deletion (it cannot be undone).
        #[arg(long)]
        yes: bool,
    },
}

fn time(t: Option<chrono::NaiveDateTime>) -> String {
    t.map_or_else(|| "-".into(), |t| t.and_utc().to_rfc3339())
}

fn seconds(t: Option<i64>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map_or_else(|| "-".into(), |t| t.to_rfc3339())
}

fn state(user: &User) -> &'static str {
    if user.disabled_at.is_some() {
        "disabled"
    } else {
        "active"
    }
}

fn text(value: Option<&String>) -> &str {
    value.map_or("-", String::as_str)
}

pub async fn run(app: &App, action: UsersAction) -> ExitCode {
    match action {
        UsersAction::List { query, limit } => list(app, query.as_deref(), limit).await,
        UsersAction::Show { who } => match named(app, &who).await {
            Ok(user) => {
                show(&user);
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        UsersAction::Disable { who } => each(app, &who, "disabled", Change::Disable).await,
        UsersAction::Enable { who } => each(app, &who, "enabled", Change::Enable).await,
        UsersAction::Logout { who } => each(app, &who, "logged out", Change::Logout).await,
        UsersAction::Delete { who, yes } => {
            if !yes {
                eprintln!("users delete removes the accounts for good: add --yes to confirm");
                return ExitCode::from(2);
            }
            each(app, &who, "deleted", Change::Delete).await
        }
    }
}

async fn list(app: &App, query: Option<&str>, limit: u64) -> ExitCode {
    match users::list(&app.db, query, limit).await {
        Ok(found) => {
            println!(
                "{:<32} {:<20} {:<32} {:<25} {:<8} name",
                "id", "username", "email", "last_login", "state"
            );
            for u in &found {
                println!(
                    "{:<32} {:<20} {:<32} {:<25} {:<8} {}",
                    u.id,
                    text(u.username.as_ref()),
                    text(u.email.as_ref()),
                    time(u.last_login),
                    state(u),
                    text(u.name.as_ref()),
                );
            }
            eprintln!("{} user(s)", found.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("database: {e}");
            ExitCode::FAILURE
        }
    }
}

fn show(u: &User) {
    let rows = [
        ("id", u.id.clone()),
        ("state", state(u).to_string()),
        ("username", text(u.username.as_ref()).to_string()),
        ("email", text(u.email.as_ref()).to_string()),
        ("name", text(u.name.as_ref()).to_string()),
        ("provider_id", text(u.provider_id.as_ref()).to_string()),
        ("avatar_url", text(u.avatar_url.as_ref()).to_string()),
        ("join_date", time(u.join_date)),
        ("last_login", time(u.last_login)),
        ("tokens_valid_after", seconds(u.tokens_valid_after)),
        ("disabled_at", seconds(u.disabled_at)),
    ];
    for (name, value) in rows {
        println!("{name:<19} {value}");
    }
}

/// The one user `who` names, or the exit code after saying why not.
async fn named(app: &App, who: &str) -> Result<User, ExitCode> {
    users::find(&app.db, who).await.map_err(|e| {
        match e {
            FindError::Db(e) => eprintln!("database: {e}"),
            e => eprintln!("{who}: {e}"),
        }
        ExitCode::FAILURE
    })
}

#[derive(Clone, Copy)]
enum Change {
    Disable,
    Enable,
    Logout,
    Delete,
}

/// Applies `change` to each user named; every name is tried, and the exit is non-zero when
/// any failed.
async fn each(app: &App, names: &[String], done: &str, change: Change) -> ExitCode {
    let mut failed = false;
    for who in names {
        let Ok(user) = named(app, who).await else {
            failed = true;
            continue;
        };
        let sessions = app.sessions();
        let result = match change {
            Change::Disable => sessions.disable(&user).await,
            Change::Enable => sessions.enable(&user).await,
            Change::Logout => sessions.logout(&user).await,
            Change::Delete => sessions.delete(&user).await,
        };
        match result {
            Ok(()) => println!("{done} {} ({})", user.id, text(user.email.as_ref())),
            Err(e) => {
                eprintln!("{who}: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
