//! A short-lived cache of user rows for token checks: `check` and `authorize` need the user on
//! every request, and most requests come from the same few users again and again. Writes made
//! by this replica invalidate at once; the time to live bounds how late another replica's write
//! (a logout) is seen here.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use sea_orm::{DatabaseConnection, DbErr};

use crate::db::user::Model as User;
use crate::users;

/// A user row and its `check` answer, rendered once per cache fill.
pub struct CachedUser {
    pub user: User,
    pub check_body: Bytes,
}

impl CachedUser {
    fn new(user: User) -> CachedUser {
        let body =
            serde_json::json!({ "authenticated": true, "profile": users::full_profile(&user) });
        CachedUser {
            user,
            check_body: Bytes::from(body.to_string()),
        }
    }
}

impl std::ops::Deref for CachedUser {
    type Target = User;
    fn deref(&self) -> &User {
        &self.user
    }
}

pub struct UserCache {
    cache: Option<moka::sync::Cache<String, Arc<CachedUser>>>,
}

impl UserCache {
    /// `ttl` zero turns the cache off.
    pub fn new(ttl: Duration) -> UserCache {
        let cache = (!ttl.is_zero()).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build()
        });
        UserCache { cache }
    }

    /// The user `id` if it is in the cache; never touches the database.
    pub fn cached(&self, id: &str) -> Option<Arc<CachedUser>> {
        self.cache.as_ref().and_then(|c| c.get(id))
    }

    /// The user `id`, from the cache or the database. Unknown users are not cached.
    pub async fn get(
        &self,
        db: &DatabaseConnection,
        id: &str,
    ) -> Result<Option<Arc<CachedUser>>, DbErr> {
        if let Some(user) = self.cached(id) {
            return Ok(Some(user));
        }
        let user = users::get(db, id)
            .await?
            .map(|u| Arc::new(CachedUser::new(u)));
        if let (Some(cache), Some(user)) = (&self.cache, &user) {
            cache.insert(id.to_string(), user.clone());
        }
        Ok(user)
    }

    /// Forget `id` after a write (login, username, logout).
    pub fn invalidate(&self, id: &str) {
        if let Some(cache) = &self.cache {
            cache.invalidate(id);
        }
    }
}
