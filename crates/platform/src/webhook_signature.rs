//! HMAC-SHA256 webhook signatures, checked once for every sender that uses them
//! (GitHub's `X-Hub-Signature-256: sha256=<hex>`, Bitbucket's `X-Hub-Signature`, dbt
//! Cloud's bare-hex `Authorization`). The caller strips any prefix; this compares the
//! digest of the raw body in constant time. Upper- or lower-case hex are the same
//! digest; anything that is not exactly 32 bytes of hex does not match.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signature is missing its digest, is not hex, or does not match the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature does not match")]
pub struct SignatureMismatch;

/// Checks `hex_digest` (HMAC-SHA256 of `body` under `secret`) in constant time.
pub fn verify_hmac_sha256_hex(
    secret: &[u8],
    body: &[u8],
    hex_digest: &str,
) -> Result<(), SignatureMismatch> {
    let given = hex::decode(hex_digest.trim()).map_err(|_| SignatureMismatch)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureMismatch)?;
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| SignatureMismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // GitHub's published vector ("Validating webhook deliveries").
    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const DIGEST: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn the_published_vector_matches_in_either_case() {
        assert_eq!(verify_hmac_sha256_hex(SECRET, BODY, DIGEST), Ok(()));
        assert_eq!(
            verify_hmac_sha256_hex(SECRET, BODY, &DIGEST.to_uppercase()),
            Ok(())
        );
    }

    #[test]
    fn anything_else_is_a_mismatch() {
        let truncated = &DIGEST[..62];
        let odd = &DIGEST[..63];
        let not_hex = DIGEST.replace('7', "z");
        for digest in ["", truncated, odd, &not_hex, &format!("sha256={DIGEST}")] {
            assert_eq!(
                verify_hmac_sha256_hex(SECRET, BODY, digest),
                Err(SignatureMismatch),
                "{digest}"
            );
        }
        assert_eq!(
            verify_hmac_sha256_hex(SECRET, b"Hello, World?", DIGEST),
            Err(SignatureMismatch)
        );
        assert_eq!(
            verify_hmac_sha256_hex(b"another secret", BODY, DIGEST),
            Err(SignatureMismatch)
        );
    }
}
