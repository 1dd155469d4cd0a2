//! Bounded fuzz / property test of the version-1 signature document reader and the
//! verification decision (seeded, no extra crates; see `fuzz_support` for the environment knobs
//! and the command of a longer run).
//!
//! Properties:
//! - `DetachedSignature::parse` never panics; every refusal is `MALFORMED_SIGNATURE` with a
//!   bounded message.
//! - A mutated document that still parses verifies (`verify_detached`, `verify_any` with the
//!   key resolved by fingerprint, under the original digest or under the hash it names) only if
//!   its hash, fingerprint and signature are exactly the original ones. (`signed_at` is not
//!   covered by the Ed25519 signature in version 1: a changed timestamp still verifies, and is
//!   counted.)
//! - No other text of the hash, fingerprint or signature field decodes to the same bytes.
//! - Flipping any bit of the hash, the fingerprint or the signature never verifies.

mod fuzz_support;

use std::collections::HashMap;

use cloacina_sign_core::digest::sha256;
use cloacina_sign_core::document::SignatureDocument;
use cloacina_sign_core::keys::{self, PublicKey};
use cloacina_sign_core::policy::Policy;
use cloacina_sign_core::signature::DetachedSignature;
use cloacina_sign_core::verify::{sign_digest, verify_any, verify_detached, Candidate};
use fuzz_support::{
    contains, exhaustive_step, iterations, mutate_bytes, no_panic, seed, show, Rng,
};

const SIGNED_AT: &str = "2025-06-01T12:34:56Z";

struct Fixture {
    digest: [u8; 32],
    original: DetachedSignature,
    key: PublicKey,
    /// Trusted keys by fingerprint: the signer and a second, unrelated trusted key.
    trusted: HashMap<[u8; 32], PublicKey>,
    other_fingerprint_hex: String,
    other_signature_b64: String,
    /// The other trusted key's genuine signature over the same digest: the only document besides
    /// the original that may verify through the trust lookup.
    other_genuine: DetachedSignature,
}

fn fixture() -> Fixture {
    let seed = [0x5eu8; 32];
    let other_seed = [0x6fu8; 32];
    let pk = keys::public_key_of(&seed);
    let other_pk = keys::public_key_of(&other_seed);
    let digest = sha256(b"a workflow package");
    let original = DetachedSignature {
        package_hash: digest,
        key_fingerprint: sha256(&pk),
        signature: sign_digest(&seed, &digest),
        signed_at: SIGNED_AT.to_string(),
    };
    let key = PublicKey::from_bytes(&pk).unwrap();
    let other_key = PublicKey::from_bytes(&other_pk).unwrap();
    let trusted = HashMap::from([(sha256(&pk), key), (sha256(&other_pk), other_key)]);
    let other_genuine = DetachedSignature {
        package_hash: digest,
        key_fingerprint: sha256(&other_pk),
        signature: sign_digest(&other_seed, &digest),
        signed_at: SIGNED_AT.to_string(),
    };
    Fixture {
        digest,
        original,
        key,
        trusted,
        other_fingerprint_hex: other_genuine.key_fingerprint_hex(),
        other_signature_b64: other_genuine.signature_base64(),
        other_genuine,
    }
}

#[derive(Default, Debug)]
struct Stats {
    inputs: u64,
    parsed: u64,
    parsed_same: u64,
    parsed_same_other_signed_at: u64,
    parsed_different: u64,
}

impl Fixture {
    fn same_signed_fields(&self, parsed: &DetachedSignature) -> bool {
        parsed.package_hash == self.original.package_hash
            && parsed.key_fingerprint == self.original.key_fingerprint
            && parsed.signature == self.original.signature
    }

    fn genuine_signed_fields(&self, parsed: &DetachedSignature) -> bool {
        self.same_signed_fields(parsed)
            || (parsed.package_hash == self.other_genuine.package_hash
                && parsed.key_fingerprint == self.other_genuine.key_fingerprint
                && parsed.signature == self.other_genuine.signature)
    }

