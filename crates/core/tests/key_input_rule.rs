//! The raw / PEM / DER rule of `pem::*_from_any` (see the `pem` module documentation): a PEM,
//! however truncated, is only ever read as PEM; raw keys come only from exactly 32 bytes that do
//! not look like PEM text; everything else is DER.

use cloacina_sign_core::{keys, pem, CoreError};

const SEED: [u8; 32] = [7u8; 32];

fn public_pem() -> String {
    pem::public_key_to_pem(&keys::public_key_of(&SEED))
}

fn private_pem() -> String {
    pem::private_key_to_pem(&SEED).to_string()
}

fn public_der() -> Vec<u8> {
    let mut der = pem::SPKI_PREFIX.to_vec();
    der.extend_from_slice(&keys::public_key_of(&SEED));
    der
}

fn private_der() -> Vec<u8> {
    let mut der = pem::PKCS8_V1_PREFIX.to_vec();
    der.extend_from_slice(&SEED);
    der
}

/// The INVALID_KEY message of a failed public import.
fn public_err(input: &[u8]) -> String {
    invalid_key(pem::public_key_from_any(input).map(|_| ()), input)
}

/// The INVALID_KEY message of a failed private import.
fn private_err(input: &[u8]) -> String {
    invalid_key(pem::private_key_from_any(input).map(|_| ()), input)
}

fn invalid_key(result: cloacina_sign_core::Result<()>, input: &[u8]) -> String {
    match result {
        Ok(()) => panic!(
            "accepted as a key: {:?}",
            String::from_utf8_lossy(input).as_ref()
        ),
        Err(e @ CoreError::InvalidKey(_)) => {
            let message = e.to_string();
            // Never key material: not the seed, not the public key, not a PEM body line.
            assert!(!message.contains(&hex::encode(SEED)), "{message}");
            assert!(
                !message.contains(&hex::encode(keys::public_key_of(&SEED))),
                "{message}"
            );
            for line in public_pem().lines().chain(private_pem().lines()) {
                if !line.starts_with("-----") {
                    assert!(!message.contains(line), "{message}");
                }
            }
            message
        }
        Err(other) => panic!("expected INVALID_KEY, got {} ({other})", other.code()),
    }
}

#[test]
fn pem_truncated_to_exactly_32_bytes_is_an_incomplete_pem_not_a_raw_key() {
    let public = public_pem();
    let private = private_pem();
    let cut_public = &public.as_bytes()[..32];
    let cut_private = &private.as_bytes()[..32];
    assert_eq!(cut_public, b"-----BEGIN PUBLIC KEY-----\nMCowB");
    assert_eq!(cut_private, b"-----BEGIN PRIVATE KEY-----\nMC4C");

    let e = public_err(cut_public);
    assert!(e.contains("incomplete or invalid PEM"), "{e}");
    assert!(e.contains("-----END PUBLIC KEY-----"), "{e}");
    let e = private_err(cut_private);
    assert!(e.contains("incomplete or invalid PEM"), "{e}");
    assert!(e.contains("-----END PRIVATE KEY-----"), "{e}");

    // With leading whitespace too (the BEGIN line is then cut inside its label).
    let mut indented = b"\n\n  ".to_vec();
    indented.extend_from_slice(&public.as_bytes()[..28]);
    assert_eq!(indented.len(), 32);
    let e = public_err(&indented);
    assert!(e.contains("incomplete or invalid PEM"), "{e}");
    let mut indented = b"\r\n\t".to_vec();
    indented.extend_from_slice(&private.as_bytes()[..29]);
    assert_eq!(indented.len(), 32);
    let e = private_err(&indented);
    assert!(e.contains("incomplete or invalid PEM"), "{e}");

    // The last 32 bytes (a PEM cut at the front) and a PEM after some text, cut to 32 bytes.
    let tail = &public.as_bytes()[public.len() - 32..];
    let e = public_err(tail);
    assert!(e.contains("no -----BEGIN line"), "{e}");
    let tail = &private.as_bytes()[private.len() - 32..];
    let e = private_err(tail);
    assert!(e.contains("no -----BEGIN line"), "{e}");
    let noted = format!("release key:\n{public}");
    let e = public_err(&noted.as_bytes()[..32]);
    assert!(e.contains("text before the -----BEGIN line"), "{e}");
    let noted = format!("#\n{private}");
    let e = private_err(&noted.as_bytes()[..32]);
    assert!(e.contains("text before the -----BEGIN line"), "{e}");
}

