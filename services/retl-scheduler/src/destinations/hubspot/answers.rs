//! HubSpot's answers read into outcomes: the 200 / 207 batch shapes (per-record errors by
//! `objectWriteTraceId`) and the error bodies (ModelError, the 429 policies).

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::trace_id;
use crate::destinations::http;
use crate::destinations::{DestinationError, OutboundBatch, RecordOutcome, RecordResult};

#[derive(Debug, Default, Deserialize)]
pub(super) struct BatchAnswer {
    #[serde(default)]
    pub(super) results: Vec<ResultObject>,
    #[serde(default)]
    errors: Vec<StandardError>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ResultObject {
    #[serde(default)]
    pub(super) id: String,
    #[serde(default, rename = "objectWriteTraceId")]
    object_write_trace_id: Option<String>,
    #[serde(default)]
    pub(super) properties: HashMap<String, Option<String>>,
}

#[derive(Debug, Deserialize)]
struct StandardError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    context: HashMap<String, Vec<String>>,
}

/// Per-record outcomes of a 200 or 207 upsert answer (see the module doc).
pub(super) fn upsert_results(
    batch: &OutboundBatch,
    status: u16,
    answer: &[u8],
    failed_early: &HashMap<u64, String>,
) -> Vec<RecordResult> {
    let parsed: BatchAnswer = serde_json::from_slice(answer).unwrap_or_default();
    let mut errors: HashMap<String, String> = HashMap::new();
    let mut unmatched = Vec::new();
    for e in &parsed.errors {
        let message = if e.category.is_empty() {
            e.message.clone()
        } else {
            format!("{}: {}", e.category, e.message)
        };
        match e.context.get("objectWriteTraceId") {
            Some(ids) if !ids.is_empty() => {
                for id in ids {
                    errors.insert(id.clone(), message.clone());
                }
            }
            _ => unmatched.push(message),
        }
    }
    let delivered: std::collections::HashSet<String> = parsed
        .results
        .iter()
        .filter_map(|r| r.object_write_trace_id.clone())
        .collect();
    batch
        .records
        .iter()
        .map(|r| {
            let trace = trace_id(r.key_hash);
            let outcome = if let Some(message) = failed_early.get(&r.key_hash) {
                RecordOutcome::Failed {
                    message: message.clone(),
                    status: 0,
                }
            } else if let Some(message) = errors.get(&trace) {
                RecordOutcome::Failed {
                    message: message.clone(),
                    status,
                }
            } else if status == 200 || delivered.contains(&trace) {
                RecordOutcome::Delivered
            } else if parsed.errors.is_empty()
                && parsed
                    .results
                    .iter()
                    .all(|r| r.object_write_trace_id.is_none())
            {
                // A 2xx without trace ids to go by: the batch's outcome.
                RecordOutcome::Delivered
            } else {
                RecordOutcome::Failed {
                    message: if unmatched.is_empty() {
                        "hubspot returned no result for this record".into()
                    } else {
                        unmatched.join("; ")
                    },
                    status,
                }
            };
            RecordResult {
                key_hash: r.key_hash,
                outcome,
            }
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default, rename = "policyName")]
    policy_name: String,
    #[serde(default)]
    category: String,
}

/// The error of a non-2xx answer, reading HubSpot's 429 policy names.
pub(super) fn error_of(
    status: u16,
    headers: &reqwest::header::HeaderMap,
    answer: &[u8],
) -> DestinationError {
    let body: ErrorBody = serde_json::from_slice(answer).unwrap_or_default();
    let message = if body.message.is_empty() {
        http::excerpt(answer)
    } else if body.category.is_empty() {
        body.message.clone()
    } else {
        format!("{}: {}", body.category, body.message)
    };
    if status == 429 {
        let header = http::retry_after(headers);
        if body.policy_name == "TEN_SECONDLY_ROLLING" {
            return DestinationError::RateLimited {
                retry_after: Some(header.unwrap_or(Duration::from_secs(10))),
                status,
                message: format!("429 {}: {message}", body.policy_name),
            };
        }
        if body.message == "You have reached your secondly limit." {
            return DestinationError::RateLimited {
                retry_after: Some(header.unwrap_or(Duration::from_secs(1))),
                status,
                message: format!("429: {message}"),
            };
        }
        return DestinationError::Rejected {
            message: format!("429 {}: {message}", body.policy_name),
            status,
        };
    }
    http::status_error(status, headers, message)
}

#[cfg(test)]
mod tests {
    use super::super::properties;
    use super::*;
    use crate::destinations::{Operation, OutboundRecord};
    use serde_json::{json, Value};
    use std::sync::Arc;

