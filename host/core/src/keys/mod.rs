//! RSA keys: the key ring (one signing key, more that only verify) and its loading.
//!
//! - `sources`: where the PEM texts come from (settings, files, the development pair);
//! - `parse`: PEM into keys, and the checks (size, matching halves);
//! - `derive`: the secrets derived from the signing key (user-token HS256 key, legacy key);
//! - `jwk`: the public JWK and its RFC 7638 thumbprint, the `kid`;
//! - `files`: key generation and writing key files with safe modes.
//!
//! The private key is parsed once into an aws-lc-rs key pair and signs directly (jsonwebtoken's
//! `encode` would re-parse the PEM on every call, the largest part of an RS256 sign).

mod derive;
mod files;
mod jwk;
mod parse;
mod sources;

pub use files::{generate_pem_pair, write_pair};

use std::path::PathBuf;

use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::{rand::SystemRandom, signature};
use jsonwebtoken::DecodingKey;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn invalid(key: &str, message: impl Into<String>) -> KeyError {
    KeyError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// A public key that verifies tokens and is published in the JWKS.
pub struct VerifyingKey {
    pub kid: String,
    pub pem: String,
    pub decoding: DecodingKey,
    pub jwk: serde_json::Value,
}

/// The key that signs, with the secrets derived from it.
pub struct SigningKey {
    pair: KeyPair,
    pub public: VerifyingKey,
    /// HS256 key of user tokens: HKDF-SHA256 of the private key, so it rotates with the key.
    user_token_secret: [u8; 32],
    /// The original's user-token key: sha256 of the PEM text exactly as configured.
    legacy_secret: [u8; 32],
}

impl SigningKey {
    pub fn kid(&self) -> &str {
        &self.public.kid
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`.
    pub fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut sig,
            )
            .map_err(|_| invalid("keys", "RSA signing failed"))?;
        Ok(sig)
    }

    pub fn user_token_secret(&self) -> &[u8; 32] {
        &self.user_token_secret
    }

    pub fn legacy_secret(&self) -> &[u8; 32] {
        &self.legacy_secret
    }
}

/// All keys of this host: one signs, all verify.
pub struct KeyRing {
    pub signing: SigningKey,
    pub verify_only: Vec<VerifyingKey>,
}

impl KeyRing {
    pub fn find(&self, kid: &str) -> Option<&VerifyingKey> {
        std::iter::once(&self.signing.public)
            .chain(self.verify_only.iter())
            .find(|k| k.kid == kid)
    }

    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<&serde_json::Value> = std::iter::once(&self.signing.public.jwk)
            .chain(self.verify_only.iter().map(|k| &k.jwk))
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Loads the keys named by the configuration; with none configured and dev login on, a key
    /// pair is generated once into `data_dir` and reused. Every problem is reported.
    pub fn load(config: &Config) -> Result<KeyRing, Vec<KeyError>> {
        let sources = sources::read(config)?;
        let mut errors = sources.errors;
        let signing = match parse::signing_key(&sources.private, sources.public.as_ref()) {
            Ok(k) => Some(k),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let mut verify_only = Vec::new();
        for extra in &sources.extra_public {
            match parse::verifying_key(extra) {
                Ok(k) => verify_only.push(k),
                Err(e) => errors.push(e),
            }
        }
        match signing {
            Some(signing) if errors.is_empty() => Ok(KeyRing {
                signing,
                verify_only,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, EnvMap, Secret};

    fn config_with(private: &str, public: &str) -> Config {
        let mut c = Config::from_toml_str("", &EnvMap::new()).expect("valid");
        c.keys.private_key = Secret::new(private);
        c.keys.public_key = public.to_string();
        c
    }

    #[test]
    fn loads_a_matching_pair_and_publishes_it() {
        crate::crypto::install();
        let (private, public) = generate_pem_pair().expect("keygen");
        let ring = KeyRing::load(&config_with(&private, &public))
            .map_err(|e| e.len())
            .expect("loads");
        let jwks = ring.jwks();
        assert_eq!(jwks["keys"][0]["kid"], ring.signing.kid());
        assert_eq!(jwks["keys"][0]["kty"], "RSA");
        assert_eq!(ring.signing.public.pem, public);
    }

    #[test]
    fn refuses_a_public_key_of_another_pair() {
        crate::crypto::install();
        let (private, _) = generate_pem_pair().expect("keygen");
        let (_, other_public) = generate_pem_pair().expect("keygen");
        let errors = match KeyRing::load(&config_with(&private, &other_public)) {
            Ok(_) => panic!("mismatched pair accepted"),
            Err(e) => e,
        };
        assert!(
            errors[0].to_string().contains("does not match"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn refuses_garbage_with_the_key_name() {
        let errors = match KeyRing::load(&config_with("not a pem", "")) {
            Ok(_) => panic!("garbage accepted"),
            Err(e) => e,
        };
        assert!(
            errors[0].to_string().starts_with("keys.private_key"),
            "{}",
            errors[0]
        );
    }
}
