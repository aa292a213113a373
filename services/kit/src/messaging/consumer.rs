//! The idempotent consumer loop.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use futures::FutureExt as _;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, RebalanceProtocol, StreamConsumer,
};
use rdkafka::message::{BorrowedMessage, Header, Headers as _, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sqlx::postgres::PgConnectOptions;
use sqlx::{PgConnection, PgPool};
use tracing::Instrument as _;

use super::position::{self, Sought, Verdict};
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

/// The consumer's librdkafka context: per-partition lag from the statistics, and where an
/// assigned partition starts.
pub(crate) struct GroupContext {
    group: String,
    topics: Vec<String>,
    db: PgConnectOptions,
}

impl ClientContext for GroupContext {
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

impl ConsumerContext for GroupContext {
    /// A newly assigned partition starts at the position stored with the group's effects, not
    /// at the broker's committed offset: a commit that ran ahead of the effects (a member that
    /// died mid-message, a stale member's late commit, a coordinator that accepted either) can
    /// then never skip a message. The start is committed to the broker too, so that its offsets
    /// (lag, tools) agree. Partitions the group never applied anything on start at the committed
    /// offset (or the earliest). If the database cannot be read, the committed offsets stand and
    /// the per-message check in `apply` still goes back to a gap it finds.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let done = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let stored = self.start_at_stored_positions(partitions);
                let assigned = if cooperative {
                    consumer.incremental_assign(partitions)
                } else {
                    consumer.assign(partitions)
                };
                if assigned.is_ok() && stored.count() > 0 {
                    if let Err(e) = consumer.commit(&stored, CommitMode::Async) {
                        tracing::debug!(group = %self.group, error = %e, "cannot commit the stored positions");
                    }
                }
                assigned
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!(group = %self.group, revoked = partitions.count(), "partitions revoked");
                if cooperative {
                    consumer.incremental_unassign(partitions)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::warn!(group = %self.group, error = ?other, "rebalance error");
                consumer.unassign()
            }
        };
        if let Err(e) = done {
            tracing::warn!(group = %self.group, error = %e, "rebalance failed");
        }
    }
}

impl GroupContext {
    /// Sets each partition's start to its stored position; returns those that had one.
    fn start_at_stored_positions(&self, partitions: &mut TopicPartitionList) -> TopicPartitionList {
        let mut moved = TopicPartitionList::new();
        if partitions.count() == 0 {
            tracing::info!(group = %self.group, assigned = 0, "partitions assigned");
            return moved;
        }
        let stored = match position::read_blocking(&self.db, &self.group, &self.topics) {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(group = %self.group, error = %e, "cannot read the stored positions; starting at the committed offsets");
                return moved;
            }
        };
        let assigned: Vec<(String, i32)> = partitions
            .elements()
            .iter()
            .map(|p| (p.topic().to_owned(), p.partition()))
            .collect();
        for (topic, partition) in assigned {
            if let Some(&next) = stored.get(&(topic.clone(), partition)) {
                let set = partitions
                    .set_partition_offset(&topic, partition, Offset::Offset(next))
                    .and_then(|()| {
                        moved.add_partition_offset(&topic, partition, Offset::Offset(next))
                    });
                if let Err(e) = set {
                    tracing::warn!(group = %self.group, error = %e, "cannot set a start position");
                }
            }
        }
        tracing::info!(group = %self.group, assigned = partitions.count(), at_stored_position = moved.count(), "partitions assigned");
        moved
    }
}

