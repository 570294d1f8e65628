//! The protocol between the host and a plugin worker process: JSON messages, each framed by its
//! length (4 bytes, big-endian), over a Unix socket. Calls carry ids, so one worker answers many
//! calls at once and in any order. Messages are externally tagged (`{"call": {...}}`): serde
//! reads those in one pass, where an internally tagged message (`{"op": "call", ...}`) is first
//! buffered whole and then read again, the user's profile included, on every call.

use std::io::{self, Read};

use authhost_plugin_api::abi::Kind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::plugins::{CallError, PluginError};

/// Frames larger than this are refused (a broken or hostile peer).
pub const MAX_FRAME: usize = 16 << 20;

/// Bumped whenever a message changes; the worker states its version first (`Reply::Ready`) and
/// the host refuses any other. History:
/// - 1: the first protocol: internally tagged messages (`{"op": "call", ...}`), every message
///   of this file in its first form.
/// - 2: externally tagged messages (`{"call": {...}}`), read by serde in one pass; `Call`'s
///   `user` and an answer's value travel as the JSON text they are (same fields as 1).
pub const PROTOCOL_VERSION: u32 = 2;

/// The socket the host hands every worker, as this file descriptor.
pub const SOCKET_FD: i32 = 3;

/// The `--kind` argument a worker is started with, and back (`Kind::word`).
pub fn kind_arg(kind: Kind) -> &'static str {
    kind.word()
}

pub fn parse_kind(arg: &str) -> Option<Kind> {
    Kind::from_word(arg)
}

/// Host to worker. One definition for both sides: the host sends it borrowed
/// (`Request<&str, &Value>`, nothing copied before it is encoded), the worker reads it owned
/// (`Request`, the profile kept as the JSON text it came in). Since protocol 1 unless noted.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request<S = String, U = Box<RawValue>> {
    /// Builds instance `instance` (the host's number for it) from its configuration.
    Instantiate {
        id: u64,
        instance: u64,
        config: Value,
    },
    /// Calls `call` (`CALL_GET_PERMISSIONS`, `HOOK_*`) on an instance with the service and the
    /// user's profile (as JSON text since protocol 2, which is what the plugin takes).
    Call {
        id: u64,
        instance: u64,
        call: u8,
        service: S,
        user: U,
    },
    /// The host no longer uses the instance.
    Drop { instance: u64 },
}

/// A request as the host sends it.
pub type RequestOut<'a> = Request<&'a str, &'a Value>;

/// Worker to host. The worker sends an answer as the plugin wrote it (`Reply<&RawValue>`,
/// checked once and copied, not read into a tree and printed again); the host reads it as
/// text (`Reply`) and then into a value with `answer_value`. Since protocol 1 unless noted.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply<A = Box<RawValue>> {
    /// The first message: the library loaded (name, version, interface), or why not.
    Ready {
        protocol: u32,
        loaded: Result<Loaded, String>,
    },
    /// The answer to request `id` (the plugin's JSON text since protocol 2).
    Answer {
        id: u64,
        result: Result<A, WireError>,
    },
}

/// A reply as the worker sends it.
pub type ReplyOut<'a> = Reply<&'a RawValue>;

/// An answer as its caller gets it. The text is read here, not as part of the frame, so that
/// an answer JSON cannot hold (a number out of range, a lone surrogate, nesting too deep) fails
/// its own call with the in-process loader's error, and the frame around it stays readable.
pub fn answer_value(result: Result<Box<RawValue>, WireError>) -> Result<Value, CallError> {
    match result {
        Ok(text) => serde_json::from_str(text.get()).map_err(CallError::not_json),
        Err(e) => Err(PluginError::from(e).into()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loaded {
    pub name: String,
    pub version: String,
    pub interface_version: u32,
}

/// What the plugin did (`PluginError`), as it travels.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum WireError {
    Failed(String),
    Panicked(String),
    BadAnswer(String),
    NotImplemented(String),
}

impl From<PluginError> for WireError {
    fn from(e: PluginError) -> WireError {
        match e {
            PluginError::Failed(m) => WireError::Failed(m),
            PluginError::Panicked(m) => WireError::Panicked(m),
            PluginError::BadAnswer(m) => WireError::BadAnswer(m),
            PluginError::NotImplemented(m) => WireError::NotImplemented(m),
        }
    }
}

impl From<WireError> for PluginError {
    fn from(e: WireError) -> PluginError {
        match e {
            WireError::Failed(m) => PluginError::Failed(m),
            WireError::Panicked(m) => PluginError::Panicked(m),
            WireError::BadAnswer(m) => PluginError::BadAnswer(m),
            WireError::NotImplemented(m) => PluginError::NotImplemented(m),
        }
    }
}

/// One message as a frame.
pub fn encode<T: Serialize>(message: &T) -> io::Result<Vec<u8>> {
    let body = serde_json::to_vec(message)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&n| n as usize <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "frame too large"))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Reads one message (blocking); `Ok(None)` at a clean end of the stream.
pub fn read_blocking<T: for<'de> Deserialize<'de>>(from: &mut impl Read) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match from.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; body_len(len)?];
    from.read_exact(&mut body)?;
    decode(&body)
}

