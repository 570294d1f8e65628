//! The `login_states` table: one-time states of logins in progress.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub state: String,
    pub provider: String,
    pub next: String,
    pub pkce_verifier: String,
    pub nonce: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// SHA-256 (hex) of the binding cookie given to the browser that started the login.
    pub browser_hash: String,
    /// The client address (or IPv6 /64) that started it, for the per-client limit.
    pub client: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
