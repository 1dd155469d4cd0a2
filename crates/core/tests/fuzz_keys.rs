//! Bounded fuzz / property test of key import (`pem::public_key_from_any`, `parse_public_key`,
//! `private_key_from_any`): random bytes, bit flips and byte edits of valid PEM / DER / raw
//! keys, truncations (seeded, no extra crates; see `fuzz_support` for the environment knobs and
//! the command of a longer run).
//!
//! Properties, for public and private import of every input:
//! - no panic; deterministic; every refusal is `INVALID_KEY`, bounded, and never contains the
//!   private key (seed hex, PEM body, DER bytes as hex);
//! - an accepted input is exactly one of the documented forms: a complete PEM block whose body is
//!   the DER form of the returned key; exactly 32 bytes that do not look like PEM or DER; or DER
//!   that is exactly the returned key's encoding (SPKI), or PKCS#8 that holds the returned seed;
//! - no strict prefix of a valid PEM or DER (other than one missing only trailing whitespace) and
//!   no strict suffix of a valid PEM (other than one missing only leading whitespace) is a key.

mod fuzz_support;

use base64::Engine as _;
use cloacina_sign_core::keys::{self, PublicKey};
use cloacina_sign_core::pem;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use fuzz_support::{
    contains, exhaustive_step, iterations, mutate_bytes, no_panic, seed, show, Rng,
};

const SEED: [u8; 32] = [0x42u8; 32];

struct Corpus {
    items: Vec<(&'static str, Vec<u8>)>,
    secrets: Vec<String>,
}

fn corpus() -> Corpus {
    let pk = keys::public_key_of(&SEED);
    let public_pem = pem::public_key_to_pem(&pk);
    let private_pem = pem::private_key_to_pem(&SEED).to_string();
    let mut spki = pem::SPKI_PREFIX.to_vec();
    spki.extend_from_slice(&pk);
    let mut v1 = pem::PKCS8_V1_PREFIX.to_vec();
    v1.extend_from_slice(&SEED);
    let sk = ed25519_dalek::SigningKey::from_bytes(&SEED);
    let v2 = sk.to_pkcs8_der().unwrap().as_bytes().to_vec();
    let v2_pem = sk.to_pkcs8_pem(Default::default()).unwrap().to_string();
    let rfc8410 = "-----BEGIN PRIVATE KEY-----\n\
MHICAQEwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
oB8wHQYKKoZIhvcNAQkJFDEPDA1DdXJkbGUgQ2hhaXJzgSEAGb9ECWmEzf6FQbrB\n\
Z9w7lshQhqowtrbLDFw4rXAxZuE=\n\
-----END PRIVATE KEY-----\n";
    let secrets = vec![
        hex::encode(SEED),
        hex::encode(&SEED[..8]),
        private_pem.lines().nth(1).unwrap().to_string(),
        private_pem.lines().nth(1).unwrap()[20..40].to_string(),
        v2_pem.lines().nth(1).unwrap()[20..40].to_string(),
        hex::encode(&v1),
    ];
    let items = vec![
        ("public PEM", public_pem.clone().into_bytes()),
        (
            "public PEM, CRLF",
            public_pem.replace('\n', "\r\n").into_bytes(),
        ),
        ("private PEM v1", private_pem.clone().into_bytes()),
        ("private PEM v2", v2_pem.into_bytes()),
        ("private PEM RFC 8410", rfc8410.as_bytes().to_vec()),
        ("public DER", spki),
        ("private DER v1", v1),
        ("private DER v2", v2),
        ("raw public", pk.to_vec()),
        ("raw seed", SEED.to_vec()),
    ];
    Corpus { items, secrets }
}

/// Whitespace-free text, for comparing PEM modulo line layout.
fn squeeze(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect()
}

/// The decoded body of a PEM block with `label`, if `input` is exactly one (modulo whitespace).
fn pem_body(input: &[u8], label: &str) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(input.trim_ascii()).ok()?;
    let body = text
        .strip_prefix(&format!("-----BEGIN {label}-----"))?
        .strip_suffix(&format!("-----END {label}-----"))?;
    base64::engine::general_purpose::STANDARD
        .decode(squeeze(body.as_bytes()))
        .ok()
}

fn looks_like_pem(input: &[u8]) -> bool {
    let t = input.trim_ascii();
    t.starts_with(b"-----") || (!t.is_empty() && t.iter().all(|&b| b == b'-'))
}