    /// Every way this parsed document could be accepted must agree with its signed fields:
    /// under the signer's key only the original ones verify; through the trust lookup by
    /// fingerprint, only the original or the other trusted key's genuine signature.
    fn check_verdicts(&self, parsed: &DetachedSignature, input: &[u8]) {
        let same = self.same_signed_fields(parsed);
        let genuine = self.genuine_signed_fields(parsed);
        let resolved = self.trusted.get(&parsed.key_fingerprint).copied();
        let candidates = [Candidate {
            signature: SignatureDocument::V1(parsed.clone()),
            public_key: resolved.map(Into::into),
        }];
        // The digest of the real package, and the one the document claims (an attacker who
        // also controls the package bytes can make them match).
        for digest in [self.digest, parsed.package_hash] {
            let direct = verify_detached(&digest, parsed, &self.key);
            let any = verify_any(&sha256_only(digest), &candidates, &Policy::default());
            let verdicts = [
                ("verify_detached", direct.is_ok(), same),
                ("verify_any", any.is_ok(), genuine),
            ];
            for (name, ok, expected) in verdicts {
                assert_eq!(
                    ok,
                    expected,
                    "{name} under digest {} {} a parsed document whose signed fields {}: {}\nparsed: {parsed:?}",
                    hex::encode(digest),
                    if ok { "accepted" } else { "refused" },
                    if expected { "are genuine" } else { "differ from every genuine signature" },
                    show(input)
                );
            }
        }
    }

    /// Parse, never panic, and hold every property; returns whether it parsed.
    fn check(&self, input: &[u8], stats: &mut Stats) -> bool {
        stats.inputs += 1;
        let result = no_panic("DetachedSignature::parse", input, || {
            DetachedSignature::parse(input)
        });
        match result {
            Err(e) => {
                assert_eq!(e.code(), "MALFORMED_SIGNATURE", "{e} on {}", show(input));
                assert!(
                    e.to_string().len() < 512,
                    "unbounded message ({} bytes) on {}",
                    e.to_string().len(),
                    show(input)
                );
                false
            }
            Ok(parsed) => {
                stats.parsed += 1;
                if self.same_signed_fields(&parsed) {
                    stats.parsed_same += 1;
                    if parsed.signed_at != self.original.signed_at {
                        stats.parsed_same_other_signed_at += 1;
                    }
                } else {
                    stats.parsed_different += 1;
                }
                self.check_verdicts(&parsed, input);
                // What was read is written back and read again to the same value.
                let again = DetachedSignature::parse(parsed.to_json().as_bytes())
                    .expect("to_json output parses");
                assert_eq!(again, parsed, "round trip of {}", show(input));
                true
            }
        }
    }
}

/// One key/value pair of the document, both as raw JSON text.
#[derive(Clone)]
struct Pair {
    key: String,
    value: String,
}

fn canonical_pairs(sig: &DetachedSignature) -> Vec<Pair> {
    let s = |v: &str| format!("\"{v}\"");
    vec![
        Pair {
            key: s("version"),
            value: "1".into(),
        },
        Pair {
            key: s("algorithm"),
            value: s("ed25519"),
        },
        Pair {
            key: s("package_hash"),
            value: s(&sig.package_hash_hex()),
        },
        Pair {
            key: s("key_fingerprint"),
            value: s(&sig.key_fingerprint_hex()),
        },
        Pair {
            key: s("signature"),
            value: s(&sig.signature_base64()),
        },
        Pair {
            key: s("signed_at"),
            value: s(&sig.signed_at),
        },
    ]
}

const OTHER_VALUES: &[&str] = &[
    "0",
    "1",
    "2",
    "-1",
    "-0",
    "1.0",
    "1e0",
    "1E0",
    "01",
    "1.5",
    "18446744073709551617",
    "1e400",
    "true",
    "false",
    "null",
    "[]",
    "{}",
    "\"\"",
    "\"1\"",
    "[1]",
    "{\"version\":1}",
    "\"ed25519\"",
    "\"Ed25519\"",
    "\"ed25519 \"",
    "\"ed25519\\u0000\"",
    "[[[[[[[[]]]]]]]]",
    "{\"a\":{\"a\":1,\"a\":2}}",
    "\"\\ud800\"",
    "\"\\udc00\\ud800\"",
    "\"é\"",
    "NaN",
    "Infinity",
    "\"\\/\"",
];

const OTHER_KEYS: &[&str] = &[
    "\"Version\"",
    "\"version \"",
    "\"\"",
    "\"x\"",
    "\"\\u0076ersion\"",
    "\"\\u0070ackage_hash\"",
    "\"signatur\\u0065\"",
    "\"signed_at\\u0000\"",
    "\"key-fingerprint\"",
    "\"signedAt\"",
    "\"__proto__\"",
    "\"algorithm\"",
    "\"signature\"",
    "\"package_hash\"",
    "\"key_fingerprint\"",
    "\"signed_at\"",
    "\"version\"",
];

