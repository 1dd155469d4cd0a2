//! Bounded fuzz / property test of the cosign inputs: signature documents (`SignatureDocument::parse`
//! of mutated base64 text and of the base64 of mutated DER) and ECDSA P-256 public keys
//! (`pem::parse_verification_key` of mutated SPKI DER and PEM). Seeded, no extra crates; see
//! `fuzz_support` for the environment knobs.
//!
//! Properties:
//! - no panic; every refusal of a signature is `MALFORMED_SIGNATURE`, of a key `INVALID_KEY`;
//! - a mutated signature that still parses verifies only when it is the same (r, s) or the other S
//!   form (r, n - s): never a pass for anything else;
//! - an accepted document's canonical text reads back as the same document;
//! - an accepted P-256 key given as DER is exactly its stored form (91 bytes; nothing tolerated).

mod fuzz_support;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use cloacina_sign_core::digest::{sha256, PackageDigests};
use cloacina_sign_core::document::SignatureDocument;
use cloacina_sign_core::ecdsa::SPKI_PREFIX;
use cloacina_sign_core::pem;
use cloacina_sign_core::policy::Policy;
use cloacina_sign_core::verification_key::KeyAlgorithm;
use cloacina_sign_core::verify::{candidates_for, verify_any};
use fuzz_support::{iterations, mutate_bytes, no_panic, seed, show, Rng};
use p256::ecdsa::signature::hazmat::PrehashSigner as _;
use p256::ecdsa::{Signature, SigningKey};

struct Fixture {
    spki: Vec<u8>,
    digest: [u8; 32],
    der: Vec<u8>,
    /// (r, s) and (r, n - s): the only signatures that may verify.
    accepted: [([u8; 32], [u8; 32]); 2],
}

fn fixture() -> Fixture {
    let signing = SigningKey::from_bytes(&[0x5au8; 32].into()).unwrap();
    let mut spki = SPKI_PREFIX.to_vec();
    spki.extend_from_slice(signing.verifying_key().to_encoded_point(false).as_bytes());
    let digest = sha256(b"the fuzzed artifact");
    let signature: Signature = signing.sign_prehash(&digest).unwrap();
    let (r, s) = signature.split_bytes();
    let other = Signature::from_scalars(r, -*signature.s()).unwrap();
    let (_, other_s) = other.split_bytes();
    Fixture {
        spki,
        digest,
        der: signature.to_der().as_bytes().to_vec(),
        accepted: [(r.into(), s.into()), (r.into(), other_s.into())],
    }
}

fn digests(sha: [u8; 32]) -> PackageDigests {
    PackageDigests {
        size: 0,
        sha256: Some(sha),
        blake3: None,
    }
}

/// The properties of one signature input; `what` names the target and iteration.
fn check_signature(fx: &Fixture, what: &str, input: &[u8]) {
    let parsed = no_panic(what, input, || SignatureDocument::parse(input));
    let document = match parsed {
        Err(e) => {
            assert_eq!(
                e.code(),
                "MALFORMED_SIGNATURE",
                "{what}: {e} on {}",
                show(input)
            );
            return;
        }
        Ok(document) => document,
    };
    let again = SignatureDocument::parse(document.canonical().as_bytes()).unwrap();
    assert_eq!(again, document, "{what}: canonical form of {}", show(input));
    let SignatureDocument::Cosign(cosign) = &document else {
        // Mutated base64 never becomes a JSON document (it has no `{`).
        panic!("{what}: {} read as {}", show(input), document.kind());
    };
    let candidates = candidates_for(&document, std::slice::from_ref(&fx.spki)).unwrap();
    let verified = verify_any(&digests(fx.digest), &candidates, &Policy::default());
    let scalars = cosign.signature().scalars();
    if fx.accepted.contains(&scalars) {
        assert_eq!(verified.unwrap(), 0, "{what}: {}", show(input));
    } else {
        let e = verified.expect_err(&format!(
            "{what}: a mutated signature verified: {}",
            show(input)
        ));
        assert_eq!(e.code(), "INVALID_SIGNATURE", "{what}: {e}");
    }
}

#[test]
fn mutated_cosign_signature_text_never_panics_and_never_passes() {
    let fx = fixture();
    let run = seed();
    let text = STANDARD.encode(&fx.der).into_bytes();
    for i in 0..iterations() {
        let mut rng = Rng::for_iteration(run, "cosign text", i);
        let mut input = text.clone();
        for _ in 0..rng.range(1, 3) {
            mutate_bytes(&mut rng, &mut input);
        }
        check_signature(
            &fx,
            &format!("seed {run:#x}, cosign text, iteration {i}"),
            &input,
        );
    }
}

#[test]
fn mutated_der_in_valid_base64_never_panics_and_never_passes() {
    let fx = fixture();
    let run = seed();
    for i in 0..iterations() {
        let mut rng = Rng::for_iteration(run, "cosign der", i);
        let mut der = fx.der.clone();
        for _ in 0..rng.range(1, 3) {
            mutate_bytes(&mut rng, &mut der);
        }
        let input = STANDARD.encode(&der).into_bytes();
        check_signature(
            &fx,
            &format!("seed {run:#x}, cosign DER, iteration {i}"),
            &input,
        );
    }
}

#[test]
fn mutated_p256_keys_never_panic_and_are_accepted_only_in_their_exact_form() {
    let fx = fixture();
    let run = seed();
    let pem_text = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(&fx.spki)
    )
    .into_bytes();
    for i in 0..iterations() {
        let mut rng = Rng::for_iteration(run, "p256 key", i);
        let as_pem = rng.chance(1, 2);
        let mut input = if as_pem {
            pem_text.clone()
        } else {
            fx.spki.clone()
        };
        for _ in 0..rng.range(1, 3) {
            mutate_bytes(&mut rng, &mut input);
        }
        let what = format!("seed {run:#x}, P-256 key, iteration {i}");
        match no_panic(&what, &input, || pem::parse_verification_key(&input)) {
            Err(e) => assert_eq!(e.code(), "INVALID_KEY", "{what}: {e}"),
            Ok(key) if key.algorithm() == KeyAlgorithm::EcdsaP256 && !as_pem => {
                assert_eq!(key.encoded(), input, "{what}: DER accepted with changes");
            }
            Ok(_) => {}
        }
    }
}
