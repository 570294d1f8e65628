use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::m20261204_000009_oidc_refresh_tokens::OidcRefreshTokens;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// A rotation in one statement: `UPDATE … SET used_at, successor_hash, successor_expires_at …
/// RETURNING` spends the presented token, and a trigger inserts the successor row from the
/// spent one (same family, client, user, scope; expiring at `successor_expires_at` capped by the
/// family's end). One statement instead of a transaction of four round trips: on SQLite the
/// write lock is held for one statement, on PostgreSQL the spent row's lock still covers the
/// successor's insert (what `revoke_family`'s second pass relies on).
#[derive(DeriveIden)]
enum Successor {
    SuccessorHash,
    SuccessorExpiresAt,
}

const SQLITE_TRIGGER: &str = "CREATE TRIGGER oidc_refresh_successor \
    AFTER UPDATE OF successor_hash ON oidc_refresh_tokens \
    WHEN NEW.successor_hash IS NOT NULL AND OLD.successor_hash IS NULL \
    BEGIN \
      INSERT INTO oidc_refresh_tokens (token_hash, family_id, client_id, user_id, scope, \
        auth_time, expires_at, family_expires_at) \
      VALUES (NEW.successor_hash, NEW.family_id, NEW.client_id, NEW.user_id, NEW.scope, \
        NEW.auth_time, MIN(NEW.successor_expires_at, NEW.family_expires_at), \
        NEW.family_expires_at); \
    END";

const POSTGRES_FUNCTION: &str = "CREATE FUNCTION oidc_refresh_successor() RETURNS trigger \
    LANGUAGE plpgsql AS $$ BEGIN \
      INSERT INTO oidc_refresh_tokens (token_hash, family_id, client_id, user_id, scope, \
        auth_time, expires_at, family_expires_at) \
      VALUES (NEW.successor_hash, NEW.family_id, NEW.client_id, NEW.user_id, NEW.scope, \
        NEW.auth_time, LEAST(NEW.successor_expires_at, NEW.family_expires_at), \
        NEW.family_expires_at); \
      RETURN NEW; \
    END $$";

const POSTGRES_TRIGGER: &str = "CREATE TRIGGER oidc_refresh_successor \
    AFTER UPDATE OF successor_hash ON oidc_refresh_tokens FOR EACH ROW \
    WHEN (NEW.successor_hash IS NOT NULL AND OLD.successor_hash IS NULL) \
    EXECUTE FUNCTION oidc_refresh_successor()";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            ColumnDef::new(Successor::SuccessorHash)
                .string()
                .null()
                .to_owned(),
            ColumnDef::new(Successor::SuccessorExpiresAt)
                .big_integer()
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(OidcRefreshTokens::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        let db = manager.get_connection();
        match db.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(POSTGRES_FUNCTION).await?;
                db.execute_unprepared(POSTGRES_TRIGGER).await?;
            }
            _ => {
                db.execute_unprepared(SQLITE_TRIGGER).await?;
            }
        }
        Ok(())
    }
}
