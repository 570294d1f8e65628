//! Open connections by client address, for `server.max_connections_per_client`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::client_addr::TrustedProxies;

/// Open connections by client address (`client_addr::bucket`), for the per-client cap.
pub(super) struct ClientCounts {
    max: usize,
    trusted: TrustedProxies,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection's place in its client's count, given back when dropped.
pub(super) struct ClientSlot {
    counts: Option<Arc<ClientCounts>>,
    key: IpAddr,
}

impl ClientCounts {
    pub(super) fn new(max: usize, trusted: TrustedProxies) -> ClientCounts {
        ClientCounts {
            max,
            trusted,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for a connection from `ip`, or `None` when its address already holds `max`.
    pub(super) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let key = crate::client_addr::bucket(ip);
        if self.trusted.contains(ip) {
            return Some(ClientSlot { counts: None, key });
        }
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            counts: Some(self.clone()),
            key,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let Some(counts) = self.counts.take() else {
            return;
        };
        let mut open = counts.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}
