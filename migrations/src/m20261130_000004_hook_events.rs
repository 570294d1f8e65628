use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The hook outbox: one row per (event, extension), written in the transaction of the change
/// that causes the event, deleted once delivered, kept as `failed` after the last attempt.
#[derive(DeriveIden)]
pub enum HookEvents {
    Table,
    Id,
    UserId,
    Hook,
    Extension,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LockedUntil,
    LastError,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(HookEvents::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(HookEvents::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(HookEvents::UserId).string_len(64).not_null())
                    .col(ColumnDef::new(HookEvents::Hook).string_len(32).not_null())
                    .col(
                        ColumnDef::new(HookEvents::Extension)
                            .string_len(1024)
                            .not_null(),
                    )
                    .col(ColumnDef::new(HookEvents::Payload).text().not_null())
                    .col(ColumnDef::new(HookEvents::Status).string_len(16).not_null())
                    .col(ColumnDef::new(HookEvents::Attempts).integer().not_null())
                    .col(
                        ColumnDef::new(HookEvents::NextAttemptAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(HookEvents::LockedUntil)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(HookEvents::LastError).text().null())
                    .col(
                        ColumnDef::new(HookEvents::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // Due events are found by status and time; order per user and extension by id.
        manager
            .create_index(
                Index::create()
                    .name("idx_hook_events_due")
                    .table(HookEvents::Table)
                    .col(HookEvents::Status)
                    .col(HookEvents::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_hook_events_user")
                    .table(HookEvents::Table)
                    .col(HookEvents::UserId)
                    .col(HookEvents::Extension)
                    .col(HookEvents::Id)
                    .to_owned(),
            )
            .await
    }
}
