use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Accounts removed by `authhost users delete`, by id, with the time. Ids are the md5 of the
/// e-mail, so a later login with the same e-mail makes an account with the same id: it starts
/// with every token issued up to the deletion revoked (and the row here is removed then).
#[derive(DeriveIden)]
pub enum DeletedUsers {
    Table,
    Id,
    DeletedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeletedUsers::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(DeletedUsers::Id)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(DeletedUsers::DeletedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }
}
