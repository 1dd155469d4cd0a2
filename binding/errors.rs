use cloacina_sign_core::CoreError;
use napi::{Error, Status};

/// Errors cross into JS as `[CODE] message`; the TypeScript layer turns them into typed errors.
pub(crate) fn coded(code: &str, message: impl std::fmt::Display) -> Error {
    Error::new(Status::GenericFailure, format!("[{code}] {message}"))
}

pub(crate) fn core_error(err: CoreError) -> Error {
    coded(err.code(), err)
}

pub(crate) trait OrThrow<T> {
    fn or_throw(self) -> napi::Result<T>;
}

impl<T> OrThrow<T> for Result<T, CoreError> {
    fn or_throw(self) -> napi::Result<T> {
        self.map_err(core_error)
    }
}
