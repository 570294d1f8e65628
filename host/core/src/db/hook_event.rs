//! The `hook_events` table: the hook outbox (see `crate::hooks`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "hook_events")]
pub struct Model {
    /// The event id extensions receive (one per event and extension), increasing.
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: String,
    /// `on_new_user`, `on_user_login` or `on_user_logout`.
    pub hook: String,
    /// The extension's name as configured.
    pub extension: String,
    /// The user's profile as the hook receives it (JSON).
    pub payload: String,
    /// `pending` or `failed` (delivered events are deleted).
    pub status: String,
    /// Deliveries tried so far.
    pub attempts: i32,
    /// Unix milliseconds.
    pub next_attempt_at: i64,
    /// Unix milliseconds: a delivery holds the event until then.
    pub locked_until: i64,
    pub last_error: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
