//! The `extern "C"` functions behind the export macros. Every body runs inside `catch_unwind`:
//! a panic escaping a plugin would abort the host (each library has its own std), so it comes
//! back as an error instead.
//!
//! An instance handle is a `Box<T>` turned into an address by `new_instance`; the host passes
//! back only handles it got from the same library and drops each at most once, after its last
//! call.

use std::panic::{AssertUnwindSafe, catch_unwind};

use abi_stable::std_types::{RErr, ROk, RResult, RStr, RString};
use serde_json::Value;

use crate::{
    Extension, HOOK_NEW_USER, HOOK_USER_LOGIN, HOOK_USER_LOGOUT, HostLogger, PermissionProvider,
};

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".into()
    }
}

fn guard<R>(f: impl FnOnce() -> Result<R, String>) -> RResult<R, RString> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => ROk(v),
        Ok(Err(e)) => RErr(RString::from(e)),
        Err(payload) => RErr(RString::from(format!(
            "panicked: {}",
            panic_text(payload.as_ref())
        ))),
    }
}

fn parse_config(config: RStr<'_>) -> Result<Value, String> {
    serde_json::from_str(config.as_str()).map_err(|e| format!("configuration is not JSON: {e}"))
}

pub extern "C" fn set_logger(logger: HostLogger, plugin: RStr<'_>) {
    let _ = catch_unwind(|| {
        crate::log::install(logger, plugin.as_str());
        // This library's own std prints panics to stderr with a backtrace; send one line to
        // the host's log instead (the panic itself still becomes an error at the boundary).
        std::panic::set_hook(Box::new(|info| {
            crate::log::error(&format!("panic: {info}"))
        }));
    });
}

pub extern "C" fn provider_new<T: PermissionProvider>(config: RStr<'_>) -> RResult<usize, RString> {
    guard(|| Ok(Box::into_raw(Box::new(T::new(parse_config(config)?)?)) as usize))
}

pub extern "C" fn provider_drop<T: PermissionProvider>(handle: usize) {
    if handle != 0 {
        // SAFETY: `handle` came from `provider_new::<T>` and is dropped once (see module docs).
        let _ = catch_unwind(AssertUnwindSafe(|| {
            drop(unsafe { Box::from_raw(handle as *mut T) })
        }));
    }
}

pub extern "C" fn provider_get<T: PermissionProvider>(
    handle: usize,
    service: RStr<'_>,
    user: RStr<'_>,
) -> RResult<RString, RString> {
    guard(|| {
        // SAFETY: `handle` came from `provider_new::<T>` and is still alive (see module docs).
        let instance = unsafe { &*(handle as *const T) };
        let user: Value =
            serde_json::from_str(user.as_str()).map_err(|e| format!("user is not JSON: {e}"))?;
        let answer = instance.get_permissions_for_user(service.as_str(), &user)?;
        serde_json::to_string(&answer)
            .map(RString::from)
            .map_err(|e| e.to_string())
    })
}

pub extern "C" fn extension_new<T: Extension>(config: RStr<'_>) -> RResult<usize, RString> {
    guard(|| Ok(Box::into_raw(Box::new(T::new(parse_config(config)?)?)) as usize))
}

pub extern "C" fn extension_drop<T: Extension>(handle: usize) {
    if handle != 0 {
        // SAFETY: `handle` came from `extension_new::<T>` and is dropped once (see module docs).
        let _ = catch_unwind(AssertUnwindSafe(|| {
            drop(unsafe { Box::from_raw(handle as *mut T) })
        }));
    }
}

pub extern "C" fn extension_hook<T: Extension>(
    handle: usize,
    hook: u8,
    user: RStr<'_>,
) -> RResult<(), RString> {
    guard(|| {
        // SAFETY: `handle` came from `extension_new::<T>` and is still alive (see module docs).
        let instance = unsafe { &*(handle as *const T) };
        let user: Value =
            serde_json::from_str(user.as_str()).map_err(|e| format!("user is not JSON: {e}"))?;
        match hook {
            HOOK_NEW_USER => instance.on_new_user(&user),
            HOOK_USER_LOGIN => instance.on_user_login(&user),
            HOOK_USER_LOGOUT => instance.on_user_logout(&user),
            other => Err(format!("unknown hook {other}")),
        }
    })
}
