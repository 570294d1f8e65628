use sea_orm_migration::prelude::*;

use crate::m20261127_000002_login_states::LoginStates;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Logins in progress travel sealed in the browser's cookie now (`login::sealed`): the table
/// is no longer read or written, so it goes. Logins started before the upgrade hold a cookie
/// that does not open and are told to start again; nothing else of the table mattered (rows
/// lived ten minutes).
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
            .await
    }
}
