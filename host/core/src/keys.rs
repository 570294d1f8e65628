//! RSA keys: loading and checking PEM, dev key generation, JWK publication.
//!
//! The private key is parsed once into an aws-lc-rs key pair and signs directly (jsonwebtoken's
//! `encode` would re-parse the PEM on every call, the largest part of an RS256 sign).

use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKey};
use aws_lc_rs::signature::KeyPair as _;
use aws_lc_rs::{digest, hkdf, rand::SystemRandom, signature};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
    /// pair is generated once into `data_dir` and reused.
    pub fn load(config: &Config) -> Result<KeyRing, Vec<KeyError>> {
        let mut errors = Vec::new();
        let keys = &config.keys;
        let private = if !keys.private_key.is_empty() {
            Some((
                "keys.private_key (PRIVATE_KEY)".to_string(),
                keys.private_key.expose().to_string(),
            ))
        } else if let Some(path) = &keys.private_key_file {
            match std::fs::read_to_string(path) {
                Ok(text) => Some((format!("keys.private_key_file ({})", path.display()), text)),
                Err(e) => {
                    errors.push(invalid(
                        "keys.private_key_file",
                        format!("cannot read {}: {e}", path.display()),
                    ));
                    None
                }
            }
        } else {
            None
        };
        let public = if !keys.public_key.trim().is_empty() {
            Some((
                "keys.public_key (PUBLIC_KEY)".to_string(),
                keys.public_key.clone(),
            ))
        } else if let Some(path) = &keys.public_key_file {
            match std::fs::read_to_string(path) {
                Ok(text) => Some((format!("keys.public_key_file ({})", path.display()), text)),
                Err(e) => {
                    errors.push(invalid(
                        "keys.public_key_file",
                        format!("cannot read {}: {e}", path.display()),
                    ));
                    None
                }
            }
        } else {
            None
        };

        let (private, public) = match (private, public) {
            (Some(p), public) => (p, public),
            (None, _) if !errors.is_empty() => return Err(errors),
            (None, Some(_)) => {
                return Err(vec![invalid(
                    "keys.private_key_file",
                    "a public key is configured but no private key (PRIVATE_KEY or keys.private_key_file)",
                )]);
            }
            (None, None) if config.dev_login_enabled() => match dev_keys(&config.server.data_dir) {
                Ok((priv_path, priv_pem)) => {
                    tracing::warn!(
                        path = %priv_path.display(),
                        "NO SIGNING KEY CONFIGURED: using a development key pair generated into data_dir. \
                         Configure PRIVATE_KEY/PUBLIC_KEY (or keys.*_file) before real use."
                    );
                    // The public half is derived from the private key.
                    (
                        (format!("dev key ({})", priv_path.display()), priv_pem),
                        None,
                    )
                }
                Err(e) => return Err(vec![e]),
            },
            (None, None) => {
                return Err(vec![invalid(
                    "keys.private_key_file",
                    "no signing key configured: set PRIVATE_KEY/PUBLIC_KEY or keys.private_key_file \
                     (`authhost keygen --out DIR` makes a pair)",
                )]);
            }
        };

        let signing = match signing_key(&private.0, &private.1, public.as_ref()) {
            Ok(k) => Some(k),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let mut verify_only = Vec::new();
        for (i, path) in keys.extra_public_key_files.iter().enumerate() {
            let key = format!("keys.extra_public_key_files[{i}]");
            match std::fs::read_to_string(path) {
                Ok(pem) => match verifying_key(&key, &pem) {
                    Ok(k) => verify_only.push(k),
                    Err(e) => errors.push(e),
                },
                Err(e) => errors.push(invalid(
                    &key,
                    format!("cannot read {}: {e}", path.display()),
                )),
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

fn signing_key(
    source: &str,
    pem_text: &str,
    public: Option<&(String, String)>,
) -> Result<SigningKey, KeyError> {
    let block =
        pem::parse(pem_text.trim()).map_err(|e| invalid(source, format!("not PEM: {e}")))?;
    let pair = match block.tag() {
        "PRIVATE KEY" => KeyPair::from_pkcs8(block.contents()),
        "RSA PRIVATE KEY" => KeyPair::from_der(block.contents()),
        other => {
            return Err(invalid(
                source,
                format!("expected an RSA private key, found `{other}`"),
            ));
        }
    }
    .map_err(|e| invalid(source, format!("not a usable RSA private key: {e}")))?;
    if pair.public_modulus_len() < 256 {
        return Err(invalid(
            source,
            "RSA keys shorter than 2048 bits are refused",
        ));
    }
    let derived_pem = public_pem(pair.public_key())?;
    let public_key = match public {
        Some((pub_source, pub_pem)) => {
            let key = verifying_key(pub_source, pub_pem)?;
            if key.jwk != jwk_of(pair.public_key()).1 {
                return Err(invalid(
                    pub_source,
                    format!("does not match the private key of {source}"),
                ));
            }
            key
        }
        None => verifying_key(source, &derived_pem)?,
    };
    let der = pair
        .as_der()
        .map_err(|_| invalid(source, "cannot encode the private key"))?;
    let mut user_token_secret = [0u8; 32];
    hkdf::Salt::new(hkdf::HKDF_SHA256, b"authhost")
        .extract(der.as_ref())
        .expand(&[b"user-token-hs256-v1"], hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(&mut user_token_secret))
        .map_err(|_| invalid(source, "cannot derive the user-token key"))?;
    let mut legacy_secret = [0u8; 32];
    legacy_secret.copy_from_slice(digest::digest(&digest::SHA256, pem_text.as_bytes()).as_ref());
    Ok(SigningKey {
        pair,
        public: public_key,
        user_token_secret,
        legacy_secret,
    })
}

/// Parses a public key PEM (SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`).
fn verifying_key(source: &str, pem_text: &str) -> Result<VerifyingKey, KeyError> {
    let block =
        pem::parse(pem_text.trim()).map_err(|e| invalid(source, format!("not PEM: {e}")))?;
    if !matches!(block.tag(), "PUBLIC KEY" | "RSA PUBLIC KEY") {
        return Err(invalid(
            source,
            format!("expected an RSA public key, found `{}`", block.tag()),
        ));
    }
    let key = PublicKey::from_der(block.contents())
        .map_err(|e| invalid(source, format!("not a usable RSA public key: {e}")))?;
    let ((n, e), jwk) = jwk_of(&key);
    let kid = jwk
        .get("kid")
        .and_then(|k| k.as_str())
        .unwrap_or_default()
        .to_string();
    let decoding = DecodingKey::from_rsa_components(&n, &e)
        .map_err(|err| invalid(source, format!("cannot use the public key: {err}")))?;
    Ok(VerifyingKey {
        kid,
        pem: pem_text.to_string(),
        decoding,
        jwk,
    })
}

/// `(n, e)` base64url, and the JWK with its RFC 7638 thumbprint as `kid`.
fn jwk_of(key: &PublicKey) -> ((String, String), serde_json::Value) {
    let n = URL_SAFE_NO_PAD.encode(key.modulus().big_endian_without_leading_zero());
    let e = URL_SAFE_NO_PAD.encode(key.exponent().big_endian_without_leading_zero());
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()));
    let jwk = serde_json::json!({
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e,
    });
    ((n, e), jwk)
}

fn public_pem(key: &PublicKey) -> Result<String, KeyError> {
    let der = key
        .as_der()
        .map_err(|_| invalid("keys", "cannot encode the public key"))?;
    Ok(pem::encode(&pem::Pem::new(
        "PUBLIC KEY",
        der.as_ref().to_vec(),
    )))
}

/// A fresh RSA-2048 key pair as (private PKCS#8 PEM, public SPKI PEM).
pub fn generate_pem_pair() -> Result<(String, String), KeyError> {
    let pair = KeyPair::generate(KeySize::Rsa2048)
        .map_err(|_| invalid("keygen", "RSA key generation failed"))?;
    let der = pair
        .as_der()
        .map_err(|_| invalid("keygen", "cannot encode the private key"))?;
    let private = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
    Ok((private, public_pem(pair.public_key())?))
}

/// Writes a new key pair as `private.pem` (mode 0600) and `public.pem` into `dir`.
pub fn write_pair(
    dir: &Path,
    private_name: &str,
    public_name: &str,
) -> Result<(PathBuf, String, String), KeyError> {
    std::fs::create_dir_all(dir).map_err(|source| KeyError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let (private, public) = generate_pem_pair()?;
    let priv_path = dir.join(private_name);
    write_secret_file(&priv_path, &private)?;
    let pub_path = dir.join(public_name);
    std::fs::write(&pub_path, &public).map_err(|source| KeyError::Write {
        path: pub_path,
        source,
    })?;
    Ok((priv_path, private, public))
}

fn write_secret_file(path: &Path, text: &str) -> Result<(), KeyError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    file.write_all(text.as_bytes())
        .map_err(|source| KeyError::Write {
            path: path.to_path_buf(),
            source,
        })
}

/// The development private key in `data_dir`, generated on first use. Several processes may
/// start at once (`cargo run` and `authhost token`): the key is written whole to a temporary
/// file and hard-linked into place, so exactly one wins and the others read its key.
fn dev_keys(data_dir: &Path) -> Result<(PathBuf, String), KeyError> {
    let priv_path = data_dir.join("dev-private.pem");
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| {
            invalid(
                "server.data_dir",
                format!("cannot read {}: {e}", p.display()),
            )
        })
    };
    if priv_path.exists() {
        return Ok((priv_path.clone(), read(&priv_path)?));
    }
    std::fs::create_dir_all(data_dir).map_err(|source| KeyError::Write {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let (private, public) = generate_pem_pair()?;
    let tmp = data_dir.join(format!(".dev-private.pem.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    write_secret_file(&tmp, &private)?;
    let linked = std::fs::hard_link(&tmp, &priv_path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            let pub_path = data_dir.join("dev-public.pem");
            std::fs::write(&pub_path, &public).map_err(|source| KeyError::Write {
                path: pub_path,
                source,
            })?;
            Ok((priv_path, private))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok((priv_path.clone(), read(&priv_path)?))
        }
        Err(source) => Err(KeyError::Write {
            path: priv_path,
            source,
        }),
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
