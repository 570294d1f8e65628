//! The `extern "C" functions behind the export macros, one set for both kinds: the kind's
//! trait is adapted to [`Plugin`] by [`AsProvider`] or [`AsExtension`]. Every body runs inside
//! `catch_unwind`: a panic escaping a plugin would abort the host (each library has its own
//! std), so it comes back as a [`CallFailure`] with reason `FAILURE_PANIC` instead.
//!
//! An instance handle is a `Box<T>` turned into an address by `new_instance`; the host passes
//! back only handles it got from the same library and drops each at most once, after its last
//! call.

use std::panic::{AssertUnwindSafe, catch_unwind};

use abi_stable::std_types::{RErr, ROk, RResult, RStr, RString};
use serde_json::Value;

use crate::abi::{
    CALL_GET_PERMISSIONS, CallFailure, FAILURE_ERROR, FAILURE_PANIC, FAILURE_UNSUPPORTED,
    HOOK_NEW_USER, HOOK_USER_LOGIN, HOOK_USER_LOGOUT, HostLogger,
};
use crate::{Extension, PermissionProvider};

/// What a plugin of either kind is to the glue: built from its configuration, then called by
/// number. An error from `call` is `(reason, message)`.
pub trait Plugin: Send + Sync + Sized + 'static {
    fn construct(config: Value) -> Result<Self, String>;
    fn call(&self, call: u8, service: &str, user: &Value) -> Result<Value, (u8, String)>;
}

/// A [`PermissionProvider`] as a [`Plugin`]: answers `CALL_GET_PERMISSIONS`.
pub struct AsProvider<T>(T);

impl<T: PermissionProvider> Plugin for AsProvider<T> {
    fn construct(config: Value) -> Result<Self, String> {
        T::new(config).map(AsProvider)
    }

    fn call(&self, call: u8, service: &str, user: &Value) -> Result<Value, (u8, String)> {
        match call {
            CALL_GET_PERMISSIONS => self
                .0
                .get_permissions_for_user(service, user)
                .map_err(|e| (FAILURE_ERROR, e)),
            other => Err(unsupported(other)),
        }
    }
}

/// An [`Extension`] as a [`Plugin`]: receives the `HOOK_*` calls and answers `null`.
pub struct AsExtension<T>(T);

impl<T: Extension> Plugin for AsExtension<T> {
    fn construct(config: Value) -> Result<Self, String> {
        T::new(config).map(AsExtension)
    }

    fn call(&self, call: u8, _service: &str, user: &Value) -> Result<Value, (u8, String)> {
        let done = match call {
            HOOK_NEW_USER => self.0.on_new_user(user),
            HOOK_USER_LOGIN => self.0.on_user_login(user),
            HOOK_USER_LOGOUT => self.0.on_user_logout(user),
            other => return Err(unsupported(other)),
        };
        done.map(|()| Value::Null).map_err(|e| (FAILURE_ERROR, e))
    }
}

fn unsupported(call: u8) -> (u8, String) {
    (
        FAILURE_UNSUPPORTED,
        format!("call {call} is not one this plugin's kind answers"),
    )
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".into()
    }
}

fn failure((reason, message): (u8, String)) -> CallFailure {
    CallFailure {
        reason,
        message: RString::from(message),
    }
}

fn guard<R>(f: impl FnOnce() -> Result<R, (u8, String)>) -> RResult<R, CallFailure> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => ROk(v),
        Ok(Err(e)) => RErr(failure(e)),
        Err(payload) => RErr(failure((FAILURE_PANIC, panic_text(payload.as_ref())))),
    }
}

pub extern "C" fn set_logger(logger: HostLogger, plugin: RStr<'_>) {
    let _ = catch_unwind(|| {
        crate::log::install(logger, plugin.as_str());
        // This library's own std prints panics to stderr with a backtrace; send one line to
        // the host's log instead (the panic itself still becomes a failure at the boundary).
        std::panic::set_hook(Box::new(|info| {
            crate::log::error(&format!("panic: {info}"))
        }));
    });
}

pub extern "C" fn new_instance<T: Plugin>(config: RStr<'_>) -> RResult<usize, CallFailure> {
    guard(|| {
        let config = serde_json::from_str(config.as_str())
            .map_err(|e| (FAILURE_ERROR, format!("configuration is not JSON: {e}")))?;
        let instance = T::construct(config).map_err(|e| (FAILURE_ERROR, e))?;
        Ok(Box::into_raw(Box::new(instance)) as usize)
    })
}

pub extern "C" fn drop_instance<T: Plugin>(handle: usize) {
    if handle != 0 {
        // SAFETY: `handle` came from `new_instance::<T>` and is dropped once (see module docs).
        let _ = catch_unwind(AssertUnwindSafe(|| {
            drop(unsafe { Box::from_raw(handle as *mut T) })
        }));
    }
}

pub extern "C" fn call<T: Plugin>(
    handle: usize,
    call: u8,
    service: RStr<'_>,
    user: RStr<'_>,
) -> RResult<RString, CallFailure> {
    guard(|| {
        // SAFETY: `handle` came from `new_instance::<T>` and is still alive (see module docs).
        let instance = unsafe { &*(handle as *const T) };
        let user: Value = serde_json::from_str(user.as_str())
            .map_err(|e| (FAILURE_ERROR, format!("user is not JSON: {e}")))?;
        let answer = instance.call(call, service.as_str(), &user)?;
        serde_json::to_string(&answer)
            .map(RString::from)
            .map_err(|e| (FAILURE_ERROR, e.to_string()))
    })
}
