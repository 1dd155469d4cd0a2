//! ECDSA P-256 (cosign keys and signatures): the Wycheproof vectors, key import, the strict DER
//! reader, the cosign signature document, and the verification decision with P-256 keys.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use cloacina_sign_core::cosign::CosignSignature;
use cloacina_sign_core::digest::{sha256, PackageDigests};
use cloacina_sign_core::document::SignatureDocument;
use cloacina_sign_core::ecdsa::{self, EcdsaSignature, P256PublicKey, SPKI_PREFIX};
use cloacina_sign_core::keys;
use cloacina_sign_core::pem;
use cloacina_sign_core::policy::Policy;
use cloacina_sign_core::verification_key::{KeyAlgorithm, VerificationKey};
use cloacina_sign_core::verify::{candidates_for, verify_any, Candidate};
use p256::ecdsa::signature::hazmat::PrehashSigner as _;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::Value;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../test/vectors/wycheproof/ecdsa_secp256r1_sha256_test.json"
);

/// The group order n of P-256, big-endian.
const N: [u8; 32] =
    hex_literal(b"ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
/// The field prime p of P-256, big-endian.
const P: [u8; 32] =
    hex_literal(b"ffffffff00000001000000000000000000000000ffffffffffffffffffffffff");

const fn hex_literal(text: &[u8; 64]) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            _ => c - b'a' + 10,
        }
    }
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = nibble(text[2 * i]) << 4 | nibble(text[2 * i + 1]);
        i += 1;
    }
    out
}

fn load() -> Value {
    let text = std::fs::read_to_string(VECTORS)
        .unwrap_or_else(|e| panic!("Wycheproof vectors missing at {VECTORS}: {e}"));
    serde_json::from_str(&text).expect("vector file is JSON")
}

fn hexf(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(v[field].as_str().unwrap_or_else(|| panic!("field {field}"))).unwrap()
}

/// a - b for 32-byte big-endian numbers (a >= b).
fn sub(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = a[i] as i16 - b[i] as i16 - borrow;
        borrow = 0;
        if d < 0 {
            d += 256;
            borrow = 1;
        }
        out[i] = d as u8;
    }
    assert_eq!(borrow, 0);
    out
}

