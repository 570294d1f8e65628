use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// One-time login states, so that a login started on one replica can finish on another.
#[derive(DeriveIden)]
pub enum LoginStates {
    Table,
    State,
    Provider,
    Next,
    PkceVerifier,
    Nonce,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LoginStates::Table)
                    .if_not_exists()
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
                    .to_owned(),
            )
            .await
    }
}
