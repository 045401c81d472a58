//! What the catalog hears from the bus: git-sync connection changes keep the project
//! projection current. Each handler is idempotent through the inbox, so redelivery
//! and republishing are harmless.

use crate::store::CatalogStore;
use backflow_platform::bus::{streams, ConsumerSpec, Delivery, Outcome};
use backflow_proto::gitsync::v1 as gitsync;
use prost::Message;
use std::time::Duration;

/// Durable consumer name shared by every catalog replica.
pub const CONNECTION_EVENTS: &str = "model-catalog-connections";

pub fn connection_events_spec() -> ConsumerSpec {
    ConsumerSpec::new(
        streams::EVT_GITSYNC,
        CONNECTION_EVENTS,
        "evt.gitsync.connection.>",
    )
}

/// Applies one `evt.gitsync.connection.*` event.
pub async fn handle_connection_event(store: &CatalogStore, delivery: Delivery) -> Outcome {
    let event = match gitsync::ConnectionChangedEvent::decode(delivery.payload.as_ref()) {
        Ok(event) => event,
        Err(error) => return Outcome::Reject(format!("undecodable connection event: {error}")),
    };
    match store
        .apply_connection_event(CONNECTION_EVENTS, &delivery.message_id, &event)
        .await
    {
        Ok(applied) => {
            tracing::info!(subject = %delivery.subject, event_id = %delivery.message_id, ?applied, "connection event handled");
            Outcome::Done
        }
        Err(crate::error::CatalogError::InvalidArgument(reason)) => Outcome::Reject(reason),
        Err(error) => {
            let delay = Duration::from_millis(500 * delivery.delivered.clamp(1, 20) as u64);
            tracing::warn!(event_id = %delivery.message_id, %error, "connection event will be retried");
            Outcome::Retry(delay)
        }
    }
}
