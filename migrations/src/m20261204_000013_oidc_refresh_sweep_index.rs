use sea_orm_migration::prelude::*;

use crate::m20261204_000009_oidc_refresh_tokens::OidcRefreshTokens;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The sweep removes refresh tokens by their family's end (`family_expires_at`), which had no
/// index, while `expires_at` had one that no query uses (a token is found by its hash). Swapped:
/// the same number of indexes for each rotation to update, and a sweep that does not scan the
/// whole table on every replica every ten minutes.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("oidc_refresh_tokens_expires_at")
                    .table(OidcRefreshTokens::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("oidc_refresh_tokens_family_expires_at")
                    .table(OidcRefreshTokens::Table)
                    .col(OidcRefreshTokens::FamilyExpiresAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }
}
