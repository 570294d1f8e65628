//! The crypto backend of jsonwebtoken, installed explicitly: with none (or two, through feature
//! unification) it compiles and then panics at the first verification.

use std::sync::Once;

/// Installs aws-lc-rs as jsonwebtoken's provider; safe to call any number of times.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another provider was installed first by this process: keep it.
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    });
}
