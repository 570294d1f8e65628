use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Refresh tokens of authhost as an OpenID Provider, by the SHA-256 of the token. Each use
/// rotates the token within its family; a rotated token used again revokes the whole family
/// (RFC 9700 §4.14). A family's lifetime is bounded from its first token.
#[derive(DeriveIden)]
pub enum OidcRefreshTokens {
    Table,
    TokenHash,
    FamilyId,
    ClientId,
    UserId,
    Scope,
    AuthTime,
    ExpiresAt,
    FamilyExpiresAt,
    UsedAt,
    RevokedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use OidcRefreshTokens as T;
        manager
            .create_table(
                Table::create()
                    .table(T::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(T::TokenHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(T::FamilyId).string_len(64).not_null())
                    .col(ColumnDef::new(T::ClientId).string_len(256).not_null())
                    .col(ColumnDef::new(T::UserId).string_len(64).not_null())
                    .col(ColumnDef::new(T::Scope).text().not_null())
                    .col(ColumnDef::new(T::AuthTime).big_integer().not_null())
                    .col(ColumnDef::new(T::ExpiresAt).big_integer().not_null())
                    .col(ColumnDef::new(T::FamilyExpiresAt).big_integer().not_null())
                    .col(ColumnDef::new(T::UsedAt).big_integer().null())
                    .col(ColumnDef::new(T::RevokedAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("oidc_refresh_tokens_family", T::FamilyId),
            ("oidc_refresh_tokens_user", T::UserId),
            ("oidc_refresh_tokens_expires_at", T::ExpiresAt),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(T::Table)
                        .col(column)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
