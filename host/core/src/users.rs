//! Users: lookup, creation on login, the one-time username, logout. No HTTP here.

use chrono::{NaiveDateTime, SecondsFormat, TimeZone, Utc};
use md5::{Digest, Md5};
use sea_orm::sea_query::{Expr, Func, LikeExpr, OnConflict};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, SqlErr,
};
use serde_json::{Map, Value, json};

use crate::db::deleted_user::{self, Entity as DeletedUsers};
use crate::db::user::{self, Entity as Users, Model as User};
use crate::stats::Refusal;

/// The original's user id: md5 hex of the e-mail exactly as the upstream gives it.
pub fn user_id_for_email(email: &str) -> String {
    hex::encode(Md5::digest(email.as_bytes()))
}

pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<Option<User>, DbErr> {
    Users::find_by_id(id.to_string()).one(db).await
}

/// Case-insensitive: usernames are stored lower-case.
pub async fn find_by_username(db: &crate::db::Db, username: &str) -> Result<Option<User>, DbErr> {
    let wanted = username.trim().to_lowercase();
    // No stored name has control characters (PostgreSQL refuses NUL outright) or is this long;
    // the rules are looser than `valid_username` because adopted names predate them.
    if wanted.is_empty() || wanted.len() > 256 || wanted.chars().any(char::is_control) {
        return Ok(None);
    }
    Users::find()
        .filter(user::Column::Username.eq(wanted))
        .one(db)
        .await
}

/// Is this token's `iat` still valid for the user (not revoked by a logout, the user not
/// disabled)?
pub fn token_still_valid(user: &User, issued_at: Option<i64>) -> bool {
    token_refusal(user, issued_at).is_none()
}

/// Why a verified token of `user` is no longer accepted, if it is not.
pub fn token_refusal(user: &User, issued_at: Option<i64>) -> Option<Refusal> {
    if user.disabled_at.is_some() {
        return Some(Refusal::Disabled);
    }
    let valid = match (user.tokens_valid_after, issued_at) {
        (None, _) => true,
        (Some(after), Some(iat)) => iat > after,
        // The original's tokens carry no `iat`: any logout revokes them.
        (Some(_), None) => false,
    };
    (!valid).then_some(Refusal::Revoked)
}

/// What an upstream (or the dev form, or `authhost token`) says about a person.
#[derive(Debug, Clone)]
pub struct LoginProfile {
    pub email: String,
    pub name: Option<String>,
    pub avatar_url: Option<String>,
    /// `"<provider>:<upstream id>"`.
    pub provider_id: String,
}

/// Creates the user or refreshes their profile (username untouched). Returns the user and
/// whether it was created by this call. Safe against two logins racing for one new account.
pub async fn upsert_on_login(
    db: &impl ConnectionTrait,
    profile: &LoginProfile,
) -> Result<(User, bool), DbErr> {
    let id = user_id_for_email(&profile.email);
    let now = Utc::now().naive_utc();
    let new = user::ActiveModel {
        id: Set(id.clone()),
        provider_id: Set(Some(profile.provider_id.clone())),
        username: Set(None),
        name: Set(profile.name.clone()),
        email: Set(Some(profile.email.clone())),
        avatar_url: Set(profile.avatar_url.clone()),
        join_date: Set(Some(now)),
        last_login: Set(Some(now)),
        // Set below for an id an operator deleted before.
        tokens_valid_after: NotSet,
        disabled_at: NotSet,
    };
    let inserted = Users::insert(new)
        .on_conflict(OnConflict::column(user::Column::Id).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    if inserted > 0 {
        revoke_before_deletion(db, &id).await?;
    } else {
        Users::update_many()
            .col_expr(
                user::Column::ProviderId,
                Expr::value(profile.provider_id.clone()),
            )
            .col_expr(user::Column::Name, Expr::value(profile.name.clone()))
            .col_expr(
                user::Column::AvatarUrl,
                Expr::value(profile.avatar_url.clone()),
            )
            .col_expr(user::Column::LastLogin, Expr::value(now))
            .filter(user::Column::Id.eq(id.clone()))
            .exec(db)
            .await?;
    }
    let user = get(db, &id)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("user {id} vanished after upsert")))?;
    Ok((user, inserted > 0))
}

