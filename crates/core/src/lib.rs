//! Pure-Rust core of cloacina-sign: streamed SHA-256 and BLAKE3, Ed25519 keys and
//! signatures, ECDSA P-256 verification (cosign keys and signatures), key encodings
//! (raw / DER / PEM), AES-256-GCM key sealing and the strict signature documents
//! (Cloacina's versions 1 and 2, and cosign blob signatures).
//!
//! Nothing in this crate knows about Node; the N-API binding is a thin layer
//! on top. No error message or `Debug` output ever contains secret material.

// Two exceptions: in the WebAssembly build, opening a file with WASI's non-blocking flag, which std
// offers no stable way to pass (see `files`); elsewhere, mapping a file to hash it (see `mapped`).
#![deny(unsafe_code)]

pub mod codes;
pub mod cosign;
pub mod cosignature;
mod der;
pub mod digest;
pub mod document;
pub mod ecdsa;
pub mod error;
pub mod files;
mod json;
pub mod keys;
#[cfg(unix)]
mod mapped;
pub mod pem;
pub mod policy;
pub mod revocation_list;
pub mod seal;
pub mod signature;
pub mod signed_note;
pub mod statement;
pub mod stream_hash;
pub mod verification_key;
pub mod verify;

pub use error::{CoreError, Result, Violation};
