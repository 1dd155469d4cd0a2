//! The strict reader/writer of the version-1 detached signature document.

use cloacina_sign_core::signature::{DetachedSignature, MAX_SIGNATURE_FILE_BYTES};

fn sample() -> DetachedSignature {
    let mut signature = [0u8; 64];
    for (i, b) in signature.iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    DetachedSignature {
        package_hash: [0xab; 32],
        key_fingerprint: [0x01; 32],
        signature,
        signed_at: "2025-01-02T03:04:05Z".to_string(),
    }
}

fn valid_json() -> String {
    sample().to_json()
}

/// Parses `doc` and returns the MalformedSignature message.
fn malformed(doc: &str) -> String {
    let e = DetachedSignature::parse(doc.as_bytes()).expect_err(doc);
    assert_eq!(e.code(), "MALFORMED_SIGNATURE", "{e}");
    e.to_string()
}

fn assert_msg(doc: &str, needles: &[&str]) {
    let m = malformed(doc);
    for n in needles {
        assert!(
            m.contains(n),
            "message {m:?} should contain {n:?} (doc {doc})"
        );
    }
}

/// The sample document with field `name`'s raw JSON value replaced.
fn with_field(name: &str, raw_value: &str) -> String {
    let mut v: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&valid_json()).unwrap();
    v.insert(name.to_string(), serde_json::from_str(raw_value).unwrap());
    serde_json::to_string(&v).unwrap()
}

#[test]
fn exact_serialisation_and_round_trip() {
    let s = sample();
    let json = s.to_json();
    let sig_b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s.signature)
    };
    assert_eq!(
        json,
        format!(
            "{{\"version\":1,\"algorithm\":\"ed25519\",\"package_hash\":\"{}\",\"key_fingerprint\":\"{}\",\"signature\":\"{}\",\"signed_at\":\"2025-01-02T03:04:05Z\"}}",
            "ab".repeat(32),
            "01".repeat(32),
            sig_b64
        )
    );
    assert_eq!(DetachedSignature::parse(json.as_bytes()).unwrap(), s);
}

#[test]
fn whitespace_order_and_trailing_whitespace_accepted() {
    let v: serde_json::Value = serde_json::from_str(&valid_json()).unwrap();
    let pretty = serde_json::to_string_pretty(&v).unwrap() + "\n\r\n\t ";
    assert_eq!(
        DetachedSignature::parse(pretty.as_bytes()).unwrap(),
        sample()
    );
    // Reverse field order.
    let obj = v.as_object().unwrap();
    let parts: Vec<String> = obj
        .iter()
        .rev()
        .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap(), v))
        .collect();
    let reversed = format!("{{{}}}", parts.join(" , "));
    assert_eq!(
        DetachedSignature::parse(reversed.as_bytes()).unwrap(),
        sample()
    );
}

#[test]
fn signed_at_kept_exactly_and_utc_forms() {
    for ok in [
        "2025-01-02T03:04:05z",
        "2025-01-02T03:04:05+00:00",
        "2025-01-02t03:04:05.123456789Z",
    ] {
        let doc = with_field("signed_at", &format!("\"{ok}\""));
        assert_eq!(
            DetachedSignature::parse(doc.as_bytes()).unwrap().signed_at,
            ok
        );
    }
}

#[test]
fn over_64_kib() {
    let mut doc = valid_json();
    doc.push_str(&" ".repeat(MAX_SIGNATURE_FILE_BYTES + 1 - doc.len()));
    assert_msg(&doc, &["64 KiB"]);
    // Exactly at the limit is fine (trailing whitespace).
    doc.pop();
    assert!(DetachedSignature::parse(doc.as_bytes()).is_ok());
}

#[test]
fn not_utf8() {
    let mut b = valid_json().into_bytes();
    b[30] = 0xff;
    let e = DetachedSignature::parse(&b).unwrap_err();
    assert_eq!(e.code(), "MALFORMED_SIGNATURE");
    assert!(e.to_string().contains("UTF-8"), "{e}");
}

#[test]
fn not_json() {
    assert_msg("", &["not valid JSON"]);
    assert_msg("{\"version\":1,", &["not valid JSON"]);
    assert_msg("hello", &["not valid JSON"]);
    assert_msg("\u{feff}{}", &["byte order mark"]);
}

#[test]
fn not_an_object() {
    for doc in ["[]", "1", "\"x\"", "null", "[{\"version\":1}]"] {
        assert_msg(doc, &["not a JSON object"]);
    }
}

