//! A Python answer as JSON, walked in Rust (no `json.dumps` and parse on every call): the values
//! `json.dumps` accepts, keys converted as it converts them (`1` → `"1"`, `True` → `"true"`,
//! `None` → `"null"`); anything else, `NaN` and infinities included, is refused with its place
//! and type, so that the host fails closed.

use authhost_plugin_api::Value;
use authhost_plugin_api::serde_json::{Map, Number};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// Deeper than this is refused (and would be no permission set anyone wrote).
const MAX_DEPTH: usize = 64;

pub fn dict_to_json(dict: &Bound<'_, PyDict>) -> Result<Value, String> {
    object(dict, "", 0)
}

fn object(dict: &Bound<'_, PyDict>, at: &str, depth: usize) -> Result<Value, String> {
    let mut map = Map::with_capacity(dict.len());
    for (key, value) in dict.iter() {
        let key = key_text(&key).ok_or_else(|| {
            format!(
                "key {} ({}) at `{at}` is not a string",
                repr(&key),
                type_name(&key)
            )
        })?;
        let place = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        let value = to_json(&value, &place, depth + 1)?;
        map.insert(key, value);
    }
    Ok(Value::Object(map))
}

fn to_json(value: &Bound<'_, PyAny>, at: &str, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} at `{at}`"));
    }
    if value.is_none() {
        return Ok(Value::Null);
    }
    // bool before int: Python's bool is an int.
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return s
            .to_str()
            .map(|s| Value::String(s.to_string()))
            .map_err(|e| e.to_string());
    }
    if value.cast::<PyInt>().is_ok() {
        if let Ok(n) = value.extract::<i64>() {
            return Ok(Value::Number(n.into()));
        }
        if let Ok(n) = value.extract::<u64>() {
            return Ok(Value::Number(n.into()));
        }
        return Err(format!("the integer at `{at}` is beyond 64 bits"));
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        return Number::from_f64(f.value())
            .map(Value::Number)
            .ok_or_else(|| format!("{} at `{at}` is not JSON", repr(value)));
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        return object(dict, at, depth);
    }
    if let Ok(list) = value.cast::<PyList>() {
        return list
            .iter()
            .enumerate()
            .map(|(i, v)| to_json(&v, &format!("{at}[{i}]"), depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if let Ok(tuple) = value.cast::<PyTuple>() {
        return tuple
            .iter()
            .enumerate()
            .map(|(i, v)| to_json(&v, &format!("{at}[{i}]"), depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    Err(format!("{} at `{at}` is not JSON", type_name(value)))
}

/// A key as `json.dumps` writes it, `None` for one it refuses.
fn key_text(key: &Bound<'_, PyAny>) -> Option<String> {
    if let Ok(s) = key.cast::<PyString>() {
        return s.to_str().ok().map(str::to_string);
    }
    if key.is_none() {
        return Some("null".into());
    }
    if let Ok(b) = key.cast::<PyBool>() {
        return Some(if b.is_true() { "true" } else { "false" }.into());
    }
    if key.cast::<PyInt>().is_ok() || key.cast::<PyFloat>().is_ok() {
        return key.str().ok().map(|s| s.to_string());
    }
    None
}

fn repr(value: &Bound<'_, PyAny>) -> String {
    value
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// `a set`, `a datetime.datetime`, `None`: what a log line names.
fn type_name(value: &Bound<'_, PyAny>) -> String {
    if value.is_none() {
        return "None".into();
    }
    let kind = value.get_type();
    let name = kind
        .qualname()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    match kind.module().map(|m| m.to_string()) {
        Ok(module) if module != "builtins" => format!("a {module}.{name}"),
        _ => format!("a {name}"),
    }
}
