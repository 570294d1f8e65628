//! The one interpreter of this process: started by the first instance, with authhost's log for
//! `print` and `logging`, and the configured folders on `sys.path`. One per process is the safe
//! rule (sub-interpreters break many C extensions); the host gives each module its own worker
//! process, hence its own interpreter.

use std::sync::{Mutex, OnceLock};

use pyo3::prelude::*;
use pyo3::types::PyModule;

use crate::settings::Settings;

/// The bridge's Python half, imported once.
static HELPER: OnceLock<Result<Py<PyModule>, String>> = OnceLock::new();
/// The `sys.path` settings the interpreter was set up with: a later instance asking for others
/// is refused (they could not both hold).
static SETUP: Mutex<Option<(Vec<String>, Vec<String>)>> = Mutex::new(None);

/// Receives `print` lines and `logging` records.
#[pyfunction]
fn log(level: &str, message: &str) {
    use authhost_plugin_api::log;
    match level {
        "error" => log::error(message),
        "warn" => log::warn(message),
        "debug" => log::debug(message),
        _ => log::info(message),
    }
}

/// Debian's `lib-dynload` C modules (`_ssl`, `_sqlite3`, `_decimal`) are not linked to
/// libpython and expect its symbols in global scope, but the host opens plugins with
/// `RTLD_LOCAL`, and libpython came in with this library. Re-opening the already-loaded
/// libpython with `RTLD_GLOBAL | RTLD_NOLOAD` promotes it without loading anything.
fn promote_libpython() {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    let symbol = pyo3::ffi::Py_IsInitialized as *const libc::c_void;
    // SAFETY: dladdr only reads the loader's tables and fills `info`; `symbol` is a function of
    // the loaded libpython.
    let found = unsafe { libc::dladdr(symbol, info.as_mut_ptr()) };
    if found == 0 {
        return;
    }
    // SAFETY: dladdr succeeded, so `info` is initialised; `dli_fname` is the loader's string.
    let file = unsafe { info.assume_init() }.dli_fname;
    if file.is_null() {
        return;
    }
    // SAFETY: RTLD_NOLOAD re-opens the library that is already loaded (no constructor runs); the
    // handle is deliberately leaked: libpython stays for the life of the process anyway.
    unsafe { libc::dlopen(file, libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_GLOBAL) };
}

fn helper(py: Python<'_>) -> Result<&Py<PyModule>, String> {
    HELPER
        .get_or_init(|| {
            let code = std::ffi::CString::new(include_str!("bridge.py"))
                .map_err(|e| format!("bridge.py: {e}"))?;
            let module = PyModule::from_code(py, &code, c"authhost_bridge.py", c"authhost_bridge")
                .map_err(|e| describe(py, &e))?;
            let log = wrap_pyfunction!(log, py).map_err(|e| describe(py, &e))?;
            module.setattr("_log", log).map_err(|e| describe(py, &e))?;
            Ok(module.unbind())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Starts the interpreter (once) and sets it up as `settings` say; the bridge module.
pub fn start(settings: &Settings) -> Result<Py<PyModule>, String> {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        promote_libpython();
        Python::initialize();
    });
    Python::attach(|py| {
        let helper = helper(py)?.clone_ref(py);
        let wanted = (settings.path_strings(), settings.site_packages(py)?);
        let mut setup = SETUP
            .lock()
            .map_err(|_| "interpreter setup lock poisoned")?;
        match &*setup {
            Some(done) if *done == wanted => {}
            Some(done) => {
                return Err(format!(
                    "this interpreter was set up with path {:?} and site-packages {:?}: one \
                     Python configuration per process",
                    done.0, done.1
                ));
            }
            None => {
                let log = helper.getattr(py, "_log").map_err(|e| describe(py, &e))?;
                helper
                    .call_method1(py, "install", (log, wanted.0.clone(), wanted.1.clone()))
                    .map_err(|e| describe(py, &e))?;
                *setup = Some(wanted);
            }
        }
        Ok(helper)
    })
}

/// Runs `f` with the GIL. Each thread keeps its Python thread state from its first call on
/// (pyo3 alone creates and destroys one per call on a thread Python did not start: measurable
/// at tens of thousands of calls a second, and it takes the runtime's lock each time).
pub fn with_gil<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    thread_local! {
        static KEPT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    KEPT.with(|kept| {
        if !kept.get() {
            // SAFETY: the interpreter is initialised (`start` ran before any instance exists).
            // Ensure creates this thread's state and takes the GIL; SaveThread gives the GIL
            // back and keeps the state, whose Ensure count stays at one for the thread's life,
            // so later Ensure/Release pairs (pyo3's) only take and give back the GIL.
            unsafe {
                pyo3::ffi::PyGILState_Ensure();
                pyo3::ffi::PyEval_SaveThread();
            }
            kept.set(true);
        }
    });
    Python::attach(f)
}

/// An exception as its traceback (Python's own formatting), for authhost's log.
pub fn describe(py: Python<'_>, error: &PyErr) -> String {
    let formatted = HELPER
        .get()
        .and_then(|h| h.as_ref().ok())
        .and_then(|h| {
            h.call_method1(py, "format_error", (error.value(py), error.traceback(py)))
                .ok()
        })
        .and_then(|text| text.extract::<String>(py).ok());
    formatted.unwrap_or_else(|| error.to_string())
}

/// `major.minor` of the running interpreter.
pub fn version(py: Python<'_>) -> (u8, u8) {
    let v = py.version_info();
    (v.major, v.minor)
}
