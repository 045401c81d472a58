//! The consumer inbox. A handler claims a message id in the same transaction as its
//! effects; a redelivered or republished message finds its id taken and is skipped,
//! so every event is handled exactly once even though NATS delivers at least once.

use crate::db::Transaction;

/// Records `message_id` for `consumer`. Returns `false` if it was already handled, in
/// which case the caller should skip the effects and acknowledge.
pub async fn claim(
    tx: &mut Transaction<'_>,
    consumer: &str,
    message_id: &str,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO platform_inbox (consumer, message_id, handled_at_ms) VALUES ($1, $2, $3) ON CONFLICT (consumer, message_id) DO NOTHING",
    )
    .bind(consumer)
    .bind(message_id)
    .bind(crate::now_unix_ms())
    .execute(&mut **tx)
    .await?;
    Ok(result.rows_affected() == 1)
}