/// The body length a frame header announces, refused past `MAX_FRAME`.
fn body_len(header: [u8; 4]) -> io::Result<usize> {
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    Ok(len)
}

fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> io::Result<Option<T>> {
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads one message from an async stream; `Ok(None)` at a clean end.
pub async fn read_async<T: for<'de> Deserialize<'de>>(
    from: &mut (impl tokio::io::AsyncRead + Unpin),
) -> io::Result<Option<T>> {
    use tokio::io::AsyncReadExt;
    let mut len = [0u8; 4];
    match from.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; body_len(len)?];
    from.read_exact(&mut body).await?;
    decode(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_survives_its_frame() {
        let call: Request = Request::Call {
            id: 7,
            instance: 2,
            call: 1,
            service: "docs".into(),
            user: RawValue::from_string(r#"{"id":"u1"}"#.into()).expect("JSON"),
        };
        let frame = encode(&call).expect("encodes");
        let back: Request = read_blocking(&mut frame.as_slice())
            .expect("reads")
            .expect("one message");
        assert!(matches!(
            back,
            Request::Call {
                id: 7,
                instance: 2,
                call: 1,
                ..
            }
        ));
        let empty: Option<Request> = read_blocking(&mut [].as_slice()).expect("clean end");
        assert!(empty.is_none());
    }

    #[test]
    fn a_borrowed_call_is_read_as_a_call() {
        let user = serde_json::json!({"id": "u1"});
        let frame = encode(&RequestOut::Call {
            id: 9,
            instance: 3,
            call: 2,
            service: "svc",
            user: &user,
        })
        .expect("encodes");
        let back: Request = read_blocking(&mut frame.as_slice())
            .expect("reads")
            .expect("one message");
        match back {
            Request::Call {
                id: 9,
                instance: 3,
                call: 2,
                service,
                user: read,
            } => {
                let read: serde_json::Value = serde_json::from_str(read.get()).expect("JSON");
                assert_eq!((service.as_str(), read), ("svc", user));
            }
            other => panic!("read back as {other:?}"),
        }
    }

    #[test]
    fn an_answer_sent_as_text_is_read_as_a_reply() {
        let text = r#"{"read": true, "n": [1, 2]}"#;
        let raw: &RawValue = serde_json::from_str(text).expect("JSON");
        let frame = encode(&ReplyOut::Answer {
            id: 4,
            result: Ok(raw),
        })
        .expect("encodes");
        let back: Reply = read_blocking(&mut frame.as_slice())
            .expect("reads")
            .expect("one message");
        match back {
            Reply::Answer { id: 4, result } => assert_eq!(
                answer_value(result),
                Ok(serde_json::json!({"read": true, "n": [1, 2]}))
            ),
            other => panic!("read back as {other:?}"),
        }
        let failed = encode(&ReplyOut::Answer {
            id: 5,
            result: Err(WireError::Panicked("boom".into())),
        })
        .expect("encodes");
        let back: Reply = read_blocking(&mut failed.as_slice())
            .expect("reads")
            .expect("one message");
        assert!(matches!(
            back,
            Reply::Answer { id: 5, result: Err(WireError::Panicked(m)) } if m == "boom"
        ));
    }

    #[test]
    fn an_oversized_frame_is_refused() {
        let mut frame = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(b"{}");
        let read: io::Result<Option<Request>> = read_blocking(&mut frame.as_slice());
        assert!(read.is_err());
    }
}
