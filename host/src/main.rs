//! `authhost`: the binary. Everything it does is in the library's `cli` module; what stays
//! here is the allocator, which only a binary may choose.

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: per-thread arenas without glibc's arena sprawl keep RSS
/// down under many connections and blocking threads, and allocation is a hot path (see
/// docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    authhost::cli::main()
}
