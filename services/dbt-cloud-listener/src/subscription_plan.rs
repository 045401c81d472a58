//! What to do so that exactly one working dbt Cloud webhook subscription points at one
//! of Backflow's subscription rows, given what dbt Cloud lists. Pure; `watch.rs` does
//! the calls.
//!
//! dbt Cloud's subscriptions are recognised by their `client_url`, which carries the
//! row's id (`<public_url>/webhooks/dbt-cloud/<id>`), so a subscription created just
//! before a crash (before its id reached the row) is found again by listing, and reused
//! if its `hmac_secret` was kept (the secret is named after dbt's id). One whose secret
//! is lost cannot be verified and is deleted; so are duplicates (two replicas creating
//! at once), subscriptions for a URL Backflow no longer uses (the public URL changed),
//! and ones that no longer fit (deactivated, other jobs or events).

use crate::api::Subscription;
use crate::store::{SubscriptionRecord, SubscriptionStatus};
use std::collections::BTreeMap;

/// The only event type Backflow subscribes to.
pub const EVENT_TYPE: &str = "job.run.completed";

/// The URL dbt Cloud posts a subscription's deliveries to.
pub fn webhook_url(public_url: &str, subscription_id: &str) -> String {
    format!(
        "{}/webhooks/dbt-cloud/{subscription_id}",
        public_url.trim().trim_end_matches('/')
    )
}

/// Checks `dbt_cloud_listener.public_url`: an absolute http(s) URL without query or
/// fragment. Returns it without a trailing `/`.
pub fn validate_public_url(public_url: &str) -> Result<String, String> {
    let trimmed = public_url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(|| {
            format!(
                "dbt_cloud_listener.public_url {trimmed:?} must start with https:// (dbt cloud calls https urls; http:// only for a local stand-in)"
            )
        })?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || rest.contains(['?', '#', ' ']) || host.contains('@') {
        return Err(format!(
            "dbt_cloud_listener.public_url {trimmed:?} must be a base url like https://backflow.example.com, without query, fragment or user"
        ));
    }
    Ok(trimmed.to_string())
}

/// Whether a listed subscription is one Backflow can rely on for `job_id`.
pub fn fits(subscription: &Subscription, job_id: i64) -> bool {
    subscription.active
        && subscription.job_ids == [job_id]
        && subscription.event_types.iter().any(|e| e == EVENT_TYPE)
}

/// What to do for one row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Reset the row to pending with this URL first (its URL is not the expected one).
    pub reset_url: Option<String>,
    /// The row is fine as it is.
    pub keep: bool,
    /// Make the row active with this dbt Cloud subscription and kept secret.
    pub adopt: Option<(String, String)>,
    /// dbt Cloud subscriptions to delete (with their kept secrets, if any).
    pub delete: Vec<String>,
    /// Create a new subscription in dbt Cloud (after the deletes).
    pub create: bool,
    /// The row's old secret, no longer used once the plan is done.
    pub forget_secret: Option<String>,
}