fn check_error(corpus: &Corpus, what: &str, e: &cloacina_sign_core::CoreError, input: &[u8]) {
    assert_eq!(e.code(), "INVALID_KEY", "{what}: {e} on {}", show(input));
    let message = e.to_string();
    assert!(
        message.len() < 300,
        "{what}: unbounded message {message:?} on {}",
        show(input)
    );
    for secret in &corpus.secrets {
        assert!(
            !message.contains(secret.as_str()),
            "{what}: message {message:?} contains key material, on {}",
            show(input)
        );
    }
}

/// Runs both imports on `input` and checks every property; returns (public ok, private ok).
fn check(corpus: &Corpus, input: &[u8]) -> (bool, bool) {
    let public = no_panic("public_key_from_any", input, || {
        pem::public_key_from_any(input)
    });
    let parsed = no_panic("parse_public_key", input, || pem::parse_public_key(input));
    let private = no_panic("private_key_from_any", input, || {
        pem::private_key_from_any(input)
    });
    // Deterministic, and the two public entry points agree.
    match (&public, &parsed) {
        (Ok(a), Ok(b)) => assert_eq!(*a, b.to_bytes(), "{}", show(input)),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{}", show(input)),
        _ => panic!(
            "public_key_from_any and parse_public_key disagree on {}",
            show(input)
        ),
    }
    let again = pem::private_key_from_any(input);
    assert_eq!(
        private.as_ref().ok().map(|s| **s),
        again.as_ref().ok().map(|s| **s),
        "{}",
        show(input)
    );

    match &public {
        Err(e) => check_error(corpus, "public import", e, input),
        Ok(pk) => {
            PublicKey::from_bytes(pk).expect("an imported public key is valid and not weak");
            if looks_like_pem(input) {
                assert_eq!(
                    squeeze(input),
                    squeeze(pem::public_key_to_pem(pk).as_bytes()),
                    "public PEM accepted but not the canonical block of its key: {}",
                    show(input)
                );
            } else if input.len() == 32 {
                assert_eq!(input, pk, "{}", show(input));
                assert!(
                    !contains(input, b"-----"),
                    "32 bytes with a PEM boundary read as raw: {}",
                    show(input)
                );
            } else {
                let mut spki = pem::SPKI_PREFIX.to_vec();
                spki.extend_from_slice(pk);
                assert_eq!(
                    input,
                    spki,
                    "public DER accepted but not exactly the SPKI of its key: {}",
                    show(input)
                );
            }
        }
    }
    match &private {
        Err(e) => check_error(corpus, "private import", e, input),
        Ok(seed) => {
            if looks_like_pem(input) {
                let der = pem_body(input, "PRIVATE KEY").unwrap_or_else(|| {
                    panic!(
                        "private PEM accepted but not one complete PRIVATE KEY block: {}",
                        show(input)
                    )
                });
                assert_ne!(der.len(), 32);
                let from_der = pem::private_key_from_any(&der).unwrap_or_else(|e| {
                    panic!("PEM accepted, its DER body refused ({e}): {}", show(input))
                });
                assert_eq!(*from_der, **seed, "{}", show(input));
            } else if input.len() == 32 {
                assert_eq!(input, &seed[..], "{}", show(input));
                assert!(
                    !contains(input, b"-----"),
                    "32 bytes with a PEM boundary read as raw: {}",
                    show(input)
                );
            } else {
                // DER: one SEQUENCE covering the whole input, holding the seed as an OCTET STRING.
                assert_eq!(input[0], 0x30, "{}", show(input));
                let (len, header) = match input[1] {
                    n @ 0..=0x7f => (n as usize, 2),
                    0x81 => (input[2] as usize, 3),
                    _ => panic!("unexpected DER length form accepted: {}", show(input)),
                };
                assert_eq!(
                    header + len,
                    input.len(),
                    "trailing bytes accepted: {}",
                    show(input)
                );
                let mut octets = vec![0x04, 0x20];
                octets.extend_from_slice(&seed[..]);
                assert!(contains(input, &octets), "{}", show(input));
            }
        }
    }
    (public.is_ok(), private.is_ok())
}

