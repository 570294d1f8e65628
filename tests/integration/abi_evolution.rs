//! The ABI evolution rule (docs/plugins.md): a function appended to the root module after the
//! last prefix field must let plugins built before it load, and read as "not implemented".
//!
//! `evolution_test::PluginModule` is today's root module with one optional function appended,
//! as the next interface would declare it. The fixture plugins were built against today's
//! interface, so loading them through the extended type is exactly "an older plugin in a newer
//! host". Its own binary: abi_stable's process-wide layout checks must not see the extended
//! type and the real one in the same process.

use authhost_plugin_api::abi::{CALL_GET_PERMISSIONS, HOOK_NEW_USER, Kind};
use authhost_plugin_api::abi_stable::std_types::{RResult, RStr};
use authhost_plugin_api::evolution_test;
use authhost_tests::plugin_dir;

#[test]
fn a_plugin_built_before_an_appended_function_loads_and_reads_it_as_not_implemented() {
    let path = plugin_dir().join("libfixture_provider.so");
    let module = evolution_test::load(&path, Kind::Provider).unwrap_or_else(|e| {
        panic!(
            "an older plugin must load in a newer host: {e} {}",
            e.details().unwrap_or_default()
        )
    });
    assert!(
        module.describe().is_none(),
        "the appended function is absent from a plugin built before it"
    );
    // What the plugin does implement still works through the extended module.
    assert_eq!(module.name().as_str(), "fixture_provider");
    let handle = match (module.new_instance())(RStr::from_str(r#"{"mode":"echo"}"#)) {
        RResult::ROk(h) => h,
        RResult::RErr(e) => panic!("constructor refused: {e:?}"),
    };
    let answer = (module.call())(
        handle,
        CALL_GET_PERMISSIONS,
        RStr::from_str("docs"),
        RStr::from_str(r#"{"id":"u1"}"#),
    );
    match answer {
        RResult::ROk(text) => assert!(text.as_str().contains("echo"), "{text}"),
        RResult::RErr(e) => panic!("call failed: {e:?}"),
    }
    (module.drop_instance())(handle);
}

#[test]
fn an_extension_built_before_an_appended_function_loads_too() {
    let path = plugin_dir().join("libfixture_extension.so");
    let module = evolution_test::load(&path, Kind::Extension)
        .unwrap_or_else(|e| panic!("an older extension must load in a newer host: {e}"));
    assert!(module.describe().is_none());
    let handle = match (module.new_instance())(RStr::from_str("{}")) {
        RResult::ROk(h) => h,
        RResult::RErr(e) => panic!("constructor refused: {e:?}"),
    };
    let hook = (module.call())(
        handle,
        HOOK_NEW_USER,
        RStr::from_str(""),
        RStr::from_str(r#"{"id":"u1"}"#),
    );
    assert!(matches!(hook, RResult::ROk(_)), "{hook:?}");
    (module.drop_instance())(handle);
}

/// The control: the attribute interface 1 was declared with. The same older plugin loads, but
/// asking for the appended function panics in the host, which is what the rule prevents.
#[test]
fn with_missing_field_panic_the_same_access_would_panic_the_host() {
    let path = plugin_dir().join("libfixture_provider.so");
    let module = evolution_test::panicking::load(&path, Kind::Provider)
        .unwrap_or_else(|e| panic!("loads: {e}"));
    let asked = std::panic::catch_unwind(|| {
        let _ = module.describe();
    });
    assert!(
        asked.is_err(),
        "missing_field(panic) panics on an absent function"
    );
}
