//! `authhost keys` (the key ring as the configuration loads it) and `authhost keygen` (a new
//! pair into a folder).

use std::process::ExitCode;

use crate::config::Config;

pub(super) fn keygen(out: &std::path::Path) -> ExitCode {
    match crate::keys::write_pair(out, "private.pem", "public.pem") {
        Ok((path, _, _)) => {
            eprintln!(
                "wrote {} and {}",
                path.display(),
                out.join("public.pem").display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `authhost keys`: the key ring as this configuration loads it, one key per line.
pub(super) fn list(config: &Config) -> ExitCode {
    crate::crypto::install();
    match crate::keys::KeyRing::load(config) {
        Ok(ring) => {
            println!("{:<44} role", "kid");
            for (key, role) in ring.keys() {
                println!("{:<44} {}", key.kid, role.name());
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            ExitCode::FAILURE
        }
    }
}
