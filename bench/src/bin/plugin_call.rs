//! The cost of one plugin call in each isolation mode: the sample provider asked for one user
//! many times in a row by one caller, through `PluginSet::permissions` (the path `authorize`
//! takes on a permission-token cache miss). Prints `in_process_us process_us` on one line.
//!
//!     bench-plugin-call <authhost binary> <plugin dir> [calls]
//!
//! With `BENCH_PYTHON_VENV` set, `<plugin dir>` holds the Python bridge and the venv the
//! original's `sample_permission_provider` module: the call goes through the bridge, in a worker
//! process only (modules never run in process); prints `process_us`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use authhost::call_pool::CallPool;
use authhost::config::{Config, EnvMap};
use authhost::plugins::{LibraryCache, PluginSet};
use serde_json::json;

async fn per_call_us(mode: &str, program: &str, dir: &str, calls: u32) -> f64 {
    let data = std::env::temp_dir().join(format!("bench-plugin-call-{}", std::process::id()));
    let mut toml = format!(
        "[server]\ndata_dir = {data:?}\n[plugins]\nservices = \"example:sample_permission_provider\"\n\
         dirs = [{dir:?}]\nisolation = {mode:?}\nworker_program = {program:?}\n"
    );
    if let Ok(venv) = std::env::var("BENCH_PYTHON_VENV") {
        toml.push_str(&format!("[plugins.python]\nvenv = {venv:?}\n"));
    }
    let config = Config::from_toml_str(&toml, &EnvMap::new()).unwrap_or_else(|e| panic!("{e}"));
    let pool = CallPool::new("plugin-call", config.plugins.max_concurrent_calls).expect("threads");
    let cache = Arc::new(Mutex::new(LibraryCache::new(&PathBuf::from(&data))));
    let set = tokio::task::spawn_blocking(move || {
        let mut cache = cache.lock().expect("cache");
        PluginSet::load(&config, &mut cache, pool)
    })
    .await
    .expect("joined")
    .unwrap_or_else(|e| panic!("{e:?}"));
    let user = json!({ "id": "u1", "email": "u1@bench.example", "username": "u1" });
    for _ in 0..1000 {
        set.permissions("example", user.clone()).await;
    }
    let started = Instant::now();
    for _ in 0..calls {
        let answer = set.permissions("example", user.clone()).await;
        assert!(answer.get("provider-token").is_some(), "{answer}");
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(calls)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(program), Some(dir)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: bench-plugin-call <authhost binary> <plugin dir> [calls]");
        std::process::exit(2);
    };
    let calls = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        if std::env::var_os("BENCH_PYTHON_VENV").is_some() {
            let process = per_call_us("process", program, dir, calls).await;
            println!("{process:.1}");
            return;
        }
        let in_process = per_call_us("in_process", program, dir, calls).await;
        let process = per_call_us("process", program, dir, calls).await;
        println!("{in_process:.1} {process:.1}");
    });
}
