//! Secrets derived from the signing key, so that they rotate with it: the HS256 key of user
//! tokens and the key that seals logins in progress into the browser's cookie (HKDF-SHA256 of
//! the private key's DER, one label each), and the original's user-token key (SHA-256 of the
//! PEM text exactly as configured, for legacy tokens).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::{digest, hkdf};

use super::{KeyError, invalid};

/// The HS256 key of user tokens. `source` names the key in errors.
pub fn user_token_secret(pair: &KeyPair, source: &str) -> Result<[u8; 32], KeyError> {
    hkdf_of(pair, source, b"user-token-hs256-v1", "user-token key")
}

/// The AES-256-GCM-SIV key of sealed login states (`login::sealed`).
pub fn login_state_secret(pair: &KeyPair, source: &str) -> Result<[u8; 32], KeyError> {
    hkdf_of(
        pair,
        source,
        b"login-state-aes-256-gcm-siv-v1",
        "login-state key",
    )
}

/// 32 bytes of HKDF-SHA256 over the private key's DER, for the purpose `label` names.
fn hkdf_of(pair: &KeyPair, source: &str, label: &[u8], what: &str) -> Result<[u8; 32], KeyError> {
    let der = pair
        .as_der()
        .map_err(|_| invalid(source, "cannot encode the private key"))?;
    let mut secret = [0u8; 32];
    hkdf::Salt::new(hkdf::HKDF_SHA256, b"authhost")
        .extract(der.as_ref())
        .expand(&[label], hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(&mut secret))
        .map_err(|_| invalid(source, format!("cannot derive the {what}")))?;
    Ok(secret)
}

/// The original service's user-token key.
pub fn legacy_secret(pem_text: &str) -> [u8; 32] {
    let mut secret = [0u8; 32];
    secret.copy_from_slice(digest::digest(&digest::SHA256, pem_text.as_bytes()).as_ref());
    secret
}
