//! The version-2 document: its signed message byte for byte, canonical JSON, and strict reading.

use cloacina_sign_core::document::SignatureDocument;
use cloacina_sign_core::keys;
use cloacina_sign_core::statement::{DigestAlgorithm, SignedStatement, Statement, CONTEXT};

const SEED: [u8; 32] = [9u8; 32];

fn statement() -> Statement {
    Statement {
        name: "data-pipeline".into(),
        version: "1.2.0".into(),
        organization: Some("acme".into()),
        size: 16384,
        digest_algorithm: DigestAlgorithm::Blake3,
        digest: [0xab; 32],
        issued_at: "2026-11-25T10:00:00Z".into(),
        expires_at: Some("2027-02-23T10:00:00Z".into()),
    }
}

fn signed() -> SignedStatement {
    statement().sign(&SEED).unwrap()
}

fn parse(text: &str) -> Result<SignatureDocument, String> {
    SignatureDocument::parse(text.as_bytes()).map_err(|e| e.to_string())
}

/// The document with one JSON edit applied to the canonical text.
fn edited(from: &str, to: &str) -> String {
    let json = signed().to_json();
    assert!(json.contains(from), "{from} not in {json}");
    json.replacen(from, to, 1)
}

#[test]
fn the_signed_message_is_the_documented_encoding() {
    let mut expected = Vec::new();
    expected.extend_from_slice(b"cloacina-sign/package-statement/v2\0");
    for field in ["data-pipeline", "1.2.0", "acme"] {
        expected.extend_from_slice(&(field.len() as u32).to_be_bytes());
        expected.extend_from_slice(field.as_bytes());
    }
    expected.extend_from_slice(&16384u64.to_be_bytes());
    expected.extend_from_slice(&6u32.to_be_bytes());
    expected.extend_from_slice(b"blake3");
    expected.extend_from_slice(&[0xab; 32]);
    for field in ["2026-11-25T10:00:00Z", "2027-02-23T10:00:00Z"] {
        expected.extend_from_slice(&(field.len() as u32).to_be_bytes());
        expected.extend_from_slice(field.as_bytes());
    }
    assert_eq!(statement().signed_message(), expected);
    assert_eq!(CONTEXT, "cloacina-sign/package-statement/v2");

    // An absent optional field is 0xFFFFFFFF, never the same bytes as a present one.
    let mut without = statement();
    without.organization = None;
    without.expires_at = None;
    let message = without.signed_message();
    let org_at = CONTEXT.len() + 1 + 4 + 13 + 4 + 5;
    assert_eq!(&message[org_at..org_at + 4], &[0xff; 4]);
    assert_eq!(&message[message.len() - 4..], &[0xff; 4]);
}

#[test]
fn the_signature_is_ed25519_over_the_message_by_the_named_key() {
    let doc = signed();
    let public_key = keys::public_key_of(&SEED);
    assert_eq!(
        doc.key_fingerprint,
        cloacina_sign_core::digest::sha256(&public_key)
    );
    keys::verify(&public_key, &doc.statement.signed_message(), &doc.signature).unwrap();
    // Not a signature over the bare digest (a version-1 message).
    assert!(keys::verify(&public_key, &doc.statement.digest, &doc.signature).is_err());
}

