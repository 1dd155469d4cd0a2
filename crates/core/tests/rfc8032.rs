//! RFC 8032 section 7.1 Ed25519 test vectors.

use cloacina_sign_core::keys;

struct Vector {
    seed: &'static str,
    public: &'static str,
    msg: &'static str,
    sig: &'static str,
}

const VECTORS: [Vector; 3] = [
    Vector {
        seed: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        public: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        msg: "",
        sig: "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    },
    Vector {
        seed: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        public: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        msg: "72",
        sig: "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    },
    Vector {
        seed: "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        public: "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        msg: "af82",
        sig: "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    },
];

fn check(seed_hex: &str, public_hex: &str, msg: &[u8], sig_hex: &str) {
    let seed: [u8; 32] = hex::decode(seed_hex).unwrap().try_into().unwrap();
    let public = hex::decode(public_hex).unwrap();
    let sig = hex::decode(sig_hex).unwrap();
    assert_eq!(
        keys::public_key_of(&seed).to_vec(),
        public,
        "public key of {seed_hex}"
    );
    assert_eq!(
        keys::sign(&seed, msg).to_vec(),
        sig,
        "signature by {public_hex}"
    );
    keys::verify(&public, msg, &sig).unwrap();
    // One flipped message bit must break it.
    let mut bad = msg.to_vec();
    bad.push(0);
    assert!(keys::verify(&public, &bad, &sig).is_err());
}

#[test]
fn rfc8032_tests_1_to_3() {
    for v in &VECTORS {
        check(v.seed, v.public, &hex::decode(v.msg).unwrap(), v.sig);
    }
}

/// TEST 1024: the 1023-byte message and its signature are taken from the
/// Wycheproof file (which reproduces it verbatim); the seed and public key are
/// from the RFC, so this also cross-checks the two sources.
#[test]
fn rfc8032_test_1024() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../test/vectors/wycheproof/ed25519_test.json"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("wycheproof file")).unwrap();
    let public = "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e";
    let group = doc["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["publicKey"]["pk"] == public)
        .expect("TEST 1024 key in wycheproof file");
    let t = group["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["result"] == "valid" && t["msg"].as_str().unwrap().len() == 2046)
        .expect("1023-byte message");
    assert!(t["sig"].as_str().unwrap().starts_with("0aab4c900501b3e2"));
    check(
        "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
        public,
        &hex::decode(t["msg"].as_str().unwrap()).unwrap(),
        t["sig"].as_str().unwrap(),
    );
}
