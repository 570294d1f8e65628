//! An optional address written as a string, `""` for none (how an operator turns a setting
//! off from the environment, where a key cannot be removed). Used with `#[serde(with)]`.

use std::net::SocketAddr;

use serde::de::Error;
use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(addr: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
    match addr {
        Some(addr) => s.collect_str(addr),
        None => s.serialize_str(""),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(D::Error::custom)
}

/// `""` (or blanks) as `None`, else an `address:port`.
pub(crate) fn parse(text: &str) -> Result<Option<SocketAddr>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("`{text}` is not an address:port"))
}
