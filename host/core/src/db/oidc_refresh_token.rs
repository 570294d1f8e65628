//! The `oidc_refresh_tokens` table: refresh tokens by the SHA-256 of the token, in families.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oidc_refresh_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    /// Unix seconds, as every time here.
    pub auth_time: i64,
    pub expires_at: i64,
    pub family_expires_at: i64,
    /// Set when the token was rotated (used once).
    pub used_at: Option<i64>,
    /// Set on every token of a revoked family.
    pub revoked_at: Option<i64>,
    /// Set with `used_at` by the rotation; a trigger inserts the successor row from them
    /// (migration 000012).
    pub successor_hash: Option<String>,
    pub successor_expires_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