const TIMESTAMPS: &[&str] = &[
    "2025-06-01T12:34:56Z",
    "2025-06-01T12:34:57Z",
    "2025-06-01t12:34:56z",
    "2025-06-01T12:34:56+00:00",
    "2025-06-01T12:34:56-00:00",
    "2025-06-01T12:34:56+01:00",
    "2025-06-01 12:34:56Z",
    "2025-06-01T12:34:56.123456789Z",
    "2025-06-01T12:34:56.Z",
    "2025-06-01T23:59:60Z",
    "2025-02-30T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2025-06-01T12:34:56",
    "2025-06-01",
    "",
    "2025-06-01T12:34:56Z\u{0}",
    "2025-06-01T12:34:56\u{ff3a}",
];

/// Characters a careless or hostile edit might put into a string value.
const CHARS: &[&str] = &[
    "0", "9", "a", "f", "g", "A", "F", "Z", "+", "/", "=", "-", "_", " ", "\\n", "\\t", "\\u0061",
    "\\u0041", "\\\"", "\\\\", "é", "\u{ff10}", "\u{0660}", "\\u0000", "\u{feff}",
];

/// Inverse of the string values this generator writes: drop the quotes.
fn inner(value: &str) -> Option<&str> {
    value.strip_prefix('"').and_then(|v| v.strip_suffix('"'))
}

/// `c` written as a JSON `\uXXXX` escape (upper or lower hex digits).
fn escape_char(c: char, upper: bool) -> String {
    let mut buf = [0u16; 2];
    c.encode_utf16(&mut buf)
        .iter()
        .map(|u| {
            if upper {
                format!("\\u{u:04X}")
            } else {
                format!("\\u{u:04x}")
            }
        })
        .collect()
}

fn mutate_string_value(rng: &mut Rng, value: &str) -> String {
    let Some(text) = inner(value) else {
        return rng.pick(OTHER_VALUES).to_string();
    };
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let mut out: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
    match rng.below(7) {
        // Replace, insert or delete one character.
        0 if n > 0 => out[rng.below(n)] = rng.pick(CHARS).to_string(),
        1 => out.insert(rng.below(n + 1), rng.pick(CHARS).to_string()),
        2 if n > 0 => {
            out.remove(rng.below(n));
        }
        // The same character as a unicode escape: the same string once decoded.
        3 if n > 0 => {
            let i = rng.below(n);
            out[i] = escape_char(chars[i], rng.chance(1, 2));
        }
        // Case change of one character.
        4 if n > 0 => {
            let i = rng.below(n);
            out[i] = if chars[i].is_ascii_lowercase() {
                chars[i].to_ascii_uppercase()
            } else {
                chars[i].to_ascii_lowercase()
            }
            .to_string();
        }
        // Truncation or doubling.
        5 => out.truncate(rng.below(n + 1)),
        _ => out = [out.clone(), out].concat(),
    }
    format!("\"{}\"", out.concat())
}

/// Base64 text of the signature with non-zero trailing bits: decodes to the same 64 bytes in a
/// lax decoder.
fn signature_with_trailing_bits(b64: &str, which: u8) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let body = b64.trim_end_matches('=');
    let last = body.as_bytes()[body.len() - 1];
    let index = ALPHABET.iter().position(|&c| c == last).unwrap();
    // 64 bytes: 86 characters, the last one carries 2 data bits and 4 padding bits.
    let changed = ALPHABET[(index & !0x0f) | (1 + (which as usize % 15))] as char;
    format!("{}{changed}==", &body[..body.len() - 1])
}

