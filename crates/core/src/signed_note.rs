//! Signed notes (c2sp.org/signed-note) with Ed25519 keys: the format of the audit trail's checkpoints.
//!
//! A note text is UTF-8 text without ASCII control characters other than newline, ending in a
//! newline; its signature line is
//!
//! ```text
//! "— " key name " " base64(key ID (4 bytes, big-endian) || Ed25519 signature of the note text) "\n"
//! key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]
//! ```
//!
//! Domain separation from package signatures, which the same Ed25519 algorithm makes: a version-1
//! package signature signs a bare 32-byte digest, a version-2 one a statement starting with
//! "cloacina-sign/package-statement/v2" 0x00, a revocation list "cloacina-sign/revocation-list/v1"
//! 0x00. A note text is refused here unless it is longer than 32 bytes (never a bare digest) and
//! free of control characters other than newline (never a message holding a 0x00 separator, nor
//! the length prefixes of the binary encodings), so no note signature verifies as any of them, and
//! none of theirs as a note.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::digest::sha256;
use crate::error::{CoreError, Result};

/// The signature type byte of Ed25519 note signatures (c2sp.org/signed-note).
pub const ED25519_TYPE: u8 = 0x01;

/// Longest note text signed (bytes): a checkpoint is a few lines.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;

/// The 4-byte key ID of an Ed25519 key under `name`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut input = Vec::with_capacity(name.len() + 2 + 32);
    input.extend_from_slice(name.as_bytes());
    input.push(0x0A);
    input.push(ED25519_TYPE);
    input.extend_from_slice(public_key);
    let hash = sha256(&input);
    [hash[0], hash[1], hash[2], hash[3]]
}

/// Checks a key name: non-empty, without Unicode spaces or "+".
pub fn check_key_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
    {
        return Err(CoreError::InvalidInput(
            "a note key name must be non-empty, without spaces, control characters or \"+\"".into(),
        ));
    }
    Ok(())
}

/// Checks a note text: longer than 32 bytes, ending in a newline, no control character but newline.
pub fn check_note_text(text: &str) -> Result<()> {
    if text.len() <= 32 || text.len() > MAX_NOTE_BYTES {
        return Err(CoreError::InvalidInput(format!(
            "a note text must be 33 to {MAX_NOTE_BYTES} bytes long"
        )));
    }
    if !text.ends_with('\n') {
        return Err(CoreError::InvalidInput(
            "a note text must end in a newline".into(),
        ));
    }
    if text.chars().any(|c| c != '\n' && (c as u32) < 0x20) {
        return Err(CoreError::InvalidInput(
            "a note text must not hold control characters other than newline".into(),
        ));
    }
    Ok(())
}

/// The signature line of `text` signed by `seed` under `name` (ending in a newline).
pub fn sign_note(seed: &[u8; 32], name: &str, text: &str) -> Result<String> {
    check_key_name(name)?;
    check_note_text(text)?;
    let public_key = crate::keys::public_key_of(seed);
    let mut signature = Vec::with_capacity(68);
    signature.extend_from_slice(&key_id(name, &public_key));
    signature.extend_from_slice(&crate::keys::sign(seed, text.as_bytes()));
    Ok(format!("\u{2014} {name} {}\n", STANDARD.encode(signature)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u8; 32] = [7; 32];
    const TEXT: &str =
        "cloacina-sign/audit/example\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";

    fn decoded(line: &str) -> Vec<u8> {
        let encoded = line.trim_end().rsplit(' ').next().unwrap();
        STANDARD.decode(encoded).unwrap()
    }

    #[test]
    fn a_note_signature_verifies_over_the_text_with_the_spec_key_id() {
        let line = sign_note(&SEED, "cloacina-sign/audit/example", TEXT).unwrap();
        assert!(line.starts_with("\u{2014} cloacina-sign/audit/example "));
        let bytes = decoded(&line);
        let public_key = crate::keys::public_key_of(&SEED);
        assert_eq!(
            bytes[..4],
            key_id("cloacina-sign/audit/example", &public_key)
        );
        crate::keys::verify(&public_key, TEXT.as_bytes(), &bytes[4..]).unwrap();
    }

    #[test]
    fn a_digest_sized_text_is_refused() {
        let err = sign_note(&SEED, "name", "0123456789abcdef0123456789abcde\n").unwrap_err();
        assert_eq!(err.code(), "INVALID_INPUT");
    }

    #[test]
    fn a_text_with_a_zero_byte_or_without_final_newline_is_refused() {
        let statement = format!("{}\0{}\n", crate::statement::CONTEXT, "x".repeat(40));
        assert_eq!(
            sign_note(&SEED, "name", &statement).unwrap_err().code(),
            "INVALID_INPUT"
        );
        assert_eq!(
            sign_note(&SEED, "name", &TEXT[..TEXT.len() - 1])
                .unwrap_err()
                .code(),
            "INVALID_INPUT"
        );
    }

    #[test]
    fn a_key_name_with_a_space_or_plus_is_refused() {
        for name in ["", "a b", "a+b"] {
            assert_eq!(
                sign_note(&SEED, name, TEXT).unwrap_err().code(),
                "INVALID_INPUT"
            );
        }
    }
}