#[test]
fn trailing_bytes() {
    assert_msg(&(valid_json() + "x"), &["trailing"]);
    assert_msg(&(valid_json() + "{}"), &["trailing"]);
    assert_msg(&(valid_json() + "\0"), &["trailing"]);
}

#[test]
fn missing_each_field() {
    for name in [
        "version",
        "algorithm",
        "package_hash",
        "key_fingerprint",
        "signature",
        "signed_at",
    ] {
        let mut v: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&valid_json()).unwrap();
        v.remove(name);
        assert_msg(
            &serde_json::to_string(&v).unwrap(),
            &["missing field", &format!("\"{name}\"")],
        );
    }
    assert_msg("{}", &["missing field \"version\""]);
}

#[test]
fn unknown_field() {
    let doc = valid_json().replacen('{', "{\"comment\":\"hi\",", 1);
    assert_msg(&doc, &["unknown field", "comment"]);
    // Field names are case-sensitive.
    let doc = valid_json().replace("\"signed_at\"", "\"Signed_At\"");
    assert_msg(&doc, &["unknown field", "Signed_At"]);
}

#[test]
fn duplicated_each_field_including_version() {
    let v: serde_json::Value = serde_json::from_str(&valid_json()).unwrap();
    for (name, value) in v.as_object().unwrap() {
        // Same value repeated at the end (the document has exactly one '}').
        let doc = valid_json().replacen('}', &format!(",\"{name}\":{value}}}"), 1);
        assert_msg(&doc, &["duplicate", name]);
        // A different value repeated at the start.
        let doc = valid_json().replacen('{', &format!("{{\"{name}\":\"other\","), 1);
        assert_msg(&doc, &["duplicate", name]);
    }
    // Escaped spelling of the same key is still a duplicate.
    let doc = valid_json().replacen('{', "{\"vers\\u0069on\":1,", 1);
    assert_msg(&doc, &["duplicate", "version"]);
}

#[test]
fn wrong_json_types() {
    assert_msg(
        &with_field("version", "\"1\""),
        &["\"version\"", "number", "string"],
    );
    assert_msg(
        &with_field("algorithm", "1"),
        &["\"algorithm\"", "string", "number"],
    );
    assert_msg(
        &with_field("package_hash", "null"),
        &["\"package_hash\"", "string", "null"],
    );
    assert_msg(
        &with_field("key_fingerprint", "[]"),
        &["\"key_fingerprint\"", "string", "array"],
    );
    assert_msg(
        &with_field("signature", "{}"),
        &["\"signature\"", "string", "object"],
    );
    assert_msg(
        &with_field("signed_at", "true"),
        &["\"signed_at\"", "string", "boolean"],
    );
}

#[test]
fn unsupported_version() {
    assert_msg(&with_field("version", "2"), &["unsupported version 2"]);
    assert_msg(&with_field("version", "0"), &["unsupported version 0"]);
    assert_msg(&with_field("version", "-1"), &["unsupported version -1"]);
    assert_msg(&with_field("version", "1.5"), &["unsupported version 1.5"]);
}

#[test]
fn unsupported_algorithm() {
    assert_msg(
        &with_field("algorithm", "\"rsa\""),
        &["unsupported algorithm \"rsa\""],
    );
    assert_msg(
        &with_field("algorithm", "\"Ed25519\""),
        &["unsupported algorithm \"Ed25519\""],
    );
}

#[test]
fn bad_hex_fields() {
    for name in ["package_hash", "key_fingerprint"] {
        let upper = format!("\"{}\"", "AB".repeat(32));
        assert_msg(
            &with_field(name, &upper),
            &[name, "lowercase hex", "uppercase"],
        );
        let short = format!("\"{}\"", "ab".repeat(31));
        assert_msg(&with_field(name, &short), &[name, "64 lowercase hex", "62"]);
        let nonhex = format!("\"{}zz\"", "ab".repeat(31));
        assert_msg(&with_field(name, &nonhex), &[name, "64 lowercase hex"]);
    }
}