fn structural_mutation(rng: &mut Rng, fx: &Fixture, pairs: &mut Vec<Pair>) {
    let n = pairs.len();
    match rng.below(14) {
        0 if n > 0 => {
            pairs.remove(rng.below(n));
        }
        1 if n > 0 => {
            let mut copy = pairs[rng.below(n)].clone();
            if rng.chance(1, 2) {
                copy.value = mutate_string_value(rng, &copy.value);
            }
            pairs.insert(rng.below(n + 1), copy);
        }
        2 => rng.shuffle(pairs),
        3 if n > 1 => {
            let (i, j) = (rng.below(n), rng.below(n));
            let v = pairs[i].value.clone();
            pairs[i].value = std::mem::replace(&mut pairs[j].value, v);
        }
        4 if n > 0 => pairs[rng.below(n)].value = rng.pick(OTHER_VALUES).to_string(),
        5 if n > 0 => pairs[rng.below(n)].key = rng.pick(OTHER_KEYS).to_string(),
        6 if n > 0 => {
            let i = rng.below(n);
            pairs[i].key = mutate_string_value(rng, &pairs[i].key);
        }
        7 | 8 if n > 0 => {
            let i = rng.below(n);
            pairs[i].value = mutate_string_value(rng, &pairs[i].value);
        }
        9 => {
            if let Some(p) = pairs.iter_mut().find(|p| p.key == "\"signed_at\"") {
                p.value = serde_json::to_string(rng.pick(TIMESTAMPS)).unwrap();
            }
        }
        10 => {
            if let Some(p) = pairs.iter_mut().find(|p| p.key == "\"signature\"") {
                let b64 = fx.original.signature_base64();
                p.value = format!(
                    "\"{}\"",
                    match rng.below(6) {
                        0 => signature_with_trailing_bits(&b64, rng.byte()),
                        1 => b64.replace('+', "-").replace('/', "_"),
                        2 => b64.trim_end_matches('=').to_string(),
                        3 => format!("{b64}="),
                        4 => format!("{} {}", &b64[..44], &b64[44..]),
                        _ => fx.other_signature_b64.clone(),
                    }
                );
            }
        }
        11 => {
            if let Some(p) = pairs.iter_mut().find(|p| p.key == "\"key_fingerprint\"") {
                p.value = format!("\"{}\"", fx.other_fingerprint_hex);
            }
        }
        12 if n > 0 => {
            // A value nested one level deeper.
            let i = rng.below(n);
            pairs[i].value = if rng.chance(1, 2) {
                format!("[{}]", pairs[i].value)
            } else {
                format!("{{{}:{}}}", pairs[i].key, pairs[i].value)
            };
        }
        _ => pairs.push(Pair {
            key: rng.pick(OTHER_KEYS).to_string(),
            value: rng.pick(OTHER_VALUES).to_string(),
        }),
    }
}

/// Whitespace between tokens: mostly JSON whitespace, sometimes characters that are not.
fn gap(rng: &mut Rng) -> &'static str {
    if rng.chance(3, 4) {
        return "";
    }
    const GAPS: [&str; 12] = [
        " ", "\n", "\t", "\r\n", "  \n  ", " ", "\n\n", "\u{a0}", "\x0b", "\x0c", "\u{feff}",
        "\u{2028}",
    ];
    let usable = if rng.chance(9, 10) { 7 } else { GAPS.len() };
    GAPS[rng.below(usable)]
}

fn render(rng: &mut Rng, pairs: &[Pair]) -> String {
    let mut out = String::new();
    out.push_str(gap(rng));
    out.push('{');
    for (i, p) in pairs.iter().enumerate() {
        if i > 0 {
            out.push_str(gap(rng));
            out.push(',');
        }
        out.push_str(gap(rng));
        out.push_str(&p.key);
        out.push_str(gap(rng));
        out.push(':');
        out.push_str(gap(rng));
        out.push_str(&p.value);
    }
    out.push_str(gap(rng));
    out.push('}');
    out.push_str(gap(rng));
    out
}

fn text_level_mutation(rng: &mut Rng, doc: &mut Vec<u8>) {
    match rng.below(6) {
        0 => doc.splice(0..0, "\u{feff}".bytes()).for_each(drop),
        1 => {
            const TAILS: [&[u8]; 8] = [b"x", b"{}", b"\0", b" \n", b",", b"}", b"//", b"/* */"];
            doc.extend_from_slice(TAILS[rng.below(TAILS.len())])
        }
        2 if !doc.is_empty() => {
            let i = rng.below(doc.len());
            doc[i] = *rng.pick(b"{}[]:,\"\\ 0aZ");
        }
        _ => mutate_bytes(rng, doc),
    }
}

fn run_target(name: &str, fx: &Fixture, mut generate: impl FnMut(&mut Rng) -> Vec<u8>) -> Stats {
    let (seed, n) = (seed(), iterations());
    let mut stats = Stats::default();
    for i in 0..n {
        let mut rng = Rng::for_iteration(seed, name, i);
        let input = generate(&mut rng);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            fx.check(&input, &mut stats)
        }));
        if let Err(panic) = outcome {
            eprintln!("fuzz target {name}: failure at CLOACINA_FUZZ_SEED={seed:#x}, iteration {i}, input {}", show(&input));
            std::panic::resume_unwind(panic);
        }
    }
    eprintln!("fuzz target {name} (seed {seed:#x}, {n} iterations): {stats:?}");
    stats
}

