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

use authhost_plugin_api::{PermissionProvider, Value, export_provider, json};

type Map = authhost_plugin_api::serde_json::Map<String, Value>;

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

fn field<'a>(user: &'a Value, name: &str) -> Option<&'a str> {
    user.get(name).and_then(Value::as_str)
}

impl Matcher {
    fn matches(&self, user: &Value) -> bool {
        match self {
            Matcher::UserId(id) => field(user, "id") == Some(id.as_str()),
            Matcher::Email(email) => {
                field(user, "email").is_some_and(|e| e.eq_ignore_ascii_case(email))
            }
            Matcher::EmailDomain(domain) => field(user, "email")
                .and_then(|e| e.rsplit_once('@'))
                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain)),
            Matcher::Username(name) => {
                field(user, "username").is_some_and(|u| u.eq_ignore_ascii_case(name))
            }
        }
    }
}

fn parse_rule(i: usize, rule: &Value) -> Result<Rule, String> {
    let obj = rule
        .as_object()
        .ok_or_else(|| format!("rules[{i}] is not a table"))?;
    let permissions = obj
        .get("permissions")
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| format!("rules[{i}] needs a `permissions` table"))?;
    let mut matchers = Vec::new();
    for (key, value) in obj.iter().filter(|(k, _)| *k != "permissions") {
        let text = value
            .as_str()
            .ok_or_else(|| format!("rules[{i}].{key} must be a string"))?
            .to_string();
        matchers.push(match key.as_str() {
            "userid" => Matcher::UserId(text),
            "email" => Matcher::Email(text),
            "email_domain" => Matcher::EmailDomain(text.trim_start_matches('@').to_string()),
            "username" => Matcher::Username(text),
            other => {
                return Err(format!(
                    "rules[{i}]: unknown matcher `{other}` (userid, email, email_domain, username)"
                ));
            }
        });
    }
    match (matchers.pop(), matchers.is_empty()) {
        (Some(matcher), true) => Ok(Rule {
            matcher,
            permissions,
        }),
        _ => Err(format!(
            "rules[{i}] needs exactly one of userid, email, email_domain, username"
        )),
    }
}

impl PermissionProvider for StaticPermissions {
    fn new(config: Value) -> Result<Self, String> {
        let default = match config.get("default") {
            None => Map::new(),
            Some(v) => v.as_object().cloned().ok_or("`default` must be a table")?,
        };
        let rules = match config.get("rules") {
            None => Vec::new(),
            Some(Value::Array(rules)) => rules
                .iter()
                .enumerate()
                .map(|(i, r)| parse_rule(i, r))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("`rules` must be a list".into()),
        };
        Ok(StaticPermissions { default, rules })
    }

    fn get_permissions(&self, _service: &str, userid: &str) -> Result<Value, String> {
        self.get_permissions_for_user(_service, &json!({ "id": userid }))
    }

    fn get_permissions_for_user(&self, _service: &str, user: &Value) -> Result<Value, String> {
        let mut answer = self.default.clone();
        for rule in self.rules.iter().filter(|r| r.matcher.matches(user)) {
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
            (json!({ "rules": [{ "email": "a" }] }), "permissions"),
            (
                json!({ "rules": [{ "phone": "1", "permissions": {} }] }),
                "unknown matcher `phone`",
            ),
            (json!({ "default": 3 }), "default"),
        ] {
            let err = StaticPermissions::new(config).err().expect("refused");
            assert!(err.contains(needle), "{err}");
        }
    }
}
