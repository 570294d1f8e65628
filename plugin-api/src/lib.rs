//! The stable ABI between authhost and its plugins.
//!
//! The abi_stable root modules, safe traits and export macros land with the plugin issue; until
//! then this crate only fixes the interface version the host will check plugins against.

/// Interface version a plugin was built for; the host refuses plugins built for another one.
pub const INTERFACE_VERSION: u32 = 1;
