//! A login in progress, sealed into the browser's binding cookie: no server-side row per started
//! login, so a flood of starts fills nothing and locks nobody out.
//!
//! The value is `base64url(version ‖ key tag ‖ nonce ‖ AES-256-GCM-SIV(JSON) ‖ tag)`. The key is
//! derived from the signing key (`keys::derive`, like the HS256 user-token key), so it rotates
//! with it; the next and retired keys open what they sealed, so a login survives a key switch
//! and finishes on any replica with the same keys. GCM-SIV because nonces are random and a
//! flood may seal billions of states under one key: a repeated nonce there leaks nothing but
//! the equality of two identical states.

use aws_lc_rs::aead::{AES_256_GCM_SIV, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::keys::KeyRing;

/// The format's first byte; anything else is refused as unreadable.
const VERSION: u8 = 1;
/// Which key sealed a value: 4 bytes of the SHA-256 of its `kid` (public, like the `kid`).
const KEY_TAG_LEN: usize = 4;
const HEADER_LEN: usize = 1 + KEY_TAG_LEN;
/// A sealed value longer than this is not ours (a cookie is at most 4 KiB).
pub const MAX_SEALED_LEN: usize = 4096;

/// What a login needs between its start and the upstream's callback. Field names are short:
/// every byte travels in a cookie twice (set, then sent back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    /// The `state` sent upstream; the callback's must equal it.
    #[serde(rename = "s")]
    pub state: String,
    #[serde(rename = "p")]
    pub provider: String,
    /// Where the browser goes afterwards, already checked against the allowlist.
    #[serde(rename = "n")]
    pub next: String,
    #[serde(rename = "v")]
    pub pkce_verifier: String,
    #[serde(rename = "o")]
    pub nonce: String,
    /// Unix seconds after which the login is refused as expired.
    #[serde(rename = "e")]
    pub expires_at: i64,
}

/// Why a presented value does not open. All of them mean "start the login again"; the kind is
/// for the log and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not base64url, too short or long, another version (e.g. a binding cookie from before
    /// the state moved into it), or tampered with.
    #[error("unreadable or tampered login cookie")]
    Unreadable,
    /// Sealed with a key this host does not hold (removed after a rotation, or another host's).
    #[error("login cookie sealed with a key this host does not hold")]
    UnknownKey,
}

impl OpenError {
    /// The metric label.
    pub fn reason(self) -> &'static str {
        match self {
            OpenError::Unreadable => "unreadable",
            OpenError::UnknownKey => "unknown_key",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("login state key: {0}")]
    Key(String),
    #[error("cannot seal the login state")]
    Seal,
}

/// What a sealed value is for. The purpose is authenticated with the value (as associated
/// data), so a value sealed for one use never opens as another: a login cookie is not a
/// browser session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A login in progress (the binding cookie). Its associated data is the header alone, as
    /// before purposes existed, so logins started before an upgrade still finish.
    Login,
    /// The browser's session at authhost (`super::session`).
    Session,
}

impl Purpose {
    fn aad(self, header: &[u8]) -> Vec<u8> {
        let label: &[u8] = match self {
            Purpose::Login => b"",
            Purpose::Session => b"authhost session",
        };
        [header, label].concat()
    }
}

struct SealKey {
    tag: [u8; KEY_TAG_LEN],
    key: RandomizedNonceKey,
}

/// Seals with the signing key's derived key; opens with the signing, next and retired keys'.
pub struct Sealer {
    /// The first one seals.
    keys: Vec<SealKey>,
}

fn key_tag(kid: &str) -> [u8; KEY_TAG_LEN] {
    let mut tag = [0u8; KEY_TAG_LEN];
    let hash = digest(&SHA256, kid.as_bytes());
    tag.copy_from_slice(
        hash.as_ref()
            .get(..KEY_TAG_LEN)
            .unwrap_or(&[0; KEY_TAG_LEN]),
    );
    tag
}

impl Sealer {
    pub fn new(ring: &KeyRing) -> Result<Sealer, SealError> {
        let private = std::iter::once(&ring.signing)
            .chain(ring.next.iter())
            .chain(ring.retired.iter());
        let mut keys = Vec::new();
        for k in private {
            let key = RandomizedNonceKey::new(&AES_256_GCM_SIV, k.login_state_secret())
                .map_err(|_| SealError::Key(k.kid().to_string()))?;
            keys.push(SealKey {
                tag: key_tag(k.kid()),
                key,
            });
        }
        Ok(Sealer { keys })
    }

    /// The cookie value for `login`.
    pub fn seal(&self, login: &PendingLogin) -> Result<String, SealError> {
        self.seal_for(Purpose::Login, login)
    }

    /// The login sealed in `value`, if one of this host's keys sealed it unchanged.
    pub fn open(&self, value: &[u8]) -> Result<PendingLogin, OpenError> {
        self.open_for(Purpose::Login, value)
    }

