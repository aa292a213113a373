//! The outbox relay: pending rows → Kafka → marked sent.

use std::future::Future;
use std::time::{Duration, Instant};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::postgres::PgListener;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use super::outbox::CHANNEL;
use super::{Failpoint, Hooks, client_config};
use crate::KafkaSettings;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox query failed")]
    Db(#[from] sqlx::Error),
    #[error("cannot create the Kafka producer")]
    Producer(#[source] rdkafka::error::KafkaError),
    #[error("stopped at failpoint {0:?}")]
    Crashed(Failpoint),
}

#[derive(Debug, FromRow)]
struct Pending {
    id: Uuid,
    topic: String,
    key: String,
    event_type: String,
    envelope: serde_json::Value,
}

/// Sends the outbox. Several replicas may run against one database: a batch is claimed with
/// `FOR UPDATE SKIP LOCKED` and held until it is marked sent, so no two relays send one row in
/// the normal case. (After a crash between send and mark, the row is sent again: consumers'
/// inboxes absorb that duplicate.)
pub struct Relay {
    db: PgPool,
    producer: FutureProducer,
    settings: KafkaSettings,
    hooks: Hooks,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("hooks", &self.hooks)
            .finish_non_exhaustive()
    }
}

impl Relay {
    pub fn new(db: PgPool, settings: &KafkaSettings) -> Result<Self, RelayError> {
        crate::http::metrics::install();
        let producer = client_config(settings)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", settings.send_timeout_ms.to_string())
            .create()
            .map_err(RelayError::Producer)?;
        Ok(Self {
            db,
            producer,
            settings: settings.clone(),
            hooks: Hooks::default(),
        })
    }

    #[must_use]
    pub fn with_hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = hooks;
        self
    }

    /// Claims, sends and marks one batch. Returns how many rows were sent.
    pub async fn drain_once(&self) -> Result<usize, RelayError> {
        let mut tx = self.db.begin().await?;
        let batch = sqlx::query_as::<_, Pending>(
            "SELECT id, topic, key, event_type, envelope FROM outbox WHERE sent_at IS NULL \
             ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(i64::from(self.settings.relay_batch))
        .fetch_all(&mut *tx)
        .await?;
        if batch.is_empty() {
            return Ok(0);
        }
        let started = Instant::now();
        // Enqueue the whole batch (in order), then await each delivery.
        let values: Vec<(String, String)> = batch
            .iter()
            .map(|row| (row.envelope.to_string(), row.id.to_string()))
            .collect();
        let mut deliveries = Vec::with_capacity(batch.len());
        for (row, (value, id)) in batch.iter().zip(&values) {
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "id",
                    value: Some(id),
                })
                .insert(Header {
                    key: "type",
                    value: Some(&row.event_type),
                })
                .insert(Header {
                    key: "traceparent",
                    value: row.envelope.get("traceparent").and_then(|v| v.as_str()),
                });
            let record = FutureRecord::to(&row.topic)
                .key(&row.key)
                .payload(value)
                .headers(headers);
            deliveries.push(
                self.producer
                    .send_result(record)
                    .map_err(|(e, _)| e.to_string()),
            );
        }
        let mut sent = Vec::with_capacity(batch.len());
        let mut failed = Vec::new();
        for (row, delivery) in batch.iter().zip(deliveries) {
            let outcome = match delivery {
                Ok(future) => match future.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((e, _))) => Err(e.to_string()),
                    Err(_) => Err("producer dropped the delivery".to_owned()),
                },
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => sent.push(row.id),
                Err(e) => failed.push((row.id, e)),
            }
        }
        metrics::histogram!("messaging_relay_send_seconds").record(started.elapsed().as_secs_f64());
        if self.hooks.fires(Failpoint::RelayAfterSend) {
            return Err(RelayError::Crashed(Failpoint::RelayAfterSend));
        }
        sqlx::query("UPDATE outbox SET sent_at = clock_timestamp(), attempts = attempts + 1 WHERE id = ANY($1)")
            .bind(&sent)
            .execute(&mut *tx)
            .await?;
        for (id, error) in &failed {
            sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1")
                .bind(id)
                .bind(error)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        metrics::counter!("messaging_relay_sent_total").increment(sent.len() as u64);
        if !failed.is_empty() {
            metrics::counter!("messaging_relay_failures_total").increment(failed.len() as u64);
            tracing::warn!(failed = failed.len(), first_error = %failed[0].1, "outbox rows not sent; will retry");
        }
        Ok(sent.len())
    }

    /// Pending rows, for the backlog gauge.
    async fn backlog(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(&self.db)
            .await
    }

    /// Drains until `stop`, waking on NOTIFY or every `relay_poll_ms`. Broker or database
    /// outages are retried with exponential backoff; only a failpoint ends the loop with an error.
    pub async fn run(self, stop: impl Future<Output = ()> + Send) -> Result<(), RelayError> {
        tokio::pin!(stop);
        let poll = Duration::from_millis(self.settings.relay_poll_ms);
        let mut listener = None;
        let mut failures = 0u32;
        loop {
            if listener.is_none() {
                listener = match PgListener::connect_with(&self.db).await {
                    Ok(mut l) => l.listen(CHANNEL).await.ok().map(|()| l),
                    Err(_) => None,
                };
            }
            let outcome = loop {
                match self.drain_once().await {
                    Ok(n) if n < self.settings.relay_batch as usize => break Ok(()),
                    Ok(_) => {}
                    Err(RelayError::Crashed(p)) => return Err(RelayError::Crashed(p)),
                    Err(e) => break Err(e),
                }
            };
            if let Ok(n) = self.backlog().await {
                #[allow(clippy::cast_precision_loss)]
                metrics::gauge!("messaging_outbox_backlog").set(n as f64);
                if n > 0 {
                    failures += 1;
                } else {
                    failures = 0;
                }
            }
            if let Err(e) = outcome {
                tracing::warn!(error = %e, "relay failed; retrying");
                failures += 1;
            }
            // Pending rows that could not be sent: back off before the next attempt.
            let wait = if failures > 0 {
                backoff(failures)
            } else {
                poll
            };
            let notified = async {
                match listener.as_mut() {
                    Some(l) => l.recv().await.map(drop),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut stop => return Ok(()),
                n = notified => if n.is_err() { listener = None; },
                () = tokio::time::sleep(wait) => {},
            }
        }
    }
}

/// 100 ms doubling to 5 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << failures.min(6)).min(5_000))
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert!(backoff(3) > backoff(2));
        assert_eq!(backoff(30), Duration::from_secs(5));
    }
}
