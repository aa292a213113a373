//! Writing events: the outbox row is part of the caller's transaction.

use sqlx::PgConnection;

use super::Envelope;

/// The NOTIFY channel the relay listens on.
pub(crate) const CHANNEL: &str = "kommerce_outbox";

/// Emits `envelope` to `topic` if and only if the caller's transaction commits. The relay is
/// woken by NOTIFY at commit (PostgreSQL delivers notifications only for committed transactions).
pub async fn publish_in_tx(
    tx: &mut PgConnection,
    topic: &str,
    envelope: &Envelope,
) -> Result<(), sqlx::Error> {
    let json = serde_json::to_value(envelope).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    // One round trip: the row, and the notification for it.
    sqlx::query(
        "WITH row AS (INSERT INTO outbox (id, topic, key, event_type, envelope) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id) SELECT pg_notify($6, '') FROM row",
    )
    .bind(envelope.id)
    .bind(topic)
    .bind(&envelope.key)
    .bind(&envelope.kind)
    .bind(json)
    .bind(CHANNEL)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
