//! Reading a destination's string settings and a sync's string options: required values,
//! bounded numbers, one clear message naming the setting when it is wrong. Shared by
//! every kind so "batch_size must be 1..=100" reads the same everywhere.

use std::collections::BTreeMap;

use super::DestinationError;

/// A required, non-blank setting.
pub fn required<'a>(
    settings: &'a BTreeMap<String, String>,
    name: &str,
) -> Result<&'a str, DestinationError> {
    match settings.get(name).map(|v| v.trim()) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(DestinationError::Settings(format!("{name} is required"))),
    }
}

/// An optional setting; blank is absent.
pub fn optional<'a>(settings: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    settings
        .get(name)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// An optional whole number in `min..=max`, `default` when absent.
pub fn bounded(
    settings: &BTreeMap<String, String>,
    name: &str,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, DestinationError> {
    let Some(text) = optional(settings, name) else {
        return Ok(default);
    };
    match text.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(DestinationError::Settings(format!(
            "{name} must be a whole number from {min} to {max}, not {text:?}"
        ))),
    }
}

/// Rejects settings this kind does not know (a typo would otherwise be silently ignored).
pub fn only_known(
    settings: &BTreeMap<String, String>,
    known: &[&str],
) -> Result<(), DestinationError> {
    match settings.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(DestinationError::Settings(format!(
            "unknown setting {unknown:?} (known: {})",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

/// A JSON value as the text APIs with string-only fields want (HubSpot properties,
/// Salesforce CSV, a Segment id): strings as is, numbers and booleans printed, objects and
/// arrays as compact JSON, null as `None`.
pub fn json_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn values_are_checked() {
        let settings = s(&[("url", " https://x "), ("batch_size", "5"), ("blank", " ")]);
        assert_eq!(required(&settings, "url").unwrap(), "https://x");
        assert!(matches!(
            required(&settings, "blank"),
            Err(DestinationError::Settings(m)) if m == "blank is required"
        ));
        assert_eq!(bounded(&settings, "batch_size", 1, 1, 10).unwrap(), 5);
        assert_eq!(bounded(&settings, "other", 3, 1, 10).unwrap(), 3);
        assert!(bounded(&settings, "batch_size", 1, 6, 10).is_err());
        assert!(only_known(&settings, &["url", "batch_size"]).is_err());
        assert!(only_known(&settings, &["url", "batch_size", "blank"]).is_ok());
        assert_eq!(json_text(&serde_json::json!(1.5)).as_deref(), Some("1.5"));
        assert_eq!(json_text(&serde_json::json!(null)), None);
        assert_eq!(
            json_text(&serde_json::json!({"a":1})).as_deref(),
            Some("{\"a\":1}")
        );
    }
}
