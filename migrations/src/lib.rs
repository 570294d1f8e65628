//! Database migrations of authhost, shared by SQLite and PostgreSQL.
//!
//! The first migration also adopts a database of the original dgp-oauth2: its `users` rows are
//! kept, the columns authhost needs are added, and `username` becomes nullable.

pub use sea_orm_migration::prelude::*;

mod m20261127_000001_users;
mod m20261127_000002_login_states;
mod m20261130_000003_login_binding;
mod m20261130_000004_hook_events;
mod m20261130_000005_user_disabled;
mod m20261130_000006_deleted_users;
mod m20261203_000007_drop_login_states;
mod m20261204_000008_oidc_codes;
mod m20261204_000009_oidc_refresh_tokens;
mod m20261204_000010_oidc_code_reuse;
mod m20261204_000011_oidc_codes_by_user;
mod m20261204_000012_oidc_refresh_successor;
mod m20261204_000013_oidc_refresh_sweep_index;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_users::Migration),
            Box::new(m20261127_000002_login_states::Migration),
            Box::new(m20261130_000003_login_binding::Migration),
            Box::new(m20261130_000004_hook_events::Migration),
            Box::new(m20261130_000005_user_disabled::Migration),
            Box::new(m20261130_000006_deleted_users::Migration),
            Box::new(m20261203_000007_drop_login_states::Migration),
            Box::new(m20261204_000008_oidc_codes::Migration),
            Box::new(m20261204_000009_oidc_refresh_tokens::Migration),
            Box::new(m20261204_000010_oidc_code_reuse::Migration),
            Box::new(m20261204_000011_oidc_codes_by_user::Migration),
            Box::new(m20261204_000012_oidc_refresh_successor::Migration),
            Box::new(m20261204_000013_oidc_refresh_sweep_index::Migration),
        ]
    }
}
