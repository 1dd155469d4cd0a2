//! The token operations, over the `cryptoki` crate. One session per operation, logged in as the
//! user; the module context is kept per module path and dropped (C_Finalize) after a failure that
//! may mean the token went away, so the next operation re-reads the module's view of its tokens and
//! a returning token is found without restarting the process.
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, RwLock, RwLockReadGuard};

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::{Pkcs11Error, Result, TokenKey, NONCE_LEN, TAG_LEN};

/// One loaded module; `None` until initialized, and again after a reset.
struct Module {
    path: String,
    context: RwLock<Option<Pkcs11>>,
}

static MODULES: LazyLock<Mutex<HashMap<String, Arc<Module>>>> = LazyLock::new(Default::default);

fn module(path: &str) -> Arc<Module> {
    let mut modules = MODULES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    modules
        .entry(path.to_string())
        .or_insert_with(|| {
            Arc::new(Module {
                path: path.to_string(),
                context: RwLock::new(None),
            })
        })
        .clone()
}

impl Module {
    fn context(&self) -> Result<RwLockReadGuard<'_, Option<Pkcs11>>> {
        loop {
            let current = self.context.read().unwrap_or_else(|p| p.into_inner());
            if current.is_some() {
                return Ok(current);
            }
            drop(current);
            let mut slot = self.context.write().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                let context = Pkcs11::new(&self.path).map_err(|err| {
                    Pkcs11Error::Unavailable(format!(
                        "the PKCS#11 module {} cannot be loaded: {err}",
                        self.path
                    ))
                })?;
                context
                    .initialize(CInitializeArgs::OsThreads)
                    .map_err(|err| unavailable("initializing the PKCS#11 module", err))?;
                *slot = Some(context);
            }
        }
    }

    /// Forgets the context (C_Finalize once its last session closed).
    fn reset(&self) {
        self.context
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

fn unavailable(what: &str, err: Error) -> Pkcs11Error {
    let reason = match &err {
        Error::Pkcs11(RvError::PinIncorrect, _) => "the token refused the PIN".to_string(),
        Error::Pkcs11(RvError::PinLocked, _) => "the token's user PIN is locked".to_string(),
        Error::Pkcs11(RvError::TokenNotPresent, _) | Error::Pkcs11(RvError::DeviceRemoved, _) => {
            "the token is not present".to_string()
        }
        _ => err.to_string(),
    };
    Pkcs11Error::Unavailable(format!("{what}: {reason}"))
}

/// Runs `op` in a fresh logged-in session on the key's token, with the key object when it exists.
fn with_session<T>(
    key: &TokenKey,
    read_write: bool,
    op: impl FnOnce(&Session, Option<ObjectHandle>) -> Result<T>,
) -> Result<T> {
    let module = module(&key.module_path);
    let result = (|| {
        let guard = module.context()?;
        let context = guard.as_ref().expect("initialized above");
        let slot = find_slot(context, &key.token_label)?;
        let session = if read_write {
            context.open_rw_session(slot)
        } else {
            context.open_ro_session(slot)
        }
        .map_err(|err| unavailable("opening a session on the token", err))?;
        let pin = AuthPin::new(key.pin.as_str().to_owned());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(err) => return Err(unavailable("logging in to the token", err)),
        }
        let object = find_key(&session, &key.object_label)?;
        op(&session, object)
    })();
    if matches!(result, Err(Pkcs11Error::Unavailable(_))) {
        module.reset();
    }
    result
}

fn find_slot(context: &Pkcs11, label: &str) -> Result<cryptoki::slot::Slot> {
    let slots = context
        .get_slots_with_token()
        .map_err(|err| unavailable("listing the module's tokens", err))?;
    for slot in slots {
        if let Ok(info) = context.get_token_info(slot) {
            if info.label().trim_end() == label {
                return Ok(slot);
            }
        }
    }
    Err(Pkcs11Error::Unavailable(format!(
        "no token labelled \"{label}\" is present"
    )))
}

fn find_key(session: &Session, label: &str) -> Result<Option<ObjectHandle>> {
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(|err| unavailable("searching the token for the key object", err))?;
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(Pkcs11Error::InvalidKey(format!(
            "the token holds {} secret keys labelled \"{label}\"; the KEK must be one",
            found.len()
        ))),
    }
}

fn required(object: Option<ObjectHandle>, key: &TokenKey) -> Result<ObjectHandle> {
    object.ok_or_else(|| {
        Pkcs11Error::Unavailable(format!(
            "the token \"{}\" holds no secret key labelled \"{}\" (create it with `cloacina-sign kek create --pkcs11`)",
            key.token_label, key.object_label
        ))
    })
}

