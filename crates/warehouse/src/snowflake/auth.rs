//! How the connector proves who it is to the SQL API: a key-pair JWT or an OAuth token,
//! sent as `Authorization: Bearer <token>` with `X-Snowflake-Authorization-Token-Type`.
//!
//! The key-pair JWT follows Snowflake's driver (`auth/keypair.py`) and the SQL API docs
//! (fixtures/wire/snowflake-sql-api.md, "Key-pair JWT"): header `{"alg":"RS256","typ":"JWT"}`;
//! `iss` = `<ACCOUNT>.<USER>.SHA256:<fp>` where `fp` is standard padded base64 of SHA-256
//! over the public key's DER SubjectPublicKeyInfo; `sub` = `<ACCOUNT>.<USER>`; `iat` now,
//! `exp` 59 minutes later (the docs cap it at one hour). Account and user are upper-cased;
//! the account is cut at the first `.` (`xy12345.us-east-1` → `XY12345`), or for
//! `.global` accounts at the first `-`. An `orgname-accountname` identifier has no `.` and
//! is kept whole; the docs say to write `orgname.accountname` with a `-`, which is the only
//! form that works here (a `.` would be read as a region suffix).
//!
//! A token is reused until it has less than five minutes left, so signing happens about
//! once an hour, not per request.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::RsaPrivateKey;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::WarehouseError;

/// JWT lifetime: the docs' sample generator uses 59 minutes (the cap is one hour).
pub(crate) const JWT_LIFETIME: Duration = Duration::from_secs(59 * 60);
/// Renew a cached JWT when it has less than this left.
const JWT_RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);

pub(crate) const TOKEN_TYPE_HEADER: &str = "X-Snowflake-Authorization-Token-Type";

/// The claims of a Snowflake key-pair JWT.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JwtClaims {
    pub iss: String,
    pub sub: String,
    pub iat: u64,
    pub exp: u64,
}

pub(crate) enum Auth {
    KeyPair(KeyPair),
    OAuth(SecretString),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::KeyPair(k) => f
                .debug_struct("KeyPair")
                .field("issuer", &k.issuer)
                .finish_non_exhaustive(),
            Self::OAuth(_) => f.write_str("OAuth([redacted])"),
        }
    }
}

impl Auth {
    /// `(bearer token, token type)` for the next request.
    pub fn bearer(&self) -> Result<(SecretString, &'static str), WarehouseError> {
        match self {
            Self::KeyPair(k) => Ok((k.token(SystemTime::now())?, "KEYPAIR_JWT")),
            Self::OAuth(token) => Ok((token.clone(), "OAUTH")),
        }
    }
}

pub(crate) struct KeyPair {
    // (Debug below: never the key or a token.)
    key: EncodingKey,
    /// `ACCOUNT.USER.SHA256:<fp>`.
    issuer: String,
    /// `ACCOUNT.USER`.
    subject: String,
    cached: Mutex<Option<(SecretString, SystemTime)>>,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// From a PEM private key (PKCS#8 `BEGIN PRIVATE KEY`; PKCS#1 `BEGIN RSA PRIVATE KEY`
    /// is accepted too). `expected_fingerprint`, when set, must equal the key's
    /// (`SHA256:...` as `DESCRIBE USER` shows it), catching a key that does not match.
    pub fn new(
        account: &str,
        user: &str,
        pem: &SecretString,
        expected_fingerprint: Option<&str>,
    ) -> Result<Self, WarehouseError> {
        let pem = pem.expose_secret().trim();
        if pem.contains("ENCRYPTED PRIVATE KEY") {
            return Err(credential(
                "the private key is encrypted; store it unencrypted (pkcs#8 pem)",
            ));
        }
        let private = RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|_| credential("the secret is not an rsa private key in pkcs#8 pem"))?;
        let fingerprint = public_key_fingerprint(&private)?;
        if let Some(expected) = expected_fingerprint {
            let expected = expected.strip_prefix("SHA256:").unwrap_or(expected);
            if expected != fingerprint {
                return Err(credential(
                    "the private key does not match settings.public_key_fingerprint",
                ));
            }
        }
        let der = private
            .to_pkcs1_der()
            .map_err(|_| credential("cannot encode the private key"))?;
        let subject = format!("{}.{}", claim_account(account), user.to_uppercase());
        Ok(Self {
            key: EncodingKey::from_rsa_der(der.as_bytes()),
            issuer: format!("{subject}.SHA256:{fingerprint}"),
            subject,
            cached: Mutex::new(None),
        })
    }

    /// The claims of a token issued at `now`.
    pub fn claims(&self, now: SystemTime) -> JwtClaims {
        let iat = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        JwtClaims {
            iss: self.issuer.clone(),
            sub: self.subject.clone(),
            iat,
            exp: iat + JWT_LIFETIME.as_secs(),
        }
    }

    /// A signed token valid at `now` (cached while it has at least five minutes left).
    pub fn token(&self, now: SystemTime) -> Result<SecretString, WarehouseError> {
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((token, expires)) = cached.as_ref() {
            if expires
                .duration_since(now)
                .is_ok_and(|left| left > JWT_RENEW_BEFORE)
            {
                return Ok(token.clone());
            }
        }
        let claims = self.claims(now);
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".into());
        let token = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|_| credential("cannot sign the jwt with the private key"))?;
        let token = SecretString::from(token);
        *cached = Some((token.clone(), now + JWT_LIFETIME));
        Ok(token)
    }
}

/// The account part of the claims: upper-cased, cut at the first `.` (or at the first
/// `-` for `.global` accounts).
pub(crate) fn claim_account(account: &str) -> String {
    let account = account.to_uppercase();
    let cut = if account.contains(".GLOBAL") {
        '-'
    } else {
        '.'
    };
    account
        .split(cut)
        .next()
        .unwrap_or(account.as_str())
        .to_string()
}

/// Base64 (standard, padded) of SHA-256 over the DER SubjectPublicKeyInfo.
pub fn public_key_fingerprint(private: &RsaPrivateKey) -> Result<String, WarehouseError> {
    let der = private
        .to_public_key()
        .to_public_key_der()
        .map_err(|_| credential("cannot encode the public key"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(Sha256::digest(der.as_bytes())))
}

fn credential(reason: &str) -> WarehouseError {
    WarehouseError::Credential {
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_account_forms() {
        assert_eq!(claim_account("xy12345.us-east-1"), "XY12345");
        assert_eq!(claim_account("xy12345.us-east-2.aws"), "XY12345");
        assert_eq!(claim_account("myaccount"), "MYACCOUNT");
        assert_eq!(claim_account("myorg-myaccount"), "MYORG-MYACCOUNT");
        assert_eq!(claim_account("xy12345-abc.global"), "XY12345");
    }

    #[test]
    fn refuses_non_keys() {
        let e = KeyPair::new("a", "u", &SecretString::from("not a key"), None).unwrap_err();
        assert!(matches!(e, WarehouseError::Credential { .. }));
        let e = KeyPair::new(
            "a",
            "u",
            &SecretString::from(
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
            ),
            None,
        )
        .unwrap_err();
        assert!(
            matches!(e, WarehouseError::Credential { ref reason } if reason.contains("encrypted"))
        );
    }
}
