use sea_orm_migration::prelude::*;

use crate::m20261204_000008_oidc_codes::OidcCodes;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `oidc_codes.reused_at` (unix seconds, NULL = presented once at most): a code presented
/// again is marked, so that the redemption it raced with, which may not have started its
/// refresh-token family yet, sees the mark after starting it and revokes the family itself.
/// And an index by user: the authorization endpoint counts a user's waiting codes on every
/// code it issues (without it, a scan of the whole table).
#[derive(DeriveIden)]
enum Reuse {
    ReusedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(OidcCodes::Table)
                    .add_column(ColumnDef::new(Reuse::ReusedAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("oidc_codes_user")
                    .table(OidcCodes::Table)
                    .col(OidcCodes::UserId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }
}