#[test]
fn canonical_json_reads_back_to_the_same_fields() {
    let doc = signed();
    let json = doc.to_json();
    assert!(json.starts_with(r#"{"version":2,"algorithm":"ed25519","statement":{"name":"data-pipeline","version":"1.2.0","organization":"acme","size":16384,"digest_algorithm":"blake3","digest":""#));
    assert_eq!(
        SignatureDocument::parse(json.as_bytes()).unwrap(),
        SignatureDocument::V2(doc.clone())
    );
    // Any field order and whitespace (serde_json writes keys sorted, and pretty).
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let spaced = serde_json::to_string_pretty(&value).unwrap();
    assert_ne!(spaced, json);
    assert_eq!(
        SignatureDocument::parse(spaced.as_bytes()).unwrap(),
        SignatureDocument::V2(doc)
    );
}

#[test]
fn optional_fields_are_omitted_when_absent_never_null() {
    let mut bare = statement();
    bare.organization = None;
    bare.expires_at = None;
    let json = bare.sign(&SEED).unwrap().to_json();
    assert!(
        !json.contains("organization") && !json.contains("expires_at"),
        "{json}"
    );
    SignatureDocument::parse(json.as_bytes()).unwrap();
    let null = json.replace(r#""size""#, r#""organization":null,"size""#);
    assert!(parse(&null)
        .unwrap_err()
        .contains("\"organization\" must be a JSON string"));
}

#[test]
fn every_malformed_document_says_what_is_wrong() {
    let cases: Vec<(String, &str)> = vec![
        (
            edited(
                r#""name":"data-pipeline""#,
                r#""name":"data-pipeline","name":"other""#,
            ),
            "duplicated field \"name\"",
        ),
        (
            edited(
                r#""name":"data-pipeline""#,
                r#""nam\u0065":"x","name":"data-pipeline""#,
            ),
            "duplicated field \"name\"",
        ),
        (
            edited(r#""name":"data-pipeline","#, ""),
            "missing field \"name\"",
        ),
        (
            edited(r#""size":16384"#, r#""size":16384,"colour":"red""#),
            "unknown field \"colour\"",
        ),
        (
            edited(r#""size":16384"#, r#""size":16384.0"#),
            "\"size\" must be an integer",
        ),
        (
            edited(r#""size":16384"#, r#""size":1.6384e4"#),
            "\"size\" must be an integer",
        ),
        (
            edited(r#""size":16384"#, r#""size":-1"#),
            "\"size\" must be an integer",
        ),
        (
            edited(r#""size":16384"#, r#""size":9007199254740992"#),
            "\"size\" must be an integer",
        ),
        (
            edited(r#""size":16384"#, r#""size":"16384""#),
            "\"size\" must be a JSON number",
        ),
        (
            edited(r#""version":"1.2.0""#, r#""version":"v1.2""#),
            "not a SemVer 2.0.0 version",
        ),
        (
            edited(r#""version":"1.2.0""#, r#""version":"01.2.0""#),
            "not a SemVer 2.0.0 version",
        ),
        (
            edited(
                r#""digest_algorithm":"blake3""#,
                r#""digest_algorithm":"md5""#,
            ),
            "unsupported digest_algorithm",
        ),
        (
            edited(r#""name":"data-pipeline""#, r#""name":"""#),
            "\"name\" must be 1 to 255 bytes",
        ),
        (
            edited(
                r#""name":"data-pipeline""#,
                r#""name":"data\u0007pipeline""#,
            ),
            "control character",
        ),
        (
            edited(
                r#""name":"data-pipeline""#,
                r#""name":"data\u2028pipeline""#,
            ),
            "control character",
        ),
        (
            edited(
                r#""name":"data-pipeline""#,
                r#""name":"data\u202epipeline""#,
            ),
            "bidirectional",
        ),
        (
            edited(
                r#""issued_at":"2026-11-25T10:00:00Z""#,
                r#""issued_at":"2026-11-25T10:00:00+01:00""#,
            ),
            "must be in UTC",
        ),
        (
            edited(
                r#""expires_at":"2027-02-23T10:00:00Z""#,
                r#""expires_at":"2026-11-25T09:00:00Z""#,
            ),
            "later than",
        ),
        (
            edited(
                r#""issued_at":"2026-11-25T10:00:00Z""#,
                r#""issued_at":"2026-11-25t10:00:00z""#,
            ),
            "must be written YYYY-MM-DDTHH:MM:SS",
        ),
        (
            edited(
                r#""issued_at":"2026-11-25T10:00:00Z""#,
                r#""issued_at":"2026-11-25T10:00:00+00:00""#,
            ),
            "must be written YYYY-MM-DDTHH:MM:SS",
        ),
        (
            edited(
                r#""issued_at":"2026-11-25T10:00:00Z""#,
                r#""issued_at":"2026-11-25T10:00:60Z""#,
            ),
            "must be written YYYY-MM-DDTHH:MM:SS",
        ),
        (
            edited(r#""version":2"#, r#""version":3"#),
            "unsupported version 3",
        ),
        (
            edited(r#""version":2"#, r#""version":"2""#),
            "must be a JSON number",
        ),
        (
            edited(r#""algorithm":"ed25519""#, r#""algorithm":"rsa""#),
            "unsupported algorithm",
        ),
        (
            edited(r#""statement":{"#, r#""statement":[{"#).replacen("},\"key", "}],\"key", 1),
            "must be a JSON object",
        ),
        (format!("{} x", signed().to_json()), "trailing bytes"),
    ];
    for (document, expected) in cases {
        let error = parse(&document).expect_err(&document);
        assert!(
            error.contains(expected),
            "{document}\n  -> {error}\n  expected: {expected}"
        );
    }
}

#[test]
fn a_name_of_exactly_255_bytes_is_fine_and_256_is_not() {
    let mut long = statement();
    long.name = "n".repeat(255);
    long.clone().sign(&SEED).unwrap();
    long.name.push('n');
    assert!(long.sign(&SEED).is_err());
}
