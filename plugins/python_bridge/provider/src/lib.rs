//! A Python module's `get_permissions(service, userid)` as an authhost permission provider. The
//! host loads this library for a service whose plugin name is a Python module (see the bridge).

authhost_plugin_api::export_provider!(
    python_bridge::Provider,
    env!("CARGO_CRATE_NAME"),
    env!("CARGO_PKG_VERSION")
);
