//! Loads the built plugin file exactly as authhost does, and asks it.

use authhost_plugin_api::{json, testkit};

/// The crate's name as its library file has it: this package's name, hyphens as underscores
/// (no edit needed after renaming the crate).
fn crate_name() -> String {
    env!("CARGO_PKG_NAME").replace('-', "_")
}

#[test]
fn answers_through_the_plugin_boundary() {
    let library = testkit::load_provider(&testkit::built_library(&crate_name())).expect("loads as authhost loads it");
    assert_eq!(library.info.name, crate_name());
    assert_eq!(library.info.interface_version, authhost_plugin_api::INTERFACE_VERSION);

    let plain = library.instantiate(&json!({})).expect("starts without configuration");
    assert_eq!(
        plain.get_permissions("docs", "u1").expect("answer"),
        json!({ "service": "docs", "read": true, "write": false })
    );
    let admins = library.instantiate(&json!({ "admins": ["u1"] })).expect("starts");
    assert_eq!(admins.get_permissions("docs", "u1").expect("answer")["write"], true);
    let refused = library.instantiate(&json!({ "admins": ["u1", 2] })).err().expect("bad configuration is refused");
    assert!(refused.to_string().contains("admins[1]"), "names the place: {refused}");
    let refused = library.instantiate(&json!({ "admin": ["u1"] })).err().expect("a misspelt key is refused");
    assert!(refused.to_string().contains("unknown field `admin`"), "{refused}");
}