/// a + small for a 32-byte big-endian number (no overflow in the tests).
fn add_small(a: &[u8; 32], small: u8) -> [u8; 32] {
    let mut out = *a;
    let mut carry = small as u16;
    for byte in out.iter_mut().rev() {
        let sum = *byte as u16 + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    out
}

/// Minimal DER INTEGER of a positive 32-byte big-endian number.
fn der_integer(value: &[u8]) -> Vec<u8> {
    let mut digits: Vec<u8> = value.iter().copied().skip_while(|&b| b == 0).collect();
    if digits.is_empty() {
        digits.push(0);
    }
    if digits[0] & 0x80 != 0 {
        digits.insert(0, 0);
    }
    let mut out = vec![0x02, digits.len() as u8];
    out.extend(digits);
    out
}

fn der_signature(r: &[u8], s: &[u8]) -> Vec<u8> {
    let mut body = der_integer(r);
    body.extend(der_integer(s));
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

/// A deterministic test key and its SPKI DER.
fn test_key(seed: u8) -> (SigningKey, Vec<u8>) {
    let mut bytes = [seed; 32];
    bytes[0] = 0x11;
    let signing = SigningKey::from_bytes(&bytes.into()).unwrap();
    let point = signing.verifying_key().to_encoded_point(false);
    let mut spki = SPKI_PREFIX.to_vec();
    spki.extend_from_slice(point.as_bytes());
    (signing, spki)
}

fn sign(key: &SigningKey, digest: &[u8; 32]) -> Signature {
    key.sign_prehash(digest).unwrap()
}

fn digests(sha: [u8; 32]) -> PackageDigests {
    PackageDigests {
        size: 0,
        sha256: Some(sha),
        blake3: None,
    }
}

fn cosign_document(der: &[u8]) -> SignatureDocument {
    SignatureDocument::parse(STANDARD.encode(der).as_bytes()).unwrap()
}

/// The verdict for a Wycheproof "acceptable" case (a signature some implementations accept and others
/// refuse), decided by its flags as cosign decides (Go's `ecdsa.VerifyASN1`): a BER encoding or a
/// missing or superfluous zero is not DER, so it is refused. A flag not listed here has no decision
/// yet: the test fails so that someone makes one, rather than passing by accident.
fn acceptable_verdict(t: &Value) -> bool {
    let flags: Vec<&str> = t["flags"]
        .as_array()
        .map(|flags| flags.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    const REFUSED_AS_NOT_DER: [&str; 3] = ["BerEncodedSignature", "MissingZero", "InvalidEncoding"];
    assert!(
        !flags.is_empty() && flags.iter().all(|f| REFUSED_AS_NOT_DER.contains(f)),
        "tcId {}: acceptable case with flags {flags:?}: decide whether cosign accepts it",
        t["tcId"]
    );
    false
}

#[test]
fn wycheproof_ecdsa_p256_sha256_all_verdicts_match() {
    let doc = load();
    let declared = doc["numberOfTests"].as_u64().expect("numberOfTests");
    let (mut checked, mut valid, mut invalid, mut acceptable) = (0u64, 0u64, 0u64, 0u64);
    let mut failures = Vec::new();
    for group in doc["testGroups"].as_array().expect("testGroups") {
        assert_eq!(group["sha"], "SHA-256");
        let der = hexf(group, "publicKeyDer");
        let key = pem::parse_verification_key(&der)
            .unwrap_or_else(|e| panic!("group key {}: {e}", group["publicKeyDer"]));
        assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP256);
        // The PEM form is the same key, and the stored form is the DER itself.
        let from_pem =
            pem::parse_verification_key(group["publicKeyPem"].as_str().unwrap().as_bytes())
                .unwrap();
        assert_eq!(from_pem, key);
        assert_eq!(key.encoded(), der);
        for t in group["tests"].as_array().expect("tests") {
            let id = &t["tcId"];
            let expect_valid = match t["result"].as_str().unwrap() {
                "valid" => true,
                "invalid" => false,
                "acceptable" => {
                    acceptable += 1;
                    acceptable_verdict(t)
                }
                other => panic!("unexpected result {other} in tcId {id}"),
            };
            let digest = sha256(&hexf(t, "msg"));
            let sig = hexf(t, "sig");
            let direct = ecdsa::verify_digest_der(&der, &digest, &sig).is_ok();
            // The same bytes as a cosign signature file, through the decision.
            let document = SignatureDocument::parse(STANDARD.encode(&sig).as_bytes());
            let decided = document.as_ref().is_ok_and(|document| {
                let candidates = [Candidate {
                    signature: document.clone(),
                    public_key: Some(key),
                }];
                verify_any(&digests(digest), &candidates, &Policy::default()).is_ok()
            });
            if direct != expect_valid || decided != expect_valid {
                failures.push(format!(
                    "tcId {id} ({}, {}): expected {expect_valid}, got {direct} / {decided}",
                    t["comment"], t["flags"]
                ));
            }
            // A signature DER we refuse to parse is MALFORMED_SIGNATURE as a document.
            if let Err(e) = &document {
                assert_eq!(e.code(), "MALFORMED_SIGNATURE", "tcId {id}");
                assert!(
                    !expect_valid,
                    "tcId {id}: a valid signature failed to parse: {e}"
                );
            }
            checked += 1;
            if expect_valid {
                valid += 1
            } else {
                invalid += 1
            }
        }
    }
    assert_eq!(checked, declared, "every case in the file must be checked");
    // This release of the file has no "acceptable" case (its BER and missing-zero cases are "invalid");
    // a new release that adds some is decided by acceptable_verdict, and this count says so.
    eprintln!(
        "{checked} cases: {valid} valid, {invalid} invalid ({acceptable} of them acceptable)"
    );
    assert!(valid > 0 && invalid > 0);
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn wycheproof_ber_and_missing_zero_cases_are_refused_as_malformed() {
    let doc = load();
    let mut seen = 0;
    for group in doc["testGroups"].as_array().unwrap() {
        for t in group["tests"].as_array().unwrap() {
            let flags = t["flags"].to_string();
            if flags.contains("BerEncodedSignature") || flags.contains("MissingZero") {
                let e = EcdsaSignature::from_der(&hexf(t, "sig")).unwrap_err();
                assert_eq!(e.code(), "MALFORMED_SIGNATURE", "tcId {}", t["tcId"]);
                seen += 1;
            }
        }
    }
    assert!(seen > 0);
}

#[test]
fn keys_import_from_pem_and_der_and_fingerprint_is_sha256_of_the_spki_der() {
    let (_, spki) = test_key(7);
    let key = pem::parse_verification_key(&spki).unwrap();
    assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP256);
    assert_eq!(key.encoded(), spki);
    assert_eq!(key.fingerprint(), sha256(&spki));
    let text = pem::verification_key_to_pem(&key);
    assert!(text.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{text}");
    assert_eq!(pem::parse_verification_key(text.as_bytes()).unwrap(), key);
    // With CRLF and surrounding whitespace, as for Ed25519 PEM.
    let crlf = format!("\n  {}\n", text.replace('\n', "\r\n"));
    assert_eq!(pem::parse_verification_key(crlf.as_bytes()).unwrap(), key);
    // Ed25519 keys still read as before, in every form.
    let (_, ed) = keys::generate_keypair();
    let ed_key = pem::parse_verification_key(&ed).unwrap();
    assert_eq!(ed_key.algorithm(), KeyAlgorithm::Ed25519);
    assert_eq!(ed_key.encoded(), ed.to_vec());
    assert_eq!(ed_key.fingerprint_hex(), keys::fingerprint(&ed));
    let ed_pem = pem::public_key_to_pem(&ed);
    assert_eq!(
        pem::parse_verification_key(ed_pem.as_bytes()).unwrap(),
        ed_key
    );
    // The Ed25519-only readers refuse a P-256 key.
    assert!(pem::public_key_from_any(&spki).is_err());
}

#[test]
fn bad_points_are_refused_at_import() {
    let (_, spki) = test_key(9);
    let point = &spki[SPKI_PREFIX.len()..];
    let invalid = |der: &[u8], needle: &str| {
        let e = pem::parse_verification_key(der).unwrap_err();
        assert_eq!(e.code(), "INVALID_KEY", "{e}");
        assert!(e.to_string().contains(needle), "{e} should say {needle:?}");
        // The PEM form says the same.
        let text = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(der)
        );
        let e = pem::parse_verification_key(text.as_bytes()).unwrap_err();
        assert!(e.to_string().contains(needle), "PEM: {e}");
    };
    // A point not on the curve: y + 1.
    let mut off = spki.clone();
    off[90] ^= 0x01;
    invalid(&off, "not on the curve");
    // x >= p (x = p, y anything).
    let mut big_x = spki.clone();
    big_x[27..59].copy_from_slice(&P);
    invalid(&big_x, "not on the curve");
    // The point at infinity (SEC1 0x00), in an SPKI of its own length.
    let mut identity = vec![0x30, 0x1a];
    identity.extend_from_slice(&SPKI_PREFIX[2..23]);
    identity.extend_from_slice(&[0x03, 0x02, 0x00, 0x00]);
    identity[1] = (identity.len() - 2) as u8;
    invalid(&identity, "infinity");
    // All-zero coordinates (not on the curve; some readers take it for the identity).
    let mut zeros = spki.clone();
    zeros[27..].fill(0);
    invalid(&zeros, "not on the curve");
    // A valid compressed point, and compressed-form junk.
    let compressed_point = {
        let mut c = vec![0x02 | (point[64] & 1)];
        c.extend_from_slice(&point[1..33]);
        c
    };
    let mut compressed = vec![0x30, 0x00];
    compressed.extend_from_slice(&SPKI_PREFIX[2..23]);
    compressed.extend_from_slice(&[0x03, 0x22, 0x00]);
    compressed.extend_from_slice(&compressed_point);
    compressed[1] = (compressed.len() - 2) as u8;
    invalid(&compressed, "compressed");
    let mut junk = compressed.clone();
    junk[26..].fill(0xff);
    junk[26] = 0x03;
    invalid(&junk, "compressed");
    // A hybrid point (0x06/0x07) and a truncated uncompressed one.
    let mut hybrid = spki.clone();
    hybrid[26] = 0x06;
    invalid(&hybrid, "uncompressed form");
    // Another curve (secp256k1, OID 1.3.132.0.10) and P-384 are refused saying so.
    let mut k1 = spki[..13].to_vec();
    k1.extend_from_slice(&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a]);
    k1.extend_from_slice(&spki[23..]);
    k1[1] = (k1.len() - 2) as u8;
    k1[3] = 0x10;
    invalid(&k1, "not P-256");
    // Trailing bytes, unused bits, a non-DER length.
    let mut trailing = spki.clone();
    trailing.push(0);
    invalid(&trailing, "after");
    let mut unused = spki.clone();
    unused[25] = 0x01;
    invalid(&unused, "unused bits");
    let mut long_form = vec![0x30, 0x81, 0x59];
    long_form.extend_from_slice(&spki[2..]);
    assert!(pem::parse_verification_key(&long_form).is_err());
    // The bare 65-byte point is no key form (only the SPKI is read).
    assert_eq!(
        pem::parse_verification_key(point).unwrap_err().code(),
        "INVALID_KEY"
    );
    // The direct reader agrees.
    assert!(P256PublicKey::from_uncompressed_point(point).is_ok());
    assert!(P256PublicKey::from_uncompressed_point(&[0x00]).is_err());
    assert!(P256PublicKey::from_uncompressed_point(&[]).is_err());
    assert!(P256PublicKey::from_uncompressed_point(&point[..64]).is_err());
}

#[test]
fn der_signatures_are_read_strictly() {
    let (signing, spki) = test_key(3);
    let digest = sha256(b"package bytes");
    let sig = sign(&signing, &digest);
    let (r, s) = (sig.r().to_bytes(), sig.s().to_bytes());
    let (r, s): ([u8; 32], [u8; 32]) = (r.into(), s.into());
    let good = der_signature(&r, &s);
    ecdsa::verify_digest_der(&spki, &digest, &good).unwrap();
    assert_eq!(EcdsaSignature::from_der(&good).unwrap().to_der(), good);

    let malformed = |der: &[u8], needle: &str| {
        let e = EcdsaSignature::from_der(der).unwrap_err();
        assert_eq!(e.code(), "MALFORMED_SIGNATURE", "{e}");
        assert!(e.to_string().contains(needle), "{e} should say {needle:?}");
    };
    malformed(&[], "empty");
    malformed(&good[..good.len() - 1], "truncated");
    let mut trailing = good.clone();
    trailing.push(0);
    malformed(&trailing, "after the SEQUENCE");
    // BER: a long-form length for a short SEQUENCE, and for an INTEGER; indefinite length.
    let mut ber = vec![0x30, 0x81, good[1]];
    ber.extend_from_slice(&good[2..]);
    malformed(&ber, "BER");
    let mut ber_int = vec![0x30, good[1] + 1, 0x02, 0x81];
    ber_int.extend_from_slice(&good[3..]);
    malformed(&ber_int, "BER");
    let mut indefinite = vec![0x30, 0x80];
    indefinite.extend_from_slice(&good[2..]);
    indefinite.extend_from_slice(&[0, 0]);
    malformed(&indefinite, "BER");
    // A superfluous leading zero, and a missing one (a negative integer).
    // r = 5 written as 00 05: the zero is superfluous (0x05 has its top bit clear).
    let mut padded = vec![0x02, 0x02, 0x00, 0x05];
    padded.extend(der_integer(&s));
    let mut seq = vec![0x30, padded.len() as u8];
    seq.extend(padded);
    malformed(&seq, "superfluous leading zero");
    let mut high_r = r;
    high_r[0] |= 0x80;
    let mut negative = vec![0x02, 0x20];
    negative.extend_from_slice(&high_r);
    negative.extend(der_integer(&s));
    let mut seq = vec![0x30, negative.len() as u8];
    seq.extend(negative);
    malformed(&seq, "negative");
    // Wrong tags, a third field, a missing s.
    let mut wrong = good.clone();
    wrong[0] = 0x31;
    malformed(&wrong, "SEQUENCE");
    let mut wrong = good.clone();
    wrong[2] = 0x03;
    malformed(&wrong, "INTEGER");
    let mut extra = good[2..].to_vec();
    extra.extend_from_slice(&[0x02, 0x01, 0x01]);
    let mut seq = vec![0x30, extra.len() as u8];
    seq.extend(extra);
    malformed(&seq, "after s");
    let only_r = der_integer(&r);
    let mut seq = vec![0x30, only_r.len() as u8];
    seq.extend(only_r);
    malformed(&seq, "s is missing");
    // Out of range: zero, n, n + 1, 2^256 - 1 (33 bytes with its zero), a 33-byte value.
    let zero = [0u8; 32];
    malformed(&der_signature(&zero, &s), "zero");
    malformed(&der_signature(&r, &zero), "zero");
    malformed(&der_signature(&N, &s), "group order");
    malformed(&der_signature(&r, &N), "group order");
    malformed(&der_signature(&r, &add_small(&N, 1)), "group order");
    malformed(&der_signature(&[0xff; 32], &s), "group order");
    let mut too_long = vec![0x02, 0x21, 0x01];
    too_long.extend_from_slice(&r);
    too_long.extend(der_integer(&s));
    let mut seq = vec![0x30, too_long.len() as u8];
    seq.extend(too_long);
    malformed(&seq, "over 256 bits");
    // n - 1 is in range (and simply does not verify).
    let n_minus_1 = sub(&N, &{
        let mut one = [0u8; 32];
        one[31] = 1;
        one
    });
    let in_range = der_signature(&r, &n_minus_1);
    assert!(EcdsaSignature::from_der(&in_range).is_ok());
    assert_eq!(
        ecdsa::verify_digest_der(&spki, &digest, &in_range)
            .unwrap_err()
            .code(),
        "INVALID_SIGNATURE"
    );
}

#[test]
fn both_s_forms_verify_as_go_does() {
    let (signing, spki) = test_key(5);
    for message in [&b"a"[..], b"b", b"c", b"d", b"e", b"f"] {
        let digest = sha256(message);
        let sig = sign(&signing, &digest);
        let r: [u8; 32] = sig.r().to_bytes().into();
        let s: [u8; 32] = sig.s().to_bytes().into();
        let flipped = sub(&N, &s);
        for s in [s, flipped] {
            let der = der_signature(&r, &s);
            ecdsa::verify_digest_der(&spki, &digest, &der).unwrap();
            let key = pem::parse_verification_key(&spki).unwrap();
            let candidates = [Candidate {
                signature: cosign_document(&der),
                public_key: Some(key),
            }];
            assert_eq!(
                verify_any(&digests(digest), &candidates, &Policy::default()).unwrap(),
                0
            );
        }
        // Another digest does not verify under either.
        let other = sha256(b"other");
        assert!(ecdsa::verify_digest_der(&spki, &other, &der_signature(&r, &s)).is_err());
        assert!(ecdsa::verify_digest_der(&spki, &other, &der_signature(&r, &flipped)).is_err());
    }
}

#[test]
fn cosign_documents_are_recognized_by_content_and_read_strictly() {
    let (signing, _) = test_key(1);
    let der = sign(&signing, &sha256(b"x")).to_der().as_bytes().to_vec();
    let b64 = STANDARD.encode(&der);
    for text in [b64.clone(), format!("{b64}\n")] {
        let document = SignatureDocument::parse(text.as_bytes()).unwrap();
        assert_eq!(document.kind(), "cosign");
        assert_eq!(document.key_fingerprint(), None);
        assert_eq!(document.canonical(), b64);
        assert_eq!(
            SignatureDocument::parse(document.canonical().as_bytes()).unwrap(),
            document
        );
        let SignatureDocument::Cosign(cosign) = &document else {
            unreachable!()
        };
        assert_eq!(cosign.der(), &der[..]);
    }
    let malformed = |text: &[u8], needle: &str| {
        let e = SignatureDocument::parse(text).unwrap_err();
        assert_eq!(e.code(), "MALFORMED_SIGNATURE", "{e}");
        assert!(e.to_string().contains(needle), "{e} should say {needle:?}");
    };
    malformed(format!("{b64}\n\n").as_bytes(), "whitespace");
    malformed(format!("{b64}\r\n").as_bytes(), "carriage return");
    malformed(format!("{b64}\r").as_bytes(), "carriage return");
    malformed(format!(" {b64}").as_bytes(), "whitespace");
    malformed(format!("{b64} \n").as_bytes(), "whitespace");
    let (head, tail) = b64.split_at(20);
    malformed(format!("{head}\n{tail}").as_bytes(), "whitespace");
    malformed(b64.trim_end_matches('=').as_bytes(), "base64");
    malformed(
        b64.replace('+', "-").replace('/', "_").as_bytes(),
        "URL-safe",
    );
    malformed(format!("{b64}=").as_bytes(), "base64");
    malformed(STANDARD.encode([0u8; 200]).as_bytes(), "at most");
    malformed(b"aGVsbG8=", "ECDSA");
    malformed(b"hello", "JSON");
    // Non-zero padding bits: the last character of a one-padding group changed by one.
    let mut noncanonical = b64.clone().into_bytes();
    if noncanonical.ends_with(b"=") {
        let at = noncanonical.iter().rposition(|&b| b != b'=').unwrap();
        noncanonical[at] = match noncanonical[at] {
            b'A' => b'B',
            b'Q' => b'R',
            b'g' => b'h',
            b'w' => b'x',
            other => other,
        };
        if noncanonical != b64.as_bytes() {
            malformed(&noncanonical, "base64");
        }
    }
    // The raw DER itself is no signature document (it is not base64 text).
    let e = SignatureDocument::parse(&der).unwrap_err();
    assert_eq!(e.code(), "MALFORMED_SIGNATURE");
    // JSON is still JSON, with JSON's errors.
    let e = SignatureDocument::parse(b"  {\"version\":1").unwrap_err();
    assert!(e.to_string().contains("JSON"), "{e}");
    let e = SignatureDocument::parse(b"[]").unwrap_err();
    assert!(e.to_string().contains("not a JSON object"), "{e}");
    // Through a file, with the path in the message.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("artifact.sig");
    std::fs::write(&path, format!("{b64}\n")).unwrap();
    assert_eq!(
        SignatureDocument::read_file(&path).unwrap().kind(),
        "cosign"
    );
    std::fs::write(&path, "AAAA\n").unwrap();
    let e = SignatureDocument::read_file(&path).unwrap_err();
    assert!(e.to_string().contains("artifact.sig"), "{e}");
    // CosignSignature agrees with the document reader.
    assert!(CosignSignature::parse(b64.as_bytes()).is_ok());
    assert_eq!(CosignSignature::from_der(&der).unwrap().to_base64(), b64);
}

#[test]
fn a_cosign_signature_is_a_candidate_for_every_trusted_p256_key() {
    let (signer, signer_spki) = test_key(21);
    let (_, other_spki) = test_key(22);
    let (_, ed) = keys::generate_keypair();
    let digest = sha256(b"the artifact");
    let der = sign(&signer, &digest).to_der().as_bytes().to_vec();
    let document = cosign_document(&der);
    let policy = Policy::default();

    // No P-256 key trusted (only Ed25519 ones): one candidate without a key, UNTRUSTED_SIGNER.
    let candidates = candidates_for(&document, &[ed.to_vec()]).unwrap();
    assert_eq!(candidates.len(), 1);
    assert!(candidates[0].public_key.is_none());
    let e = verify_any(&digests(digest), &candidates, &policy).unwrap_err();
    assert_eq!(e.code(), "UNTRUSTED_SIGNER");
    assert!(
        e.to_string().contains("no ECDSA P-256 key is trusted"),
        "{e}"
    );
    let none: [Vec<u8>; 0] = [];
    let e = verify_any(
        &digests(digest),
        &candidates_for(&document, &none).unwrap(),
        &policy,
    )
    .unwrap_err();
    assert_eq!(e.code(), "UNTRUSTED_SIGNER");

    // P-256 keys trusted, none of them the signer: INVALID_SIGNATURE (no digest to tell tampering apart).
    let candidates = candidates_for(&document, &[ed.to_vec(), other_spki.clone()]).unwrap();
    assert_eq!(candidates.len(), 1);
    let e = verify_any(&digests(digest), &candidates, &policy).unwrap_err();
    assert_eq!(e.code(), "INVALID_SIGNATURE");
    assert!(e.to_string().contains("carries no digest"), "{e}");

    // The signer among them, second: it verifies, and it is the one named.
    let trusted = [other_spki.clone(), ed.to_vec(), signer_spki.clone()];
    let candidates = candidates_for(&document, &trusted).unwrap();
    assert_eq!(candidates.len(), 2);
    let index = verify_any(&digests(digest), &candidates, &policy).unwrap();
    assert_eq!(index, 1);
    assert_eq!(
        candidates[index].public_key.unwrap().fingerprint(),
        sha256(&signer_spki)
    );

    // A modified package: INVALID_SIGNATURE, never TAMPERED_PACKAGE.
    let e = verify_any(&digests(sha256(b"the artifacT")), &candidates, &policy).unwrap_err();
    assert_eq!(e.code(), "INVALID_SIGNATURE");

    // One flipped bit of the signature: INVALID_SIGNATURE or MALFORMED_SIGNATURE, never a pass.
    for bit in 0..der.len() * 8 {
        let mut flipped = der.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        match SignatureDocument::parse(STANDARD.encode(&flipped).as_bytes()) {
            Err(e) => assert_eq!(e.code(), "MALFORMED_SIGNATURE"),
            Ok(document) => {
                let candidates = candidates_for(&document, &trusted).unwrap();
                assert!(
                    verify_any(&digests(digest), &candidates, &policy).is_err(),
                    "bit {bit}"
                );
            }
        }
    }

    // An Ed25519 key paired with a cosign signature by hand cannot verify it.
    let by_hand = [Candidate {
        signature: document.clone(),
        public_key: Some(pem::parse_verification_key(&ed).unwrap()),
    }];
    assert!(verify_any(&digests(digest), &by_hand, &policy).is_err());

    // A version-1 document naming a P-256 key's fingerprint cannot verify with it.
    let v1 = SignatureDocument::V1(
        cloacina_sign_core::signature::DetachedSignature::from_fields(
            &hex::encode(digest),
            &hex::encode(sha256(&signer_spki)),
            &STANDARD.encode([0u8; 64]),
            "2026-01-01T00:00:00Z",
        )
        .unwrap(),
    );
    let candidates = candidates_for(&v1, &trusted).unwrap();
    assert!(candidates[0].public_key.is_some());
    let e = verify_any(&digests(digest), &candidates, &policy).unwrap_err();
    assert_eq!(e.code(), "INVALID_SIGNATURE");
    assert!(e.to_string().contains("ECDSA P-256"), "{e}");
}

#[test]
fn policy_refuses_a_cosign_signature_like_version_1() {
    let (signer, spki) = test_key(31);
    let digest = sha256(b"artifact");
    let der = sign(&signer, &digest).to_der().as_bytes().to_vec();
    let candidates = candidates_for(&cosign_document(&der), &[spki]).unwrap();
    let require = Policy {
        require_v2: true,
        ..Policy::default()
    };
    let e = verify_any(&digests(digest), &candidates, &require).unwrap_err();
    assert_eq!(e.code(), "V2_REQUIRED");
    assert!(e.to_string().contains("cosign"), "{e}");
    let named = Policy {
        expect_name: Some("data-pipeline".into()),
        ..Policy::default()
    };
    let e = verify_any(&digests(digest), &candidates, &named).unwrap_err();
    assert_eq!(e.code(), "V2_REQUIRED");
    let versions = Policy {
        allowed_versions: Some(
            cloacina_sign_core::policy::AllowedVersions::parse("1.0.0").unwrap(),
        ),
        ..Policy::default()
    };
    assert_eq!(
        verify_any(&digests(digest), &candidates, &versions)
            .unwrap_err()
            .code(),
        "V2_REQUIRED"
    );
    // Expiry alone (the default policy) has nothing to check: it verifies.
    assert_eq!(
        verify_any(&digests(digest), &candidates, &Policy::default()).unwrap(),
        0
    );
}

#[test]
fn verification_keys_convert_and_compare() {
    let (_, spki) = test_key(41);
    let p256 = P256PublicKey::from_spki_der(&spki).unwrap();
    let key: VerificationKey = p256.into();
    assert_eq!(key.p256(), Some(&p256));
    assert!(key.ed25519().is_none());
    assert_eq!(key.algorithm().name(), "ecdsa-p256");
    assert_eq!(p256.spki_der().to_vec(), spki);
    assert_eq!(p256.fingerprint(), sha256(&spki));
    let (_, ed) = keys::generate_keypair();
    let ed_key: VerificationKey = keys::PublicKey::from_bytes(&ed).unwrap().into();
    assert_eq!(ed_key.algorithm().name(), "ed25519");
    assert_ne!(ed_key, key);
}

/// A throwaway P-256 test key (made by `openssl ecparam -name prime256v1 -genkey -noout`), in
/// OpenSSL's SEC1 form and, below, as PKCS#8 (`openssl pkey`).
const EC_SEC1_PEM: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIGnXZ/ck9prhS35+tMye6vlI8GF8YUv4cCI20A2I8PN+oAoGCCqGSM49
AwEHoUQDQgAEwOGXyR7MCLzbjWPc79dQfZlqD86CqYHFa0C8QC1oo2zlKwuDVa65
RIMTucBKZ5LettPaC5VL2RDFpfOaUzyf1g==
-----END EC PRIVATE KEY-----
";
const EC_PKCS8_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgaddn9yT2muFLfn60
zJ7q+UjwYXxhS/hwIjbQDYjw836hRANCAATA4ZfJHswIvNuNY9zv11B9mWoPzoKp
gcVrQLxALWijbOUrC4NVrrlEgxO5wEpnkt6209oLlUvZEMWl85pTPJ/W
-----END PRIVATE KEY-----
";

#[test]
fn ecdsa_private_keys_are_refused_for_signing_saying_ed25519_only() {
    let pkcs8_der = STANDARD
        .decode(
            EC_PKCS8_PEM
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let cosign_key =
        "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n";
    for (what, input) in [
        ("SEC1 PEM", EC_SEC1_PEM.as_bytes()),
        ("PKCS#8 PEM", EC_PKCS8_PEM.as_bytes()),
        ("PKCS#8 DER", &pkcs8_der[..]),
        ("cosign.key", cosign_key.as_bytes()),
    ] {
        let e = pem::private_key_from_any(input).unwrap_err();
        assert_eq!(e.code(), "INVALID_KEY", "{what}: {e}");
        let message = e.to_string();
        assert!(message.contains("ECDSA"), "{what}: {message}");
        assert!(
            message.contains("signs with Ed25519 only"),
            "{what}: {message}"
        );
        // The message names no key material.
        assert!(!message.contains("MHcCAQEE"), "{what}: {message}");
    }
}
