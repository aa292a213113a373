//! The envelope every event travels in.

use rand::RngCore;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::digest::hex;

/// A typed event: its `type` name, schema version and the key that keeps one saga in one
/// partition.
pub trait Event: Serialize + DeserializeOwned {
    /// `payment.completed`, `order.created`, ...
    const TYPE: &'static str;
    /// The payload's schema version; a consumer rejects any other.
    const VERSION: u16;
    /// The saga / aggregate key: the Kafka message key.
    fn key(&self) -> String;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u16,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub key: String,
    /// W3C trace context, `00-<trace-id>-<span-id>-01`.
    pub traceparent: String,
    pub payload: serde_json::Value,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("not an event envelope: {0}")]
    Malformed(String),
    #[error("expected event type {expected}, got {got}")]
    WrongType { expected: &'static str, got: String },
    #[error("{kind} version {got} is not supported (this consumer reads version {supported})")]
    UnknownVersion {
        kind: String,
        got: u16,
        supported: u16,
    },
    #[error("{kind} payload does not match its schema: {reason}")]
    Payload { kind: String, reason: String },
}

/// A fresh W3C traceparent (a new trace), for events that start a saga.
pub fn new_traceparent() -> String {
    let mut trace = [0u8; 16];
    let mut span = [0u8; 8];
    rand::rng().fill_bytes(&mut trace);
    rand::rng().fill_bytes(&mut span);
    format!("00-{}-{}-01", hex(&trace), hex(&span))
}

/// The same trace with a new span id: an event caused by another event continues its trace.
pub fn child_traceparent(parent: &str) -> String {
    let parts: Vec<&str> = parent.split('-').collect();
    match parts.as_slice() {
        ["00", trace, _, flags] if trace.len() == 32 => {
            let mut span = [0u8; 8];
            rand::rng().fill_bytes(&mut span);
            format!("00-{trace}-{}-{flags}", hex(&span))
        }
        _ => new_traceparent(),
    }
}

impl Envelope {
    /// Wraps `event`, starting a new trace.
    pub fn new<E: Event>(event: &E) -> Result<Self, serde_json::Error> {
        Ok(Self {
            id: Uuid::now_v7(),
            kind: E::TYPE.to_owned(),
            version: E::VERSION,
            occurred_at: OffsetDateTime::now_utc(),
            key: event.key(),
            traceparent: new_traceparent(),
            payload: serde_json::to_value(event)?,
        })
    }

    /// Wraps `event` as caused by `cause`: same trace, new span.
    pub fn caused_by<E: Event>(event: &E, cause: &Envelope) -> Result<Self, serde_json::Error> {
        let mut e = Self::new(event)?;
        e.traceparent = child_traceparent(&cause.traceparent);
        Ok(e)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))
    }

    pub fn is<E: Event>(&self) -> bool {
        self.kind == E::TYPE
    }

    /// The typed payload; a wrong type, an unknown version or a payload that does not match the
    /// schema is an error (the consumer dead-letters it rather than guess).
    pub fn decode<E: Event>(&self) -> Result<E, DecodeError> {
        if self.kind != E::TYPE {
            return Err(DecodeError::WrongType {
                expected: E::TYPE,
                got: self.kind.clone(),
            });
        }
        if self.version != E::VERSION {
            return Err(DecodeError::UnknownVersion {
                kind: self.kind.clone(),
                got: self.version,
                supported: E::VERSION,
            });
        }
        serde_json::from_value(self.payload.clone()).map_err(|e| DecodeError::Payload {
            kind: self.kind.clone(),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Paid {
        payment_id: Uuid,
        amount: i64,
    }

    impl Event for Paid {
        const TYPE: &'static str = "payment.completed";
        const VERSION: u16 = 1;
        fn key(&self) -> String {
            self.payment_id.to_string()
        }
    }

    #[test]
    fn round_trips_and_checks_type_and_version() {
        let paid = Paid {
            payment_id: Uuid::new_v4(),
            amount: 1299,
        };
        let env = Envelope::new(&paid).unwrap();
        assert_eq!(env.key, paid.payment_id.to_string());
        let bytes = serde_json::to_vec(&env).unwrap();
        let back = Envelope::from_bytes(&bytes).unwrap();
        assert_eq!(back.decode::<Paid>().unwrap(), paid);

        let v2 = Envelope {
            version: 2,
            ..back.clone()
        };
        assert!(matches!(
            v2.decode::<Paid>(),
            Err(DecodeError::UnknownVersion { got: 2, .. })
        ));
        let other = Envelope {
            kind: "order.created".into(),
            ..back.clone()
        };
        assert!(matches!(
            other.decode::<Paid>(),
            Err(DecodeError::WrongType { .. })
        ));
        let bad = Envelope {
            payload: serde_json::json!({"amount": "x"}),
            ..back
        };
        assert!(matches!(
            bad.decode::<Paid>(),
            Err(DecodeError::Payload { .. })
        ));
        assert!(matches!(
            Envelope::from_bytes(b"{}"),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn traceparents_are_w3c_and_children_keep_the_trace() {
        let tp = new_traceparent();
        let parts: Vec<_> = tp.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [2, 32, 16, 2]
        );
        let child = child_traceparent(&tp);
        assert_eq!(child.split('-').nth(1), Some(parts[1]));
        assert_ne!(child, tp);
        assert_eq!(child_traceparent("garbage").len(), 55);
    }
}
