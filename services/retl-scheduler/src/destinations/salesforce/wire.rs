//! The CSV and SOQL a Salesforce batch becomes: the upload file of an upsert job (external
//! id first, null as `#N/A`) and the literals of the Id lookup of deletes.

use serde_json::Value;

use crate::destinations::csv;
use crate::destinations::settings::{json_text, optional};
use crate::destinations::{OutboundBatch, OutboundRecord};

/// A CSV value of a JSON value (null → `#N/A`, see the module doc).
pub fn csv_value(value: Option<&Value>) -> String {
    match value {
        None => String::new(),
        Some(Value::Null) => "#N/A".into(),
        Some(v) => csv::quoted(&json_text(v).unwrap_or_default()),
    }
}

pub(super) fn source_value(record: &OutboundRecord, source: Option<&str>) -> Option<String> {
    match source {
        Some(name) => record
            .key
            .get(name)
            .or_else(|| record.fields.get(name))
            .and_then(json_text),
        None if record.key.len() == 1 => record.key.values().next().and_then(json_text),
        None => None,
    }
    .filter(|v| !v.is_empty())
}

/// The upload CSV of an upsert batch: the external id column, then the mapped fields in
/// name order; returns it with the external id value of each record (None: not sent).
pub fn upsert_csv(batch: &OutboundBatch, external_id_field: &str) -> (String, Vec<Option<String>>) {
    let source = optional(&batch.options, "external_id_source");
    let mut columns: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for record in &batch.records {
        columns.extend(record.fields.keys().map(String::as_str));
    }
    columns.remove(external_id_field);
    let mut out = String::new();
    csv::push_line(
        &mut out,
        std::iter::once(external_id_field.to_string()).chain(columns.iter().map(|c| c.to_string())),
    );
    let mut ids = Vec::with_capacity(batch.records.len());
    for record in &batch.records {
        let id = source_value(record, source);
        if let Some(id) = &id {
            csv::push_line(
                &mut out,
                std::iter::once(csv::quoted(id))
                    .chain(columns.iter().map(|c| csv_value(record.fields.get(*c)))),
            );
        }
        ids.push(id);
    }
    (out, ids)
}

pub(super) fn soql_literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

pub(super) fn is_api_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::super::job::{error_of, parse_job};
    use super::*;
    use crate::destinations::{DestinationError, Operation};
    use serde_json::json;
    use std::sync::Arc;

    const F_403: &str =
        include_str!("../../../../../fixtures/wire/salesforce/error-403-request-limit.json");
    const F_404: &str =
        include_str!("../../../../../fixtures/wire/salesforce/error-404-not-found.json");
    const F_OPEN: &str =
        include_str!("../../../../../fixtures/wire/salesforce/create-job-response-upsert.json");

    #[test]
    fn upload_csv_writes_the_external_id_first_and_null_as_na() {
        let record = |id: &str, fields: Value| OutboundRecord {
            key_hash: 1,
            key: json!({"ext": id}).as_object().cloned().unwrap().into(),
            fields: fields.as_object().cloned().unwrap().into(),
        };
        let batch = OutboundBatch {
            sync_id: "s".into(),
            run_id: "r".into(),
            operation: Operation::Upsert,
            idempotency_key: "r:upsert:0".into(),
            options: Arc::default(),
            records: vec![
                record(
                    "234",
                    json!({"name": "United Oil & Gas, UK", "NumberOfEmployees": 1467}),
                ),
                record("345", json!({"name": null, "NumberOfEmployees": 348})),
                record("", json!({"name": "no id"})),
            ],
        };
        let (csv_body, ids) = upsert_csv(&batch, "customExtIdField__c");
        assert_eq!(
            csv_body,
            "customExtIdField__c,NumberOfEmployees,name\n\"234\",\"1467\",\"United Oil & Gas, UK\"\n\"345\",\"348\",#N/A\n"
        );
        assert_eq!(ids, vec![Some("234".into()), Some("345".into()), None]);
        assert_eq!(soql_literal("o'k"), "'o\\'k'");
    }

    #[test]
    fn errors_are_read_from_the_array_bodies() {
        let h = reqwest::header::HeaderMap::new();
        assert_eq!(
            error_of(403, &h, F_403.as_bytes()),
            DestinationError::RateLimited {
                retry_after: None,
                status: 403,
                message: "403: REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.".into()
            }
        );
        assert!(
            matches!(error_of(404, &h, F_404.as_bytes()), DestinationError::Rejected { status: 404, message } if message == "404: NOT_FOUND: The requested resource does not exist")
        );
        let job = parse_job(F_OPEN.as_bytes()).unwrap();
        assert_eq!(
            job.content_url.as_deref(),
            Some("services/data/66.0/jobs/ingest/7476gEXAMPLE4X2ZWO/batches")
        );
        assert_eq!(job.state, "Open");
    }
}
