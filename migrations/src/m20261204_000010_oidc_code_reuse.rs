use sea_orm_migration::prelude::*;

use crate::m20261204_000008_oidc_codes::OidcCodes;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `oidc_codes.reused_at` (unix seconds, NULL = presented once at most): a code presented
/// again is marked, so that the redemption it raced with, which may not have started its
/// refresh-token family yet, sees the mark after starting it and revokes the family itself.
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
            .await
    }
}
