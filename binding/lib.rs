//! N-API glue for cloacina-sign. No logic lives here: every function converts arguments,
//! calls into `cloacina-sign-core` or `cloacina-sign-loader`, and converts results back.
//! Anything that reads a file or may take more than a millisecond is an `AsyncTask`; the one exception,
//! `read_small_file_sync`, serves the TypeScript callers that are synchronous (bounded small files).

// Test support (error samples) exists only in the addon the tests build with `--features test-hooks`.
mod cosignature;
#[cfg(feature = "test-hooks")]
mod error_samples;
mod errors;
mod files;
#[cfg(target_os = "wasi")]
mod guarded_unavailable;
mod kek;
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
mod signed_note;
mod small_file;
mod stream_hash;
mod verify;
mod verify_many;

pub use cosignature::*;
#[cfg(feature = "test-hooks")]
pub use error_samples::*;
pub use files::*;
pub use kek::*;
pub use keys::*;
pub use loader::*;
pub use pkcs11::*;
pub use policy::*;
pub use revocation_list::*;
pub use sealing::*;
pub use sign::*;
pub use sign_batch::*;
pub use signed_note::*;
pub use small_file::*;
pub use stream_hash::*;
pub use verify::*;
pub use verify_many::*;