/// A new account whose id (the e-mail's md5) an operator deleted before: every token issued
/// up to the deletion (a stolen one, say) stays revoked for it.
async fn revoke_before_deletion(db: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    let Some(deleted) = DeletedUsers::find_by_id(id.to_string()).one(db).await? else {
        return Ok(());
    };
    Users::update_many()
        .col_expr(
            user::Column::TokensValidAfter,
            Expr::value(deleted.deleted_at),
        )
        .filter(user::Column::Id.eq(id.to_string()))
        .exec(db)
        .await?;
    DeletedUsers::delete_by_id(id.to_string()).exec(db).await?;
    Ok(())
}

/// Revokes every token issued until now by storing the logout time. Tokens minted right after
/// an earlier logout carry `iat` = that logout + 1, so the new mark is at least that far along.
pub async fn revoke_tokens(db: &impl ConnectionTrait, user: &User, at: i64) -> Result<(), DbErr> {
    let at = user
        .tokens_valid_after
        .map_or(at, |prev| prev.saturating_add(1).max(at));
    Users::update_many()
        .col_expr(user::Column::TokensValidAfter, Expr::value(at))
        .filter(user::Column::Id.eq(user.id.clone()))
        .exec(db)
        .await?;
    Ok(())
}

/// Why a username was not set; the texts are the original's.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UsernameError {
    #[error("Unknown User")]
    UnknownUser,
    #[error("Cannot modify username, already set")]
    AlreadySet,
    #[error("Username taken")]
    Taken,
    #[error("Invalid username")]
    Invalid,
    /// The database failed; the caller answers with its own outage error.
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

/// 2–39 characters of `a-z 0-9 - _ .`, starting with a letter or digit (after lower-casing).
pub fn valid_username(name: &str) -> bool {
    let len = name.chars().count();
    (2..=39).contains(&len)
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// Sets the username once. Of two requests racing for one name the database's unique index
/// lets exactly one win.
pub async fn set_username(
    db: &crate::db::Db,
    id: &str,
    requested: &str,
) -> Result<(), UsernameError> {
    let Some(user) = get(db, id).await? else {
        return Err(UsernameError::UnknownUser);
    };
    if user.username.is_some() {
        return Err(UsernameError::AlreadySet);
    }
    let name = requested.trim().to_lowercase();
    if !valid_username(&name) {
        return Err(UsernameError::Invalid);
    }
    if find_by_username(db, &name).await?.is_some() {
        return Err(UsernameError::Taken);
    }
    // The change and its announcement to the other replicas commit together.
    let txn = db.begin().await?;
    let result = Users::update_many()
        .col_expr(user::Column::Username, Expr::value(name))
        .filter(user::Column::Id.eq(id.to_string()))
        .filter(user::Column::Username.is_null())
        .exec(&txn)
        .await;
    match result {
        Ok(r) if r.rows_affected == 1 => {
            crate::user_changes::announce(&txn, id).await?;
            Ok(db.commit(txn).await?)
        }
        Ok(_) => Err(UsernameError::AlreadySet),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(UsernameError::Taken)
        }
        Err(e) => Err(e.into()),
    }
}

fn rfc3339(t: Option<NaiveDateTime>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(
            Utc.from_utc_datetime(&t)
                .to_rfc3339_opts(SecondsFormat::Secs, true),
        )
    })
}

/// The profile of `check`: `username` only when set.
pub fn full_profile(user: &User) -> Value {
    let mut p = Map::new();
    p.insert("id".into(), json!(user.id));
    p.insert("idhash".into(), json!(user.id));
    p.insert("name".into(), json!(user.name));
    p.insert("email".into(), json!(user.email));
    p.insert("avatar_url".into(), json!(user.avatar_url));
    p.insert("provider_id".into(), json!(user.provider_id));
    p.insert("join_date".into(), rfc3339(user.join_date));
    if let Some(u) = &user.username {
        p.insert("username".into(), json!(u));
    }
    Value::Object(p)
}

/// What a permission provider learns about the user.
pub fn provider_view(user: &User) -> Value {
    json!({
        "id": user.id,
        "email": user.email,
        "username": user.username,
        "name": user.name,
        "provider_id": user.provider_id,
    })
}

/// The profile hooks receive: the `check` profile, plus `"new": true` for `on_new_user`.
pub fn hook_view(user: &User, new: bool) -> Value {
    let mut view = full_profile(user);
    if let (true, Some(obj)) = (new, view.as_object_mut()) {
        obj.insert("new".into(), Value::Bool(true));
    }
    view
}

