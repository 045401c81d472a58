//! From a stored destination (kind, settings, secret) to a configured [`Destination`], and
//! the kind's proto enum both ways. `build` only validates: it dials nothing, so it is
//! cheap for create/update validation; `Destination::test` is the call that dials.

use std::sync::Arc;

use backflow_proto::retl::v1 as pb;
use secrecy::{ExposeSecret, SecretString};

use super::{Destination, DestinationError, DestinationKind, DestinationSettings};

/// The configured destination of `kind`. The secret is the signing secret (webhook),
/// write key (Segment), token (HubSpot, Salesforce) or password (PostgreSQL); each kind's
/// module doc lists its settings.
pub fn build(
    kind: DestinationKind,
    settings: &DestinationSettings,
    secret: Option<SecretString>,
) -> Result<Arc<dyn Destination>, DestinationError> {
    let text = secret.as_ref().map(|s| s.expose_secret());
    Ok(match kind {
        DestinationKind::Webhook => {
            Arc::new(super::webhook::WebhookDestination::new(settings, text)?)
        }
        DestinationKind::Segment => {
            Arc::new(super::segment::SegmentDestination::new(settings, text)?)
        }
        DestinationKind::Hubspot => {
            Arc::new(super::hubspot::HubspotDestination::new(settings, text)?)
        }
        DestinationKind::Postgres => Arc::new(super::postgres::PostgresDestination::new(
            settings,
            secret.clone(),
        )?),
        DestinationKind::Salesforce => Arc::new(super::salesforce::SalesforceDestination::new(
            settings, text,
        )?),
    })
}

/// The kind of a proto `DestinationKind` value; unspecified or unknown is a settings error.
pub fn kind_from_wire(value: i32) -> Result<DestinationKind, DestinationError> {
    match pb::DestinationKind::try_from(value) {
        Ok(pb::DestinationKind::Webhook) => Ok(DestinationKind::Webhook),
        Ok(pb::DestinationKind::Segment) => Ok(DestinationKind::Segment),
        Ok(pb::DestinationKind::Hubspot) => Ok(DestinationKind::Hubspot),
        Ok(pb::DestinationKind::Salesforce) => Ok(DestinationKind::Salesforce),
        Ok(pb::DestinationKind::Postgres) => Ok(DestinationKind::Postgres),
        Ok(pb::DestinationKind::Unspecified) | Err(_) => Err(DestinationError::Settings(format!(
            "destination kind {value} is not one of webhook, segment, hubspot, salesforce, postgres"
        ))),
    }
}

/// The proto value of a kind.
pub fn kind_to_wire(kind: DestinationKind) -> i32 {
    let wire = match kind {
        DestinationKind::Webhook => pb::DestinationKind::Webhook,
        DestinationKind::Segment => pb::DestinationKind::Segment,
        DestinationKind::Hubspot => pb::DestinationKind::Hubspot,
        DestinationKind::Salesforce => pb::DestinationKind::Salesforce,
        DestinationKind::Postgres => pb::DestinationKind::Postgres,
    };
    wire as i32
}

/// Lower-case name of a kind (CLI, messages): `webhook`, `segment`, …
pub fn kind_name(kind: DestinationKind) -> &'static str {
    match kind {
        DestinationKind::Webhook => "webhook",
        DestinationKind::Segment => "segment",
        DestinationKind::Hubspot => "hubspot",
        DestinationKind::Salesforce => "salesforce",
        DestinationKind::Postgres => "postgres",
    }
}

/// The kind named `name` (as [`kind_name`] prints it).
pub fn kind_from_name(name: &str) -> Option<DestinationKind> {
    ALL.into_iter()
        .find(|k| kind_name(*k).eq_ignore_ascii_case(name.trim()))
}

/// Every kind.
pub const ALL: [DestinationKind; 5] = [
    DestinationKind::Webhook,
    DestinationKind::Segment,
    DestinationKind::Hubspot,
    DestinationKind::Salesforce,
    DestinationKind::Postgres,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_the_wire() {
        for kind in ALL {
            assert_eq!(kind_from_wire(kind_to_wire(kind)).unwrap(), kind);
            assert_eq!(kind_from_name(kind_name(kind)), Some(kind));
        }
        assert!(matches!(
            kind_from_wire(0),
            Err(DestinationError::Settings(_))
        ));
        assert!(matches!(
            kind_from_wire(99),
            Err(DestinationError::Settings(_))
        ));
    }

    #[test]
    fn build_validates_without_dialling() {
        let mut settings = DestinationSettings::new();
        settings.insert("url".into(), "http://127.0.0.1:9/never".into());
        let d = build(DestinationKind::Webhook, &settings, None).unwrap();
        assert_eq!(d.kind(), DestinationKind::Webhook);
        assert!(matches!(
            build(DestinationKind::Webhook, &DestinationSettings::new(), None),
            Err(DestinationError::Settings(_))
        ));
    }

    #[test]
    fn every_kind_builds_from_its_minimal_settings() {
        let secret = || Some(SecretString::from("s3cret".to_string()));
        let one = |k: &str, v: &str| DestinationSettings::from([(k.to_string(), v.to_string())]);
        let cases = [
            (DestinationKind::Segment, DestinationSettings::new()),
            (DestinationKind::Hubspot, DestinationSettings::new()),
            (
                DestinationKind::Salesforce,
                one("instance_url", "https://acme.my.salesforce.com"),
            ),
            (
                DestinationKind::Postgres,
                one("url", "postgres://app@127.0.0.1:5432/crm"),
            ),
        ];
        for (kind, settings) in cases {
            let d = build(kind, &settings, secret()).unwrap();
            assert_eq!(d.kind(), kind);
            assert!(!d.rate_limit_key().contains("s3cret"));
        }
        // Secrets are required where the API needs one; typos in settings are refused.
        for kind in [DestinationKind::Segment, DestinationKind::Hubspot] {
            assert!(matches!(
                build(kind, &DestinationSettings::new(), None),
                Err(DestinationError::Settings(_))
            ));
            assert!(
                matches!(build(kind, &one("endpiont", "x"), secret()), Err(DestinationError::Settings(m)) if m.contains("unknown setting"))
            );
        }
        assert!(matches!(
            build(DestinationKind::Postgres, &one("url", "postgres://app:pw@h/db"), None),
            Err(DestinationError::Settings(m)) if m.contains("password")
        ));
    }
}
