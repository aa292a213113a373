//! The place of the messaging backbone: event envelope, transactional outbox and relay,
//! idempotent consumers with bounded retries and dead-letter topics.
//!
//! Deliberately empty until the messaging-backbone issue lands: no service publishes or consumes
//! events yet, and nothing here pretends otherwise.
