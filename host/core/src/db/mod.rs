//! The database: connection (SQLite by default, PostgreSQL through `DATABASE_URL`), migrations,
//! and the entities. Domain operations live in `crate::users`.

pub mod breaker;
pub mod deleted_user;
mod guarded;
pub mod hook_event;
pub mod oidc_code;
pub mod oidc_refresh_token;
pub mod user;
pub mod wal_sync;

pub use guarded::Db;

use std::time::Duration;

use authhost_migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DbBackend, DbErr};

/// Opens the database behind its circuit breaker, creating the SQLite file's folder when needed.
pub async fn connect(url: &str, max_connections: Option<u32>) -> Result<Db, DbErr> {
    if let Some(path) = sqlite_file(url)
        && let Some(parent) = std::path::Path::new(&path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", parent.display())))?;
    }
    let mut options = ConnectOptions::new(url.to_string());
    options
        .max_connections(max_connections.unwrap_or(if url.starts_with("sqlite:") { 8 } else { 16 }))
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    if sqlite_on_disk(url) {
        // Commits do not wait for the disk; `Db` waits for a shared sync of the log before
        // any write returns (`wal_sync`): one fsync per group of commits, not one per commit.
        options.map_sqlx_sqlite_opts(|o| {
            o.synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
        });
    }
    let db = match Database::connect(options).await {
        Ok(db) => db,
        // The pool reports only that it timed out: say why, when the server cannot be reached.
        Err(e) => {
            return Err(match unreachable_because(url).await {
                Some(why) => DbErr::Custom(format!("{e} ({why})")),
                None => e,
            });
        }
    };
    let wal = if db.get_database_backend() == DbBackend::Sqlite && sqlite_on_disk(url) {
        Some(wal_mode(&db).await?)
    } else {
        None
    };
    let db = Db::new(db, url);
    let db = match wal {
        Some(file) => db.with_wal_sync(&file),
        None => db,
    };
    // A first sync now: a log or folder that cannot be synced stops the start, not a request.
    db.durable().await?;
    Ok(db)
}

/// Puts a SQLite file in WAL mode (readers run beside the writer; the setting persists in the
/// file) and returns the database file's path as SQLite resolved it (symbolic links followed),
/// beside which its log is. Refused when the file cannot be in WAL mode: the pool runs
/// `synchronous=NORMAL`, durable only with the log and its group sync.
async fn wal_mode(db: &sea_orm::DatabaseConnection) -> Result<std::path::PathBuf, DbErr> {
    let sqlite = |sql: &str| sea_orm::Statement::from_string(DbBackend::Sqlite, sql);
    let mode: String = db
        .query_one_raw(sqlite("PRAGMA journal_mode=WAL"))
        .await?
        .ok_or_else(|| DbErr::Custom("PRAGMA journal_mode answered nothing".into()))?
        .try_get_by_index(0)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(DbErr::Custom(format!(
            "the SQLite database cannot use a write-ahead log (journal mode stays {mode:?}); \
             put it on a local filesystem"
        )));
    }
    let rows = db.query_all_raw(sqlite("PRAGMA database_list")).await?;
    let mut file = None;
    for row in rows {
        let name: String = row.try_get_by_index(1)?;
        if name == "main" {
            file = Some(row.try_get_by_index::<String>(2)?);
        }
    }
    let file = file
        .filter(|f| !f.is_empty())
        .map(std::path::PathBuf::from)
        .ok_or_else(|| DbErr::Custom("SQLite names no file for the main database".into()))?;
    // SQLite opens (creates) the log at a connection's first read in WAL mode.
    db.query_one_raw(sqlite("SELECT count(*) FROM sqlite_master"))
        .await?;
    let mut wal = file.clone().into_os_string();
    wal.push("-wal");
    if !std::path::Path::new(&wal).exists() {
        return Err(DbErr::Custom(format!(
            "the SQLite log {} is not where authhost syncs it",
            std::path::Path::new(&wal).display()
        )));
    }
    Ok(file)
}