/// The fetched messages split by partition, each part in the order it came (offset order).
fn by_partition(fetched: Vec<BorrowedMessage<'_>>) -> Vec<Vec<BorrowedMessage<'_>>> {
    let mut runs: Vec<Vec<BorrowedMessage<'_>>> = Vec::new();
    for msg in fetched {
        match runs
            .iter_mut()
            .find(|r| r[0].partition() == msg.partition() && r[0].topic() == msg.topic())
        {
            Some(run) => run.push(msg),
            None => runs.push(vec![msg]),
        }
    }
    runs
}

/// What became of a message.
enum Outcome {
    Applied,
    Duplicate,
    /// Messages before this one were never applied: the consumer goes back.
    Rewound(Sought),
}

/// Why an attempt at a message did not finish.
enum Interrupted {
    /// The handler or the database failed: retried, or dead-lettered.
    Failed(HandlerError),
    /// A failpoint simulated a killed process.
    Crashed(Failpoint),
}

impl From<HandlerError> for Interrupted {
    fn from(e: HandlerError) -> Self {
        Self::Failed(e)
    }
}

impl From<sqlx::Error> for Interrupted {
    fn from(e: sqlx::Error) -> Self {
        Self::Failed(e.into())
    }
}

/// One consumer group member over `topics`, applying events with `handler`.
pub struct Consumer<H> {
    db: PgPool,
    group: String,
    /// `None` only while being dropped (see the `Drop` impl).
    kafka: Option<StreamConsumer<GroupContext>>,
    dlq: FutureProducer,
    handler: H,
    settings: KafkaSettings,
    hooks: Hooks,
    /// Where this member last went back to on each partition (see [`position::judge`]).
    sought: Mutex<HashMap<(String, i32), Sought>>,
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
        let mut config = client_config(settings);
        if let Some(member) = &settings.instance_id {
            config.set("group.instance.id", member);
        }
        let consumer: StreamConsumer<GroupContext> = config
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
            .create_with_context(GroupContext {
                group: group.to_owned(),
                topics: topics.iter().map(|&t| t.to_owned()).collect(),
                db: (*db.connect_options()).clone(),
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
            sought: Mutex::default(),
        })
    }

    fn kafka(&self) -> &StreamConsumer<GroupContext> {
        self.kafka
            .as_ref()
            .expect("the Kafka consumer lives until drop")
    }

    #[must_use]
    pub fn with_hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = hooks;
        self
    }

    /// Consumes until `stop`. The messages in hand are finished first; their offsets are
    /// committed only after their effects are. Returns an error only at a failpoint (a
    /// simulated crash: nothing more is committed).
    ///
    /// Whatever the client has already fetched when a message arrives is taken with it (up to
    /// `consume_batch`), and each partition's share is applied in one transaction (see
    /// [`Self::apply_batch`]): under load, one commit and one position update serve many
    /// messages; idle, a message is applied alone as soon as it arrives.
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
            let mut fetched = vec![msg];
            while fetched.len() < self.settings.consume_batch.max(1) as usize {
                match self.kafka().recv().now_or_never() {
                    Some(Ok(m)) => fetched.push(m),
                    Some(Err(e)) => {
                        tracing::warn!(group = %self.group, error = %e, "consume error");
                        break;
                    }
                    None => break,
                }
            }
            for run in by_partition(fetched) {
                let (Some(last), true) = (run.last(), self.process_run(&run).await?) else {
                    continue;
                };
                if let Err(e) = self
                    .kafka()
                    .store_offset_from_message(last)
                    .and_then(|()| self.kafka().commit_consumer_state(CommitMode::Async))
                {
                    // The effects are committed; a lost offset means a redelivery the inbox
                    // absorbs.
                    tracing::warn!(group = %self.group, error = %e, "offset commit failed");
                }
            }
        }
        if let Err(e) = self.kafka().commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(group = %self.group, error = %e, "final commit");
        }
        Ok(())
    }

    /// `n` messages of `topic` came to `outcome` (`messaging_events_total`).
    fn count(&self, topic: &str, outcome: &'static str, n: usize) {
        if n > 0 {
            metrics::counter!("messaging_events_total", "consumer" => self.group.clone(), "topic" => topic.to_owned(), "outcome" => outcome).increment(n as u64);
        }
    }

    /// Applies one partition's messages (in offset order): together when they can be, else one
    /// by one. Returns whether the run's last offset may be committed (not when the consumer
    /// went back: the rest of the run is fetched again).
    async fn process_run(&self, run: &[BorrowedMessage<'_>]) -> Result<bool, ConsumerError> {
        if run.len() > 1 {
            match self.apply_batch(run).await {
                Ok(Some(applied)) => {
                    metrics::histogram!("messaging_batch_messages", "consumer" => self.group.clone())
                        .record(f64::from(u32::try_from(run.len()).unwrap_or(u32::MAX)));
                    let topic = run[0].topic();
                    self.count(topic, "applied", applied);
                    self.count(topic, "duplicate", run.len() - applied);
                    return Ok(true);
                }
                Ok(None) => {}
                Err(Interrupted::Crashed(point)) => return Err(ConsumerError::Crashed(point)),
                Err(Interrupted::Failed(e)) => {
                    // Rolled back as a whole: each message again on its own, with its own
                    // retries and dead letter.
                    tracing::debug!(group = %self.group, error = %e, messages = run.len(), "batch failed; applying its messages one by one");
                    metrics::counter!("messaging_batch_fallbacks_total", "consumer" => self.group.clone()).increment(1);
                }
            }
        }
        for msg in run {
            if let Outcome::Rewound(sought) = self.process(msg).await? {
                self.rewind(msg, sought);
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Applies one message with bounded retries, or dead-letters it, inside a span that carries
    /// the event (attached with `instrument`: a span guard held across an `.await` would leak
    /// into whatever else runs on the thread).
    async fn process(&self, msg: &BorrowedMessage<'_>) -> Result<Outcome, ConsumerError> {
        let envelope = match msg.payload().map(Envelope::from_bytes) {
            Some(Ok(e)) => e,
            _ if self.behind(msg).await => return Ok(Outcome::Duplicate),
            Some(Err(e)) => return self.dead_letter(msg, &e.to_string(), 0).await,
            None => return self.dead_letter(msg, "empty message", 0).await,
        };
        let span = tracing::info_span!(
            "consume",
            group = %self.group,
            topic = %msg.topic(),
            partition = msg.partition(),
            offset = msg.offset(),
            event_id = %envelope.id,
            event_type = %envelope.kind,
            key = %envelope.key,
            traceparent = %envelope.traceparent,
        );
        self.process_event(msg, &envelope).instrument(span).await
    }

    async fn process_event(
        &self,
        msg: &BorrowedMessage<'_>,
        envelope: &Envelope,
    ) -> Result<Outcome, ConsumerError> {
        let topic = msg.topic().to_owned();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.apply(msg, envelope).await {
                Ok(outcome) => {
                    let label = match outcome {
                        Outcome::Applied => "applied",
                        Outcome::Duplicate => "duplicate",
                        Outcome::Rewound(_) => "rewound",
                    };
                    self.count(&topic, label, 1);
                    return Ok(outcome);
                }
                Err(Interrupted::Crashed(point)) => return Err(ConsumerError::Crashed(point)),
                Err(Interrupted::Failed(HandlerError::Permanent(reason))) => {
                    return self.dead_letter(msg, &reason, attempt).await;
                }
                Err(Interrupted::Failed(HandlerError::Transient(e)))
                    if attempt >= self.settings.max_attempts =>
                {
                    return self.dead_letter(msg, &e.to_string(), attempt).await;
                }
                Err(Interrupted::Failed(HandlerError::Transient(e))) => {
                    metrics::counter!("messaging_retries_total", "consumer" => self.group.clone(), "topic" => topic.clone()).increment(1);
                    tracing::warn!(attempt, error = %e, "handler failed; retrying");
                    tokio::time::sleep(backoff(&self.settings, attempt)).await;
                }
            }
        }
    }

    /// Goes back on the message's partition: the messages from `sought.from` on are fetched
    /// again (librdkafka drops what it had fetched past it).
    fn rewind(&self, msg: &BorrowedMessage<'_>, sought: Sought) {
        tracing::warn!(
            group = %self.group,
            topic = msg.topic(),
            partition = msg.partition(),
            offset = msg.offset(),
            position = sought.target,
            from = sought.from,
            "message past the stored position: going back"
        );
        metrics::counter!("messaging_consumer_rewinds_total", "consumer" => self.group.clone(), "topic" => msg.topic().to_owned()).increment(1);
        if let Ok(mut all) = self.sought.lock() {
            all.insert((msg.topic().to_owned(), msg.partition()), sought);
        }
        if let Err(e) = self.kafka().seek(
            msg.topic(),
            msg.partition(),
            Offset::Offset(sought.from),
            Timeout::After(Duration::ZERO),
        ) {
            // The partition stays where it is; the next message there finds the gap again.
            tracing::warn!(group = %self.group, error = %e, "seek failed");
        }
    }

    /// Whether the group's stored position is already past the message (it was dead-lettered
    /// before, and the consumer went back over it).
    async fn behind(&self, msg: &BorrowedMessage<'_>) -> bool {
        let stored = position::lock(&self.db, &self.group, msg.topic(), msg.partition()).await;
        matches!(stored, Ok(Some(next)) if msg.offset() < next)
    }

    fn sought(&self, msg: &BorrowedMessage<'_>) -> Option<Sought> {
        let all = self.sought.lock().ok()?;
        all.get(&(msg.topic().to_owned(), msg.partition())).copied()
    }

    /// One attempt, in one transaction: the partition's stored position (locked), the inbox row,
    /// the handler, the position moved past the message.
    async fn apply(
        &self,
        msg: &BorrowedMessage<'_>,
        envelope: &Envelope,
    ) -> Result<Outcome, Interrupted> {
        let (topic, partition, offset) = (msg.topic(), msg.partition(), msg.offset());
        let mut tx = self.db.begin().await?;
        let stored = position::lock(&mut *tx, &self.group, topic, partition).await?;
        match position::judge(stored, offset, self.sought(msg)) {
            Verdict::Apply => {}
            Verdict::Behind => {
                tracing::debug!("already applied");
                return Ok(Outcome::Duplicate);
            }
            Verdict::Seek { from } => {
                return Ok(Outcome::Rewound(Sought {
                    target: stored.unwrap_or(from),
                    from,
                }));
            }
        }
        let fresh = self.insert_inbox(&mut tx, msg, envelope).await?;
        if fresh {
            self.handler.handle(&mut tx, envelope).await?;
        } else {
            // The same event again at a new offset (a relay re-sent it): nothing to apply, but
            // the position moves past it.
            tracing::debug!("duplicate event skipped");
        }
        self.commit_applied(tx, topic, partition, offset).await?;
        Ok(if fresh {
            Outcome::Applied
        } else {
            Outcome::Duplicate
        })
    }

    /// Applies consecutive messages of one partition in one transaction: the position locked
    /// once, each message's inbox row and handler, the position moved past the last, one
    /// commit. All or nothing: `Ok(None)` when the run cannot be taken together (a message
    /// that does not decode, an offset that is not the next, a position that is not where the
    /// run starts) — nothing was written; an error when a handler or the database failed —
    /// rolled back. Either way the caller applies the messages one by one, where retries, dead
    /// letters and going back live. Returns how many messages were fresh.
    async fn apply_batch(&self, run: &[BorrowedMessage<'_>]) -> Result<Option<usize>, Interrupted> {
        let first = &run[0];
        let (topic, partition) = (first.topic(), first.partition());
        let consecutive = run.windows(2).all(|w| w[1].offset() == w[0].offset() + 1);
        let envelopes: Option<Vec<Envelope>> = run
            .iter()
            .map(|m| m.payload().and_then(|p| Envelope::from_bytes(p).ok()))
            .collect();
        let (true, Some(envelopes)) = (consecutive, envelopes) else {
            return Ok(None);
        };
        let span = tracing::info_span!(
            "consume_batch",
            group = %self.group,
            topic = %topic,
            partition,
            first_offset = first.offset(),
            messages = run.len(),
        );
        async {
            let mut tx = self.db.begin().await?;
            let stored = position::lock(&mut *tx, &self.group, topic, partition).await?;
            if position::judge(stored, first.offset(), self.sought(first)) != Verdict::Apply {
                return Ok(None);
            }
            let mut fresh_count = 0;
            for (msg, envelope) in run.iter().zip(&envelopes) {
                if self.insert_inbox(&mut tx, msg, envelope).await? {
                    fresh_count += 1;
                    let span = tracing::info_span!(
                        "consume",
                        offset = msg.offset(),
                        event_id = %envelope.id,
                        event_type = %envelope.kind,
                        key = %envelope.key,
                        traceparent = %envelope.traceparent,
                    );
                    self.handler
                        .handle(&mut tx, envelope)
                        .instrument(span)
                        .await?;
                }
            }
            let last = run[run.len() - 1].offset();
            self.commit_applied(tx, topic, partition, last).await?;
            Ok(Some(fresh_count))
        }
        .instrument(span)
        .await
    }

    /// The event's inbox row; `false` when the group has seen the event before.
    async fn insert_inbox(
        &self,
        tx: &mut PgConnection,
        msg: &BorrowedMessage<'_>,
        envelope: &Envelope,
    ) -> Result<bool, sqlx::Error> {
        Ok(sqlx::query(
            "INSERT INTO inbox (consumer, event_id, event_type, topic, partition, \"offset\") \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(&self.group)
        .bind(envelope.id)
        .bind(&envelope.kind)
        .bind(msg.topic())
        .bind(msg.partition())
        .bind(msg.offset())
        .execute(tx)
        .await?
        .rows_affected()
            == 1)
    }

    /// The end of an attempt (the failpoints mark where a crash would fall): the position moved
    /// past `last`, the transaction committed.
    async fn commit_applied(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        topic: &str,
        partition: i32,
        last: i64,
    ) -> Result<(), Interrupted> {
        assert!(
            !self.hooks.fires(Failpoint::ConsumerPanic),
            "failpoint ConsumerPanic: the consumer task dies mid-message"
        );
        if self.hooks.fires(Failpoint::ConsumerBeforeCommit) {
            return Err(Interrupted::Crashed(Failpoint::ConsumerBeforeCommit));
        }
        position::advance(&mut *tx, &self.group, topic, partition, last + 1).await?;
        tx.commit().await?;
        if let Ok(mut sought) = self.sought.lock() {
            sought.remove(&(topic.to_owned(), partition));
        }
        if self.hooks.fires(Failpoint::ConsumerAfterCommit) {
            return Err(Interrupted::Crashed(Failpoint::ConsumerAfterCommit));
        }
        Ok(())
    }

    /// Sends the message as it came to `<topic>.dlq`, with why and from where, retrying until
    /// the broker takes it (the partition must not move on before the message is safe).
    async fn dead_letter(
        &self,
        msg: &BorrowedMessage<'_>,
        reason: &str,
        attempts: u32,
    ) -> Result<Outcome, ConsumerError> {
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
        // The message is safe in the DLQ: the partition moves on. Should the database refuse,
        // the next message finds the gap, comes back here and dead-letters this one again
        // (a duplicate in the DLQ, never a loss).
        if let Err(e) = position::advance(
            &self.db,
            &self.group,
            msg.topic(),
            msg.partition(),
            msg.offset() + 1,
        )
        .await
        {
            tracing::warn!(error = %e, "cannot store the position past a dead-lettered message");
        }
        Ok(Outcome::Applied)
    }
}
