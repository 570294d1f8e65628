//! An extension for authhost: receives `on_new_user`, `on_user_login` and `on_user_logout`
//! with the user's profile as JSON. Implement only the hooks you need. A hook that fails is
//! logged and counted by the host; the user's request goes on.

use std::sync::atomic::{AtomicU64, Ordering};

use authhost_plugin_api::{Extension, User, Value, export_extension, log};

pub struct TemplateExtension {
    greeting: String,
    logins: AtomicU64,
}

impl Extension for TemplateExtension {
    fn new(config: Value) -> Result<Self, String> {
        let greeting = config.get("greeting").and_then(Value::as_str).unwrap_or("Welcome").to_string();
        Ok(TemplateExtension { greeting, logins: AtomicU64::new(0) })
    }

    fn on_new_user(&self, user: &Value) -> Result<(), String> {
        // The profile as a typed struct (`user["email"]` works too).
        let user = User::from_value(user)?;
        let email = user.email.ok_or("profile without e-mail")?;
        log::info(&format!("{}, {email}!", self.greeting));
        Ok(())
    }

    fn on_user_login(&self, _user: &Value) -> Result<(), String> {
        let n = self.logins.fetch_add(1, Ordering::Relaxed) + 1;
        log::debug(&format!("{n} login(s) since start"));
        Ok(())
    }
}

impl TemplateExtension {
    pub fn logins(&self) -> u64 {
        self.logins.load(Ordering::Relaxed)
    }
}

// The plugin is named after the crate (`CARGO_CRATE_NAME`: the library file's name without
// `lib` and `.so`), so renaming the crate renames the plugin and nothing else needs an edit.
export_extension!(TemplateExtension, env!("CARGO_CRATE_NAME"), env!("CARGO_PKG_VERSION"));
