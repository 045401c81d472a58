//! A small PEM reader for private keys. Library PEM parsers reject the legacy
//! OpenSSL encryption headers (`Proc-Type: 4,ENCRYPTED` / `DEK-Info`) that
//! `ssh-keygen -m PEM -N pass` still writes, so this module reads the armour and
//! headers itself and decrypts those keys (MD5 key derivation, AES-CBC) when
//! given the passphrase. It never puts key bytes in an error.

use cbc::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use md5::{Digest, Md5};

/// One PEM block: its label (`RSA PRIVATE KEY`, ...), headers and DER body.
pub struct PemBlock {
    pub label: String,
    pub headers: Vec<(String, String)>,
    pub der: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PemError {
    #[error("no pem armour (-----BEGIN ...-----) found")]
    NoArmour,
    #[error("pem block {0:?} has no matching END line")]
    Unterminated(String),
    #[error("pem block {0:?} is not valid base64")]
    Base64(String),
    #[error("unsupported pem encryption {0:?}; re-encrypt the key with `ssh-keygen -p` (OpenSSH format)")]
    UnsupportedCipher(String),
    #[error("the key is encrypted; a passphrase is required")]
    PassphraseRequired,
    #[error("the passphrase does not decrypt the key")]
    WrongPassphrase,
}

impl PemBlock {
    /// Reads the first PEM block of `text`.
    pub fn parse(text: &str) -> Result<Self, PemError> {
        let mut lines = text.lines().map(str::trim);
        let label = lines
            .by_ref()
            .find_map(|line| {
                line.strip_prefix("-----BEGIN ")
                    .and_then(|rest| rest.strip_suffix("-----"))
            })
            .ok_or(PemError::NoArmour)?
            .to_string();
        let end = format!("-----END {label}-----");
        let mut headers = Vec::new();
        let mut body = String::new();
        let mut in_headers = true;
        let mut terminated = false;
        for line in lines {
            if line == end {
                terminated = true;
                break;
            }
            if in_headers {
                if let Some((name, value)) = line.split_once(':') {
                    headers.push((name.trim().to_string(), value.trim().to_string()));
                    continue;
                }
                in_headers = false;
                if line.is_empty() {
                    continue;
                }
            }
            body.push_str(line);
        }
        if !terminated {
            return Err(PemError::Unterminated(label));
        }
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| PemError::Base64(label.clone()))?;
        Ok(Self {
            label,
            headers,
            der,
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// True for legacy OpenSSL-encrypted blocks (`Proc-Type: 4,ENCRYPTED`).
    pub fn is_legacy_encrypted(&self) -> bool {
        self.header("Proc-Type")
            .is_some_and(|value| value.contains("ENCRYPTED"))
    }

    /// The DER body, decrypted if the block is legacy-encrypted.
    pub fn plain_der(&self, passphrase: Option<&str>) -> Result<Vec<u8>, PemError> {
        if !self.is_legacy_encrypted() {
            return Ok(self.der.clone());
        }
        let passphrase = passphrase.ok_or(PemError::PassphraseRequired)?;
        let dek = self.header("DEK-Info").unwrap_or_default();
        let (cipher, iv_hex) = dek.split_once(',').unwrap_or((dek, ""));
        let iv = hex::decode(iv_hex.trim())
            .ok()
            .filter(|iv| iv.len() == 16)
            .ok_or_else(|| PemError::UnsupportedCipher(cipher.to_string()))?;
        let key_len = match cipher {
            "AES-128-CBC" => 16,
            "AES-192-CBC" => 24,
            "AES-256-CBC" => 32,
            other => return Err(PemError::UnsupportedCipher(other.to_string())),
        };
        let key = evp_bytes_to_key(passphrase.as_bytes(), &iv[..8], key_len);
        let plain = match key_len {
            16 => decrypt::<aes::Aes128>(&key, &iv, &self.der),
            24 => decrypt::<aes::Aes192>(&key, &iv, &self.der),
            _ => decrypt::<aes::Aes256>(&key, &iv, &self.der),
        };
        plain.ok_or(PemError::WrongPassphrase)
    }
}

/// OpenSSL's `EVP_BytesToKey` with MD5 and one iteration, as used by legacy PEM.
fn evp_bytes_to_key(passphrase: &[u8], salt: &[u8], len: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(len + 16);
    let mut previous: Vec<u8> = Vec::new();
    while key.len() < len {
        let mut hasher = Md5::new();
        hasher.update(&previous);
        hasher.update(passphrase);
        hasher.update(salt);
        previous = hasher.finalize().to_vec();
        key.extend_from_slice(&previous);
    }
    key.truncate(len);
    key
}

fn decrypt<C>(key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>>
where
    C: cbc::cipher::BlockDecryptMut + cbc::cipher::BlockCipher + cbc::cipher::KeyInit,
{
    cbc::Decryptor::<C>::new_from_slices(key, iv)
        .ok()?
        .decrypt_padded_vec_mut::<Pkcs7>(data)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_label_headers_and_body() {
        let text = "junk\n-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAEC\n-----END RSA PRIVATE KEY-----\n";
        let block = PemBlock::parse(text).unwrap();
        assert_eq!(block.label, "RSA PRIVATE KEY");
        assert!(block.is_legacy_encrypted());
        assert_eq!(block.der, vec![0, 1, 2]);
        assert_eq!(block.plain_der(None), Err(PemError::PassphraseRequired));
        assert_eq!(block.plain_der(Some("x")), Err(PemError::WrongPassphrase));
    }

    #[test]
    fn refuses_broken_armour() {
        assert!(matches!(PemBlock::parse("hello"), Err(PemError::NoArmour)));
        assert!(matches!(
            PemBlock::parse("-----BEGIN PRIVATE KEY-----\nAAAA\n"),
            Err(PemError::Unterminated(_))
        ));
        assert!(matches!(
            PemBlock::parse("-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----"),
            Err(PemError::Base64(_))
        ));
    }

    #[test]
    fn derives_keys_like_openssl() {
        // `openssl enc -aes-128-cbc -P -md md5 -S 0001020304050607 -pass pass:secret`
        let key = evp_bytes_to_key(b"secret", &[0, 1, 2, 3, 4, 5, 6, 7], 16);
        assert_eq!(hex::encode_upper(key), "035FB8145B73CF111570DC936112BE9C");
        let long = evp_bytes_to_key(b"secret", &[0, 1, 2, 3, 4, 5, 6, 7], 32);
        assert!(long.starts_with(&hex::decode("035FB8145B73CF111570DC936112BE9C").unwrap()));
    }
}
