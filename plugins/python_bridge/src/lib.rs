//! Runs a Python module as an authhost plugin, unchanged: dgp-oauth2's providers
//! (`get_permissions(service, userid)`) and extensions (`on_new_user`, `on_user_login`,
//! `on_user_logout(user_info)`). Built into two libraries, `python_provider` and
//! `python_extension` (a plugin library has one kind); the host loads one of them for a name
//! that is no plugin library, with `{"module": ..., "venv": ..., "path": [...]}`.
//!
//! What differs from the original, on purpose: an answer that is not a mapping of JSON values,
//! and an exception, fail closed (`{}` from the host, the reason or the traceback in its log);
//! a module without `get_permissions` is refused when it is loaded.
//!
//! # Layout
//! - here: the provider and the extension, each holding its imported module;
//! - `interpreter`: starting CPython once per process, its log, `sys.path`;
//! - `settings`: what the host hands over, the venv's version check;
//! - `bridge.py`: the Python half (import, the calls, the checks, the log forwarding).

mod convert;
mod interpreter;
mod settings;

use authhost_plugin_api::{PermissionProvider, Value};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use settings::Settings;

/// An imported module, and the bridge's call functions (its Python half) looked up once.
struct Module {
    name: String,
    module: Py<PyAny>,
    /// The Python half's check of an answer that is not a dict (rare).
    as_dict: Py<PyAny>,
    hook: Py<PyAny>,
}

impl Module {
    fn import(config: Value) -> Result<Module, String> {
        let settings: Settings = authhost_plugin_api::config(config)?;
        let helper = interpreter::start(&settings)?;
        Python::attach(|py| {
            let module = helper
                .call_method1(py, "load", (settings.module.as_str(),))
                .map_err(|e| {
                    let looked = helper
                        .call_method0(py, "search_path")
                        .and_then(|p| p.extract::<Vec<String>>(py))
                        .unwrap_or_default();
                    format!(
                        "cannot import Python module `{}` (sys.path: {}):\n{}",
                        settings.module,
                        looked.join(", "),
                        interpreter::describe(py, &e)
                    )
                })?;
            let function = |name: &str| {
                helper
                    .getattr(py, name)
                    .map_err(|e| interpreter::describe(py, &e))
            };
            Ok(Module {
                name: settings.module.clone(),
                as_dict: function("as_dict")?,
                hook: function("hook")?,
                module,
            })
        })
    }

    fn has(&self, function: &str) -> bool {
        Python::attach(|py| self.module.bind(py).hasattr(function).unwrap_or(false))
    }
}

/// A Python module's `get_permissions(service, userid)`.
pub struct Provider(Module);

impl PermissionProvider for Provider {
    fn new(config: Value) -> Result<Self, String> {
        let module = Module::import(config)?;
        if !module.has("get_permissions") {
            return Err(format!(
                "Python module `{}` has no get_permissions(service, userid)",
                module.name
            ));
        }
        Ok(Provider(module))
    }

    fn get_permissions(&self, service: &str, userid: &str) -> Result<Value, String> {
        let m = &self.0;
        interpreter::with_gil(|py| {
            let module = m.module.bind(py);
            let describe = |e: PyErr| interpreter::describe(py, &e);
            let answer = module
                .call_method1(pyo3::intern!(py, "get_permissions"), (service, userid))
                .map_err(describe)?;
            let dict = match answer.cast_into::<PyDict>() {
                Ok(dict) => dict,
                // Another mapping is copied into a dict; anything else is refused, by type.
                Err(e) => m
                    .as_dict
                    .bind(py)
                    .call1((module, e.into_inner()))
                    .map_err(describe)?
                    .cast_into::<PyDict>()
                    .map_err(|e| e.to_string())?,
            };
            convert::dict_to_json(&dict).map_err(|e| {
                format!(
                    "{}.get_permissions returned a mapping that is not JSON: {e}",
                    m.name
                )
            })
        })
    }
}

/// A Python module's hooks; a hook it does not define is skipped.
pub struct Extension(Module);

impl Extension {
    fn hook(&self, name: &str, user: &Value) -> Result<(), String> {
        let m = &self.0;
        interpreter::with_gil(|py| {
            m.hook
                .call1(py, (m.module.bind(py), name, user.to_string()))
                .map(drop)
                .map_err(|e| interpreter::describe(py, &e))
        })
    }
}

impl authhost_plugin_api::Extension for Extension {
    fn new(config: Value) -> Result<Self, String> {
        Module::import(config).map(Extension)
    }

    fn on_new_user(&self, user: &Value) -> Result<(), String> {
        self.hook("on_new_user", user)
    }

    fn on_user_login(&self, user: &Value) -> Result<(), String> {
        self.hook("on_user_login", user)
    }

    fn on_user_logout(&self, user: &Value) -> Result<(), String> {
        self.hook("on_user_logout", user)
    }
}
