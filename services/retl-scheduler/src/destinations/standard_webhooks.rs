//! Standard Webhooks `v1` signatures (fixtures/wire/standard-webhooks.md): base64 of
//! HMAC-SHA256 over `"{webhook-id}.{webhook-timestamp}.{raw body}"`, keyed by the
//! base64-decoded bytes after `whsec_` (unpadded base64 accepted, as the reference
//! libraries do). Signing is what the webhook destination does; verification (any `v1`
//! entry of the space-delimited header, constant time, ±5 minutes) is here too so the
//! stand-in receiver and the tests check exactly what a real receiver checks.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::DestinationError;

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Receivers reject timestamps further than this from their clock.
pub const TOLERANCE_SECONDS: i64 = 300;

/// The HMAC key of a `whsec_…` secret.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([REDACTED])")
    }
}

impl SigningKey {
    /// Parses `whsec_<base64>` (the prefix is optional, as in the reference libraries).
    pub fn from_secret(secret: &str) -> Result<Self, DestinationError> {
        let encoded = secret.trim();
        let encoded = encoded.strip_prefix("whsec_").unwrap_or(encoded);
        let key = LENIENT.decode(encoded).map_err(|_| {
            DestinationError::Settings("the signing secret is not whsec_ followed by base64".into())
        })?;
        if key.is_empty() {
            return Err(DestinationError::Settings(
                "the signing secret is empty".into(),
            ));
        }
        Ok(Self(key))
    }

    /// The `v1,<base64>` entry for one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.digest(id, timestamp, body)))
    }

    fn digest(&self, id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            // HMAC takes keys of any length; this branch is unreachable.
            return Vec::new();
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }

    /// Checks a `webhook-signature` header: some `v1` entry matches (constant time) and
    /// the timestamp is within [`TOLERANCE_SECONDS`] of `now`.
    pub fn verify(
        &self,
        id: &str,
        timestamp: &str,
        body: &[u8],
        signature_header: &str,
        now: i64,
    ) -> Result<(), VerifyError> {
        let ts: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| VerifyError::BadTimestamp)?;
        if (now - ts).abs() > TOLERANCE_SECONDS {
            return Err(VerifyError::StaleTimestamp);
        }
        for entry in signature_header.split(' ') {
            let Some((version, signature)) = entry.split_once(',') else {
                continue;
            };
            if version != "v1" {
                continue;
            }
            let Ok(given) = LENIENT.decode(signature) else {
                continue;
            };
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
                continue;
            };
            mac.update(format!("{id}.{ts}.").as_bytes());
            mac.update(body);
            if mac.verify_slice(&given).is_ok() {
                return Ok(());
            }
        }
        Err(VerifyError::NoMatch)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("webhook-timestamp is not an integer")]
    BadTimestamp,
    #[error("webhook-timestamp is more than 5 minutes away")]
    StaleTimestamp,
    #[error("no v1 signature matches")]
    NoMatch,
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str =
        include_str!("../../../../fixtures/wire/standard-webhooks/test-vectors.json");

    #[test]
    fn the_fixture_vectors_hold() {
        let v: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        let valid = &v["valid"];
        let key = SigningKey::from_secret(valid["secret"].as_str().unwrap()).unwrap();
        let id = valid["webhook-id"].as_str().unwrap();
        let ts_text = valid["webhook-timestamp"].as_str().unwrap();
        let ts: i64 = ts_text.parse().unwrap();
        let body = valid["body"].as_str().unwrap().as_bytes();
        let expected = valid["webhook-signature"].as_str().unwrap();
        assert_eq!(key.sign(id, ts, body), expected);
        assert_eq!(key.verify(id, ts_text, body, expected, ts + 10), Ok(()));

        for bad in v["invalid_signatures_for_the_same_message"]
            .as_array()
            .unwrap()
        {
            let header = bad["webhook-signature"].as_str().unwrap();
            assert_eq!(
                key.verify(id, ts_text, body, header, ts),
                Err(VerifyError::NoMatch),
                "{}",
                bad["why"]
            );
        }
        let multi = v["multiple_signatures_header_example"]["webhook-signature"]
            .as_str()
            .unwrap();
        assert_eq!(key.verify(id, ts_text, body, multi, ts), Ok(()));
        let tolerance = v["timestamp_tolerance_seconds"].as_i64().unwrap();
        assert_eq!(
            key.verify(id, ts_text, body, expected, ts + tolerance + 1),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            key.verify(
                id,
                ts_text,
                body,
                &format!("v1a,x {expected}"),
                ts - tolerance
            ),
            Ok(())
        );
    }

    #[test]
    fn secrets_without_prefix_or_padding_are_read() {
        let padded = SigningKey::from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let bare = SigningKey::from_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(padded.0, bare.0);
        assert!(SigningKey::from_secret("whsec_YQ").is_ok());
        assert!(matches!(
            SigningKey::from_secret("whsec_!!!"),
            Err(DestinationError::Settings(_))
        ));
        assert!(format!("{padded:?}").contains("REDACTED"));
    }
}
