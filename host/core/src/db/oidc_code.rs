//! The `oidc_codes` table: authorization codes, by the SHA-256 of the code.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oidc_codes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub code_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub user_id: String,
    pub scope: String,
    pub nonce: Option<String>,
    /// The S256 PKCE challenge, when the request had one.
    pub code_challenge: Option<String>,
    /// Unix seconds, as every time here.
    pub auth_time: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// When the code was presented again after its first use (migration 000010).
    pub reused_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
