//! Shapes of warehouse secrets, checked at create and rotate so a bad paste fails
//! here and not at the first connection test: a Snowflake key-pair key must be an
//! unencrypted PKCS#8 PEM private key, a BigQuery service-account key must be the JSON
//! file Google issues (with `client_email`, `private_key`, `token_uri`), and a token is
//! one non-empty line. Pure; messages never quote the material.

use super::pem::PemBlock;
use super::InvalidSecret;

/// `SECRET_KIND_WAREHOUSE_PRIVATE_KEY`: PEM `PRIVATE KEY` (PKCS#8, unencrypted).
pub fn check_private_key(material: &[u8]) -> Result<(), InvalidSecret> {
    let text = std::str::from_utf8(material)
        .map_err(|_| InvalidSecret("warehouse private key must be PEM text".into()))?;
    pkcs8_pem(text, "warehouse private key")
}

fn pkcs8_pem(text: &str, what: &str) -> Result<(), InvalidSecret> {
    let block = PemBlock::parse(text).map_err(|err| InvalidSecret(format!("{what}: {err}")))?;
    match block.label.as_str() {
        "PRIVATE KEY" => {}
        "ENCRYPTED PRIVATE KEY" => {
            return Err(InvalidSecret(format!(
                "{what}: the key is encrypted; store it unencrypted (openssl pkcs8 -topk8 -nocrypt)"
            )))
        }
        "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
            return Err(InvalidSecret(format!(
                "{what}: {:?} is not PKCS#8; convert it with openssl pkcs8 -topk8 -nocrypt",
                block.label
            )))
        }
        other => {
            return Err(InvalidSecret(format!(
                "{what}: expected a PEM \"PRIVATE KEY\" block, found {other:?}"
            )))
        }
    }
    pkcs8::PrivateKeyInfo::try_from(block.der.as_slice())
        .map_err(|_| InvalidSecret(format!("{what}: the PEM body is not a PKCS#8 private key")))?;
    Ok(())
}

/// `SECRET_KIND_WAREHOUSE_SERVICE_ACCOUNT`: a Google service-account JSON key file.
pub fn check_service_account(material: &[u8]) -> Result<(), InvalidSecret> {
    let json: serde_json::Value = serde_json::from_slice(material).map_err(|_| {
        InvalidSecret("service account key must be the JSON key file Google issues".into())
    })?;
    let field = |name: &str| {
        json.get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| InvalidSecret(format!("service account key: {name} is missing")))
    };
    if let Some(kind) = json.get("type").and_then(serde_json::Value::as_str) {
        if kind != "service_account" {
            return Err(InvalidSecret(format!(
                "service account key: type is {kind:?}, expected \"service_account\""
            )));
        }
    }
    let email = field("client_email")?;
    if !email.contains('@') {
        return Err(InvalidSecret(
            "service account key: client_email is not an email address".into(),
        ));
    }
    let token_uri = field("token_uri")?;
    if !token_uri.starts_with("https://") && !token_uri.starts_with("http://") {
        return Err(InvalidSecret(
            "service account key: token_uri must be an http(s) url".into(),
        ));
    }
    pkcs8_pem(field("private_key")?, "service account key: private_key")
}

/// `SECRET_KIND_WAREHOUSE_TOKEN`: one line, no spaces.
pub fn check_token(material: &[u8]) -> Result<(), InvalidSecret> {
    let token = std::str::from_utf8(material)
        .map_err(|_| InvalidSecret("warehouse token must be utf-8 text".into()))?;
    if token.is_empty() {
        return Err(InvalidSecret("warehouse token must not be empty".into()));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InvalidSecret(
            "warehouse token must be one line without spaces (check for a trailing newline)".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ed25519 PKCS#8 key (RFC 8410's example), small enough to inline.
    const PKCS8: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";

    #[test]
    fn private_keys_must_be_unencrypted_pkcs8() {
        assert_eq!(check_private_key(PKCS8.as_bytes()), Ok(()));
        let rsa = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert!(check_private_key(rsa.as_bytes())
            .unwrap_err()
            .0
            .contains("not PKCS#8"));
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(check_private_key(encrypted.as_bytes())
            .unwrap_err()
            .0
            .contains("encrypted"));
        let garbage = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(check_private_key(garbage.as_bytes()).is_err());
        assert!(check_private_key(b"hunter2").is_err());
    }

    fn account(overrides: &[(&str, serde_json::Value)]) -> Vec<u8> {
        let mut json = serde_json::json!({
            "type": "service_account",
            "project_id": "p",
            "client_email": "svc@p.iam.gserviceaccount.com",
            "private_key": PKCS8,
            "token_uri": "https://oauth2.googleapis.com/token",
        });
        for (key, value) in overrides {
            json[*key] = value.clone();
        }
        serde_json::to_vec(&json).expect("json")
    }

    #[test]
    fn service_accounts_need_email_key_and_token_uri() {
        assert_eq!(check_service_account(&account(&[])), Ok(()));
        for (field, value, expected) in [
            (
                "client_email",
                serde_json::json!(""),
                "client_email is missing",
            ),
            ("token_uri", serde_json::Value::Null, "token_uri is missing"),
            ("private_key", serde_json::json!("nope"), "private_key"),
            ("type", serde_json::json!("authorized_user"), "type is"),
        ] {
            let error = check_service_account(&account(&[(field, value)])).expect_err(field);
            assert!(error.0.contains(expected), "{field}: {}", error.0);
        }
        assert!(check_service_account(b"{not json").is_err());
    }

    #[test]
    fn tokens_are_one_word() {
        assert_eq!(check_token(b"dapi123"), Ok(()));
        assert!(check_token(b"").is_err());
        let error = check_token(b"dapi123\n").unwrap_err();
        assert!(error.0.contains("trailing newline"));
        assert!(!error.0.contains("dapi123"));
    }
}
