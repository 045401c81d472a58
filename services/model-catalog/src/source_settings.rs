//! Warehouse-source settings hold where a warehouse is and who connects (host, port,
//! database, user, account), never the secret itself: that lives in the credentials
//! service, encrypted, and the source names it by `credential_id`. A setting whose
//! name looks secret (password, private key, token, secret, passphrase; any case or
//! separator), at the top level or nested inside a JSON value, is refused.

/// Name fragments that mark a secret, compared without case, `_` or `-`.
const SECRET_LIKE: &[&str] = &[
    "password",
    "passwd",
    "privatekey",
    "token",
    "secret",
    "passphrase",
];

/// Why a setting was refused: its path (`password`, `options.auth.token`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("settings.{path}: looks like a secret; store it in the credentials service and name it with credential_id")]
pub struct SecretLikeSetting {
    pub path: String,
}

fn looks_secret(name: &str) -> bool {
    let normal: String = name
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_LIKE.iter().any(|fragment| normal.contains(fragment))
}

fn check_nested(path: &str, value: &serde_json::Value) -> Result<(), SecretLikeSetting> {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                let path = format!("{path}.{key}");
                if looks_secret(key) {
                    return Err(SecretLikeSetting { path });
                }
                check_nested(&path, inner)?;
            }
            Ok(())
        }
        serde_json::Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                check_nested(&format!("{path}[{index}]"), inner)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Refuses the first secret-like setting.
pub fn check<'a>(
    settings: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<(), SecretLikeSetting> {
    for (key, value) in settings {
        if looks_secret(key) {
            return Err(SecretLikeSetting { path: key.clone() });
        }
        // Values that are JSON documents (driver options) are searched too.
        if let Ok(nested) = serde_json::from_str::<serde_json::Value>(value) {
            check_nested(key, &nested)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn refused(pairs: &[(&str, &str)]) -> Option<String> {
        check(&settings(pairs)).err().map(|err| err.path)
    }

    #[test]
    fn plain_connection_details_pass() {
        let ok = settings(&[
            ("host", "db.internal"),
            ("port", "5432"),
            ("database", "analytics"),
            ("user", "retl"),
            ("options", r#"{"sslmode": "require", "keepalives": [1, 2]}"#),
        ]);
        assert_eq!(check(&ok), Ok(()));
    }

    #[test]
    fn secret_like_keys_are_refused_in_any_case_or_spelling() {
        assert_eq!(refused(&[("password", "x")]).as_deref(), Some("password"));
        assert_eq!(
            refused(&[("DB_Password", "x")]).as_deref(),
            Some("DB_Password")
        );
        assert_eq!(
            refused(&[("private_key", "x")]).as_deref(),
            Some("private_key")
        );
        assert_eq!(
            refused(&[("privateKey", "x")]).as_deref(),
            Some("privateKey")
        );
        assert_eq!(refused(&[("api-token", "x")]).as_deref(), Some("api-token"));
        assert_eq!(
            refused(&[("client_SECRET", "x")]).as_deref(),
            Some("client_SECRET")
        );
    }

    #[test]
    fn nested_secrets_are_refused_with_their_path() {
        assert_eq!(
            refused(&[("options", r#"{"auth": {"Token": "abc"}}"#)]).as_deref(),
            Some("options.auth.Token")
        );
        assert_eq!(
            refused(&[("hosts", r#"[{"name": "a"}, {"password": "p"}]"#)]).as_deref(),
            Some("hosts[1].password")
        );
    }

    #[test]
    fn the_message_points_to_the_credentials_service() {
        let err = check(&settings(&[("password", "x")])).expect_err("refused");
        assert!(
            err.to_string()
                .contains("store it in the credentials service"),
            "{err}"
        );
    }
}