#[test]
fn fuzz_parse_random_bytes() {
    let fx = fixture();
    let doc = fx.original.to_json().into_bytes();
    run_target("signature/random-bytes", &fx, |rng| match rng.below(5) {
        0 => {
            let len = rng.range(0, 400);
            rng.bytes(len)
        }
        1 => {
            // Text over a JSON-ish alphabet.
            let len = rng.range(0, 300);
            (0..len)
                .map(|_| *rng.pick(b"{}[]:,\"\\ \n\t0123456789abcdef-+.eEtruflsn_/=Z"))
                .collect()
        }
        2 => {
            // Deep nesting, long strings, long numbers, the size limit.
            let depth = rng.range(1, 5000);
            match rng.below(4) {
                0 => [vec![b'['; depth], vec![b']'; depth]].concat(),
                1 => [b"{\"version\":".to_vec(), vec![b'['; depth]].concat(),
                2 => format!("{{\"signed_at\":\"{}\"}}", "9".repeat(depth * 14)).into_bytes(),
                _ => {
                    let mut big = doc.clone();
                    let pad = 64 * 1024 + rng.range(0, 2) - doc.len();
                    big.extend(std::iter::repeat_n(b' ', pad));
                    big
                }
            }
        }
        _ => {
            // The valid document with a few byte-level mutations.
            let mut d = doc.clone();
            for _ in 0..rng.range(1, 4) {
                mutate_bytes(rng, &mut d);
            }
            d
        }
    });
}

#[test]
fn fuzz_parse_json_mutations_of_a_valid_document() {
    let fx = fixture();
    let stats = run_target("signature/json-mutations", &fx, |rng| {
        let mut pairs = canonical_pairs(&fx.original);
        for _ in 0..rng.range(0, 3) {
            structural_mutation(rng, &fx, &mut pairs);
        }
        let mut doc = render(rng, &pairs).into_bytes();
        if rng.chance(1, 4) {
            for _ in 0..rng.range(1, 2) {
                text_level_mutation(rng, &mut doc);
            }
        }
        doc
    });
    // The generator is not degenerate: some mutations still parse, to the same signed fields
    // (whitespace, order, escapes) and to different ones (e.g. swapped or replaced values).
    if iterations() >= 1000 {
        assert!(stats.parsed_same > 0, "{stats:?}");
        assert!(stats.parsed_different > 0, "{stats:?}");
    }
}

#[test]
fn valid_reformattings_parse_to_the_same_fields() {
    let fx = fixture();
    let (seed, n) = (seed(), iterations() / 10);
    for i in 0..n {
        let mut rng = Rng::for_iteration(seed, "signature/reformat", i);
        let mut pairs = canonical_pairs(&fx.original);
        rng.shuffle(&mut pairs);
        let mut doc = String::from(" \n");
        doc.push('{');
        for (j, p) in pairs.iter().enumerate() {
            let ws = |rng: &mut Rng| *rng.pick(&["", " ", "\n", "\t", "\r\n"]);
            if j > 0 {
                doc.push(',');
            }
            doc.push_str(ws(&mut rng));
            doc.push_str(&p.key);
            doc.push_str(ws(&mut rng));
            doc.push(':');
            doc.push_str(ws(&mut rng));
            doc.push_str(&p.value);
            doc.push_str(ws(&mut rng));
        }
        doc.push_str("}\n");
        let parsed =
            DetachedSignature::parse(doc.as_bytes()).unwrap_or_else(|e| panic!("{e}: {doc:?}"));
        assert_eq!(parsed, fx.original, "{doc:?}");
        verify_detached(&fx.digest, &parsed, &fx.key).unwrap();
    }
}