#[test]
fn bad_signature_encoding() {
    use base64::Engine as _;
    let sig = sample().signature;
    let std = base64::engine::general_purpose::STANDARD.encode(sig);
    let url = base64::engine::general_purpose::URL_SAFE.encode(sig);
    assert!(url != std, "sample must differ between alphabets");
    assert_msg(
        &with_field("signature", &format!("\"{url}\"")),
        &["\"signature\"", "URL-safe"],
    );
    let unpadded = std.trim_end_matches('=');
    assert_msg(
        &with_field("signature", &format!("\"{unpadded}\"")),
        &["\"signature\"", "base64"],
    );
    let spaced = format!("{} {}", &std[..40], &std[40..]);
    assert_msg(
        &with_field("signature", &format!("\"{spaced}\"")),
        &["\"signature\"", "whitespace"],
    );
    let short = base64::engine::general_purpose::STANDARD.encode(&sig[..63]);
    assert_msg(
        &with_field("signature", &format!("\"{short}\"")),
        &["\"signature\"", "64 bytes", "63"],
    );
    let long = base64::engine::general_purpose::STANDARD.encode([0u8; 65]);
    assert_msg(
        &with_field("signature", &format!("\"{long}\"")),
        &["64 bytes", "65"],
    );
}

#[test]
fn bad_signed_at() {
    for (v, needle) in [
        ("2025-13-02T03:04:05Z", "RFC 3339"),
        ("2025-02-30T03:04:05Z", "RFC 3339"),
        ("2025-01-02", "RFC 3339"),
        ("yesterday", "RFC 3339"),
        ("2025-01-02 03:04:05Z", "RFC 3339"),
        ("2025-01-02T03:04:05", "RFC 3339"),
        ("2025-01-02T03:04:05+01:00", "UTC"),
        ("2025-01-02T03:04:05-05:30", "UTC"),
        ("2025-01-02T03:04:05-00:00", "UTC"),
    ] {
        assert_msg(
            &with_field("signed_at", &format!("\"{v}\"")),
            &["\"signed_at\"", needle],
        );
    }
}

#[test]
fn every_truncation_and_byte_change_is_safe() {
    let doc = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(&valid_json()).unwrap(),
    )
    .unwrap();
    let bytes = doc.as_bytes();
    for n in 0..bytes.len() {
        let r = DetachedSignature::parse(&bytes[..n]);
        // Only the closing brace is at the end, so any truncation is invalid.
        assert!(r.is_err(), "truncation to {n} parsed");
    }
    let interesting: &[u8] = &[
        0, b' ', b'"', b'\\', b'{', b'}', b',', b':', b'0', b'1', b'a', b'A', b'Z', b'+', b'/',
        b'=', 0x80, 0xff,
    ];
    let mut accepted = 0;
    for i in 0..bytes.len() {
        for &b in interesting
            .iter()
            .chain([bytes[i] ^ 1, bytes[i] ^ 0x20].iter())
        {
            if b == bytes[i] {
                continue;
            }
            let mut m = bytes.to_vec();
            m[i] = b;
            if let Ok(sig) = DetachedSignature::parse(&m) {
                accepted += 1;
                // Whatever is accepted must be stable under re-serialisation.
                assert_eq!(
                    DetachedSignature::parse(sig.to_json().as_bytes()).unwrap(),
                    sig
                );
            }
        }
    }
    // Some single-byte changes are legitimately valid (hex digits, whitespace).
    assert!(accepted > 0);
}

#[test]
fn hostile_inputs_do_not_panic() {
    let deep = "[".repeat(10_000);
    assert!(DetachedSignature::parse(deep.as_bytes()).is_err());
    let deep_field = format!("{{\"version\":{}}}", "[".repeat(5_000));
    assert!(DetachedSignature::parse(deep_field.as_bytes()).is_err());
    let huge = valid_json().replacen("\"version\":1", "\"version\":1e400", 1);
    assert!(huge.contains("1e400"));
    assert_msg(&huge, &["not valid JSON"]);
    let big = valid_json().replacen("\"version\":1", "\"version\":18446744073709551617", 1);
    assert_msg(&big, &["unsupported version"]);
    let long_key = format!("{{\"{}\":1}}", "k".repeat(10_000));
    let m = malformed(&long_key);
    assert!(
        m.len() < 200,
        "unknown field names are truncated in messages"
    );
}

#[test]
fn print_sample_messages() {
    // Not an assertion of wording beyond the other tests; shows messages with --nocapture.
    for doc in [
        valid_json().replacen('{', "{\"version\":1,", 1),
        with_field("signed_at", "\"2025-01-02T03:04:05+02:00\""),
        with_field("signature", "\"abc\""),
        "[1]".to_string(),
        valid_json() + "x",
    ] {
        println!("{}", malformed(&doc));
    }
}
