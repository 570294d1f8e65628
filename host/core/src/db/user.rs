//! The `users` table: the original's columns plus last login, logout and disable times.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// md5 hex of the verified e-mail (the original's rule).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub provider_id: Option<String>,
    /// Lower-case; set once through `update`.
    #[sea_orm(unique)]
    pub username: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub avatar_url: Option<String>,
    pub join_date: Option<DateTime>,
    pub last_login: Option<DateTime>,
    /// Unix seconds of the last logout: tokens issued at or before it are revoked.
    pub tokens_valid_after: Option<i64>,
    /// Unix seconds when an operator disabled the account (`authhost users disable`); `None`
    /// for an active one. A disabled user's tokens are refused and their logins end with
    /// `error=account_disabled`.
    pub disabled_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
