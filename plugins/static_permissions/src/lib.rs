//! Permissions from configuration. Each alias it serves has its own table:
//!
//! ```toml
//! [plugins.config.datasets]
//! default = { read = false }                      # the starting answer (default: {})
//! rules = [
//!   { email_domain = "example.org", permissions = { read = true } },
//!   { email = "boss@example.org", permissions = { write = true, quota = 100 } },
//!   { username = "alice", permissions = { admin = true } },
//!   { userid = "2ab96390c7dbe3439de74d0c9b0b1767", permissions = { read = false } },
//! ]
//! ```
//!
//! Every rule that matches the user is merged over the answer in order (later keys win), so
//! specific rules go last. Values are any JSON. E-mails, domains and usernames match ignoring
//! case; a user without an e-mail or username matches no rule on it.

use authhost_plugin_api::{PermissionProvider, User, Value, config, export_provider, json};
use serde::Deserialize;

type Map = authhost_plugin_api::serde_json::Map<String, Value>;

/// The `[plugins.config.<alias>]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    default: Map,
    #[serde(default)]
    rules: Vec<RuleSettings>,
}

/// One rule as written: exactly one matcher and its permissions.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSettings {
    userid: Option<String>,
    email: Option<String>,
    email_domain: Option<String>,
    username: Option<String>,
    permissions: Map,
}

#[derive(Debug)]
enum Matcher {
    UserId(String),
    Email(String),
    EmailDomain(String),
    Username(String),
}

#[derive(Debug)]
struct Rule {
    matcher: Matcher,
    permissions: Map,
}

pub struct StaticPermissions {
    default: Map,
    rules: Vec<Rule>,
}

impl Matcher {
    fn matches(&self, user: &User) -> bool {
        match self {
            Matcher::UserId(id) => user.id == *id,
            Matcher::Email(email) => user
                .email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email)),
            Matcher::EmailDomain(domain) => user
                .email
                .as_deref()
                .and_then(|e| e.rsplit_once('@'))
                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain)),
            Matcher::Username(name) => user
                .username
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(name)),
        }
    }
}

impl RuleSettings {
    fn into_rule(self, i: usize) -> Result<Rule, String> {
        let matchers = [
            self.userid.map(Matcher::UserId),
            self.email.map(Matcher::Email),
            self.email_domain
                .map(|d| Matcher::EmailDomain(d.trim_start_matches('@').to_string())),
            self.username.map(Matcher::Username),
        ];
        let mut given = matchers.into_iter().flatten();
        match (given.next(), given.next()) {
            (Some(matcher), None) => Ok(Rule {
                matcher,
                permissions: self.permissions,
            }),
            _ => Err(format!(
                "rules[{i}] needs exactly one of userid, email, email_domain, username"
            )),
        }
    }
}

impl PermissionProvider for StaticPermissions {
    fn new(settings: Value) -> Result<Self, String> {
        let Settings { default, rules } = config(settings)?;
        let rules = rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.into_rule(i))
            .collect::<Result<_, _>>()?;
        Ok(StaticPermissions { default, rules })
    }

    fn get_permissions(&self, service: &str, userid: &str) -> Result<Value, String> {
        self.get_permissions_for_user(service, &json!({ "id": userid }))
    }

    fn get_permissions_for_user(&self, _service: &str, user: &Value) -> Result<Value, String> {
        let user = User::from_value(user)?;
        let mut answer = self.default.clone();
        for rule in self.rules.iter().filter(|r| r.matcher.matches(&user)) {
            answer.extend(rule.permissions.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Ok(Value::Object(answer))
    }
}

export_provider!(
    StaticPermissions,
    "static_permissions",
    env!("CARGO_PKG_VERSION")
);

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> StaticPermissions {
        StaticPermissions::new(json!({
            "default": { "read": false },
            "rules": [
                { "email_domain": "Example.org", "permissions": { "read": true } },
                { "email": "boss@example.org", "permissions": { "write": true, "quota": 100 } },
                { "username": "alice", "permissions": { "admin": true } },
                { "userid": "u-7", "permissions": { "read": false } },
            ]
        }))
        .expect("valid")
    }

    #[test]
    fn rules_merge_in_order_over_the_default() {
        let p = provider();
        let ask = |user: Value| p.get_permissions_for_user("svc", &user).expect("answer");
        assert_eq!(ask(json!({ "id": "x" })), json!({ "read": false }));
        assert_eq!(
            ask(json!({ "id": "x", "email": "bob@EXAMPLE.org" })),
            json!({ "read": true })
        );
        assert_eq!(
            ask(json!({ "id": "x", "email": "bob@example.org.evil" })),
            json!({ "read": false })
        );
        assert_eq!(
            ask(json!({ "id": "x", "email": "Boss@example.org" })),
            json!({ "read": true, "write": true, "quota": 100 })
        );
        assert_eq!(
            ask(json!({ "id": "u-7", "email": "z@example.org", "username": "ALICE" })),
            json!({ "read": false, "admin": true })
        );
    }

    #[test]
    fn bad_rules_are_refused_with_their_place() {
        for (config, needle) in [
            (
                json!({ "rules": [{ "permissions": {} }] }),
                "rules[0] needs exactly one",
            ),
            (
                json!({ "rules": [{ "email": "a", "username": "b", "permissions": {} }] }),
                "exactly one",
            ),
            (
                json!({ "rules": [{ "email": "a" }] }),
                "rules[0]: missing field `permissions`",
            ),
            (
                json!({ "rules": [{ "email": "a", "permissions": {} }, { "phone": "1", "permissions": {} }] }),
                "rules[1].phone: unknown field `phone`",
            ),
            (
                json!({ "rules": [{ "email": 3, "permissions": {} }] }),
                "rules[0].email: invalid type: integer",
            ),
            (json!({ "default": 3 }), "default: invalid type"),
            (json!({ "rule": [] }), "unknown field `rule`"),
        ] {
            let err = StaticPermissions::new(config).err().expect("refused");
            assert!(err.contains(needle), "{err}");
        }
    }
}
