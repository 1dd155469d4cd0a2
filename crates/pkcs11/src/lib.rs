//! The key-encryption key (KEK) of cloacina-sign kept in a PKCS#11 token.
//!
//! The KEK is an AES-256 secret key object, sensitive and not extractable: its bytes never enter this
//! process. Sealing and opening run in the token with `CKM_AES_GCM`, a fresh random 96-bit nonce and
//! the same associated data as the software sealing of `cloacina_sign_core::seal`, in the same format
//! (`nonce (12) || ciphertext || tag (16)`), so a private key sealed in the token under some key bytes
//! is byte-identical to one sealed in software under the same bytes and nonce.
//!
//! The module (a shared library) is loaded at run time from the configured `module-path`, so nothing
//! here needs a PKCS#11 implementation at build time. WebAssembly builds have no dynamic loading: there
//! every operation fails with [`Pkcs11Error::Unavailable`].

use cloacina_sign_core::codes;
use zeroize::Zeroizing;

#[cfg(not(target_family = "wasm"))]
mod token;
#[cfg(target_family = "wasm")]
mod unavailable;
#[cfg(target_family = "wasm")]
use unavailable as token;

/// Nonce length of the sealing (96 bits), as in the software sealing.
pub const NONCE_LEN: usize = cloacina_sign_core::seal::NONCE_LEN;
/// GCM tag length in bytes, as in the software sealing.
pub const TAG_LEN: usize = cloacina_sign_core::seal::TAG_LEN;
/// The fixed message whose AES-CMAC under the token key is the key's public id.
pub const KEK_ID_MESSAGE: &[u8] = b"cloacina-sign/kek-id/pkcs11/v1\0";

#[derive(Debug, thiserror::Error)]
pub enum Pkcs11Error {
    /// The module cannot be loaded, the token is absent, refuses the PIN, or lacks the key object.
    #[error("{0}")]
    Unavailable(String),
    /// The token opened nothing: wrong KEK, wrong associated data, or a corrupted sealed key.
    #[error("{0}")]
    UnsealFailed(String),
    /// The object exists but is not a KEK this project accepts (extractable, not AES-256, ...).
    #[error("{0}")]
    InvalidKey(String),
    #[error("{0}")]
    InvalidInput(String),
}

impl Pkcs11Error {
    /// The error code (crates/core/src/codes.rs) this error carries to JS.
    pub fn code(&self) -> &'static str {
        match self {
            Pkcs11Error::Unavailable(_) => codes::KEK_UNAVAILABLE,
            Pkcs11Error::UnsealFailed(_) => codes::KEY_UNSEAL_FAILED,
            Pkcs11Error::InvalidKey(_) => codes::INVALID_KEY,
            Pkcs11Error::InvalidInput(_) => codes::INVALID_INPUT,
        }
    }
}

pub type Result<T> = std::result::Result<T, Pkcs11Error>;

/// Where the KEK lives: a module, a token (by label) and a secret key object (by label), with the
/// user PIN. The PIN is wiped when this is dropped and never appears in an error.
pub struct TokenKey {
    pub module_path: String,
    pub token_label: String,
    pub object_label: String,
    pub pin: Zeroizing<String>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey")
            .field("module_path", &self.module_path)
            .field("token_label", &self.token_label)
            .field("object_label", &self.object_label)
            .finish_non_exhaustive()
    }
}

/// What `create` found or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedKey {
    /// False when a suitable (sensitive, non-extractable AES-256) object existed already.
    pub created: bool,
    pub kek_id: String,
}

impl TokenKey {
    /// Seals `plaintext` in the token under a fresh random nonce: `nonce || ciphertext || tag`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, &mut nonce).map_err(|_| {
            Pkcs11Error::InvalidInput("the OS random number generator failed".into())
        })?;
        self.seal_with_nonce(&nonce, plaintext, aad)
    }

    /// [`TokenKey::seal`] with a caller-chosen nonce. Only for known-answer tests: reusing a nonce
    /// under the same KEK destroys GCM's security.
    #[doc(hidden)]
    pub fn seal_with_nonce(
        &self,
        nonce: &[u8; NONCE_LEN],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>> {
        let sealed = token::gcm_encrypt(self, nonce, plaintext, aad)?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a sealed blob in the token.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(Pkcs11Error::InvalidInput(format!(
                "sealed data must be at least {} bytes, got {}",
                NONCE_LEN + TAG_LEN,
                sealed.len()
            )));
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        token::gcm_decrypt(self, nonce, rest, aad)
    }

    /// Opens the sealed private key of a signing-key row and checks it against the stored public key.
    pub fn open_private_key(
        &self,
        sealed: &[u8],
        key_id: &str,
        org_id: &str,
        public_key: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>> {
        use cloacina_sign_core::seal;
        let plaintext = self.open(sealed, &seal::private_key_aad(key_id, org_id, public_key))?;
        seal::private_key_matching(&plaintext, public_key)
            .map_err(|err| Pkcs11Error::UnsealFailed(err.to_string()))
    }

    /// The KEK's public id: 16 hex characters of the AES-CMAC of [`KEK_ID_MESSAGE`], computed in
    /// the token. It names the key and reveals nothing of it. Also the readiness probe: it needs the
    /// module, the token, the PIN and the object.
    pub fn kek_id(&self) -> Result<String> {
        let mac = token::cmac(self, KEK_ID_MESSAGE)?;
        Ok(hex::encode(&mac[..8]))
    }

    /// Makes the KEK object (AES-256, token, private, sensitive, not extractable), or accepts an
    /// existing one with those attributes; an existing extractable or otherwise unfit object is refused.
    pub fn create(&self) -> Result<CreatedKey> {
        let created = token::create(self)?;
        Ok(CreatedKey {
            created,
            kek_id: self.kek_id()?,
        })
    }

    /// Whether the token hands out the object's CKA_VALUE (it must not). The value itself is wiped
    /// at once and never returned.
    pub fn value_readable(&self) -> Result<bool> {
        token::value_readable(self)
    }
}