/// Why a PostgreSQL server at `url` cannot be reached over TCP (refused, no such host, no answer
/// within two seconds), if that is the trouble; `None` for a Unix socket, SQLite, or a server
/// that accepts the connection (then the trouble is TLS, authentication or the database).
pub(crate) async fn unreachable_because(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return None;
    }
    let host = parsed.host_str().filter(|h| !h.is_empty())?.to_string();
    let port = parsed.port().unwrap_or(5432);
    let host = host.trim_matches(['[', ']']).to_string();
    let attempt = tokio::net::TcpStream::connect((host.as_str(), port));
    match tokio::time::timeout(Duration::from_secs(2), attempt).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(format!("TCP connection to {host}:{port}: {e}")),
        Err(_) => Some(format!(
            "TCP connection to {host}:{port}: no answer within 2 s"
        )),
    }
}

/// How a PostgreSQL connection travels: TLS (with its protocol version and cipher) or in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Tls { version: String, cipher: String },
    Clear,
}

/// How this pool's connections to PostgreSQL travel, as the server sees one of them
/// (`pg_stat_ssl`); `None` on SQLite. A URL without `sslmode` means `prefer`: TLS whenever the
/// server offers it, on loopback too, which costs a handshake per new connection and encryption
/// per query.
pub async fn transport(db: &Db) -> Result<Option<Transport>, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(None);
    }
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            DbBackend::Postgres,
            "SELECT ssl, COALESCE(version, '') AS version, COALESCE(cipher, '') AS cipher \
             FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("pg_stat_ssl has no row for this connection".into()))?;
    let ssl: bool = row.try_get("", "ssl")?;
    Ok(Some(if ssl {
        Transport::Tls {
            version: row.try_get("", "version")?,
            cipher: row.try_get("", "cipher")?,
        }
    } else {
        Transport::Clear
    }))
}

/// The names of the migrations this database has not had yet (all of them for a new one).
/// Read only: it does not create the migrations table the way `migrate` does.
pub async fn pending_migrations(db: &Db) -> Result<Vec<String>, DbErr> {
    Ok(Migrator::get_pending_migrations_read_only(db.raw())
        .await?
        .iter()
        .map(|m| m.name().to_string())
        .collect())
}

/// The connection pool as `/metrics` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolState {
    pub in_use: u32,
    pub idle: u32,
    pub max: u32,
}

/// The pool's state now; `None` for a connection that is not a pool (mock, proxy).
pub fn pool_state(db: &Db) -> Option<PoolState> {
    let db = db.raw();
    let idle = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    // The getters panic on another backend: ask only for the one the connection is.
    let (size, idle, max) = match db.get_database_backend() {
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (
                pool.size(),
                idle(pool.num_idle()),
                pool.options().get_max_connections(),
            )
        }
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (
                pool.size(),
                idle(pool.num_idle()),
                pool.options().get_max_connections(),
            )
        }
        _ => return None,
    };
    Some(PoolState {
        in_use: size.saturating_sub(idle),
        idle,
        max,
    })
}

/// Counts a database error in `authhost_db_errors_total` by kind: `acquire_timeout` (every
/// pooled connection stayed busy past the acquire timeout), `connection` (the server is gone or
/// refused), `query` (anything else).
pub fn count_error(e: &DbErr) {
    let kind = match e {
        DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout) => "acquire_timeout",
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => "connection",
        _ => "query",
    };
    metrics::counter!("authhost_db_errors_total", "kind" => kind).increment(1);
}

/// Applies pending migrations (also adopts an original dgp-oauth2 database).
pub async fn migrate(db: &Db) -> Result<(), DbErr> {
    Migrator::up(db.raw(), None).await?;
    // Through the pool itself, so not yet synced (`authhost migrate` exits right after).
    db.durable().await
}

/// Whether `url` is a SQLite database in a file (not in memory).
fn sqlite_on_disk(url: &str) -> bool {
    sqlite_file(url).is_some() && !url.contains("mode=memory")
}

/// The file behind a `sqlite://PATH?...` URL, if any (none for memory databases and other
/// backends).
pub fn sqlite_file(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:")).then(|| path.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_sqlite_file() {
        assert_eq!(
            super::sqlite_file("sqlite://data/a.db?mode=rwc").as_deref(),
            Some("data/a.db")
        );
        assert_eq!(super::sqlite_file("sqlite::memory:"), None);
        assert_eq!(super::sqlite_file("postgres://x/y"), None);
    }
}