#[test]
fn corpus_is_accepted_as_expected() {
    let c = corpus();
    for (name, item) in &c.items {
        let (public, private) = check(&c, item);
        let is_public = name.starts_with("public") || *name == "raw public";
        let is_private = name.starts_with("private") || name.starts_with("raw");
        assert_eq!(public, is_public, "{name}");
        assert_eq!(private, is_private, "{name}");
    }
}

#[test]
fn no_truncation_of_a_valid_encoding_is_a_key() {
    let c = corpus();
    for (name, item) in &c.items {
        if name.starts_with("raw") {
            continue;
        }
        let is_pem = item.starts_with(b"-----");
        for n in 0..item.len() {
            let prefix = &item[..n];
            let (public, private) = check(&c, prefix);
            let complete = is_pem && prefix.trim_ascii_end() == item.trim_ascii_end();
            if !complete {
                assert!(
                    !public && !private,
                    "{name}: prefix of {n} bytes accepted: {}",
                    show(prefix)
                );
            }
            let suffix = &item[n..];
            let (public, private) = check(&c, suffix);
            if is_pem && suffix.trim_ascii_start() != item.trim_ascii_start() {
                assert!(
                    !public && !private,
                    "{name}: suffix from {n} accepted: {}",
                    show(suffix)
                );
            }
        }
    }
}

#[test]
fn every_bit_flip_of_a_valid_encoding_is_handled() {
    let c = corpus();
    for (name, item) in &c.items {
        for bit in (0..item.len() * 8).step_by(exhaustive_step()) {
            let mut flipped = item.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let (public, private) = check(&c, &flipped);
            // In a PEM, a flip in the BEGIN/END lines is never a key (one whitespace character
            // turned into another, CR into form feed say, is still the same text).
            let at = bit / 8;
            if item.starts_with(b"-----")
                && !(item[at].is_ascii_whitespace() && flipped[at].is_ascii_whitespace())
            {
                let first_line = item.iter().position(|&b| b == b'\n').unwrap();
                let last_line = item[..item.len() - 1]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .unwrap();
                if at < first_line || at > last_line && at < item.len() - 1 {
                    assert!(
                        !public && !private,
                        "{name}: bit {bit} flipped in an armour line accepted: {}",
                        show(&flipped)
                    );
                }
            }
        }
    }
}

#[test]
fn fuzz_key_import() {
    let c = corpus();
    let (seed, n) = (seed(), iterations());
    let (mut accepted_public, mut accepted_private) = (0u64, 0u64);
    for i in 0..n {
        let mut rng = Rng::for_iteration(seed, "keys", i);
        let input = match rng.below(6) {
            0 => {
                let any = rng.range(0, 300);
                let len = *rng.pick(&[0, 1, 5, 31, 32, 32, 33, 44, 48, 64, 83, 100, any]);
                rng.bytes(len)
            }
            1 => {
                // PEM-ish text around random base64.
                let label = *rng.pick(&[
                    "PUBLIC KEY",
                    "PRIVATE KEY",
                    "ENCRYPTED PRIVATE KEY",
                    "CERTIFICATE",
                    "public key",
                    "",
                ]);
                let der_len = rng.range(0, 120);
                let body = base64::engine::general_purpose::STANDARD.encode(rng.bytes(der_len));
                format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n").into_bytes()
            }
            2 => {
                // Two corpus items spliced.
                let (_, a) = rng.pick(&c.items);
                let (_, b) = rng.pick(&c.items);
                let (i, j) = (rng.below(a.len() + 1), rng.below(b.len() + 1));
                [&a[..i], &b[j..]].concat()
            }
            _ => {
                let (_, item) = rng.pick(&c.items);
                let mut data = item.clone();
                for _ in 0..rng.range(1, 3) {
                    mutate_bytes(&mut rng, &mut data);
                }
                data
            }
        };
        let outcome = std::panic::catch_unwind(|| check(&c, &input));
        match outcome {
            Ok((public, private)) => {
                accepted_public += public as u64;
                accepted_private += private as u64;
            }
            Err(panic) => {
                eprintln!("fuzz target keys: failure at CLOACINA_FUZZ_SEED={seed:#x}, iteration {i}, input {}", show(&input));
                std::panic::resume_unwind(panic);
            }
        }
    }
    eprintln!("fuzz target keys (seed {seed:#x}, {n} iterations): accepted {accepted_public} as public keys, {accepted_private} as private keys");
}
