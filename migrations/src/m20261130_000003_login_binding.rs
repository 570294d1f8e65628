use sea_orm_migration::prelude::*;

use crate::m20261127_000002_login_states::LoginStates;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Login states bound to the browser that started them (`browser_hash`, the SHA-256 of the
/// binding cookie) and counted per client address (`client`). States live ten minutes and
/// those from before this migration could not be finished anyway (no binding), so the table is
/// made anew rather than altered (SQLite alters one column per statement).
#[derive(DeriveIden)]
enum Binding {
    BrowserHash,
    Client,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(LoginStates::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LoginStates::Table)
                    .col(
                        ColumnDef::new(LoginStates::State)
                            .string_len(128)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(LoginStates::Provider)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(LoginStates::Next).text().not_null())
                    .col(
                        ColumnDef::new(LoginStates::PkceVerifier)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(LoginStates::Nonce)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(LoginStates::ExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Binding::BrowserHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Binding::Client).string_len(64).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_login_states_client")
                    .table(LoginStates::Table)
                    .col(Binding::Client)
                    .col(LoginStates::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        // Expired states are deleted, and pending ones counted, by `expires_at` at each start.
        manager
            .create_index(
                Index::create()
                    .name("idx_login_states_expires_at")
                    .table(LoginStates::Table)
                    .col(LoginStates::ExpiresAt)
                    .to_owned(),
            )
            .await
    }
}
