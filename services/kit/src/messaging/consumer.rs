//! The idempotent consumer loop.

use std::future::Future;
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::consumer::{CommitMode, Consumer as _, ConsumerContext, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Headers as _, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::util::Timeout;
use sqlx::{PgConnection, PgPool};

use super::{DecodeError, Envelope, Failpoint, Hooks, client_config, dead_letter_topic};
use crate::KafkaSettings;

/// What a handler's failure means.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying (a dependency is down, a serialisation conflict).
    #[error("transient: {0}")]
    Transient(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Will never succeed (the payload breaks a rule): dead-letter at once.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        Self::Transient(Box::new(e))
    }
}

impl From<DecodeError> for HandlerError {
    fn from(e: DecodeError) -> Self {
        Self::Permanent(e.to_string())
    }
}

/// Applies one event inside the consumer's transaction. Whatever it writes through `tx` commits
/// together with the inbox row, or not at all.
pub trait Handler: Send + Sync {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a Envelope,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a;
}

/// One handler shared by several consumers of a group.
impl<H: Handler> Handler for std::sync::Arc<H> {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a Envelope,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a {
        (**self).handle(tx, event)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("cannot create the Kafka consumer")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("stopped at failpoint {0:?}")]
    Crashed(Failpoint),
}

/// librdkafka's close (leave the group, settle a pending rebalance) blocks the calling thread
/// and can wait long when a rebalance is in flight; it must never stall the async runtime (nor
/// keep a stopping process alive), so it runs on a thread of its own.
impl<H> Drop for Consumer<H> {
    fn drop(&mut self) {
        if let Some(kafka) = self.kafka.take() {
            let _ = std::thread::Builder::new()
                .name("kafka-consumer-close".into())
                .spawn(move || drop(kafka));
        }
    }
}

/// Records per-partition lag from librdkafka's statistics.
pub(crate) struct LagContext {
    group: String,
}

impl ClientContext for LagContext {
    fn stats(&self, stats: Statistics) {
        for (topic, t) in &stats.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    #[allow(clippy::cast_precision_loss)]
                    metrics::gauge!(
                        "messaging_consumer_lag",
                        "consumer" => self.group.clone(),
                        "topic" => topic.clone(),
                        "partition" => partition.to_string()
                    )
                    .set(p.consumer_lag as f64);
                }
            }
        }
    }
}

impl ConsumerContext for LagContext {}

enum Outcome {
    Applied,
    Duplicate,
}

/// One consumer group member over `topics`, applying events with `handler`.
pub struct Consumer<H> {
    db: PgPool,
    group: String,
    /// `None` only while being dropped (see the `Drop` impl).
    kafka: Option<StreamConsumer<LagContext>>,
    dlq: FutureProducer,
    handler: H,
    settings: KafkaSettings,
    hooks: Hooks,
}

impl<H> std::fmt::Debug for Consumer<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

fn backoff(settings: &KafkaSettings, attempt: u32) -> Duration {
    let base = settings
        .retry_backoff_ms
        .saturating_mul(1 << attempt.min(10));
    Duration::from_millis(base.min(settings.retry_backoff_max_ms))
}

