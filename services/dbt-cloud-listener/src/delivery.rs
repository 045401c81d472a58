//! A dbt Cloud webhook delivery, from raw bytes to the facts the listener acts on.
//!
//! Order matters and is fixed here: the HMAC-SHA256 of the raw body is checked against
//! the bare-hex `Authorization` header (constant time) before a single byte is parsed.
//! Parsing is tolerant the way real deliveries require: the subscription id comes as
//! `webhooksID` (docs) or `webhookId` (captured traffic), ids as strings or numbers,
//! and every optional field may be missing or empty. Pure; the HTTP edge calls it.

use backflow_platform::webhook_signature::verify_hmac_sha256_hex;
use serde_json::Value;

/// dbt Cloud's run status for a successful run.
pub const RUN_STATUS_SUCCESS: i64 = 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("missing authorization header")]
    MissingSignature,
    #[error("signature does not match the body")]
    BadSignature,
    #[error("body is not a json object: {0}")]
    InvalidBody(String),
    #[error("body has no {0}")]
    MissingField(&'static str),
    #[error("{field} is not an integer id: {value}")]
    BadId { field: &'static str, value: String },
}

/// What one delivery says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub event_id: String,
    pub event_type: String,
    pub account_id: i64,
    /// `webhooksID` or `webhookId`; empty when absent.
    pub subscription_id: String,
    pub job_id: i64,
    pub run_id: i64,
    /// Absent on `job.run.started`.
    pub run_status_code: Option<i64>,
    pub run_status: String,
    pub environment_id: Option<i64>,
    pub project_id: Option<i64>,
    /// `runFinishedAt`, or `runErroredAt` for errored runs; empty when absent.
    pub finished_at: String,
}

impl Delivery {
    /// Only a completed, successful run triggers syncs.
    pub fn is_successful_completion(&self) -> bool {
        self.event_type == "job.run.completed" && self.run_status_code == Some(RUN_STATUS_SUCCESS)
    }
}

/// Verifies the signature, then parses. `authorization` is the header's value, if any.
pub fn verify_and_parse(
    hmac_secret: &[u8],
    authorization: Option<&str>,
    body: &[u8],
) -> Result<Delivery, DeliveryError> {
    let header = authorization
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .ok_or(DeliveryError::MissingSignature)?;
    verify_hmac_sha256_hex(hmac_secret, body, header).map_err(|_| DeliveryError::BadSignature)?;
    parse(body)
}

/// Parses a body whose signature was already checked.
pub fn parse(body: &[u8]) -> Result<Delivery, DeliveryError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|err| DeliveryError::InvalidBody(err.to_string()))?;
    if !value.is_object() {
        return Err(DeliveryError::InvalidBody("not an object".into()));
    }
    let data = value.get("data").unwrap_or(&Value::Null);
    let text = |v: &Value, key: &str| v.get(key).map(text_of).unwrap_or_default();
    let event_id = text(&value, "eventId");
    if event_id.is_empty() {
        return Err(DeliveryError::MissingField("eventId"));
    }
    let subscription_id = [text(&value, "webhooksID"), text(&value, "webhookId")]
        .into_iter()
        .find(|id| !id.is_empty())
        .unwrap_or_default();
    let finished_at = [text(data, "runFinishedAt"), text(data, "runErroredAt")]
        .into_iter()
        .find(|at| !at.is_empty())
        .unwrap_or_default();
    Ok(Delivery {
        event_id,
        event_type: text(&value, "eventType"),
        account_id: required_id(&value, "accountId")?,
        subscription_id,
        job_id: required_id(data, "jobId")?,
        run_id: required_id(data, "runId")?,
        run_status_code: optional_id(data, "runStatusCode")?,
        run_status: text(data, "runStatus"),
        environment_id: optional_id(data, "environmentId")?,
        project_id: optional_id(data, "projectId")?,
        finished_at,
    })
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

fn optional_id(value: &Value, field: &'static str) -> Result<Option<i64>, DeliveryError> {
    match value.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(DeliveryError::BadId {
            field,
            value: n.to_string(),
        }),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| DeliveryError::BadId {
                field,
                value: s.clone(),
            }),
        Some(other) => Err(DeliveryError::BadId {
            field,
            value: other.to_string(),
        }),
    }
}