#[test]
fn every_truncation_of_a_pem_is_refused_as_pem() {
    for (text, is_public) in [(public_pem(), true), (private_pem(), false)] {
        let full = text.trim_end();
        for n in 1..text.len() {
            let cut = &text.as_bytes()[..n];
            if cut.trim_ascii_end() == full.as_bytes() {
                // Only trailing whitespace is missing: still the complete PEM.
                if is_public {
                    pem::public_key_from_any(cut).unwrap();
                } else {
                    pem::private_key_from_any(cut).unwrap();
                }
                continue;
            }
            let e = if is_public {
                public_err(cut)
            } else {
                private_err(cut)
            };
            assert!(e.contains("incomplete or invalid PEM"), "len {n}: {e}");
        }
    }
}

#[test]
fn pem_with_missing_or_broken_end_line() {
    let public = public_pem();
    let private = private_pem();

    let no_end = public.replace("-----END PUBLIC KEY-----\n", "");
    let e = public_err(no_end.as_bytes());
    assert_eq!(
        e,
        "invalid key: incomplete or invalid PEM: no -----END PUBLIC KEY----- line (truncated?)"
    );
    let no_end = private.replace("-----END PRIVATE KEY-----\n", "");
    let e = private_err(no_end.as_bytes());
    assert!(e.contains("no -----END PRIVATE KEY----- line"), "{e}");

    let cut_end = public.replace("-----END PUBLIC KEY-----\n", "-----END PUBLIC K");
    let e = public_err(cut_end.as_bytes());
    assert!(e.contains("line is cut off"), "{e}");

    let other_end = public.replace("-----END PUBLIC KEY-----", "-----END PRIVATE KEY-----");
    let e = public_err(other_end.as_bytes());
    assert!(e.contains("END line does not match"), "{e}");

    let e = public_err(format!("{public}{public}").as_bytes());
    assert!(
        e.contains("data after the -----END PUBLIC KEY----- line"),
        "{e}"
    );

    let empty = "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n";
    let e = public_err(empty.as_bytes());
    assert!(e.contains("the body is empty"), "{e}");

    // A body line lost in the middle: armour intact, base64 or DER broken.
    let lines: Vec<&str> = private.lines().collect();
    let mut dropped = lines.clone();
    dropped.remove(1);
    let e = private_err(dropped.join("\n").as_bytes());
    assert!(e.contains("PKCS#8") || e.contains("PEM"), "{e}");
    let cut_body = public.replacen("MCow", "MCo", 1);
    let e = public_err(cut_body.as_bytes());
    assert!(e.contains("not valid base64"), "{e}");
}

