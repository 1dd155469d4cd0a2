//! Wycheproof Ed25519 and AES-256-GCM vectors, read from the repository's own copy in
//! `test/vectors/` (Apache-2.0, see `test/vectors/README.md`; missing files fail the test).

use cloacina_sign_core::{keys, seal};
use serde_json::Value;

const ED25519: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../test/vectors/wycheproof/ed25519_test.json"
);
const AES_GCM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../test/vectors/wycheproof/aes_gcm_test.json"
);

fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("Wycheproof vectors missing at {path}: {e}"));
    serde_json::from_str(&text).expect("vector file is JSON")
}

fn hexf(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(
        v[field]
            .as_str()
            .unwrap_or_else(|| panic!("field {field} missing")),
    )
    .expect("hex field")
}

#[test]
fn wycheproof_ed25519_all_verdicts_match() {
    let doc = load(ED25519);
    let declared = doc["numberOfTests"].as_u64().expect("numberOfTests");
    let (mut checked, mut valid, mut invalid) = (0u64, 0u64, 0u64);
    let mut failures = Vec::new();
    for group in doc["testGroups"].as_array().expect("testGroups") {
        let pk = hex::decode(group["publicKey"]["pk"].as_str().expect("pk")).unwrap();
        for t in group["tests"].as_array().expect("tests") {
            let expect_valid = match t["result"].as_str().unwrap() {
                "valid" => true,
                "invalid" => false,
                other => panic!("unexpected result {other} in tcId {}", t["tcId"]),
            };
            let got = keys::verify(&pk, &hexf(t, "msg"), &hexf(t, "sig")).is_ok();
            if got != expect_valid {
                failures.push(format!(
                    "tcId {} ({}): expected {expect_valid}, got {got}",
                    t["tcId"], t["comment"]
                ));
            }
            checked += 1;
            if expect_valid {
                valid += 1
            } else {
                invalid += 1
            }
        }
    }
    assert!(checked > 0);
    assert_eq!(checked, declared, "every case in the file must be checked");
    assert!(valid > 0 && invalid > 0);
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn wycheproof_aes_256_gcm_96bit_iv() {
    let doc = load(AES_GCM);
    let (mut checked, mut valid, mut invalid) = (0, 0, 0);
    for group in doc["testGroups"].as_array().expect("testGroups") {
        if group["keySize"] != 256 || group["ivSize"] != 96 {
            continue;
        }
        assert_eq!(group["tagSize"], 128);
        for t in group["tests"].as_array().unwrap() {
            let id = &t["tcId"];
            let (key, iv, aad, msg, ct, tag) = (
                hexf(t, "key"),
                hexf(t, "iv"),
                hexf(t, "aad"),
                hexf(t, "msg"),
                hexf(t, "ct"),
                hexf(t, "tag"),
            );
            let iv: [u8; 12] = iv.try_into().unwrap();
            let mut sealed = iv.to_vec();
            sealed.extend_from_slice(&ct);
            sealed.extend_from_slice(&tag);
            match t["result"].as_str().unwrap() {
                "valid" => {
                    let out = seal::seal_with_nonce(&key, &iv, &msg, &aad).unwrap();
                    assert_eq!(&out[..12], &iv, "tcId {id}");
                    assert_eq!(&out[12..], &sealed[12..], "tcId {id}: ct||tag");
                    let opened = seal::open(&key, &sealed, &aad)
                        .unwrap_or_else(|e| panic!("tcId {id}: {e}"));
                    assert_eq!(&opened[..], &msg[..], "tcId {id}");
                    valid += 1;
                }
                "invalid" => {
                    let e =
                        seal::open(&key, &sealed, &aad).expect_err(&format!("tcId {id} must fail"));
                    assert_eq!(e.code(), "KEY_UNSEAL_FAILED", "tcId {id}");
                    invalid += 1;
                }
                other => panic!("unexpected result {other} in tcId {id}"),
            }
            checked += 1;
        }
    }
    assert!(
        checked > 0 && valid > 0 && invalid > 0,
        "checked {checked} valid {valid} invalid {invalid}"
    );
}
