//! Loads the built plugin file exactly as authhost does, and asks it.

use authhost_plugin_api::{json, testkit};

#[test]
fn answers_through_the_plugin_boundary() {
    let library = testkit::load_provider(&testkit::built_library("provider_template")).expect("loads as authhost loads it");
    assert_eq!(library.info.name, "provider_template");
    assert_eq!(library.info.interface_version, authhost_plugin_api::INTERFACE_VERSION);

    let plain = library.instantiate(&json!({})).expect("starts without configuration");
    assert_eq!(
        plain.get_permissions("docs", "u1").expect("answer"),
        json!({ "service": "docs", "read": true, "write": false })
    );
    let admins = library.instantiate(&json!({ "admins": ["u1"] })).expect("starts");
    assert_eq!(admins.get_permissions("docs", "u1").expect("answer")["write"], true);
    assert!(library.instantiate(&json!({ "admins": "u1" })).is_err(), "bad configuration is refused");
}