#[test]
fn wrong_kind_of_key_says_so() {
    let public = public_pem();
    let private = private_pem();

    let e = public_err(private.as_bytes());
    assert_eq!(
        e,
        "invalid key: PEM label is PRIVATE KEY, expected PUBLIC KEY: this is a private key, not a public key"
    );
    let e = private_err(public.as_bytes());
    assert_eq!(
        e,
        "invalid key: PEM label is PUBLIC KEY, expected PRIVATE KEY: this is a public key, not a private key"
    );
    // Even truncated (the BEGIN line alone says what it is).
    let e = public_err(&private.as_bytes()[..32]);
    assert!(e.contains("this is a private key, not a public key"), "{e}");
    let e = private_err(&public.as_bytes()[..40]);
    assert!(e.contains("this is a public key, not a private key"), "{e}");
    // DER of the wrong kind.
    let e = public_err(&private_der());
    assert_eq!(
        e,
        "invalid key: this DER is an Ed25519 private key (PKCS#8), expected a public key"
    );
    let e = private_err(&public_der());
    assert_eq!(
        e,
        "invalid key: this DER is an Ed25519 public key (SubjectPublicKeyInfo), expected a private key"
    );
    // A PEM whose label is right but whose body is the other kind.
    let relabelled = private.replace("PRIVATE KEY", "PUBLIC KEY");
    let e = public_err(relabelled.as_bytes());
    assert!(e.contains("the PEM body is an Ed25519 private key"), "{e}");
    let relabelled = public.replace("PUBLIC KEY", "PRIVATE KEY");
    let e = private_err(relabelled.as_bytes());
    assert!(e.contains("the PEM body is an Ed25519 public key"), "{e}");
    // Other labels.
    let cert = public.replace("PUBLIC KEY", "CERTIFICATE");
    let e = public_err(cert.as_bytes());
    assert!(e.contains("this is a certificate, not a public key"), "{e}");
    let enc = private.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY");
    let e = public_err(enc.as_bytes());
    assert!(e.contains("this is a private key, not a public key"), "{e}");
    let e = private_err(enc.as_bytes());
    assert!(e.contains("encrypted PKCS#8 is not supported"), "{e}");
    let e = private_err(public.replace("PUBLIC KEY", "X509 CRL").as_bytes());
    assert_eq!(
        e,
        "invalid key: PEM label is X509 CRL, expected PRIVATE KEY"
    );
}

/// A printable-ASCII 32-byte string that is a valid (not weak) Ed25519 public key.
fn printable_public_key() -> [u8; 32] {
    for i in 0..1000u32 {
        let text = format!("cloacina printable raw key {i:05}");
        let bytes: [u8; 32] = text.as_bytes().try_into().unwrap();
        if keys::validate_public_key(&bytes).is_ok() {
            return bytes;
        }
    }
    unreachable!("about half of all 32-byte strings are valid points")
}

#[test]
fn printable_ascii_32_bytes_without_a_pem_boundary_are_a_raw_key() {
    // Documented rule: exactly 32 bytes not looking like PEM text are raw, even printable ASCII.
    let text = printable_public_key();
    assert!(text.iter().all(|b| b.is_ascii_graphic() || *b == b' '));
    assert_eq!(pem::public_key_from_any(&text).unwrap(), text);
    assert_eq!(*pem::private_key_from_any(&text).unwrap(), text);

    for raw in [
        *b"----4 hyphens are not a boundary",
        *b" leading space, still a raw seed",
        *b"BEGIN PUBLIC KEY without hyphens",
        *b"0123456789abcdef0123456789abcdef",
    ] {
        assert_eq!(*pem::private_key_from_any(&raw).unwrap(), raw);
    }
    // A raw public key that is not a point says it was read as raw.
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    let e = public_err(&not_a_point);
    assert!(e.contains("(32 bytes are read as a raw key)"), "{e}");
}

#[test]
fn pem_looking_32_bytes_are_refused() {
    // Five hyphens anywhere: a piece of a PEM boundary line.
    for text in [
        b"abcdefghijklmnopqrstuvwxyz-----0".as_slice(),
        b"                           -----",
        &[b'-'; 32],
    ] {
        assert_eq!(text.len(), 32);
        let e = public_err(text);
        assert!(e.contains("incomplete or invalid PEM"), "{e}");
        let e = private_err(text);
        assert!(e.contains("incomplete or invalid PEM"), "{e}");
    }
    // The first 32 characters of a PEM body without its BEGIN/END lines.
    for (text, is_public) in [(public_pem(), true), (private_pem(), false)] {
        let body = text.lines().nth(1).unwrap();
        let first32 = &body.as_bytes()[..32];
        let e = if is_public {
            public_err(first32)
        } else {
            private_err(first32)
        };
        assert!(e.contains("incomplete or invalid PEM"), "{e}");
        assert!(e.contains("no -----BEGIN line"), "{e}");
    }
    // Whitespace only: an empty key, not 32 bytes of seed.
    let e = private_err(&[b'\n'; 32]);
    assert_eq!(
        e,
        "invalid key: the key is empty (only whitespace, 32 bytes)"
    );
    let e = public_err(b"");
    assert_eq!(e, "invalid key: the key is empty (0 bytes)");
}

