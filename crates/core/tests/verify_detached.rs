//! The offline verification decision.

use cloacina_sign_core::digest::sha256;
use cloacina_sign_core::keys;
use cloacina_sign_core::signature::DetachedSignature;
use cloacina_sign_core::verify::{sign_digest, verify_detached};

fn key(raw: &[u8; 32]) -> keys::PublicKey {
    keys::PublicKey::from_bytes(raw).unwrap()
}

fn setup() -> ([u8; 32], [u8; 32], [u8; 32], DetachedSignature) {
    let seed = [3u8; 32];
    let pk = keys::public_key_of(&seed);
    let digest = sha256(b"package bytes");
    let sig = DetachedSignature {
        package_hash: digest,
        key_fingerprint: sha256(&pk),
        signature: sign_digest(&seed, &digest),
        signed_at: "2025-06-01T00:00:00Z".into(),
    };
    (seed, pk, digest, sig)
}

#[test]
fn ok_path_and_message_is_raw_digest() {
    let (seed, pk, digest, sig) = setup();
    verify_detached(&digest, &sig, &key(&pk)).unwrap();
    // The signed message is the raw 32 bytes, not their hex.
    keys::verify(&pk, &digest, &sig.signature).unwrap();
    assert!(keys::verify(&pk, hex::encode(digest).as_bytes(), &sig.signature).is_err());
    assert_eq!(sign_digest(&seed, &digest), keys::sign(&seed, &digest));
    // Survives the document round trip.
    let parsed = DetachedSignature::parse(sig.to_json().as_bytes()).unwrap();
    verify_detached(&digest, &parsed, &key(&pk)).unwrap();
    assert_eq!(hex::encode(sig.key_fingerprint), keys::fingerprint(&pk));
}

#[test]
fn hash_checked_first_then_signer() {
    let (_, pk, digest, sig) = setup();
    let other = keys::public_key_of(&[4u8; 32]);
    // Cloacina's verification order: with a wrong digest the package is tampered, whoever signed it.
    let e = verify_detached(&[0u8; 32], &sig, &key(&other)).unwrap_err();
    assert_eq!(e.code(), "TAMPERED_PACKAGE");
    // With the right digest, a signer other than the trusted key is reported.
    let e = verify_detached(&digest, &sig, &key(&other)).unwrap_err();
    assert_eq!(e.code(), "UNTRUSTED_SIGNER");
    let fp = hex::encode(sig.key_fingerprint);
    assert!(
        matches!(&e, cloacina_sign_core::CoreError::UntrustedSigner { fingerprint } if *fingerprint == fp)
    );
    assert!(e.to_string().contains(&fp));
    verify_detached(&digest, &sig, &key(&pk)).unwrap();
}

