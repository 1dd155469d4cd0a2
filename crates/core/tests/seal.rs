//! AES-256-GCM sealing of private keys.

use cloacina_sign_core::seal::{open, seal};

const KEK: [u8; 32] = [0x5a; 32];
const AAD: &[u8] = b"cloacina-sign:v1:key-id-1";

fn assert_unseal_failed(r: cloacina_sign_core::Result<zeroize::Zeroizing<Vec<u8>>>) {
    let e = r.expect_err("must fail");
    assert_eq!(e.code(), "KEY_UNSEAL_FAILED");
    assert!(!e.to_string().contains(&hex::encode(KEK)));
}

#[test]
fn round_trip_and_layout() {
    let pt = b"32-byte ed25519 seed goes here!!";
    let sealed = seal(&KEK, pt, AAD).unwrap();
    assert_eq!(sealed.len(), 12 + pt.len() + 16);
    assert!(
        !sealed.windows(pt.len()).any(|w| w == pt),
        "plaintext must not appear"
    );
    assert_eq!(&open(&KEK, &sealed, AAD).unwrap()[..], pt);
    // Empty plaintext and empty AAD work too.
    let s = seal(&KEK, b"", b"").unwrap();
    assert_eq!(s.len(), 28);
    assert!(open(&KEK, &s, b"").unwrap().is_empty());
}

#[test]
fn wrong_kek_aad_or_any_flipped_bit_fails() {
    let sealed = seal(&KEK, b"secret seed", AAD).unwrap();
    let mut other = KEK;
    other[31] ^= 1;
    assert_unseal_failed(open(&other, &sealed, AAD));
    assert_unseal_failed(open(&KEK, &sealed, b"cloacina-sign:v1:key-id-2"));
    assert_unseal_failed(open(&KEK, &sealed, b""));
    for i in 0..sealed.len() {
        let mut t = sealed.clone();
        t[i] ^= 0x01;
        assert_unseal_failed(open(&KEK, &t, AAD));
    }
    // Truncated by one byte: still long enough, but the tag no longer matches.
    assert_unseal_failed(open(&KEK, &sealed[..sealed.len() - 1], AAD));
}

#[test]
fn random_nonce_per_seal() {
    let a = seal(&KEK, b"same", AAD).unwrap();
    let b = seal(&KEK, b"same", AAD).unwrap();
    assert_ne!(a[..12], b[..12]);
    assert_ne!(a, b);
}

#[test]
fn bad_inputs_never_echo_the_kek() {
    for bad_kek in [&KEK[..31], &[0x5a; 33][..], &[][..]] {
        let e = seal(bad_kek, b"x", AAD).unwrap_err();
        assert_eq!(e.code(), "INVALID_INPUT");
        assert!(e.to_string().contains("32 bytes"), "{e}");
        assert!(!e.to_string().contains("5a5a"), "{e}");
        let e = open(bad_kek, &[0u8; 40], AAD).unwrap_err();
        assert_eq!(e.code(), "INVALID_INPUT");
        assert!(!format!("{e:?}").contains("5a5a") && !format!("{e:?}").contains("90, 90"));
    }
    let e = open(&KEK, &[0u8; 27], AAD).unwrap_err();
    assert_eq!(e.code(), "INVALID_INPUT");
    assert!(e.to_string().contains("28"), "{e}");
}