#[test]
fn der_truncated_to_exactly_32_bytes_is_not_a_raw_key() {
    for der in [public_der(), private_der()] {
        let e = public_err(&der[..32]);
        assert!(e.contains("incomplete DER"), "{e}");
        let e = private_err(&der[..32]);
        assert!(e.contains("incomplete DER"), "{e}");
        // And every other truncation is refused as well.
        for n in 0..der.len() {
            assert!(pem::public_key_from_any(&der[..n]).is_err(), "len {n}");
            assert!(pem::private_key_from_any(&der[..n]).is_err(), "len {n}");
        }
    }
}

#[test]
fn lengths_31_and_33_are_not_raw_keys() {
    let pk = keys::public_key_of(&SEED);
    for len in [31usize, 33] {
        let bytes = vec![0x5au8; len];
        let e = public_err(&bytes);
        assert_eq!(
            e,
            format!("invalid key: expected an Ed25519 public key (raw 32 bytes, or SubjectPublicKeyInfo DER/PEM), got {len} bytes that are none of these")
        );
        let e = private_err(&bytes);
        assert_eq!(
            e,
            format!("invalid key: expected an Ed25519 private key (raw 32-byte seed, or PKCS#8 DER/PEM), got {len} bytes that are none of these")
        );
    }
    // The raw key without its last byte, and with a trailing newline (a careless `echo`).
    public_err(&pk[..31]);
    private_err(&SEED[..31]);
    let mut newline = pk.to_vec();
    newline.push(b'\n');
    let e = public_err(&newline);
    assert!(e.contains("is there a trailing newline?"), "{e}");
    let mut newline = SEED.to_vec();
    newline.push(b'\n');
    let e = private_err(&newline);
    assert!(e.contains("is there a trailing newline?"), "{e}");
    let mut crlf = SEED.to_vec();
    crlf.extend_from_slice(b"\r\n");
    let e = private_err(&crlf);
    assert!(e.contains("is there a trailing newline?"), "{e}");
    // The hex encoding of a key (64 bytes, or 65 with a newline) is not a key either.
    let e = public_err(format!("{}\n", hex::encode(pk)).as_bytes());
    assert!(e.contains("not its hex encoding"), "{e}");
    let e = private_err(hex::encode(SEED).as_bytes());
    assert!(e.contains("not its hex encoding"), "{e}");
    // 32 bytes exactly is raw.
    assert_eq!(pem::public_key_from_any(&pk).unwrap(), pk);
    assert_eq!(*pem::private_key_from_any(&SEED).unwrap(), SEED);
}

#[test]
fn valid_encodings_still_read() {
    let pk = keys::public_key_of(&SEED);
    assert_eq!(
        pem::public_key_from_any(public_pem().as_bytes()).unwrap(),
        pk
    );
    assert_eq!(pem::public_key_from_any(&public_der()).unwrap(), pk);
    assert_eq!(
        *pem::private_key_from_any(private_pem().as_bytes()).unwrap(),
        SEED
    );
    assert_eq!(*pem::private_key_from_any(&private_der()).unwrap(), SEED);
    // Surrounding whitespace and CRLF around a complete PEM are fine.
    let padded = format!(" \r\n{}\r\n\r\n", public_pem().replace('\n', "\r\n"));
    assert_eq!(pem::public_key_from_any(padded.as_bytes()).unwrap(), pk);
    // A DER key whose key bytes contain "-----" is still DER.
    let seed = *b"-----seed bytes with hyphens----";
    let mut der = pem::PKCS8_V1_PREFIX.to_vec();
    der.extend_from_slice(&seed);
    assert_eq!(*pem::private_key_from_any(&der).unwrap(), seed);
}
