//! N-API glue for cloacina-sign. No logic lives here: every function converts arguments,
//! calls into `cloacina-sign-core` or `cloacina-sign-loader`, and converts results back.
//! Anything that reads a file or may take more than a millisecond is an `AsyncTask`.

mod errors;
mod files;
#[cfg(target_os = "wasi")]
mod guarded_unavailable;
mod keys;
// In the WebAssembly build every guarded-load type is uninhabited, so what follows one is unreachable.
#[cfg_attr(target_os = "wasi", allow(unreachable_code))]
mod loader;
mod pkcs11;
mod policy;
mod revocation_list;
mod sealing;
mod sign;
mod sign_batch;
mod stream_hash;
mod verify;

pub use errors::{error_samples, throw_error_sample, ErrorSample};
pub use files::*;
pub use keys::*;
pub use loader::*;
pub use pkcs11::*;
pub use policy::*;
pub use revocation_list::*;
pub use sealing::*;
pub use sign::*;
pub use sign_batch::*;
pub use stream_hash::*;
pub use verify::*;
