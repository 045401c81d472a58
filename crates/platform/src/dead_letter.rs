//! The dead-letter store: no message is dropped silently. A delivery that exhausts
//! its consumer's `max_deliver`, or that its handler rejects as never going to work,
//! is kept in the service's own database (`platform_dead_letters`) with its subject,
//! payload, headers, the last error and the delivery count, logged at error level and
//! counted (`backflow_dead_letters_total`). An operator lists them and replays one
//! once the cause is fixed: replay publishes the stored message again under its
//! original event id (a fresh `Nats-Msg-Id`), so the inbox still lets it through
//! only once.

use crate::bus::{Bus, BusError, Delivery};
use crate::db::Database;
use std::collections::BTreeMap;

/// Why a message was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// Every allowed delivery failed with a transient error.
    Exhausted,
    /// The handler said it can never succeed (undecodable, invalid).
    Rejected,
}

impl DeadLetterReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exhausted => "exhausted",
            Self::Rejected => "rejected",
        }
    }

    fn parse(text: &str) -> Self {
        if text == "rejected" {
            Self::Rejected
        } else {
            Self::Exhausted
        }
    }
}

/// One stored dead letter.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub id: String,
    pub consumer: String,
    /// Subject without the namespace prefix.
    pub subject: String,
    pub message_id: String,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
    pub error: String,
    pub reason: DeadLetterReason,
    pub delivery_count: i64,
    pub created_at_ms: i64,
    pub replayed_at_ms: Option<i64>,
    pub replay_count: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("dead letter {0} not found")]
    NotFound(String),
    #[error("dead-letter storage: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("stored dead letter {id} is corrupt: {message}")]
    Corrupt { id: String, message: String },
    #[error("replaying dead letter: {0}")]
    Bus(#[from] BusError),
}

/// The dead letters of one service (its database).
#[derive(Debug, Clone)]
pub struct DeadLetters {
    service: &'static str,
    db: Database,
}

type Row = (
    String,
    String,
    String,
    String,
    Vec<u8>,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    i64,
);

const COLUMNS: &str = "id, consumer, subject, message_id, payload, headers, error, reason, delivery_count, created_at_ms, replayed_at_ms, replay_count";

impl DeadLetters {
    pub fn new(service: &'static str, db: Database) -> Self {
        Self { service, db }
    }

    /// The service these dead letters belong to (`git_sync`, `model_catalog`, …).
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// Stores a delivery that will not be handled; returns the dead letter's id.
    pub async fn store(
        &self,
        consumer: &str,
        delivery: &Delivery,
        reason: DeadLetterReason,
        error: &str,
    ) -> Result<String, DeadLetterError> {
        let id = crate::new_id();
        let headers =
            serde_json::to_string(&delivery.headers).map_err(|err| DeadLetterError::Corrupt {
                id: id.clone(),
                message: err.to_string(),
            })?;
        sqlx::query(
            "INSERT INTO platform_dead_letters (id, consumer, subject, message_id, payload, headers, error, reason, delivery_count, created_at_ms, replay_count) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0)",
        )
        .bind(&id)
        .bind(consumer)
        .bind(&delivery.subject)
        .bind(&delivery.message_id)
        .bind(delivery.payload.to_vec())
        .bind(headers)
        .bind(error)
        .bind(reason.as_str())
        .bind(delivery.delivered)
        .bind(crate::now_unix_ms())
        .execute(self.db.pool())
        .await?;
        Ok(id)
    }

    /// Newest first; replayed ones only when asked.
    pub async fn list(
        &self,
        include_replayed: bool,
        limit: i64,
    ) -> Result<Vec<DeadLetter>, DeadLetterError> {
        let filter = if include_replayed {
            ""
        } else {
            "WHERE replayed_at_ms IS NULL"
        };
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM platform_dead_letters {filter} ORDER BY created_at_ms DESC, id DESC LIMIT $1"
        ))
        .bind(limit.clamp(1, 1000))
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter().map(from_row).collect()
    }

    pub async fn get(&self, id: &str) -> Result<Option<DeadLetter>, DeadLetterError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM platform_dead_letters WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(from_row).transpose()
    }

    /// Publishes the stored message again and records the replay.
    pub async fn replay(&self, bus: &Bus, id: &str) -> Result<DeadLetter, DeadLetterError> {
        let Some(letter) = self.get(id).await? else {
            return Err(DeadLetterError::NotFound(id.to_string()));
        };
        let replay_msg_id = format!("replay-{}-{}", letter.id, letter.replay_count + 1);
        bus.republish(
            &letter.subject,
            &letter.message_id,
            &replay_msg_id,
            letter.payload.clone().into(),
            &letter.headers,
        )
        .await?;
        let now = crate::now_unix_ms();
        sqlx::query(
            "UPDATE platform_dead_letters SET replayed_at_ms = $1, replay_count = replay_count + 1 WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(self.db.pool())
        .await?;
        tracing::info!(service = self.service, dead_letter_id = %id, subject = %letter.subject, message_id = %letter.message_id, "dead letter replayed");
        Ok(DeadLetter {
            replayed_at_ms: Some(now),
            replay_count: letter.replay_count + 1,
            ..letter
        })
    }
}

fn from_row(row: Row) -> Result<DeadLetter, DeadLetterError> {
    let (
        id,
        consumer,
        subject,
        message_id,
        payload,
        headers,
        error,
        reason,
        delivery_count,
        created_at_ms,
        replayed_at_ms,
        replay_count,
    ) = row;
    let headers = serde_json::from_str(&headers).map_err(|err| DeadLetterError::Corrupt {
        id: id.clone(),
        message: err.to_string(),
    })?;
    Ok(DeadLetter {
        id,
        consumer,
        subject,
        message_id,
        payload,
        headers,
        error,
        reason: DeadLetterReason::parse(&reason),
        delivery_count,
        created_at_ms,
        replayed_at_ms,
        replay_count,
    })
}
