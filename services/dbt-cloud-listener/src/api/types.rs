//! The dbt Cloud API objects Backflow reads, kept to the fields it uses. Ids arrive as
//! numbers in v2 and as strings in v3 webhook objects; both deserialize to `i64`.

use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};

fn id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Number(i64),
        Text(String),
    }
    match Id::deserialize(deserializer)? {
        Id::Number(n) => Ok(n),
        Id::Text(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

fn optional_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Number(i64),
        Text(String),
    }
    match Option::<Id>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Id::Number(n)) => Ok(Some(n)),
        Some(Id::Text(s)) if s.trim().is_empty() => Ok(None),
        Some(Id::Text(s)) => s.trim().parse().map(Some).map_err(serde::de::Error::custom),
    }
}

fn ids<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<i64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "id")] i64);
    Ok(Vec::<Wrapped>::deserialize(deserializer)?
        .into_iter()
        .map(|Wrapped(id)| id)
        .collect())
}

/// `GET /api/v2/accounts/{id}/`: the account the token was checked against.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Account {
    #[serde(deserialize_with = "id")]
    pub id: i64,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Project {
    #[serde(deserialize_with = "id")]
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Environment {
    #[serde(deserialize_with = "id")]
    pub id: i64,
    pub name: String,
    #[serde(default, deserialize_with = "optional_id")]
    pub project_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Job {
    #[serde(deserialize_with = "id")]
    pub id: i64,
    pub name: String,
    #[serde(default, deserialize_with = "optional_id")]
    pub project_id: Option<i64>,
    #[serde(default, deserialize_with = "optional_id")]
    pub environment_id: Option<i64>,
    /// 1 active, 2 deleted.
    #[serde(default)]
    pub state: Option<i64>,
    /// `scheduled`, `ci`, `merge`, `other` (newer accounts); absent on older ones.
    #[serde(default)]
    pub job_type: Option<String>,
}

/// dbt Cloud run status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Queued,
    Starting,
    Running,
    Success,
    Error,
    Cancelled,
    Other(i64),
}

impl RunStatus {
    pub fn from_code(code: i64) -> Self {
        match code {
            1 => Self::Queued,
            2 => Self::Starting,
            3 => Self::Running,
            10 => Self::Success,
            20 => Self::Error,
            30 => Self::Cancelled,
            other => Self::Other(other),
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, Self::Success | Self::Error | Self::Cancelled)
    }

    /// The name dbt Cloud shows for the status (its `status_humanized`).
    pub fn name(self) -> String {
        match self {
            Self::Queued => "Queued".into(),
            Self::Starting => "Starting".into(),
            Self::Running => "Running".into(),
            Self::Success => "Success".into(),
            Self::Error => "Error".into(),
            Self::Cancelled => "Cancelled".into(),
            Self::Other(code) => format!("status {code}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Run {
    #[serde(deserialize_with = "id")]
    pub id: i64,
    #[serde(default, deserialize_with = "optional_id")]
    pub job_definition_id: Option<i64>,
    pub status: i64,
    #[serde(default)]
    pub status_humanized: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub git_sha: Option<String>,
    /// dbt Cloud's link to the run page.
    #[serde(default)]
    pub href: Option<String>,
    #[serde(default, deserialize_with = "optional_id")]
    pub environment_id: Option<i64>,
    #[serde(default, deserialize_with = "optional_id")]
    pub project_id: Option<i64>,
}

impl Run {
    pub fn run_status(&self) -> RunStatus {
        RunStatus::from_code(self.status)
    }
}

/// A webhook subscription. `hmac_secret` is only present in the create answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub name: String,
    #[serde(default, deserialize_with = "ids")]
    pub job_ids: Vec<i64>,
    #[serde(default)]
    pub event_types: Vec<String>,
    pub client_url: String,
    #[serde(default)]
    pub active: bool,
    #[serde(default)]
    pub hmac_secret: Option<SecretString>,
}

/// The body of a subscription create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionRequest {
    pub event_types: Vec<String>,
    pub name: String,
    pub client_url: String,
    pub active: bool,
    pub description: String,
    pub job_ids: Vec<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn data(name: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(format!(
            "{}/../../fixtures/payloads/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["data"].clone()
    }

    #[test]
    fn fixture_objects_deserialize() {
        let jobs: Vec<Job> = serde_json::from_value(data("dbt-cloud-jobs-list.json")).unwrap();
        assert_eq!((jobs[0].id, jobs[0].project_id), (43167, Some(123457)));
        let runs: Vec<Run> = serde_json::from_value(data("dbt-cloud-runs-list.json")).unwrap();
        assert_eq!(runs[0].run_status(), RunStatus::Success);
        assert_eq!(runs[1].run_status(), RunStatus::Error);
        let run: Run = serde_json::from_value(data("dbt-cloud-run-get.json")).unwrap();
        assert!(run.run_status().is_finished());
        let created: Subscription =
            serde_json::from_value(data("dbt-cloud-webhook-subscription-create-response.json"))
                .unwrap();
        assert_eq!(created.job_ids, vec![123, 321]);
        assert_eq!(
            created
                .hmac_secret
                .as_ref()
                .map(|s| s.expose_secret().to_string()),
            Some("12345abcde".into())
        );
        let listed: Vec<Subscription> =
            serde_json::from_value(data("dbt-cloud-webhook-subscriptions-list.json")).unwrap();
        assert!(listed.iter().all(|s| s.hmac_secret.is_none()));
        let projects: Vec<Project> =
            serde_json::from_value(data("dbt-cloud-projects-list-v3.json")).unwrap();
        assert!(!projects.is_empty());
    }
}
