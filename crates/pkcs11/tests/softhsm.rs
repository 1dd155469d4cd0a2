//! Against a SoftHSM2 token initialized in a temporary directory (needs `softhsm2-util`).
#![cfg(not(target_family = "wasm"))]

use std::process::Command;
use std::sync::OnceLock;

use cloacina_sign_core::seal;
use cloacina_sign_pkcs11::{Pkcs11Error, TokenKey};
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "4821-test-pin";
const KNOWN_KEY: [u8; 32] = [7u8; 32];

/// One token for the whole file: SOFTHSM2_CONF is read once per process by the module.
fn token() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        std::env::set_var("SOFTHSM2_CONF", &conf);
        let status = Command::new("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                "rust-test",
                "--so-pin",
                "5678",
                "--pin",
                PIN,
            ])
            .output()
            .unwrap();
        assert!(status.status.success(), "{status:?}");
        import_known_key();
        import_extractable_key();
        dir
    })
}

/// A sensitive, non-extractable AES key with known bytes, so token sealing can be compared with
/// software sealing under the same bytes.
fn import_known_key() {
    let context = Pkcs11::new(MODULE).unwrap();
    context.initialize(CInitializeArgs::OsThreads).unwrap();
    let slot = context.get_slots_with_token().unwrap()[0];
    let session = context.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(PIN.into())))
        .unwrap();
    session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(KNOWN_KEY.to_vec()),
            Attribute::Label(b"known".to_vec()),
            Attribute::Token(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Sign(true),
        ])
        .unwrap();
}

/// Tests take turns: a session logged in by one would let another log in with any PIN (the login
/// state belongs to the application, and a second login answers CKR_USER_ALREADY_LOGGED_IN).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An AES-256 key that may leave the token: never acceptable as a KEK.
fn import_extractable_key() {
    let context = Pkcs11::new(MODULE).unwrap();
    context.initialize(CInitializeArgs::OsThreads).unwrap();
    let slot = context.get_slots_with_token().unwrap()[0];
    let session = context.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(PIN.into())))
        .unwrap();
    session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value([3u8; 32].to_vec()),
            Attribute::Label(b"extractable".to_vec()),
            Attribute::Token(true),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Sign(true),
        ])
        .unwrap();
}

fn key(object: &str, pin: &str) -> TokenKey {
    token();
    TokenKey {
        module_path: MODULE.into(),
        token_label: "rust-test".into(),
        object_label: object.into(),
        pin: Zeroizing::new(pin.into()),
    }
}

#[test]
fn when_the_token_seals_under_known_key_bytes_it_matches_software_sealing_byte_for_byte() {
    let _turn = serial();
    let nonce = [9u8; 12];
    let aad = seal::private_key_aad("k1", "o1", &[1u8; 32]);
    let in_token = key("known", PIN)
        .seal_with_nonce(&nonce, b"a private key seed", &aad)
        .unwrap();
    let in_software =
        seal::seal_with_nonce(&KNOWN_KEY, &nonce, b"a private key seed", &aad).unwrap();
    assert_eq!(in_token, in_software);
    let opened = key("known", PIN).open(&in_software, &aad).unwrap();
    assert_eq!(opened.as_slice(), b"a private key seed");
}

#[test]
fn when_a_created_kek_seals_it_opens_only_with_the_same_associated_data() {
    let _turn = serial();
    let kek = key("created", PIN);
    let first = kek.create().unwrap();
    assert!(first.created);
    let again = kek.create().unwrap();
    assert!(!again.created);
    assert_eq!(first.kek_id, again.kek_id);
    assert_eq!(first.kek_id.len(), 16);
    let sealed = kek.seal(b"seed", b"aad-1").unwrap();
    assert_eq!(kek.open(&sealed, b"aad-1").unwrap().as_slice(), b"seed");
    let wrong = kek.open(&sealed, b"aad-2");
    assert!(
        matches!(wrong, Err(Pkcs11Error::UnsealFailed(_))),
        "{wrong:?}"
    );
    assert!(!kek.value_readable().unwrap());
}

#[test]
fn when_the_pin_is_wrong_it_is_kek_unavailable_without_the_pin_in_the_message() {
    let _turn = serial();
    let err = key("known", "0000-wrong").kek_id().unwrap_err();
    assert_eq!(err.code(), "KEK_UNAVAILABLE");
    assert!(!err.to_string().contains("0000-wrong"));
    assert!(err.to_string().contains("PIN"), "{err}");
}

#[test]
fn when_the_object_is_missing_it_is_kek_unavailable() {
    let _turn = serial();
    let err = key("absent", PIN).kek_id().unwrap_err();
    assert_eq!(err.code(), "KEK_UNAVAILABLE");
}

#[test]
fn when_an_extractable_object_has_the_label_create_refuses_it_and_it_yields_no_kek_id() {
    let _turn = serial();
    let kek = key("extractable", PIN);
    assert!(matches!(kek.create(), Err(Pkcs11Error::InvalidKey(_))));
    assert!(matches!(kek.kek_id(), Err(Pkcs11Error::InvalidKey(_))));
    assert!(kek.value_readable().unwrap());
}
