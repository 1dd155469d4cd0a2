//! Key encodings: round trips, exact DER, PKCS#8 v1/v2, errors, OpenSSL interop.

use std::path::Path;
use std::process::Command;

use cloacina_sign_core::{keys, pem};
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};

const SEED: [u8; 32] = [7u8; 32];

fn b64_body(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

#[test]
fn public_pem_round_trip_and_exact_der() {
    let pk = keys::public_key_of(&SEED);
    let text = pem::public_key_to_pem(&pk);
    assert!(text.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert!(text.ends_with("-----END PUBLIC KEY-----\n"));
    assert!(text.lines().all(|l| l.len() <= 64));
    let der = b64_body(&text);
    assert_eq!(der.len(), 44);
    assert_eq!(hex::encode(&der[..12]), "302a300506032b6570032100");
    assert_eq!(&der[12..], &pk);
    assert_eq!(pem::public_key_from_any(text.as_bytes()).unwrap(), pk);
    assert_eq!(pem::public_key_from_any(&der).unwrap(), pk);
    assert_eq!(pem::public_key_from_any(&pk).unwrap(), pk);
}

#[test]
fn private_pem_round_trip_and_exact_der() {
    let text = pem::private_key_to_pem(&SEED);
    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(text.ends_with("-----END PRIVATE KEY-----\n"));
    let der = b64_body(&text);
    assert_eq!(der.len(), 48);
    assert_eq!(hex::encode(&der[..16]), "302e020100300506032b657004220420");
    assert_eq!(&der[16..], &SEED);
    assert_eq!(*pem::private_key_from_any(text.as_bytes()).unwrap(), SEED);
    assert_eq!(*pem::private_key_from_any(&der).unwrap(), SEED);
    assert_eq!(*pem::private_key_from_any(&SEED).unwrap(), SEED);
}

#[test]
fn pem_tolerates_crlf_whitespace_and_line_lengths() {
    let pk = keys::public_key_of(&SEED);
    let text = pem::public_key_to_pem(&pk);
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let odd = format!(
        "\r\n  \t-----BEGIN PUBLIC KEY-----\r\n{}\r\n{}\r\n-----END PUBLIC KEY-----\r\n\r\n  ",
        &body[..10],
        &body[10..]
    );
    assert_eq!(pem::public_key_from_any(odd.as_bytes()).unwrap(), pk);
    let priv_text = pem::private_key_to_pem(&SEED).replace('\n', "\r\n");
    assert_eq!(
        *pem::private_key_from_any(priv_text.as_bytes()).unwrap(),
        SEED
    );
}

#[test]
fn pkcs8_v2_as_written_by_ed25519_dalek_is_accepted() {
    let sk = ed25519_dalek::SigningKey::from_bytes(&SEED);
    let doc = sk.to_pkcs8_der().unwrap();
    let der = doc.as_bytes();
    assert_eq!(der[4], 1, "dalek writes version 1 (v2)");
    assert_eq!(*pem::private_key_from_any(der).unwrap(), SEED);
    let text = sk.to_pkcs8_pem(Default::default()).unwrap();
    assert_eq!(*pem::private_key_from_any(text.as_bytes()).unwrap(), SEED);
    // And dalek's public SPKI is byte-identical to ours.
    let spki = sk.verifying_key().to_public_key_der().unwrap();
    assert_eq!(
        pem::public_key_from_any(spki.as_bytes()).unwrap(),
        sk.verifying_key().to_bytes()
    );
}

fn v2_der(seed: &[u8; 32], pk: &[u8; 32], explicit: bool) -> Vec<u8> {
    let mut inner = hex::decode("020101300506032b657004220420").unwrap();
    inner.extend_from_slice(seed);
    if explicit {
        inner.extend_from_slice(&[0xa1, 0x23, 0x03, 0x21, 0x00]);
    } else {
        inner.extend_from_slice(&[0x81, 0x21, 0x00]);
    }
    inner.extend_from_slice(pk);
    let mut der = vec![0x30, inner.len() as u8];
    der.extend_from_slice(&inner);
    der
}

#[test]
fn pkcs8_v2_both_tagging_styles_and_mismatch() {
    let pk = keys::public_key_of(&SEED);
    for explicit in [false, true] {
        assert_eq!(
            *pem::private_key_from_any(&v2_der(&SEED, &pk, explicit)).unwrap(),
            SEED
        );
        let other = keys::public_key_of(&[8u8; 32]);
        let e = pem::private_key_from_any(&v2_der(&SEED, &other, explicit)).unwrap_err();
        assert_eq!(e.code(), "INVALID_KEY");
        assert!(e.to_string().contains("does not match"), "{e}");
    }
}

#[test]
fn rfc8410_example_with_attributes_is_accepted() {
    // RFC 8410 section 10.3 example: v2 with attributes and implicit [1] public key.
    let text = "-----BEGIN PRIVATE KEY-----\n\
MHICAQEwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
oB8wHQYKKoZIhvcNAQkJFDEPDA1DdXJkbGUgQ2hhaXJzgSEAGb9ECWmEzf6FQbrB\n\
Z9w7lshQhqowtrbLDFw4rXAxZuE=\n\
-----END PRIVATE KEY-----\n";
    let seed = pem::private_key_from_any(text.as_bytes()).unwrap();
    assert_eq!(
        hex::encode(keys::public_key_of(&seed)),
        "19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1"
    );
}

#[test]
fn wrong_labels_rejected() {
    let pk = keys::public_key_of(&SEED);
    let pub_pem = pem::public_key_to_pem(&pk);
    let priv_pem = pem::private_key_to_pem(&SEED);
    let e = pem::private_key_from_any(pub_pem.as_bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid key: PEM label is PUBLIC KEY, expected PRIVATE KEY: this is a public key, not a private key"
    );
    let e = pem::public_key_from_any(priv_pem.as_bytes()).unwrap_err();
    assert!(
        e.to_string()
            .contains("PEM label is PRIVATE KEY, expected PUBLIC KEY"),
        "{e}"
    );
    let enc = priv_pem.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY");
    let e = pem::private_key_from_any(enc.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("ENCRYPTED"), "{e}");
    // Never echo key material.
    let body: String = priv_pem.lines().nth(1).unwrap().to_string();
    assert!(!e.to_string().contains(&body));
}

#[test]
fn garbage_rejected_without_echo() {
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        b"hello world".to_vec(),
        vec![0x30; 48],
        vec![0xff; 31],
        vec![0xab; 33],
        b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n".to_vec(),
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".to_vec(),
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n".to_vec(),
    ];
    for c in &cases {
        let e = pem::private_key_from_any(c).unwrap_err();
        assert_eq!(e.code(), "INVALID_KEY", "{e}");
        let e = pem::public_key_from_any(c).unwrap_err();
        assert_eq!(e.code(), "INVALID_KEY", "{e}");
    }
    // A P-256 PKCS#8 key: wrong algorithm.
    let p256 = "-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgevZzL1gdAFr88hb2\n\
OF/2NxApJCzGCEDdfSp6VQO30hyhRANCAAQRWz+jn65BtOMvdyHKcvjBeBSDZH2r\n\
1RTwjmYSi9R/zpBnuQ4EiMnCqfMPWiZqB4QdbAd0E7oH50VpuZ1P087G\n\
-----END PRIVATE KEY-----\n";
    let e = pem::private_key_from_any(p256.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("Ed25519"), "{e}");
    // Truncations of a valid DER never panic and never succeed (32 bytes included: they begin
    // like a DER key, so they are not read as a raw seed).
    let der = v2_der(&SEED, &keys::public_key_of(&SEED), false);
    for n in 0..der.len() {
        assert!(pem::private_key_from_any(&der[..n]).is_err(), "len {n}");
    }
    // Error text never contains the seed.
    let mut bad = pem::PKCS8_V1_PREFIX.to_vec();
    bad.extend_from_slice(&[0x42; 33]);
    let e = pem::private_key_from_any(&bad).unwrap_err();
    assert!(!e.to_string().contains("4242"), "{e}");
}

#[test]
fn weak_public_key_rejected_in_every_encoding() {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(
        pem::public_key_from_any(&identity).unwrap_err().code(),
        "INVALID_KEY"
    );
    let text = pem::public_key_to_pem(&identity);
    assert!(pem::public_key_from_any(text.as_bytes())
        .unwrap_err()
        .to_string()
        .contains("weak"));
}

fn openssl(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is required for the interop test (install openssl)");
    out
}

fn openssl_ok(dir: &Path, args: &[&str]) {
    let out = openssl(dir, args);
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn openssl_interop() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl_ok(d, &["genpkey", "-algorithm", "ed25519", "-out", "k.pem"]);
    openssl_ok(d, &["pkey", "-in", "k.pem", "-pubout", "-out", "p.pem"]);
    let seed = pem::private_key_from_any(&std::fs::read(d.join("k.pem")).unwrap()).unwrap();
    let pk = pem::public_key_from_any(&std::fs::read(d.join("p.pem")).unwrap()).unwrap();
    assert_eq!(keys::public_key_of(&seed), pk);

    // Our signature verifies under OpenSSL; a modified message does not.
    let msg = b"cloacina interop message";
    std::fs::write(d.join("msg"), msg).unwrap();
    std::fs::write(d.join("sig"), keys::sign(&seed, msg)).unwrap();
    openssl_ok(
        d,
        &[
            "pkeyutl", "-verify", "-pubin", "-inkey", "p.pem", "-rawin", "-in", "msg", "-sigfile",
            "sig",
        ],
    );
    std::fs::write(d.join("msg2"), b"cloacina interop messagE").unwrap();
    assert!(!openssl(
        d,
        &[
            "pkeyutl", "-verify", "-pubin", "-inkey", "p.pem", "-rawin", "-in", "msg2", "-sigfile",
            "sig"
        ]
    )
    .status
    .success());

    // OpenSSL signature verifies with ours.
    openssl_ok(
        d,
        &[
            "pkeyutl", "-sign", "-inkey", "k.pem", "-rawin", "-in", "msg", "-out", "osig",
        ],
    );
    keys::verify(&pk, msg, &std::fs::read(d.join("osig")).unwrap()).unwrap();

    // Our PEM output is readable by OpenSSL and describes the same key.
    std::fs::write(
        d.join("ours.pem"),
        pem::private_key_to_pem(&seed).as_bytes(),
    )
    .unwrap();
    std::fs::write(d.join("ourpub.pem"), pem::public_key_to_pem(&pk)).unwrap();
    openssl_ok(d, &["pkey", "-in", "ours.pem", "-noout"]);
    openssl_ok(d, &["pkey", "-pubin", "-in", "ourpub.pem", "-noout"]);
    openssl_ok(
        d,
        &["pkey", "-in", "ours.pem", "-pubout", "-out", "derived.pem"],
    );
    assert_eq!(
        std::fs::read_to_string(d.join("derived.pem")).unwrap(),
        std::fs::read_to_string(d.join("p.pem")).unwrap()
    );
    // And OpenSSL's DER forms are read too.
    openssl_ok(
        d,
        &["pkey", "-in", "k.pem", "-outform", "DER", "-out", "k.der"],
    );
    openssl_ok(
        d,
        &[
            "pkey", "-in", "k.pem", "-pubout", "-outform", "DER", "-out", "p.der",
        ],
    );
    assert_eq!(
        *pem::private_key_from_any(&std::fs::read(d.join("k.der")).unwrap()).unwrap(),
        *seed
    );
    assert_eq!(
        pem::public_key_from_any(&std::fs::read(d.join("p.der")).unwrap()).unwrap(),
        pk
    );
}
