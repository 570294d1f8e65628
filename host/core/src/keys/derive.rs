//! Secrets derived from the signing key, so that they rotate with it: the HS256 key of user
//! tokens (HKDF-SHA256 of the private key's DER) and the original's user-token key (SHA-256 of
//! the PEM text exactly as configured, for legacy tokens).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::{digest, hkdf};

use super::{KeyError, invalid};

/// The HS256 key of user tokens. `source` names the key in errors.
pub fn user_token_secret(pair: &KeyPair, source: &str) -> Result<[u8; 32], KeyError> {
    let der = pair
        .as_der()
        .map_err(|_| invalid(source, "cannot encode the private key"))?;
    let mut secret = [0u8; 32];
    hkdf::Salt::new(hkdf::HKDF_SHA256, b"authhost")
        .extract(der.as_ref())
        .expand(&[b"user-token-hs256-v1"], hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(&mut secret))
        .map_err(|_| invalid(source, "cannot derive the user-token key"))?;
    Ok(secret)
}

/// The original service's user-token key.
pub fn legacy_secret(pem_text: &str) -> [u8; 32] {
    let mut secret = [0u8; 32];
    secret.copy_from_slice(digest::digest(&digest::SHA256, pem_text.as_bytes()).as_ref());
    secret
}
