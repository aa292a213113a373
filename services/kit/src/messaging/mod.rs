//! The messaging backbone: every event goes through here.
//!
//! - [`Envelope`]: `id`, `type`, `version`, `occurred_at`, `key`, `traceparent`, `payload`;
//!   typed events implement [`Event`], and decoding rejects a wrong type or unknown version.
//! - [`publish_in_tx`]: the only way to emit an event — an `outbox` row in the caller's
//!   transaction, so the event exists if and only if the state change committed.
//! - [`Relay`]: sends pending outbox rows with an idempotent producer, marks them sent; wakes on
//!   `LISTEN/NOTIFY` or a poll; safe in several replicas (`FOR UPDATE SKIP LOCKED`).
//! - [`Consumer`]: one consumer group; per partition's share of what was fetched (up to
//!   `consume_batch`, ADR 0026): transaction → the partition's stored position (locked; a
//!   message behind it is skipped, one past it sends the consumer back) → each message's inbox
//!   row (duplicates are skipped) and handler → position moved past the last → commit → *then*
//!   the broker offset, which is only a hint: an assigned partition starts at the stored
//!   position. A batch that fails is rolled back and its messages applied one by one: failed
//!   handlers are retried with backoff up to a bound, then the message goes to `<topic>.dlq`
//!   with the reason, and the partition moves on.
//! - [`provision_topics`]: outside Kubernetes creates a service's topics and their `.dlq`
//!   ([`ensure_topics`]); in a cluster, where SagaTopics own them, only checks ([`check_topics`]).
//!
//! Exactly-once *effects* come from outbox + inbox, not from Kafka transactions (see
//! docs/adr/0004-outbox-and-inbox.md).

mod consumer;
mod envelope;
mod hooks;
mod outbox;
mod position;
mod relay;
mod supervised;
mod topics;

use sqlx::migrate::Migrator;

pub use consumer::{Consumer, ConsumerError, Handler, HandlerError};
pub use envelope::{DecodeError, Envelope, Event, new_traceparent};
pub use hooks::{Failpoint, Hooks};
pub use outbox::publish_in_tx;
pub use relay::{Relay, RelayError};
pub use supervised::Bus;
pub use topics::{TopicError, check_topics, dead_letter_topic, ensure_topics, provision_topics};

/// The `outbox` and `inbox` tables. A service that uses messaging runs them merged with its
/// own migrations: `kommerce_kit::db::merged_migrator(&[&messaging::MIGRATOR, &MIGRATOR])`.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The rdkafka client configuration shared by producers and consumers.
pub(crate) fn client_config(settings: &crate::KafkaSettings) -> rdkafka::ClientConfig {
    let mut c = rdkafka::ClientConfig::new();
    c.set("bootstrap.servers", &settings.bootstrap_servers)
        .set("client.id", &settings.client_id)
        .set("socket.keepalive.enable", "true");
    c
}