/// Every single-character change of the hash, fingerprint and signature texts: either refused,
/// or (for a change to another valid character) read as different bytes, which never verify.
#[test]
fn no_other_text_of_a_signed_field_means_the_same_bytes() {
    let fx = fixture();
    let pairs = canonical_pairs(&fx.original);
    let mut stats = Stats::default();
    for field in ["package_hash", "key_fingerprint", "signature"] {
        let idx = pairs
            .iter()
            .position(|p| p.key == format!("\"{field}\""))
            .unwrap();
        let text = inner(&pairs[idx].value).unwrap().to_string();
        for pos in (0..text.len()).step_by(exhaustive_step()) {
            for c in (0x20u8..0x7f).map(char::from).chain(['é', '\u{ff10}']) {
                if c == '"' || c == '\\' || text.as_bytes()[pos] == c as u8 {
                    continue;
                }
                let mut changed = text.clone();
                changed.replace_range(pos..pos + 1, &c.to_string());
                let mut p = pairs.clone();
                p[idx].value = format!("\"{changed}\"");
                let doc: String = format!(
                    "{{{}}}",
                    p.iter()
                        .map(|p| format!("{}:{}", p.key, p.value))
                        .collect::<Vec<_>>()
                        .join(",")
                );
                if fx.check(doc.as_bytes(), &mut stats) {
                    let parsed = DetachedSignature::parse(doc.as_bytes()).unwrap();
                    assert!(
                        !fx.same_signed_fields(&parsed),
                        "{field} text {changed:?} decodes to the original bytes"
                    );
                }
            }
        }
        // The non-canonical base64 tails of the same 64 bytes.
        if field == "signature" {
            for which in 0..15 {
                let mut p = pairs.clone();
                p[idx].value = format!("\"{}\"", signature_with_trailing_bits(&text, which));
                let doc: String = format!(
                    "{{{}}}",
                    p.iter()
                        .map(|p| format!("{}:{}", p.key, p.value))
                        .collect::<Vec<_>>()
                        .join(",")
                );
                assert!(
                    !fx.check(doc.as_bytes(), &mut stats),
                    "non-canonical base64 accepted: {doc}"
                );
            }
        }
    }
    assert!(stats.parsed_different > 0, "{stats:?}");
    assert_eq!(stats.parsed_same, 0, "{stats:?}");
}

fn flip(bytes: &mut [u8], bit: usize) {
    bytes[bit / 8] ^= 1 << (bit % 8);
}

#[test]
fn flipping_any_bit_of_hash_fingerprint_or_signature_never_verifies() {
    let fx = fixture();
    let mut stats = Stats::default();
    for bit in (0..(256 + 256 + 512)).step_by(exhaustive_step()) {
        let mut sig = fx.original.clone();
        match bit {
            0..256 => flip(&mut sig.package_hash, bit),
            256..512 => flip(&mut sig.key_fingerprint, bit - 256),
            _ => flip(&mut sig.signature, bit - 512),
        }
        // Directly, under the real digest and under the claimed one, with the key resolved by
        // fingerprint or forced to the signer's.
        fx.check_verdicts(&sig, format!("bit {bit}").as_bytes());
        for digest in [fx.digest, sig.package_hash] {
            assert!(
                verify_detached(&digest, &sig, &fx.key).is_err(),
                "bit {bit}"
            );
            let forced = [Candidate {
                signature: SignatureDocument::V1(sig.clone()),
                public_key: Some(fx.key.into()),
            }];
            assert!(
                verify_any(&sha256_only(digest), &forced, &Policy::default()).is_err(),
                "bit {bit}"
            );
            // With the original beside it, the original is what verifies (under the real digest).
            let both = [
                forced[0].clone(),
                Candidate {
                    signature: SignatureDocument::V1(fx.original.clone()),
                    public_key: Some(fx.key.into()),
                },
            ];
            assert_eq!(
                verify_any(&sha256_only(fx.digest), &both, &Policy::default()).ok(),
                Some(1),
                "bit {bit}"
            );
        }
        // And through the document.
        let doc = sig.to_json();
        assert!(fx.check(doc.as_bytes(), &mut stats));
    }
    assert_eq!(stats.parsed_same, 0);
}

/// The malleable twin of the signature (S + L, the same point equation) is refused.
#[test]
fn non_canonical_s_never_verifies() {
    let fx = fixture();
    // L = 2^252 + 27742317777372353535851937790883648493, little-endian.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut sig = fx.original.clone();
    let mut carry = 0u16;
    for (s, l) in sig.signature[32..].iter_mut().zip(L) {
        let sum = *s as u16 + l as u16 + carry;
        *s = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    assert_ne!(sig.signature, fx.original.signature);
    fx.check_verdicts(&sig, b"S + L");
    let mut stats = Stats::default();
    assert!(fx.check(sig.to_json().as_bytes(), &mut stats));
    assert!(!contains(
        sig.to_json().as_bytes(),
        fx.original.signature_base64().as_bytes()
    ));
}

/// The package digests of a version-1 check: its SHA-256 only.
fn sha256_only(digest: [u8; 32]) -> cloacina_sign_core::digest::PackageDigests {
    cloacina_sign_core::digest::PackageDigests {
        size: 0,
        sha256: Some(digest),
        blake3: None,
    }
}
