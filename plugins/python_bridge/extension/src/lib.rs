//! A Python module's `on_new_user`, `on_user_login` and `on_user_logout(user_info)` as an
//! authhost extension. The host loads this library for an extension name that is a Python
//! module (see the bridge).

authhost_plugin_api::export_extension!(
    python_bridge::Extension,
    env!("CARGO_CRATE_NAME"),
    env!("CARGO_PKG_VERSION")
);
