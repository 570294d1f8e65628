//! Counts the hot paths keep as plain atomics (one relaxed add per event, no registry lookup,
//! no dependence on when the metrics recorder was installed); the server exports them as
//! Prometheus counters when `/metrics` is scraped.

use std::sync::atomic::{AtomicU64, Ordering};

/// Hits and misses of one cache.
#[derive(Debug, Default)]
pub struct CacheStats {
    hits: AtomicU64,
    misses: AtomicU64,
}

impl CacheStats {
    /// Counts one lookup and gives its result back.
    pub fn record<T>(&self, found: Option<T>) -> Option<T> {
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Counts a hit found without `record` (a path that only ever looks for hits).
    pub fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    fn forget(&self) {
        self.hits.store(0, Ordering::Relaxed);
        self.misses.store(0, Ordering::Relaxed);
    }

    /// (hits, misses) so far.
    pub fn get(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

/// Why a user token was refused: the `reason` label of `authhost_tokens_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a JWT at all, or too long.
    Malformed,
    /// The signature does not match.
    BadSignature,
    /// Past `exp` (plus the leeway).
    Expired,
    /// A `kid` no key of this host has.
    UnknownKey,
    /// Not a user token (a permission token, say).
    WrongType,
    /// Signed with an algorithm the key is not pinned to.
    WrongAlgorithm,
    /// Another claim is wrong (issuer, a missing claim).
    InvalidClaims,
    /// Issued before the user's last logout.
    Revoked,
    /// The user no longer exists.
    UnknownUser,
    /// The user is disabled.
    Disabled,
}

impl Refusal {
    pub const ALL: [Refusal; 10] = [
        Refusal::Malformed,
        Refusal::BadSignature,
        Refusal::Expired,
        Refusal::UnknownKey,
        Refusal::WrongType,
        Refusal::WrongAlgorithm,
        Refusal::InvalidClaims,
        Refusal::Revoked,
        Refusal::UnknownUser,
        Refusal::Disabled,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::BadSignature => "bad_signature",
            Refusal::Expired => "expired",
            Refusal::UnknownKey => "unknown_key",
            Refusal::WrongType => "wrong_type",
            Refusal::WrongAlgorithm => "wrong_algorithm",
            Refusal::InvalidClaims => "invalid_claims",
            Refusal::Revoked => "revoked",
            Refusal::UnknownUser => "unknown_user",
            Refusal::Disabled => "disabled",
        }
    }
}

/// Tokens issued and refused, and the token caches' lookups.
#[derive(Debug, Default)]
pub struct TokenStats {
    pub user_tokens_issued: AtomicU64,
    pub permission_tokens_issued: AtomicU64,
    /// The OpenID Provider's tokens (its token endpoint's code and refresh grants).
    pub id_tokens_issued: AtomicU64,
    pub access_tokens_issued: AtomicU64,
    pub refresh_tokens_issued: AtomicU64,
    refused: [AtomicU64; Refusal::ALL.len()],
    pub permission_cache: CacheStats,
    pub verified_cache: CacheStats,
}

impl TokenStats {
    pub fn refused(&self, why: Refusal) {
        if let Some(counter) = self.refused.get(why as usize) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Back to zero: for the start-up self-test, whose tokens are not traffic.
    pub fn forget(&self) {
        for n in [
            &self.user_tokens_issued,
            &self.permission_tokens_issued,
            &self.id_tokens_issued,
            &self.access_tokens_issued,
            &self.refresh_tokens_issued,
        ]
        .into_iter()
        .chain(&self.refused)
        {
            n.store(0, Ordering::Relaxed);
        }
        self.permission_cache.forget();
        self.verified_cache.forget();
    }

    /// Refusals so far, by reason.
    pub fn refusals(&self) -> impl Iterator<Item = (Refusal, u64)> + '_ {
        Refusal::ALL
            .iter()
            .zip(&self.refused)
            .map(|(why, n)| (*why, n.load(Ordering::Relaxed)))
    }
}

/// Adds one to `counter`.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_count_under_their_own_label() {
        let stats = TokenStats::default();
        stats.refused(Refusal::Expired);
        stats.refused(Refusal::Expired);
        stats.refused(Refusal::Disabled);
        let counts: Vec<(&str, u64)> = stats
            .refusals()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| (r.label(), n))
            .collect();
        assert_eq!(counts, [("expired", 2), ("disabled", 1)]);
        // Each variant's index is its place in ALL, so no two share a counter.
        for (i, r) in Refusal::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }
}
