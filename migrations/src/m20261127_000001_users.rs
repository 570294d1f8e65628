use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub enum Users {
    Table,
    Id,
    ProviderId,
    Username,
    Name,
    Email,
    AvatarUrl,
    JoinDate,
    LastLogin,
    TokensValidAfter,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.has_table("users").await? {
            return adopt_original(manager).await;
        }
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(
                        ColumnDef::new(Users::Id)
                            .string_len(128)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Users::ProviderId).string_len(128).null())
                    .col(ColumnDef::new(Users::Username).string().null().unique_key())
                    .col(ColumnDef::new(Users::Name).string().null())
                    .col(ColumnDef::new(Users::Email).string().null())
                    .col(ColumnDef::new(Users::AvatarUrl).string_len(512).null())
                    .col(ColumnDef::new(Users::JoinDate).timestamp().null())
                    .col(ColumnDef::new(Users::LastLogin).timestamp().null())
                    .col(ColumnDef::new(Users::TokensValidAfter).big_integer().null())
                    .to_owned(),
            )
            .await
    }
}

/// The original's table: `username` NOT NULL UNIQUE, no login or revocation columns.
async fn adopt_original(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    if manager.get_database_backend() == DbBackend::Sqlite
        && sqlite_username_not_null(manager).await?
    {
        // SQLite cannot drop NOT NULL in place: rebuild the table and copy the rows, in one
        // call so that one pooled connection runs it, inside one transaction so that a crash
        // cannot leave the rows behind in the half-built copy.
        manager
            .get_connection()
            .execute_unprepared(
                "BEGIN IMMEDIATE; \
                 CREATE TABLE users_authhost_new (id VARCHAR(128) NOT NULL PRIMARY KEY, \
                 provider_id VARCHAR(128), username VARCHAR UNIQUE, name VARCHAR, email VARCHAR, \
                 avatar_url VARCHAR(512), join_date DATETIME); \
                 INSERT INTO users_authhost_new (id, provider_id, username, name, email, avatar_url, join_date) \
                 SELECT id, provider_id, username, name, email, avatar_url, join_date FROM users; \
                 DROP TABLE users; \
                 ALTER TABLE users_authhost_new RENAME TO users; \
                 COMMIT;",
            )
            .await?;
    } else if manager.get_database_backend() == DbBackend::Postgres {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE users ALTER COLUMN username DROP NOT NULL")
            .await?;
    }
    if !manager.has_column("users", "last_login").await? {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(ColumnDef::new(Users::LastLogin).timestamp().null())
                    .to_owned(),
            )
            .await?;
    }
    if !manager.has_column("users", "tokens_valid_after").await? {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(ColumnDef::new(Users::TokensValidAfter).big_integer().null())
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

async fn sqlite_username_not_null(manager: &SchemaManager<'_>) -> Result<bool, DbErr> {
    let db = manager.get_connection();
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT \"notnull\" FROM pragma_table_info('users') WHERE name = 'username'",
        ))
        .await?;
    Ok(rows
        .first()
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0)
        != 0)
}