#[test]
fn tampered_package() {
    let (_, pk, digest, sig) = setup();
    let actual = sha256(b"package bytes, modified");
    let e = verify_detached(&actual, &sig, &key(&pk)).unwrap_err();
    assert_eq!(e.code(), "TAMPERED_PACKAGE");
    match e {
        cloacina_sign_core::CoreError::TamperedPackage {
            expected,
            actual: got,
        } => {
            assert_eq!(expected, hex::encode(digest));
            assert_eq!(got, hex::encode(actual));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn invalid_signature() {
    let (_, pk, digest, mut sig) = setup();
    sig.signature[10] ^= 0x40;
    assert_eq!(
        verify_detached(&digest, &sig, &key(&pk))
            .unwrap_err()
            .code(),
        "INVALID_SIGNATURE"
    );
    // A valid signature by the trusted key over a different digest, relabelled.
    let (seed, pk, digest, mut sig) = setup();
    sig.signature = sign_digest(&seed, &sha256(b"something else"));
    assert_eq!(
        verify_detached(&digest, &sig, &key(&pk))
            .unwrap_err()
            .code(),
        "INVALID_SIGNATURE"
    );
}

mod verify_any_tests {
    use super::sha256_only;
    use crate::key;
    use cloacina_sign_core::digest::sha256;
    use cloacina_sign_core::document::SignatureDocument;
    use cloacina_sign_core::keys;
    use cloacina_sign_core::policy::Policy;
    use cloacina_sign_core::seal;
    use cloacina_sign_core::signature::DetachedSignature;
    use cloacina_sign_core::verify::{sign_digest, verify_any, Candidate};

    fn signed(digest: &[u8; 32]) -> (DetachedSignature, [u8; 32]) {
        let (seed, public_key) = keys::generate_keypair();
        let sig = DetachedSignature {
            package_hash: *digest,
            key_fingerprint: sha256(&public_key),
            signature: sign_digest(&seed, digest),
            signed_at: "2026-01-01T00:00:00Z".into(),
        };
        (sig, public_key)
    }

    #[test]
    fn any_valid_candidate_from_a_trusted_key_verifies() {
        let digest = sha256(b"package");
        let (old, old_key) = signed(&digest);
        let (new, new_key) = signed(&digest);
        let candidates = vec![
            Candidate {
                signature: SignatureDocument::V1(old.clone()),
                public_key: None,
            },
            Candidate {
                signature: SignatureDocument::V1(new),
                public_key: Some(key(&new_key).into()),
            },
        ];
        assert_eq!(
            verify_any(&sha256_only(digest), &candidates, &Policy::default()).unwrap(),
            1
        );
        let only_old = vec![Candidate {
            signature: SignatureDocument::V1(old),
            public_key: Some(key(&old_key).into()),
        }];
        assert_eq!(
            verify_any(&sha256_only(digest), &only_old, &Policy::default()).unwrap(),
            0
        );
    }

    #[test]
    fn the_candidate_that_got_furthest_is_reported() {
        let digest = sha256(b"package");
        let (a, a_key) = signed(&digest);
        let (b, _) = signed(&digest);
        let (stale, stale_key) = signed(&sha256(b"an older build"));
        // A stale signature (tampered) and an untrusted one over these bytes: untrusted got further.
        let candidates = vec![
            Candidate {
                signature: SignatureDocument::V1(stale.clone()),
                public_key: Some(key(&stale_key).into()),
            },
            Candidate {
                signature: SignatureDocument::V1(b.clone()),
                public_key: None,
            },
        ];
        assert_eq!(
            verify_any(&sha256_only(digest), &candidates, &Policy::default())
                .unwrap_err()
                .code(),
            "UNTRUSTED_SIGNER"
        );
        // An untrusted signature over other bytes is tampered first (the hash is checked first).
        let candidates = vec![Candidate {
            signature: SignatureDocument::V1(b.clone()),
            public_key: None,
        }];
        assert_eq!(
            verify_any(
                &sha256_only(sha256(b"tampered")),
                &candidates,
                &Policy::default()
            )
            .unwrap_err()
            .code(),
            "TAMPERED_PACKAGE"
        );
        // A corrupted signature under a trusted key got furthest of all.
        let mut corrupt = a.clone();
        corrupt.signature[0] ^= 1;
        let candidates = vec![
            Candidate {
                signature: SignatureDocument::V1(b),
                public_key: None,
            },
            Candidate {
                signature: SignatureDocument::V1(corrupt),
                public_key: Some(key(&a_key).into()),
            },
            Candidate {
                signature: SignatureDocument::V1(stale),
                public_key: Some(key(&stale_key).into()),
            },
        ];
        assert_eq!(
            verify_any(&sha256_only(digest), &candidates, &Policy::default())
                .unwrap_err()
                .code(),
            "INVALID_SIGNATURE"
        );
        // Any valid candidate still wins, wherever it is.
        let mut with_valid = candidates.clone();
        with_valid.push(Candidate {
            signature: SignatureDocument::V1(a),
            public_key: Some(key(&a_key).into()),
        });
        assert_eq!(
            verify_any(&sha256_only(digest), &with_valid, &Policy::default()).unwrap(),
            3
        );
    }

    #[test]
    fn no_candidate_is_signature_not_found_and_untrusted_only_is_untrusted() {
        let digest = sha256(b"package");
        assert_eq!(
            verify_any(&sha256_only(digest), &[], &Policy::default())
                .unwrap_err()
                .code(),
            "SIGNATURE_NOT_FOUND"
        );
        let (a, _) = signed(&digest);
        let candidates = vec![Candidate {
            signature: SignatureDocument::V1(a),
            public_key: None,
        }];
        assert_eq!(
            verify_any(&sha256_only(digest), &candidates, &Policy::default())
                .unwrap_err()
                .code(),
            "UNTRUSTED_SIGNER"
        );
    }

    #[test]
    fn a_sealed_key_opens_only_for_its_own_row() {
        let kek = [7u8; 32];
        let (seed, public_key) = keys::generate_keypair();
        let sealed = seal::seal(
            &kek,
            seed.as_slice(),
            &seal::private_key_aad("k1", "o1", &public_key),
        )
        .unwrap();
        let opened = seal::open_private_key(&kek, &sealed, "k1", "o1", &public_key).unwrap();
        assert_eq!(opened.as_slice(), seed.as_slice());
        for (key_id, org_id) in [("k2", "o1"), ("k1", "o2"), ("k1o", ""), ("", "k1o1")] {
            let err =
                seal::open_private_key(&kek, &sealed, key_id, org_id, &public_key).unwrap_err();
            assert_eq!(err.code(), "KEY_UNSEAL_FAILED");
        }
        let (_, other_public) = keys::generate_keypair();
        assert!(seal::open_private_key(&kek, &sealed, "k1", "o1", &other_public).is_err());
        assert!(seal::open_private_key(&[8u8; 32], &sealed, "k1", "o1", &public_key).is_err());
    }
}

/// The package digests of a version-1 check: its SHA-256 only.
fn sha256_only(digest: [u8; 32]) -> cloacina_sign_core::digest::PackageDigests {
    cloacina_sign_core::digest::PackageDigests {
        size: 0,
        sha256: Some(digest),
        blake3: None,
    }
}
