//! A record's key or fields object as JSON text, encoded once where the row was read
//! (`executor::mapping` writes it straight from the warehouse cells) and handed on as is:
//! the spill file stores the text, and destinations whose body embeds the object (the
//! webhook) splice it into the request without building or walking a `serde_json::Value`.
//! Destinations that reshape values (Segment, HubSpot, Salesforce, PostgreSQL) read the
//! parsed object through `Deref`; it is parsed on first use, once per record.

use serde_json::{Map, Value};
use std::sync::OnceLock;

/// One JSON object's text (always a valid object), with its parsed form on demand.
#[derive(Clone)]
pub struct JsonObject {
    text: Box<str>,
    parsed: OnceLock<Map<String, Value>>,
}

impl JsonObject {
    /// Text the caller encoded itself; `None` unless it is one JSON object.
    pub fn from_text(text: impl Into<Box<str>>) -> Option<Self> {
        let text = text.into();
        let map = serde_json::from_str::<Map<String, Value>>(&text).ok()?;
        let parsed = OnceLock::new();
        let _ = parsed.set(map);
        Some(Self { text, parsed })
    }

    /// Text an encoder of this crate wrote as one object (trusted: the spill file, the
    /// mapping), parsed only when a destination asks for the map.
    pub(crate) fn from_encoded(text: Box<str>) -> Self {
        Self {
            text,
            parsed: OnceLock::new(),
        }
    }

    pub fn from_map(map: Map<String, Value>) -> Self {
        let text = serde_json::to_string(&map)
            .unwrap_or_else(|_| "{}".to_string())
            .into_boxed_str();
        let parsed = OnceLock::new();
        let _ = parsed.set(map);
        Self { text, parsed }
    }

    /// The object's JSON text (what a webhook body embeds).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Sets one member (the text is encoded again: for building records by hand).
    pub fn insert(&mut self, name: String, value: Value) -> Option<Value> {
        let mut map = self.to_map();
        let previous = map.insert(name, value);
        *self = Self::from_map(map);
        previous
    }

    /// The parsed object (a copy).
    pub fn to_map(&self) -> Map<String, Value> {
        (**self).clone()
    }
}

/// The empty object `{}` (what deletes carry as fields).
impl Default for JsonObject {
    fn default() -> Self {
        Self::from_map(Map::new())
    }
}

impl std::ops::Deref for JsonObject {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Map<String, Value> {
        self.parsed
            .get_or_init(|| serde_json::from_str(&self.text).unwrap_or_default())
    }
}

impl<'a> IntoIterator for &'a JsonObject {
    type Item = (&'a String, &'a Value);
    type IntoIter = serde_json::map::Iter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        (**self).iter()
    }
}

impl From<Map<String, Value>> for JsonObject {
    fn from(map: Map<String, Value>) -> Self {
        Self::from_map(map)
    }
}

/// Serialised as the object it holds.
impl serde::Serialize for JsonObject {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(serializer)
    }
}

/// Equal when the objects are (the text may differ in key order or spacing).
impl PartialEq for JsonObject {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text || **self == **other
    }
}

impl std::fmt::Debug for JsonObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_map_agree() {
        let object = JsonObject::from_encoded(r#"{"id":1,"email":"a@x"}"#.into());
        assert_eq!(object.get("id"), Some(&serde_json::json!(1)));
        assert_eq!(object.len(), 2);
        let same = JsonObject::from_map(object.to_map());
        assert_eq!(same, object);
        assert_eq!(
            same.as_str(),
            serde_json::to_string(&object.to_map()).unwrap()
        );
        let mut changed = same.clone();
        assert_eq!(
            changed.insert("id".into(), serde_json::json!(2)),
            Some(serde_json::json!(1))
        );
        assert_eq!(changed.get("id"), Some(&serde_json::json!(2)));
        assert!(changed.as_str().contains("\"id\":2"));
        assert!(JsonObject::from_text("[1]").is_none());
        assert!(JsonObject::from_text("{\"a\":").is_none());
        assert_eq!(JsonObject::default().as_str(), "{}");
        assert!(JsonObject::default().is_empty());
    }
}