/// The public profile of `get_profile`: never the e-mail.
pub fn public_profile(user: &User) -> Value {
    json!({
        "id": user.id,
        "name": user.name,
        "avatar_url": user.avatar_url,
        "join_date": rfc3339(user.join_date),
        "gravatar": user.email.as_deref().map(user_id_for_email),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_id_is_md5_of_the_email_as_given() {
        assert_eq!(
            user_id_for_email("fakey@mcfakerson.com"),
            "f2fe87a020ae126cd776ad503486a65e"
        );
        assert_ne!(
            user_id_for_email("Alice@x.com"),
            user_id_for_email("alice@x.com")
        );
    }

    #[test]
    fn username_rules() {
        for ok in ["ab", "a1", "9lives", "a.b-c_d", &"a".repeat(39)] {
            assert!(valid_username(ok), "{ok}");
        }
        for bad in [
            "a",
            "",
            "-ab",
            ".ab",
            "_ab",
            "a b",
            "ab!",
            "ABC",
            "émile",
            &"a".repeat(40),
        ] {
            assert!(!valid_username(bad), "{bad}");
        }
    }
}

/// Why `find` named no single user.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FindError {
    #[error("no user has this id, username or e-mail")]
    NotFound,
    #[error("several users fit this name (as id, username or e-mail): {}; name one by its id", .0.join(", "))]
    Ambiguous(Vec<String>),
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

/// The user an operator names by id, username or e-mail (ignoring case; the id is the md5 of
/// the e-mail exactly as the upstream gave it, so its case may differ). All three are looked up:
/// a name that fits different users in different ways (a username chosen to look like another
/// user's id, say) is refused as ambiguous rather than resolved to one of them.
pub async fn find(db: &crate::db::Db, who: &str) -> Result<User, FindError> {
    let who = who.trim();
    let mut found: Vec<User> = Vec::new();
    let by_id = get(db, who).await?;
    let by_username = find_by_username(db, who).await?;
    let by_email = Users::find()
        .filter(sea_orm::sea_query::ExprTrait::eq(
            Expr::expr(Func::lower(Expr::col(user::Column::Email))),
            who.to_lowercase(),
        ))
        .all(db)
        .await?;
    for user in by_id.into_iter().chain(by_username).chain(by_email) {
        if !found.iter().any(|u| u.id == user.id) {
            found.push(user);
        }
    }
    match found.len() {
        0 => Err(FindError::NotFound),
        1 => found.pop().ok_or(FindError::NotFound),
        _ => Err(FindError::Ambiguous(
            found.into_iter().map(|u| u.id).collect(),
        )),
    }
}

/// Users whose id, username, e-mail or name contains `query` (ignoring case), by id; at most
/// `limit`.
pub async fn list(db: &crate::db::Db, query: Option<&str>, limit: u64) -> Result<Vec<User>, DbErr> {
    let mut select = Users::find().order_by_asc(user::Column::Id).limit(limit);
    if let Some(q) = query.map(str::trim).filter(|q| !q.is_empty()) {
        // `\` escapes the pattern's own wildcards, so `_` and `%` in the query match themselves.
        let escaped = q
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = format!("%{escaped}%");
        let contains = |column: user::Column| {
            sea_orm::sea_query::ExprTrait::like(
                Expr::expr(Func::lower(Expr::col(column))),
                LikeExpr::new(pattern.clone()).escape('\\'),
            )
        };
        select = select.filter(
            Condition::any()
                .add(contains(user::Column::Id))
                .add(contains(user::Column::Username))
                .add(contains(user::Column::Email))
                .add(contains(user::Column::Name)),
        );
    }
    select.all(db).await
}

/// Marks the user disabled since `at`, or active again with `None`.
pub async fn set_disabled(
    db: &impl ConnectionTrait,
    id: &str,
    at: Option<i64>,
) -> Result<(), DbErr> {
    Users::update_many()
        .col_expr(user::Column::DisabledAt, Expr::value(at))
        .filter(user::Column::Id.eq(id.to_string()))
        .exec(db)
        .await?;
    Ok(())
}

/// Removes the user's row, remembering the id and the time (`deleted_users`) for an account
/// made again with the same id.
pub async fn delete(db: &impl ConnectionTrait, id: &str, at: i64) -> Result<(), DbErr> {
    let tombstone = deleted_user::ActiveModel {
        id: Set(id.to_string()),
        deleted_at: Set(at),
    };
    DeletedUsers::insert(tombstone)
        .on_conflict(
            OnConflict::column(deleted_user::Column::Id)
                .update_column(deleted_user::Column::DeletedAt)
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Users::delete_by_id(id.to_string()).exec(db).await?;
    Ok(())
}