/// The plan for `row`, expected at `expected_url`, given dbt Cloud's `listed`
/// subscriptions and the kept secrets found for listed ids (`kept`: dbt id → secret id).
pub fn plan(
    row: &SubscriptionRecord,
    expected_url: &str,
    listed: &[Subscription],
    kept: &BTreeMap<String, String>,
) -> Plan {
    let mut plan = Plan::default();
    let ours: Vec<&Subscription> = listed
        .iter()
        .filter(|s| s.client_url == row.client_url || s.client_url == expected_url)
        .collect();
    let old_secret =
        (!row.hmac_secret_credential_id.is_empty()).then(|| row.hmac_secret_credential_id.clone());
    if row.client_url != expected_url {
        plan.reset_url = Some(expected_url.to_string());
        plan.delete = ours.iter().map(|s| s.id.clone()).collect();
        if row.status == SubscriptionStatus::Active
            && !row.dbt_webhook_id.is_empty()
            && !plan.delete.contains(&row.dbt_webhook_id)
        {
            plan.delete.push(row.dbt_webhook_id.clone());
        }
        plan.create = true;
        plan.forget_secret = old_secret;
        return plan;
    }
    let current = ours.iter().find(|s| {
        row.status == SubscriptionStatus::Active
            && s.id == row.dbt_webhook_id
            && fits(s, row.job_id)
    });
    if let Some(current) = current {
        plan.keep = true;
        plan.delete = ours
            .iter()
            .filter(|s| s.id != current.id)
            .map(|s| s.id.clone())
            .collect();
        return plan;
    }
    // Pending, or active but gone from dbt Cloud (or no longer fitting).
    let adoptable = ours
        .iter()
        .find(|s| fits(s, row.job_id) && kept.contains_key(&s.id));
    if let Some(found) = adoptable {
        if let Some(secret) = kept.get(&found.id) {
            plan.adopt = Some((found.id.clone(), secret.clone()));
        }
        plan.delete = ours
            .iter()
            .filter(|s| s.id != found.id)
            .map(|s| s.id.clone())
            .collect();
    } else {
        plan.delete = ours.iter().map(|s| s.id.clone()).collect();
        plan.create = true;
    }
    if old_secret.as_deref() != plan.adopt.as_ref().map(|(_, secret)| secret.as_str()) {
        plan.forget_secret = old_secret;
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://bf.example.com/webhooks/dbt-cloud/sub1";

    fn row(status: SubscriptionStatus, webhook: &str, secret: &str) -> SubscriptionRecord {
        SubscriptionRecord {
            id: "sub1".into(),
            workspace_id: "ws".into(),
            connection_id: "conn".into(),
            job_id: 7,
            dbt_webhook_id: webhook.into(),
            hmac_secret_credential_id: secret.into(),
            created_at_ms: 0,
            status,
            client_url: URL.into(),
        }
    }

    fn listed(id: &str, url: &str, job: i64) -> Subscription {
        Subscription {
            id: id.into(),
            name: "backflow".into(),
            job_ids: vec![job],
            event_types: vec![EVENT_TYPE.into()],
            client_url: url.into(),
            active: true,
            hmac_secret: None,
        }
    }

    fn kept(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn urls_and_the_public_url_setting() {
        assert_eq!(
            webhook_url("https://bf.example.com/", "sub1"),
            "https://bf.example.com/webhooks/dbt-cloud/sub1"
        );
        assert_eq!(
            validate_public_url(" https://bf.example.com/base/ "),
            Ok("https://bf.example.com/base".into())
        );
        assert_eq!(
            validate_public_url("http://127.0.0.1:8084"),
            Ok("http://127.0.0.1:8084".into())
        );
        for bad in [
            "bf.example.com",
            "ftp://x",
            "https://",
            "https://x?y=1",
            "https://u@x",
        ] {
            assert!(validate_public_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_pending_row_with_nothing_in_dbt_cloud_creates_one() {
        let plan = plan(
            &row(SubscriptionStatus::Pending, "", ""),
            URL,
            &[listed("wsu_other", "https://x", 7)],
            &kept(&[]),
        );
        assert_eq!(
            plan,
            Plan {
                create: true,
                ..Plan::default()
            }
        );
    }

    #[test]
    fn an_active_row_that_dbt_cloud_still_lists_is_kept_and_duplicates_go() {
        let plan = plan(
            &row(SubscriptionStatus::Active, "wsu_1", "sec1"),
            URL,
            &[listed("wsu_1", URL, 7), listed("wsu_2", URL, 7)],
            &kept(&[]),
        );
        assert!(plan.keep && !plan.create);
        assert_eq!(plan.delete, vec!["wsu_2".to_string()]);
        assert_eq!(plan.forget_secret, None);
    }

    #[test]
    fn after_a_crash_a_created_subscription_with_a_kept_secret_is_adopted() {
        let plan = plan(
            &row(SubscriptionStatus::Pending, "", ""),
            URL,
            &[listed("wsu_1", URL, 7)],
            &kept(&[("wsu_1", "sec1")]),
        );
        assert_eq!(plan.adopt, Some(("wsu_1".into(), "sec1".into())));
        assert!(!plan.create && plan.delete.is_empty());
    }

    #[test]
    fn after_a_crash_a_created_subscription_without_its_secret_is_replaced() {
        let plan = plan(
            &row(SubscriptionStatus::Pending, "", ""),
            URL,
            &[listed("wsu_1", URL, 7)],
            &kept(&[]),
        );
        assert_eq!(plan.delete, vec!["wsu_1".to_string()]);
        assert!(plan.create);
    }

    #[test]
    fn a_subscription_deleted_or_changed_in_dbt_cloud_is_recreated() {
        let gone = plan(
            &row(SubscriptionStatus::Active, "wsu_1", "sec1"),
            URL,
            &[],
            &kept(&[]),
        );
        assert!(gone.create);
        assert_eq!(gone.forget_secret, Some("sec1".into()));
        let mut inactive = listed("wsu_1", URL, 7);
        inactive.active = false;
        let changed = plan(
            &row(SubscriptionStatus::Active, "wsu_1", "sec1"),
            URL,
            &[inactive],
            &kept(&[]),
        );
        assert!(changed.create);
        assert_eq!(changed.delete, vec!["wsu_1".to_string()]);
    }

    #[test]
    fn a_new_public_url_replaces_the_subscription() {
        let new_url = "https://new.example.com/webhooks/dbt-cloud/sub1";
        let plan = plan(
            &row(SubscriptionStatus::Active, "wsu_1", "sec1"),
            new_url,
            &[listed("wsu_1", URL, 7)],
            &kept(&[]),
        );
        assert_eq!(plan.reset_url.as_deref(), Some(new_url));
        assert_eq!(plan.delete, vec!["wsu_1".to_string()]);
        assert!(plan.create);
        assert_eq!(plan.forget_secret, Some("sec1".into()));
    }

    #[test]
    fn fitting_means_active_this_job_only_and_run_completed() {
        let mut sub = listed("wsu_1", URL, 7);
        assert!(fits(&sub, 7));
        assert!(!fits(&sub, 8));
        sub.job_ids = vec![7, 8];
        assert!(!fits(&sub, 7));
        sub.job_ids = vec![7];
        sub.event_types = vec!["job.run.started".into()];
        assert!(!fits(&sub, 7));
    }
}
