//! Loads the built plugin file exactly as authhost does, and calls its hooks.

use authhost_plugin_api::{Hook, json, testkit};

/// The crate's name as its library file has it: this package's name, hyphens as underscores
/// (no edit needed after renaming the crate).
fn crate_name() -> String {
    env!("CARGO_PKG_NAME").replace('-', "_")
}

#[test]
fn hooks_run_through_the_plugin_boundary() {
    let library = testkit::load_extension(&testkit::built_library(&crate_name())).expect("loads as authhost loads it");
    assert_eq!(library.info.name, crate_name());
    let ext = library.instantiate(&json!({ "greeting": "Hello" })).expect("starts");
    let user = json!({ "id": "u1", "email": "u1@example.org", "new": true });
    ext.call(Hook::NewUser, &user).expect("on_new_user");
    ext.call(Hook::UserLogin, &user).expect("on_user_login");
    ext.call(Hook::UserLogout, &user).expect("on_user_logout is optional");
    let err = ext.call(Hook::NewUser, &json!({ "id": "u2" })).expect_err("a failing hook reports");
    assert!(err.to_string().contains("without e-mail"), "{err}");
}