    const F_207: &str =
        include_str!("../../../../../fixtures/wire/hubspot/batch-upsert-response-207.json");
    const F_200: &str =
        include_str!("../../../../../fixtures/wire/hubspot/batch-upsert-response-200.json");
    const F_DAILY: &str =
        include_str!("../../../../../fixtures/wire/hubspot/error-429-daily-limit.json");
    const F_TEN: &str =
        include_str!("../../../../../fixtures/wire/hubspot/error-429-ten-secondly.json");
    const F_400: &str =
        include_str!("../../../../../fixtures/wire/hubspot/error-400-validation.json");

    /// Records whose trace ids are the fixtures' `row-1`, `row-2` would be: the fixture
    /// answers are rewritten to this module's trace ids.
    fn fixture_batch() -> (OutboundBatch, String) {
        let record = |hash: u64, email: &str| OutboundRecord {
            key_hash: hash,
            key: json!({"email": email}).as_object().cloned().unwrap().into(),
            fields: json!({"firstname": "x"})
                .as_object()
                .cloned()
                .unwrap()
                .into(),
        };
        let batch = OutboundBatch {
            sync_id: "s".into(),
            run_id: "r".into(),
            operation: Operation::Upsert,
            idempotency_key: "r:upsert:0".into(),
            options: Arc::default(),
            records: vec![record(1, "ada@example.com"), record(2, "grace@example.com")],
        };
        (batch, String::new())
    }

    fn with_trace_ids(fixture: &str) -> String {
        fixture
            .replace("\"row-1\"", &format!("\"{}\"", trace_id(1)))
            .replace("\"row-2\"", &format!("\"{}\"", trace_id(2)))
    }

    #[test]
    fn multi_status_errors_fail_their_records() {
        let (batch, _) = fixture_batch();
        let got = upsert_results(
            &batch,
            207,
            with_trace_ids(F_207).as_bytes(),
            &HashMap::new(),
        );
        assert_eq!(got[0].outcome, RecordOutcome::Delivered);
        assert!(
            matches!(&got[1].outcome, RecordOutcome::Failed { status: 207, message } if message.starts_with("VALIDATION_ERROR: Property values were not valid"))
        );
        let got = upsert_results(
            &batch,
            200,
            with_trace_ids(F_200).as_bytes(),
            &HashMap::new(),
        );
        assert!(got.iter().all(|r| r.outcome == RecordOutcome::Delivered));
        // A 207 whose errors name no record: the records without results fail.
        let unnamed = F_207.replace(
            "\"objectWriteTraceId\": [\n          \"row-2\"\n        ]",
            "",
        );
        let got = upsert_results(
            &batch,
            207,
            with_trace_ids(&unnamed).as_bytes(),
            &HashMap::new(),
        );
        assert_eq!(got[0].outcome, RecordOutcome::Delivered);
        assert!(
            matches!(&got[1].outcome, RecordOutcome::Failed { message, .. } if message.contains("favorite_colour"))
        );
    }

    #[test]
    fn rate_limit_policies_decide_retries() {
        let h = reqwest::header::HeaderMap::new();
        assert_eq!(
            error_of(429, &h, F_TEN.as_bytes()),
            DestinationError::RateLimited {
                retry_after: Some(Duration::from_secs(10)),
                status: 429,
                message:
                    "429 TEN_SECONDLY_ROLLING: You have reached your ten_secondly_rolling limit."
                        .into()
            }
        );
        assert!(
            matches!(error_of(429, &h, F_DAILY.as_bytes()), DestinationError::Rejected { status: 429, message } if message.contains("DAILY") && message.contains("daily limit"))
        );
        assert!(
            matches!(error_of(400, &h, F_400.as_bytes()), DestinationError::Rejected { status: 400, message } if *message == format!("400: VALIDATION_ERROR: {}", "Invalid input JSON on line 1, column 15: Cannot build SimplePublicObjectBatchInputUpsert, some of required attributes are not set [id]"))
        );
        assert!(matches!(
            error_of(401, &h, b"{}"),
            DestinationError::Authentication(_)
        ));
    }

    #[test]
    fn properties_are_strings() {
        let fields = json!({"a": 1, "b": true, "c": null, "d": "x", "e": {"k": 1}});
        assert_eq!(
            Value::Object(properties(fields.as_object().unwrap())),
            json!({"a": "1", "b": "true", "c": "", "d": "x", "e": "{\"k\":1}"})
        );
    }
}
