//! Property tests (proptest): the redirect allowlist, user-token verification, the HTTP surface
//! and the configuration parsers, each on many generated inputs.
//!
//! Every property runs a bounded number of cases in the normal suite (`cargo test --workspace`).
//! `PROPTEST_CASES=N` sets the number of cases of every property to N, e.g. 100 times the
//! defaults below:
//!
//! ```sh
//! PROPTEST_CASES=25600 cargo test -p authhost-tests --test integration properties::   # 100 x 256
//! PROPTEST_CASES=12800 cargo test -p authhost-tests --test integration properties::http   # 100 x 128
//! ```
//!
//! A failure prints the smallest input proptest could shrink it to; no regression file is written
//! (the input in the message is what to paste into a unit test).

mod config_parsers;
mod http;
mod redirects;
mod tokens;

use proptest::sample::Index;
use proptest::test_runner::Config as ProptestConfig;

// ---------------------------------------------------------------------------------------------
// Case counts
// ---------------------------------------------------------------------------------------------

/// `PROPTEST_CASES` when it is set to a number, else `default`. `ProptestConfig::with_cases`
/// replaces the count that `ProptestConfig::default()` read from the variable, so it is read
/// here. (proptest 1.12's `proptest!` also applies the `PROPTEST_*` variables to the config it is
/// given; both agree, and this keeps the variable working should that change.)
pub(super) fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

pub(super) fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases(default))
    }
}

/// Inserts each `(position, char)` into `text` at a char boundary.
pub(super) fn sprinkle(mut text: String, noise: &[(Index, char)]) -> String {
    for (at, c) in noise {
        let boundaries: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(text.len()))
            .collect();
        text.insert(boundaries[at.index(boundaries.len())], *c);
    }
    text
}
