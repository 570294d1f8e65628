use sea_orm_migration::prelude::*;

use crate::m20261127_000001_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `users.disabled_at` (unix seconds, NULL = active): set by `authhost users disable`, which
/// stops the user's tokens and logins. A nullable column added to the existing table, so an
/// adopted dgp-oauth2 database keeps every row and the original's columns untouched.
#[derive(DeriveIden)]
enum Disabled {
    DisabledAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(ColumnDef::new(Disabled::DisabledAt).big_integer().null())
                    .to_owned(),
            )
            .await
    }
}
