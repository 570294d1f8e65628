use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Authorization codes of authhost as an OpenID Provider: single use, short-lived, kept by the
/// SHA-256 of the code (a database dump yields no usable code). A used code stays until it
/// expires, so that a second use is recognised as a replay.
#[derive(DeriveIden)]
pub enum OidcCodes {
    Table,
    CodeHash,
    ClientId,
    RedirectUri,
    UserId,
    Scope,
    Nonce,
    CodeChallenge,
    AuthTime,
    ExpiresAt,
    UsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OidcCodes::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(OidcCodes::CodeHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(OidcCodes::ClientId)
                            .string_len(256)
                            .not_null(),
                    )
                    .col(ColumnDef::new(OidcCodes::RedirectUri).text().not_null())
                    .col(ColumnDef::new(OidcCodes::UserId).string_len(64).not_null())
                    .col(ColumnDef::new(OidcCodes::Scope).text().not_null())
                    .col(ColumnDef::new(OidcCodes::Nonce).text().null())
                    .col(
                        ColumnDef::new(OidcCodes::CodeChallenge)
                            .string_len(128)
                            .null(),
                    )
                    .col(ColumnDef::new(OidcCodes::AuthTime).big_integer().not_null())
                    .col(
                        ColumnDef::new(OidcCodes::ExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(OidcCodes::UsedAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        // The sweep deletes by expiry.
        manager
            .create_index(
                Index::create()
                    .name("oidc_codes_expires_at")
                    .table(OidcCodes::Table)
                    .col(OidcCodes::ExpiresAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }
}
