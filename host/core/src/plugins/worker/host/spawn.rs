//! Starting a worker process: this executable (or `plugins.worker_program`) as
//! `plugin-worker`, with the call socket as fd 3, no stdin, stdout and stderr piped to the host,
//! an environment without authhost's secrets, and an optional address-space limit.

use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use authhost_plugin_api::abi::Kind;

use crate::plugins::worker::protocol::{SOCKET_FD, kind_arg};

/// The original's variables that carry keys or the database URL. With every `AUTHHOST_*`,
/// `PG*` (libpq's and sqlx's connection settings, `PGPASSWORD` among them), `GITHUB_*` and
/// `GOOGLE_*` variable and every `*_KEY_FILE`, they never reach a worker; other variables pass
/// (a plugin may need `HOME`, proxies, its own settings). `AUTHHOST_CONFIG_DIR` passes: it is
/// no secret, and plugins resolve their relative paths against it (`config_path`).
const SECRET_VARIABLES: &[&str] = &["PRIVATE_KEY", "PUBLIC_KEY", "DATABASE_URL"];
const SECRET_PREFIXES: &[&str] = &["AUTHHOST_", "PG", "GITHUB_", "GOOGLE_"];

/// Whether the host's variable `name` is passed to workers.
pub fn passes_to_worker(name: &str) -> bool {
    name == authhost_plugin_api::CONFIG_DIR_VARIABLE
        || !SECRET_PREFIXES.iter().any(|p| name.starts_with(p))
            && !name.ends_with("_KEY_FILE")
            && !SECRET_VARIABLES.contains(&name)
}

/// What a worker is started with.
#[derive(Debug, Clone)]
pub struct Spec {
    pub program: PathBuf,
    pub library: PathBuf,
    pub kind: Kind,
    pub threads: usize,
    /// Address-space limit in MiB; 0 = none.
    pub memory_mb: u64,
}

pub struct Spawned {
    pub child: tokio::process::Child,
    pub socket: tokio::net::UnixStream,
}

pub fn spawn(spec: &Spec) -> io::Result<Spawned> {
    let (host_end, worker_end) = std::os::unix::net::UnixStream::pair()?;
    let worker_fd = worker_end.as_raw_fd();
    let memory = spec.memory_mb.saturating_mul(1 << 20);
    let mut command = tokio::process::Command::new(&spec.program);
    command
        .arg("plugin-worker")
        .arg("--kind")
        .arg(kind_arg(spec.kind))
        .arg("--threads")
        .arg(spec.threads.to_string())
        .arg("--library")
        .arg(library_arg(&spec.library))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_clear()
        .envs(std::env::vars_os().filter(|(k, _)| k.to_str().is_some_and(passes_to_worker)))
        .kill_on_drop(true);
    if memory > 0 {
        // The limit is on address space, and allocators reserve far more than they use (glibc
        // 64 MiB per thread arena, mimalloc 1 GiB arenas: 2 GiB for a 16-thread worker using
        // 27 MiB). Smaller reservations keep the limit about memory actually used (~210 MiB
        // reserved); an operator's own setting wins.
        for (name, value) in [("MALLOC_ARENA_MAX", "2"), ("MIMALLOC_ARENA_RESERVE", "32m")] {
            if std::env::var_os(name).is_none() {
                command.env(name, value);
            }
        }
    }
    // SAFETY: runs in the child between fork and exec, and calls only async-signal-safe
    // functions (dup2, fcntl, setrlimit) on values computed before the fork.
    unsafe {
        command.pre_exec(move || {
            if worker_fd == SOCKET_FD {
                // dup2 onto itself keeps close-on-exec; clear it instead.
                if libc::fcntl(SOCKET_FD, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(worker_fd, SOCKET_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            if memory > 0 {
                let limit = libc::rlimit {
                    rlim_cur: memory as libc::rlim_t,
                    rlim_max: memory as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = command.spawn()?;
    drop(worker_end);
    host_end.set_nonblocking(true)?;
    let socket = tokio::net::UnixStream::from_std(host_end)?;
    Ok(Spawned { child, socket })
}

/// An absolute path, so the worker finds the library whatever its working directory.
fn library_arg(library: &Path) -> PathBuf {
    std::path::absolute(library).unwrap_or_else(|_| library.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_with_the_host() {
        for secret in [
            "AUTHHOST_KEYS__PRIVATE_KEY",
            "AUTHHOST_DATABASE__URL",
            "PRIVATE_KEY",
            "DATABASE_URL",
            "GITHUB_SECRET",
            "GOOGLE_SECRET",
            "PGPASSWORD",
            "PGPASSFILE",
            "GITHUB_TOKEN",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "PRIVATE_KEY_FILE",
            "EXTRA_PUBLIC_KEY_FILE",
        ] {
            assert!(!passes_to_worker(secret), "{secret}");
        }
        let config_dir = authhost_plugin_api::CONFIG_DIR_VARIABLE;
        for plain in [
            "PATH",
            "HOME",
            "LANG",
            "HTTPS_PROXY",
            "MY_PLUGIN_SETTING",
            config_dir,
        ] {
            assert!(passes_to_worker(plain), "{plain}");
        }
    }
}
