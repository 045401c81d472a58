//! Envelope encryption, pure and unit-tested. Each secret version gets its own random
//! data key; the material is sealed with AES-256-GCM under that key, and the data key
//! is sealed under the master key. Associated data binds the ciphertext to its row
//! (workspace, secret, version), so a ciphertext copied to another row won't open.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("master key must be 32 bytes (raw, hex or base64), got {0} bytes")]
    MasterKeyLength(usize),
    #[error("sealed with master key {found}, but the loaded key is {expected}")]
    WrongMasterKey { expected: String, found: String },
    #[error("ciphertext is corrupt or bound to another row")]
    Corrupt,
    #[error("encryption failed")]
    Encrypt,
}

/// The key-encryption key. Its id (a digest prefix) is recorded next to every
/// wrapped data key so rotation knows which rows still need it.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        if bytes.len() != 32 {
            return Err(EnvelopeError::MasterKeyLength(bytes.len()));
        }
        let digest = Sha256::digest(bytes);
        Ok(Self {
            id: format!("mk-{}", hex::encode(&digest[..8])),
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes)),
        })
    }

    /// Accepts the key as raw 32 bytes, 64 hex characters or base64.
    pub fn from_encoded(text: &[u8]) -> Result<Self, EnvelopeError> {
        if text.len() == 32 {
            return Self::from_bytes(text);
        }
        let trimmed = String::from_utf8_lossy(text).trim().to_string();
        if let Ok(bytes) = hex::decode(&trimmed) {
            return Self::from_bytes(&bytes);
        }
        match base64::engine::general_purpose::STANDARD.decode(&trimmed) {
            Ok(bytes) => Self::from_bytes(&bytes),
            Err(_) => Err(EnvelopeError::MasterKeyLength(text.len())),
        }
    }

    /// A fresh random key, base64 encoded (for `create_master_key_if_missing`).
    pub fn generate_encoded() -> String {
        let key = Aes256Gcm::generate_key(&mut OsRng);
        base64::engine::general_purpose::STANDARD.encode(key)
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// What is stored: nothing here is usable without the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    /// nonce ‖ AES-GCM(master, data key)
    pub wrapped_data_key: Vec<u8>,
    /// nonce ‖ AES-GCM(data key, material)
    pub ciphertext: Vec<u8>,
}

/// The associated data for a secret version.
pub fn row_binding(workspace_id: &str, secret_id: &str, version: i64) -> Vec<u8> {
    format!("backflow/v1/{workspace_id}/{secret_id}/{version}").into_bytes()
}

pub fn seal(master: &MasterKey, binding: &[u8], material: &[u8]) -> Result<Sealed, EnvelopeError> {
    let data_key = Aes256Gcm::generate_key(&mut OsRng);
    let data_cipher = Aes256Gcm::new(&data_key);
    let ciphertext = encrypt(&data_cipher, binding, material)?;
    let wrapped_data_key = encrypt(&master.cipher, &wrap_binding(binding), data_key.as_slice())?;
    Ok(Sealed {
        key_id: master.id.clone(),
        wrapped_data_key,
        ciphertext,
    })
}

pub fn open(master: &MasterKey, binding: &[u8], sealed: &Sealed) -> Result<Vec<u8>, EnvelopeError> {
    if sealed.key_id != master.id {
        return Err(EnvelopeError::WrongMasterKey {
            expected: master.id.clone(),
            found: sealed.key_id.clone(),
        });
    }
    let data_key = decrypt(
        &master.cipher,
        &wrap_binding(binding),
        &sealed.wrapped_data_key,
    )?;
    if data_key.len() != 32 {
        return Err(EnvelopeError::Corrupt);
    }
    let data_cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&data_key));
    decrypt(&data_cipher, binding, &sealed.ciphertext)
}

fn wrap_binding(binding: &[u8]) -> Vec<u8> {
    let mut aad = b"data-key:".to_vec();
    aad.extend_from_slice(binding);
    aad
}

fn encrypt(cipher: &Aes256Gcm, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let sealed = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| EnvelopeError::Encrypt)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn decrypt(cipher: &Aes256Gcm, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    if sealed.len() < NONCE_LEN {
        return Err(EnvelopeError::Corrupt);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad })
        .map_err(|_| EnvelopeError::Corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes(&[byte; 32]).expect("32 bytes")
    }

    #[test]
    fn round_trips() {
        let binding = row_binding("w", "s", 1);
        let sealed = seal(&key(1), &binding, b"hunter2").expect("seals");
        assert_eq!(open(&key(1), &binding, &sealed).expect("opens"), b"hunter2");
        assert!(!sealed.ciphertext.windows(7).any(|w| w == b"hunter2"));
    }

    #[test]
    fn ciphertext_is_bound_to_its_row() {
        let sealed = seal(&key(1), &row_binding("w", "s", 1), b"x").expect("seals");
        assert_eq!(
            open(&key(1), &row_binding("w", "s", 2), &sealed),
            Err(EnvelopeError::Corrupt)
        );
        assert_eq!(
            open(&key(1), &row_binding("other", "s", 1), &sealed),
            Err(EnvelopeError::Corrupt)
        );
    }

    #[test]
    fn another_master_key_is_named() {
        let sealed = seal(&key(1), b"b", b"x").expect("seals");
        assert!(matches!(
            open(&key(2), b"b", &sealed),
            Err(EnvelopeError::WrongMasterKey { .. })
        ));
    }

    #[test]
    fn encoded_keys_are_accepted_and_short_ones_refused() {
        let encoded = MasterKey::generate_encoded();
        assert!(MasterKey::from_encoded(encoded.as_bytes()).is_ok());
        assert!(MasterKey::from_encoded(hex::encode([7u8; 32]).as_bytes()).is_ok());
        assert!(MasterKey::from_encoded(b"short").is_err());
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let printed = format!("{:?}", key(9));
        assert!(printed.contains("mk-"));
        assert!(!printed.contains("9, 9"));
    }
}
