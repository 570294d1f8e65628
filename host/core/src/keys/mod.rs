//! RSA keys: the key ring (one signing key; retired keys whose tokens still verify; published
//! keys that do not sign yet) and its loading.
//!
//! - `sources`: where the PEM texts come from (settings, files, the development pair);
//! - `parse`: PEM into keys, and the checks (size, matching halves);
//! - `derive`: the secrets derived from the signing key (user-token HS256 key, login-state
//!   sealing key, legacy key);
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
pub use sources::dev_keys_to_generate;

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
    /// Seals logins in progress into the browser's cookie: HKDF-SHA256 too, another label.
    login_state_secret: [u8; 32],
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

    pub fn login_state_secret(&self) -> &[u8; 32] {
        &self.login_state_secret
    }

    pub fn legacy_secret(&self) -> &[u8; 32] {
        &self.legacy_secret
    }
}

/// What a key of the ring is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Signs every new token.
    Signing,
    /// Signed before; its tokens still verify (`keys.retired_private_key_files`).
    Retired,
    /// Will sign next; its tokens already verify (`keys.next_private_key_files`), so that
    /// replicas switched one at a time accept each other's tokens.
    Next,
    /// Published and trusted, signs nothing here (`keys.extra_public_key_files`): the next
    /// key before a switch, or a key of another host.
    Published,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Signing => "signing",
            Role::Retired => "retired",
            Role::Next => "next",
            Role::Published => "published only",
        }
    }
}

/// All keys of this host: one signs, all verify.
pub struct KeyRing {
    pub signing: SigningKey,
    /// Keys that signed before, newest first as configured.
    pub retired: Vec<SigningKey>,
    /// Keys that will sign next.
    pub next: Vec<SigningKey>,
    pub verify_only: Vec<VerifyingKey>,
    /// The JWKS document as served, and its entity tag.
    jwks_body: String,
    jwks_etag: String,
}

impl KeyRing {
    /// Every key with its role: the signing key, the retired ones, the next ones, the
    /// published ones.
    pub fn keys(&self) -> impl Iterator<Item = (&VerifyingKey, Role)> {
        std::iter::once((&self.signing.public, Role::Signing))
            .chain(self.retired.iter().map(|k| (&k.public, Role::Retired)))
            .chain(self.next.iter().map(|k| (&k.public, Role::Next)))
            .chain(self.verify_only.iter().map(|k| (k, Role::Published)))
    }

    pub fn find(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys().map(|(k, _)| k).find(|k| k.kid == kid)
    }

    /// The signing key, a retired or a next one, by `kid`: the keys whose derived secrets
    /// verify HS256 user tokens.
    pub fn private_key(&self, kid: &str) -> Option<&SigningKey> {
        std::iter::once(&self.signing)
            .chain(self.retired.iter())
            .chain(self.next.iter())
            .find(|k| k.kid() == kid)
    }

    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<&serde_json::Value> = self.keys().map(|(k, _)| &k.jwk).collect();
        serde_json::json!({ "keys": keys })
    }

    /// The JWKS as served (compact JSON) and its strong entity tag (a hash of the body).
    pub fn jwks_document(&self) -> (&str, &str) {
        (&self.jwks_body, &self.jwks_etag)
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
        let mut private_keys = |pems: &[sources::Pem]| {
            let mut keys = Vec::new();
            for pem in pems {
                match parse::signing_key(pem, None) {
                    Ok(k) => keys.push((pem.source.clone(), k)),
                    Err(e) => errors.push(e),
                }
            }
            keys
        };
        let retired = private_keys(&sources.retired);
        let next = private_keys(&sources.next);
        let mut verify_only = Vec::new();
        for extra in &sources.extra_public {
            match parse::verifying_key(extra) {
                Ok(k) => verify_only.push((extra.source.clone(), k)),
                Err(e) => errors.push(e),
            }
        }
        let Some(signing) = signing else {
            return Err(errors);
        };
        // A key listed twice (or the signing key listed again) is a mistake in the rotation
        // steps: say which setting repeats it.
        let mut seen = vec![(sources.private.source.clone(), signing.kid().to_string())];
        let listed = retired
            .iter()
            .chain(next.iter())
            .map(|(s, k)| (s, k.kid()))
            .chain(verify_only.iter().map(|(s, k)| (s, k.kid.as_str())));
        for (source, kid) in listed {
            if let Some((first, _)) = seen.iter().find(|(_, k)| k == kid) {
                errors.push(invalid(
                    source,
                    format!("the same key as {first} (kid {kid}): list each key once"),
                ));
            } else {
                seen.push((source.clone(), kid.to_string()));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut ring = KeyRing {
            signing,
            retired: retired.into_iter().map(|(_, k)| k).collect(),
            next: next.into_iter().map(|(_, k)| k).collect(),
            verify_only: verify_only.into_iter().map(|(_, k)| k).collect(),
            jwks_body: String::new(),
            jwks_etag: String::new(),
        };
        ring.jwks_body = ring.jwks().to_string();
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, ring.jwks_body.as_bytes());
        ring.jwks_etag = format!(
            "\"{}\"",
            hex::encode(digest.as_ref().get(..16).unwrap_or_default())
        );
        Ok(ring)
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