impl<H: Handler> Consumer<H> {
    pub fn new(
        db: PgPool,
        settings: &KafkaSettings,
        group: &str,
        topics: &[&str],
        handler: H,
    ) -> Result<Self, ConsumerError> {
        crate::http::metrics::install();
        let consumer: StreamConsumer<LagContext> = client_config(settings)
            .set("group.id", group)
            // Offsets are committed by hand, only after the database commit. Without turning
            // off the offset store, librdkafka would mark messages the application never
            // processed.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                settings.session_timeout_ms.to_string(),
            )
            .set("statistics.interval.ms", "5000")
            .create_with_context(LagContext {
                group: group.to_owned(),
            })?;
        consumer.subscribe(topics)?;
        let dlq = client_config(settings)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .create()?;
        Ok(Self {
            db,
            group: group.to_owned(),
            kafka: Some(consumer),
            dlq,
            handler,
            settings: settings.clone(),
            hooks: Hooks::default(),
        })
    }

    fn kafka(&self) -> &StreamConsumer<LagContext> {
        self.kafka
            .as_ref()
            .expect("the Kafka consumer lives until drop")
    }

    #[must_use]
    pub fn with_hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = hooks;
        self
    }

    /// Consumes until `stop`. The message in hand is finished first; its offset is committed
    /// only after its effects are. Returns an error only at a failpoint (a simulated crash:
    /// nothing more is committed).
    pub async fn run(self, stop: impl Future<Output = ()> + Send) -> Result<(), ConsumerError> {
        tokio::pin!(stop);
        loop {
            let msg = tokio::select! {
                () = &mut stop => break,
                m = self.kafka().recv() => m,
            };
            let msg = match msg {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(group = %self.group, error = %e, "consume error");
                    tokio::time::sleep(backoff(&self.settings, 1)).await;
                    continue;
                }
            };
            self.process(&msg).await?;
            if let Err(e) = self
                .kafka()
                .store_offset_from_message(&msg)
                .and_then(|()| self.kafka().commit_consumer_state(CommitMode::Async))
            {
                // The effect is committed; a lost offset means a redelivery the inbox absorbs.
                tracing::warn!(group = %self.group, error = %e, "offset commit failed");
            }
        }
        if let Err(e) = self.kafka().commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(group = %self.group, error = %e, "final commit");
        }
        Ok(())
    }

    /// Applies one message with bounded retries, or dead-letters it.
    async fn process(&self, msg: &BorrowedMessage<'_>) -> Result<(), ConsumerError> {
        let topic = msg.topic().to_owned();
        let envelope = match msg.payload().map(Envelope::from_bytes) {
            Some(Ok(e)) => e,
            Some(Err(e)) => return self.dead_letter(msg, &e.to_string(), 0).await,
            None => return self.dead_letter(msg, "empty message", 0).await,
        };
        let span = tracing::info_span!(
            "consume",
            group = %self.group,
            topic = %topic,
            event_id = %envelope.id,
            event_type = %envelope.kind,
            key = %envelope.key,
            traceparent = %envelope.traceparent,
        );
        let _enter = span.enter();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.apply(msg, &envelope).await {
                Ok(outcome) => {
                    let outcome = match outcome {
                        Outcome::Applied => "applied",
                        Outcome::Duplicate => "duplicate",
                    };
                    metrics::counter!("messaging_events_total", "consumer" => self.group.clone(), "topic" => topic, "outcome" => outcome).increment(1);
                    return Ok(());
                }
                Err(Err(crash)) => return Err(crash),
                Err(Ok(HandlerError::Permanent(reason))) => {
                    return self.dead_letter(msg, &reason, attempt).await;
                }
                Err(Ok(HandlerError::Transient(e))) if attempt >= self.settings.max_attempts => {
                    return self.dead_letter(msg, &e.to_string(), attempt).await;
                }
                Err(Ok(HandlerError::Transient(e))) => {
                    metrics::counter!("messaging_retries_total", "consumer" => self.group.clone(), "topic" => topic.clone()).increment(1);
                    tracing::warn!(attempt, error = %e, "handler failed; retrying");
                    tokio::time::sleep(backoff(&self.settings, attempt)).await;
                }
            }
        }
    }

    /// One attempt: inbox row + handler in one transaction. The outer `Err` is a handler error
    /// (retry or dead-letter), the inner one a simulated crash.
    async fn apply(
        &self,
        msg: &BorrowedMessage<'_>,
        envelope: &Envelope,
    ) -> Result<Outcome, Result<HandlerError, ConsumerError>> {
        let mut tx = self.db.begin().await.map_err(|e| Ok(e.into()))?;
        let fresh = sqlx::query(
            "INSERT INTO inbox (consumer, event_id, event_type, topic, partition, \"offset\") \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(&self.group)
        .bind(envelope.id)
        .bind(&envelope.kind)
        .bind(msg.topic())
        .bind(msg.partition())
        .bind(msg.offset())
        .execute(&mut *tx)
        .await
        .map_err(|e| Ok(e.into()))?
        .rows_affected()
            == 1;
        if !fresh {
            tracing::debug!("duplicate event skipped");
            return Ok(Outcome::Duplicate);
        }
        self.handler.handle(&mut tx, envelope).await.map_err(Ok)?;
        if self.hooks.fires(Failpoint::ConsumerBeforeCommit) {
            return Err(Err(ConsumerError::Crashed(Failpoint::ConsumerBeforeCommit)));
        }
        tx.commit().await.map_err(|e| Ok(e.into()))?;
        if self.hooks.fires(Failpoint::ConsumerAfterCommit) {
            return Err(Err(ConsumerError::Crashed(Failpoint::ConsumerAfterCommit)));
        }
        Ok(Outcome::Applied)
    }

    /// Sends the message as it came to `<topic>.dlq`, with why and from where, retrying until
    /// the broker takes it (the partition must not move on before the message is safe).
    async fn dead_letter(
        &self,
        msg: &BorrowedMessage<'_>,
        reason: &str,
        attempts: u32,
    ) -> Result<(), ConsumerError> {
        let topic = dead_letter_topic(msg.topic());
        let partition = msg.partition().to_string();
        let offset = msg.offset().to_string();
        let attempts_s = attempts.to_string();
        tracing::error!(reason, attempts, dlq = %topic, "dead-lettering message");
        let mut headers = OwnedHeaders::new();
        if let Some(original) = msg.headers() {
            for h in original.iter() {
                headers = headers.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
        let headers = headers
            .insert(Header {
                key: "x-dlq-reason",
                value: Some(reason),
            })
            .insert(Header {
                key: "x-dlq-source-topic",
                value: Some(msg.topic()),
            })
            .insert(Header {
                key: "x-dlq-source-partition",
                value: Some(&partition),
            })
            .insert(Header {
                key: "x-dlq-source-offset",
                value: Some(&offset),
            })
            .insert(Header {
                key: "x-dlq-attempts",
                value: Some(&attempts_s),
            })
            .insert(Header {
                key: "x-dlq-consumer",
                value: Some(&self.group),
            });
        let mut failures = 0;
        loop {
            let mut record = FutureRecord::<[u8], [u8]>::to(&topic).headers(headers.clone());
            if let Some(k) = msg.key() {
                record = record.key(k);
            }
            if let Some(p) = msg.payload() {
                record = record.payload(p);
            }
            match self
                .dlq
                .send(record, Timeout::After(Duration::from_secs(10)))
                .await
            {
                Ok(_) => break,
                Err((e, _)) => {
                    failures += 1;
                    tracing::warn!(error = %e, "dead-letter send failed; retrying");
                    tokio::time::sleep(backoff(&self.settings, failures)).await;
                }
            }
        }
        metrics::counter!("messaging_dead_letters_total", "consumer" => self.group.clone(), "topic" => msg.topic().to_owned()).increment(1);
        Ok(())
    }
}
