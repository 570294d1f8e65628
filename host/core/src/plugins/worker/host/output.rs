//! A worker's stdout and stderr into the host's log, under the plugin's label. Lines the worker
//! writes itself start with a level digit (`child/mod.rs`); anything else (a plugin's own prints)
//! is logged at info. Lines are cut at `MAX_LINE` bytes and read as lossy UTF-8, and the pipe is
//! drained to its end whatever comes through it, so a plugin's output can neither grow the
//! host's memory nor block the plugin.

use tokio::io::{AsyncRead, AsyncReadExt};

const MAX_LINE: usize = 4096;

fn log_line(label: &str, raw: &[u8]) {
    let line = String::from_utf8_lossy(raw);
    let (level, message) = match line.split_once(' ') {
        Some((l, m)) if l.len() == 1 => (l.as_bytes().first().copied(), m),
        _ => (None, line.as_ref()),
    };
    let plugin = label;
    match level {
        Some(b'1') => tracing::error!(target: "plugin", plugin, "{message}"),
        Some(b'2') => tracing::warn!(target: "plugin", plugin, "{message}"),
        Some(b'4') => tracing::debug!(target: "plugin", plugin, "{message}"),
        _ => tracing::info!(target: "plugin", plugin, "{message}"),
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