fn required_id(value: &Value, field: &'static str) -> Result<i64, DeliveryError> {
    optional_id(value, field)?.ok_or(DeliveryError::MissingField(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOADS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/payloads");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{PAYLOADS}/{name}")).unwrap()
    }

    fn sign(secret: &[u8], body: &[u8]) -> String {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn the_fixture_vector_verifies_and_bad_headers_do_not() {
        let vectors: Value =
            serde_json::from_slice(&fixture("webhook-signature-test-vectors.json")).unwrap();
        let dbt = &vectors["dbt_cloud"];
        let secret = dbt["secret"].as_str().unwrap().as_bytes();
        let body = dbt["payload"].as_str().unwrap().as_bytes();
        let header = dbt["header_value"].as_str().unwrap();
        // "Hello, World!" is signed correctly but is not a delivery: it fails parsing, after the check.
        assert!(matches!(
            verify_and_parse(secret, Some(header), body),
            Err(DeliveryError::InvalidBody(_))
        ));
        assert!(matches!(
            verify_and_parse(secret, Some(&header.to_uppercase()), body),
            Err(DeliveryError::InvalidBody(_))
        ));
        for bad in [&header[..40], "not hex at all", &format!("sha256={header}")] {
            assert_eq!(
                verify_and_parse(secret, Some(bad), body),
                Err(DeliveryError::BadSignature),
                "{bad}"
            );
        }
        assert_eq!(
            verify_and_parse(secret, None, body),
            Err(DeliveryError::MissingSignature)
        );
        assert_eq!(
            verify_and_parse(secret, Some("  "), body),
            Err(DeliveryError::MissingSignature)
        );
        assert_eq!(
            verify_and_parse(secret, Some(header), b"Hello, World?"),
            Err(DeliveryError::BadSignature)
        );
    }

    #[test]
    fn the_docs_example_parses_with_string_ids() {
        let body = fixture("dbt-cloud-job-run-completed.json");
        let secret = b"whsec";
        let delivery = verify_and_parse(secret, Some(&sign(secret, &body)), &body).unwrap();
        assert_eq!(
            delivery,
            Delivery {
                event_id: "wev_2L6ZDoilyiWzKkSA59Gmc2d7FDD".into(),
                event_type: "job.run.completed".into(),
                account_id: 1,
                subscription_id: "wsu_12345abcde".into(),
                job_id: 123,
                run_id: 12345,
                run_status_code: Some(10),
                run_status: "Success".into(),
                environment_id: Some(1234),
                project_id: Some(167194),
                finished_at: "2023-01-31T19:29:32Z".into(),
            }
        );
        assert!(delivery.is_successful_completion());
    }

    #[test]
    fn the_captured_delivery_uses_webhook_id() {
        let delivery = parse(&fixture("dbt-cloud-job-run-completed-captured.raw.json")).unwrap();
        assert_eq!(delivery.subscription_id, "wsu_2QGRb6TLFTOlBXsWjL4kb0RHTWc");
        assert_eq!(
            (delivery.account_id, delivery.job_id, delivery.run_id),
            (66847, 278164, 155144666)
        );
        assert!(delivery.is_successful_completion());
    }

    #[test]
    fn errored_cancelled_and_started_runs_do_not_trigger() {
        let errored = parse(&fixture("dbt-cloud-job-run-errored.json")).unwrap();
        assert_eq!(errored.run_status_code, Some(20));
        assert!(
            !errored.finished_at.is_empty(),
            "runErroredAt is the finish time"
        );
        assert!(!errored.is_successful_completion());
        let cancelled = parse(&fixture("dbt-cloud-job-run-completed-cancelled.json")).unwrap();
        assert_eq!(cancelled.run_status_code, Some(30));
        assert!(!cancelled.is_successful_completion());
        let started = parse(&fixture("dbt-cloud-job-run-started.json")).unwrap();
        assert!(!started.is_successful_completion());
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        assert!(matches!(parse(b"[1]"), Err(DeliveryError::InvalidBody(_))));
        assert!(matches!(parse(b"{"), Err(DeliveryError::InvalidBody(_))));
        assert_eq!(
            parse(br#"{"accountId":1,"data":{"jobId":1,"runId":2}}"#),
            Err(DeliveryError::MissingField("eventId"))
        );
        assert_eq!(
            parse(br#"{"eventId":"e","accountId":1,"data":{"jobId":"x","runId":2}}"#),
            Err(DeliveryError::BadId {
                field: "jobId",
                value: "x".into()
            })
        );
        assert_eq!(
            parse(br#"{"eventId":"e","accountId":1,"data":{"runId":2}}"#),
            Err(DeliveryError::MissingField("jobId"))
        );
    }
}
