//! Witness cosignatures of checkpoints (c2sp.org/tlog-cosignature), Ed25519.
//!
//! ```text
//! signed message = "cosignature/v1\ntime " decimal(unix seconds) "\n" || checkpoint note text
//! line           = "— " name " " base64(key ID || timestamp (8 bytes, big-endian) || Ed25519 signature) "\n"
//! key ID         = SHA-256(name || 0x0A || 0x04 || 32-byte public key)[:4]
//! ```
//!
//! The "cosignature/v1" header keeps a cosignature from ever verifying as a signature of the note
//! itself (whose text starts with its origin), and the note text is checked as signed_note checks it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::digest::sha256;
use crate::error::Result;
use crate::signed_note::{check_key_name, check_note_text};

/// The signature type byte of Ed25519 cosignatures (c2sp.org/tlog-cosignature).
pub const COSIGNATURE_TYPE: u8 = 0x04;

/// The 4-byte key ID of an Ed25519 cosigning key under `name`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut input = Vec::with_capacity(name.len() + 2 + 32);
    input.extend_from_slice(name.as_bytes());
    input.push(0x0A);
    input.push(COSIGNATURE_TYPE);
    input.extend_from_slice(public_key);
    let hash = sha256(&input);
    [hash[0], hash[1], hash[2], hash[3]]
}

/// The message a cosignature at `time` (unix seconds) signs over the checkpoint `text`.
pub fn signed_message(time: u64, text: &str) -> Vec<u8> {
    format!("cosignature/v1\ntime {time}\n{text}").into_bytes()
}

/// The cosignature line of checkpoint `text` by `seed` under `name` at `time` (ending in a newline).
pub fn cosign(seed: &[u8; 32], name: &str, time: u64, text: &str) -> Result<String> {
    check_key_name(name)?;
    check_note_text(text)?;
    let public_key = crate::keys::public_key_of(seed);
    let mut bytes = Vec::with_capacity(4 + 8 + 64);
    bytes.extend_from_slice(&key_id(name, &public_key));
    bytes.extend_from_slice(&time.to_be_bytes());
    bytes.extend_from_slice(&crate::keys::sign(seed, &signed_message(time, text)));
    Ok(format!("\u{2014} {name} {}\n", STANDARD.encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u8; 32] = [9; 32];
    const TEXT: &str =
        "cloacina-sign/audit/example\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";

    #[test]
    fn a_cosignature_carries_the_time_and_verifies_over_the_spec_message() {
        let line = cosign(&SEED, "witness.example", 1_700_000_000, TEXT).unwrap();
        assert!(line.starts_with("\u{2014} witness.example "));
        let encoded = line.trim_end().rsplit(' ').next().unwrap();
        let bytes = STANDARD.decode(encoded).unwrap();
        assert_eq!(bytes.len(), 76);
        let public_key = crate::keys::public_key_of(&SEED);
        assert_eq!(bytes[..4], key_id("witness.example", &public_key));
        assert_eq!(bytes[4..12], 1_700_000_000u64.to_be_bytes());
        let message = format!("cosignature/v1\ntime 1700000000\n{TEXT}");
        crate::keys::verify(&public_key, message.as_bytes(), &bytes[12..]).unwrap();
    }

    #[test]
    fn the_key_id_differs_from_the_note_signature_key_id() {
        let public_key = crate::keys::public_key_of(&SEED);
        assert_ne!(
            key_id("w", &public_key),
            crate::signed_note::key_id("w", &public_key)
        );
    }

    #[test]
    fn a_text_that_is_no_note_or_a_bad_name_is_refused() {
        assert_eq!(
            cosign(&SEED, "w", 1, "short\n").unwrap_err().code(),
            "INVALID_INPUT"
        );
        assert_eq!(
            cosign(&SEED, "a b", 1, TEXT).unwrap_err().code(),
            "INVALID_INPUT"
        );
    }
}