    /// `value` sealed for `purpose`: only `open_for` with the same purpose opens it.
    pub fn seal_for<T: Serialize>(&self, purpose: Purpose, value: &T) -> Result<String, SealError> {
        let sealing = self.keys.first().ok_or(SealError::Seal)?;
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.push(VERSION);
        header.extend_from_slice(&sealing.tag);
        let mut data = serde_json::to_vec(value).map_err(|_| SealError::Seal)?;
        let aad = purpose.aad(&header);
        let nonce = sealing
            .key
            .seal_in_place_append_tag(Aad::from(aad.as_slice()), &mut data)
            .map_err(|_| SealError::Seal)?;
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + data.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&data);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// What `seal_for` sealed for `purpose` in `value`, if one of this host's keys sealed it
    /// unchanged.
    pub fn open_for<T: DeserializeOwned>(
        &self,
        purpose: Purpose,
        value: &[u8],
    ) -> Result<T, OpenError> {
        if value.len() > MAX_SEALED_LEN {
            return Err(OpenError::Unreadable);
        }
        let mut raw = URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| OpenError::Unreadable)?;
        if raw.len() < HEADER_LEN + NONCE_LEN || raw.first() != Some(&VERSION) {
            return Err(OpenError::Unreadable);
        }
        let (head, body) = raw.split_at_mut(HEADER_LEN);
        let key = self
            .keys
            .iter()
            .find(|k| head.get(1..) == Some(&k.tag[..]))
            .ok_or(OpenError::UnknownKey)?;
        let (nonce, sealed) = body.split_at_mut(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError::Unreadable)?;
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(purpose.aad(head).as_slice()), sealed)
            .map_err(|_| OpenError::Unreadable)?;
        serde_json::from_slice(plain).map_err(|_| OpenError::Unreadable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, EnvMap, Secret};
    use crate::keys::generate_pem_pair;

    fn ring(signing: &str, retired: &[&str]) -> KeyRing {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Config::from_toml_str("", &EnvMap::new()).expect("valid");
        c.keys.private_key = Secret::new(signing);
        for (i, pem) in retired.iter().enumerate() {
            let path = dir.path().join(format!("retired-{i}.pem"));
            std::fs::write(&path, pem).expect("write");
            c.keys.retired_private_key_files.push(path);
        }
        KeyRing::load(&c).map_err(|e| e.len()).expect("loads")
    }

    fn login() -> PendingLogin {
        PendingLogin {
            state: "s".repeat(43),
            provider: "github".into(),
            next: "https://app.example.org/after?x=1".into(),
            pkce_verifier: "v".repeat(43),
            nonce: "n".repeat(43),
            expires_at: 1_900_000_000,
        }
    }

    #[test]
    fn seals_and_opens_and_refuses_any_change() {
        crate::crypto::install();
        let (private, _) = generate_pem_pair().expect("keygen");
        let sealer = Sealer::new(&ring(&private, &[])).expect("sealer");
        let value = sealer.seal(&login()).expect("seal");
        assert_eq!(sealer.open(value.as_bytes()), Ok(login()));
        assert_ne!(value, sealer.seal(&login()).expect("seal"), "random nonce");
        let raw = URL_SAFE_NO_PAD.decode(&value).expect("b64");
        for i in 0..raw.len() {
            let mut changed = raw.clone();
            changed[i] ^= 0x01;
            let expected = if (1..HEADER_LEN).contains(&i) {
                OpenError::UnknownKey
            } else {
                OpenError::Unreadable
            };
            assert_eq!(
                sealer.open(URL_SAFE_NO_PAD.encode(&changed).as_bytes()),
                Err(expected),
                "byte {i} changed"
            );
        }
        for junk in [&b""[..], b"%%%", b"AAAA", &[b'A'; 5000][..]] {
            assert_eq!(sealer.open(junk), Err(OpenError::Unreadable));
        }
    }

    #[test]
    fn a_value_sealed_for_one_purpose_does_not_open_for_another() {
        crate::crypto::install();
        let (private, _) = generate_pem_pair().expect("keygen");
        let sealer = Sealer::new(&ring(&private, &[])).expect("sealer");
        let as_login = sealer.seal(&login()).expect("seal");
        let as_session = sealer.seal_for(Purpose::Session, &login()).expect("seal");
        assert_eq!(
            sealer.open_for::<PendingLogin>(Purpose::Session, as_login.as_bytes()),
            Err(OpenError::Unreadable)
        );
        assert_eq!(
            sealer.open(as_session.as_bytes()),
            Err(OpenError::Unreadable)
        );
        assert_eq!(
            sealer.open_for(Purpose::Session, as_session.as_bytes()),
            Ok(login())
        );
    }

    #[test]
    fn retired_keys_open_and_foreign_keys_do_not() {
        crate::crypto::install();
        let (old, _) = generate_pem_pair().expect("keygen");
        let (new, _) = generate_pem_pair().expect("keygen");
        let before = Sealer::new(&ring(&old, &[])).expect("sealer");
        let after = Sealer::new(&ring(&new, &[&old])).expect("sealer");
        let stranger = Sealer::new(&ring(&new, &[])).expect("sealer");
        let sealed = before.seal(&login()).expect("seal");
        assert_eq!(after.open(sealed.as_bytes()), Ok(login()));
        assert_eq!(stranger.open(sealed.as_bytes()), Err(OpenError::UnknownKey));
        // The header names the retired key, but another key of the ring sealed: refused.
        let by_new = after.seal(&login()).expect("seal");
        let mut raw = URL_SAFE_NO_PAD.decode(&by_new).expect("b64");
        let old_tag = URL_SAFE_NO_PAD.decode(&sealed).expect("b64")[1..HEADER_LEN].to_vec();
        raw[1..HEADER_LEN].copy_from_slice(&old_tag);
        assert_eq!(
            after.open(URL_SAFE_NO_PAD.encode(&raw).as_bytes()),
            Err(OpenError::Unreadable)
        );
    }

    #[test]
    fn a_long_next_stays_well_under_a_cookie_limit() {
        crate::crypto::install();
        let (private, _) = generate_pem_pair().expect("keygen");
        let sealer = Sealer::new(&ring(&private, &[])).expect("sealer");
        let mut long = login();
        long.next = format!("https://app.example.org/{}", "a".repeat(1024 - 24));
        long.provider = "p".repeat(64);
        let value = sealer.seal(&long).expect("seal");
        assert!(
            value.len() <= crate::login::flow::MAX_COOKIE_VALUE_LEN,
            "{} bytes",
            value.len()
        );
    }
}
