//! The user as a plugin receives it, typed. The host sends JSON (the [`Value`] every trait
//! method gets); [`User::from_value`] reads it into this struct for a plugin that prefers
//! fields to lookups. Fields the host does not send are `None`; fields a later host adds are
//! ignored, so a plugin built today keeps reading tomorrow's profile.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The user's profile. A provider receives `id`, `email`, `username`, `name` and
/// `provider_id`; a hook receives all of them, `avatar_url`, `join_date`, `new` (on
/// `on_new_user`) and `hook_event`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct User {
    /// The user id of the tokens (`userid`): the MD5 of the e-mail, as the original service.
    pub id: String,
    pub email: Option<String>,
    pub username: Option<String>,
    pub name: Option<String>,
    /// Which upstream the account came from (`github`, `google`, an OpenID provider's name, `dev`).
    pub provider_id: Option<String>,
    pub avatar_url: Option<String>,
    /// When the account was created, RFC 3339 (`2026-12-03T17:16:35Z`).
    pub join_date: Option<String>,
    /// `true` in `on_new_user` only.
    pub new: bool,
    /// The durable event a hook delivery belongs to (see [`crate::hook_event`]).
    pub hook_event: Option<HookEvent>,
}

/// The event a hook delivery belongs to: the same `id` on every retry, `attempt` counting up
/// from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct HookEvent {
    pub id: u64,
    pub attempt: u32,
}

impl User {
    /// Reads the profile a trait method received. An error only when a field has another type
    /// than documented (or the value is not an object), which a host never sends.
    pub fn from_value(user: &Value) -> Result<User, String> {
        User::deserialize(user).map_err(|e| format!("the user's profile: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_hook_profile_reads_into_fields_and_unknown_keys_are_ignored() {
        let user = User::from_value(&json!({
            "id": "u1", "idhash": "u1", "email": "a@example.org", "username": null,
            "name": "A", "provider_id": "dev", "avatar_url": null,
            "join_date": "2026-12-03T17:16:35Z", "new": true,
            "hook_event": { "id": 7, "attempt": 2 }, "added_by_a_later_host": [1]
        }))
        .expect("reads");
        assert_eq!(user.id, "u1");
        assert_eq!(user.email.as_deref(), Some("a@example.org"));
        assert_eq!(user.username, None);
        assert!(user.new);
        assert_eq!(user.hook_event, Some(HookEvent { id: 7, attempt: 2 }));
    }

    #[test]
    fn a_provider_profile_has_no_hook_fields() {
        let user = User::from_value(&json!({ "id": "u2", "email": null })).expect("reads");
        assert_eq!(
            user,
            User {
                id: "u2".into(),
                ..User::default()
            }
        );
        assert!(User::from_value(&json!({ "id": 3 })).is_err());
        assert!(User::from_value(&json!("u2")).is_err());
    }
}
