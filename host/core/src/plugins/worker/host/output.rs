//! A worker's stdout and stderr into the host's log, under the plugin's label. Lines the worker
//! writes itself start with a level digit (`child/mod.rs`); anything else (a plugin's own prints)
//! is logged at info. Lines are cut at `MAX_LINE` bytes and read as lossy UTF-8, and the pipe is
//! drained to its end whatever comes through it, so a plugin's output can neither grow the
//! host's memory nor block the plugin.

use authhost_plugin_api::Level;
use tokio::io::{AsyncRead, AsyncReadExt};

const MAX_LINE: usize = 4096;

fn log_line(label: &str, raw: &[u8]) {
    let line = String::from_utf8_lossy(raw);
    // A line the worker wrote starts with its level's code, one digit (`Level::code`).
    let (level, message) = match line.split_once(' ') {
        Some((l, m)) => match l.as_bytes() {
            [digit @ b'1'..=b'4'] => (Level::from_code(digit - b'0'), m),
            _ => (Level::Info, line.as_ref()),
        },
        None => (Level::Info, line.as_ref()),
    };
    let plugin = label;
    match level {
        Level::Error => tracing::error!(target: "plugin", plugin, "{message}"),
        Level::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
        Level::Info => tracing::info!(target: "plugin", plugin, "{message}"),
        Level::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
    }
}

pub fn forward(label: String, mut stream: impl AsyncRead + Unpin + Send + 'static) {
    tokio::spawn(async move {
        let mut line: Vec<u8> = Vec::with_capacity(256);
        let mut chunk = [0u8; 4096];
        loop {
            let n = match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for &byte in chunk.iter().take(n) {
                if byte == b'\n' {
                    log_line(&label, &line);
                    line.clear();
                } else if line.len() < MAX_LINE {
                    line.push(byte);
                } else {
                    log_line(&label, &line);
                    line.clear();
                    line.push(byte);
                }
            }
        }
        if !line.is_empty() {
            log_line(&label, &line);
        }
    });
}