/// Checks the object is what a KEK must be: AES, 32 bytes, sensitive, never extractable.
fn check_fit(session: &Session, object: ObjectHandle) -> Result<()> {
    let attributes = session
        .get_attributes(
            object,
            &[
                AttributeType::KeyType,
                AttributeType::ValueLen,
                AttributeType::Sensitive,
                AttributeType::Extractable,
            ],
        )
        .map_err(|err| unavailable("reading the key object's attributes", err))?;
    let mut fit = (false, false, false, false);
    for attribute in attributes {
        match attribute {
            Attribute::KeyType(kind) => fit.0 = kind == KeyType::AES,
            Attribute::ValueLen(len) => fit.1 = u64::from(len) == 32,
            Attribute::Sensitive(sensitive) => fit.2 = sensitive,
            Attribute::Extractable(extractable) => fit.3 = !extractable,
            _ => {}
        }
    }
    match fit {
        (true, true, true, true) => Ok(()),
        (_, _, _, false) => Err(Pkcs11Error::InvalidKey(
            "the token's key object is extractable; a KEK must be sensitive and not extractable (make a new one under another label)".into(),
        )),
        (_, _, false, _) => Err(Pkcs11Error::InvalidKey(
            "the token's key object is not sensitive; a KEK must be sensitive and not extractable".into(),
        )),
        _ => Err(Pkcs11Error::InvalidKey(
            "the token's key object is not a 32-byte AES key".into(),
        )),
    }
}

pub(crate) fn gcm_encrypt(
    key: &TokenKey,
    nonce: &[u8],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>> {
    with_session(key, false, |session, object| {
        let object = required(object, key)?;
        let mut iv = nonce.to_vec();
        let params = GcmParams::new(&mut iv, aad, (TAG_LEN as u64 * 8).into())
            .map_err(|err| Pkcs11Error::InvalidInput(err.to_string()))?;
        session
            .encrypt(&Mechanism::AesGcm(params), object, plaintext)
            .map_err(|err| unavailable("sealing in the token", err))
    })
}

pub(crate) fn gcm_decrypt(
    key: &TokenKey,
    nonce: &[u8],
    ciphertext_and_tag: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    debug_assert_eq!(nonce.len(), NONCE_LEN);
    with_session(key, false, |session, object| {
        let object = required(object, key)?;
        let mut iv = nonce.to_vec();
        let params = GcmParams::new(&mut iv, aad, (TAG_LEN as u64 * 8).into())
            .map_err(|err| Pkcs11Error::InvalidInput(err.to_string()))?;
        match session.decrypt(&Mechanism::AesGcm(params), object, ciphertext_and_tag) {
            Ok(plaintext) => Ok(Zeroizing::new(plaintext)),
            // Tokens differ in how they report a failed tag check (SoftHSM2 says CKR_GENERAL_ERROR),
            // so a failure is an unsealing failure when the token still computes a MAC in the same
            // session, and the token's failure otherwise.
            Err(err) => match session.sign(&Mechanism::AesCMac, object, crate::KEK_ID_MESSAGE) {
                Ok(_) => Err(Pkcs11Error::UnsealFailed(
                    "wrong key-encryption key, wrong associated data, or corrupted sealed key"
                        .into(),
                )),
                Err(_) => Err(unavailable("opening in the token", err)),
            },
        }
    })
}

pub(crate) fn cmac(key: &TokenKey, message: &[u8]) -> Result<Vec<u8>> {
    with_session(key, false, |session, object| {
        let object = required(object, key)?;
        check_fit(session, object)?;
        session
            .sign(&Mechanism::AesCMac, object, message)
            .map_err(|err| unavailable("computing the KEK id in the token", err))
    })
}

pub(crate) fn create(key: &TokenKey) -> Result<bool> {
    with_session(key, true, |session, object| {
        if let Some(object) = object {
            check_fit(session, object)?;
            return Ok(false);
        }
        session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                    Attribute::Label(key.object_label.as_bytes().to_vec()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                    Attribute::Sign(true),
                    Attribute::Verify(true),
                    Attribute::Wrap(false),
                    Attribute::Unwrap(false),
                    Attribute::Derive(false),
                ],
            )
            .map_err(|err| unavailable("generating the key in the token", err))?;
        Ok(true)
    })
}

pub(crate) fn value_readable(key: &TokenKey) -> Result<bool> {
    with_session(key, false, |session, object| {
        let object = required(object, key)?;
        // C_GetAttributeValue of CKA_VALUE: a sensitive key answers CKR_ATTRIBUTE_SENSITIVE.
        let info = session
            .get_attribute_info(object, &[AttributeType::Value])
            .map_err(|err| unavailable("asking the token about the key's value", err))?;
        Ok(matches!(info.first(), Some(AttributeInfo::Available(_))))
    })
}
