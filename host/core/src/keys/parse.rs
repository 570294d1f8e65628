//! PEM into keys: the signing key (RSA, 2048 bits or more, matching its configured public half)
//! and keys that only verify.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, PublicKey};
use aws_lc_rs::signature::KeyPair as _;
use jsonwebtoken::DecodingKey;

use super::jwk::jwk_of;
use super::sources::Pem;
use super::{KeyError, SigningKey, VerifyingKey, derive, invalid};

/// The signing key from its PEM (PKCS#8 or PKCS#1), checked against its public half when one is
/// configured.
pub fn signing_key(private: &Pem, public: Option<&Pem>) -> Result<SigningKey, KeyError> {
    let (source, pem_text) = (private.source.as_str(), private.text.as_str());
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
        Some(configured) => {
            let key = verifying_key(configured)?;
            if key.jwk != jwk_of(pair.public_key()).1 {
                return Err(invalid(
                    &configured.source,
                    format!("does not match the private key of {source}"),
                ));
            }
            key
        }
        None => verifying_key(&Pem {
            source: source.to_string(),
            text: derived_pem,
        })?,
    };
    let user_token_secret = derive::user_token_secret(&pair, source)?;
    let login_state_secret = derive::login_state_secret(&pair, source)?;
    let legacy_secret = derive::legacy_secret(pem_text);
    Ok(SigningKey {
        pair,
        public: public_key,
        user_token_secret,
        login_state_secret,
        legacy_secret,
    })
}

/// Parses a public key PEM (SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`).
pub fn verifying_key(pem: &Pem) -> Result<VerifyingKey, KeyError> {
    let (source, pem_text) = (pem.source.as_str(), pem.text.as_str());
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

pub fn public_pem(key: &PublicKey) -> Result<String, KeyError> {
    let der = key
        .as_der()
        .map_err(|_| invalid("keys", "cannot encode the public key"))?;
    Ok(pem::encode(&pem::Pem::new(
        "PUBLIC KEY",
        der.as_ref().to_vec(),
    )))
}
