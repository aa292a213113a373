//! Stock requests and the stock-pool policy (the live-config contract in
//! docs/stockpool-contract.md), all pure.

use std::collections::BTreeMap;
use std::time::Duration;

use kommerce_kit::http::ApiError;
use kommerce_kit::validate::{Fields, text};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const MAX_LINES: usize = 50;
pub const MAX_QTY: i32 = 1_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReservationBody {
    pub reservation_id: Uuid,
    pub lines: Vec<LineBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineBody {
    pub item_id: Uuid,
    pub qty: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Line {
    pub item_id: Uuid,
    pub qty: i32,
}

/// A reservation request: 1..=50 lines, distinct items, qty 1..=1000, sorted by item id (the
/// order locks are taken in, so two reservations never deadlock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: Uuid,
    pub lines: Vec<Line>,
}

impl TryFrom<ReservationBody> for Reservation {
    type Error = ApiError;
    fn try_from(b: ReservationBody) -> Result<Self, ApiError> {
        let mut f = Fields::new();
        if b.lines.is_empty() || b.lines.len() > MAX_LINES {
            f.add("lines", format!("must have 1 to {MAX_LINES} lines"));
        }
        let mut lines = Vec::with_capacity(b.lines.len());
        for (i, l) in b.lines.iter().enumerate() {
            match i32::try_from(l.qty) {
                Ok(qty) if (1..=MAX_QTY).contains(&qty) => lines.push(Line {
                    item_id: l.item_id,
                    qty,
                }),
                _ => f.add(
                    &format!("lines[{i}].qty"),
                    format!("must be from 1 to {MAX_QTY}"),
                ),
            }
        }
        lines.sort();
        if lines.windows(2).any(|w| w[0].item_id == w[1].item_id) {
            f.add("lines", "must not name an item twice");
        }
        f.finish()?;
        Ok(Self {
            id: b.reservation_id,
            lines,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjustBody {
    pub delta: i64,
    pub reason: String,
}

/// An admin's stock correction: a non-zero signed delta with a reason for the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjust {
    pub delta: i32,
    pub note: String,
}

impl TryFrom<AdjustBody> for Adjust {
    type Error = ApiError;
    fn try_from(b: AdjustBody) -> Result<Self, ApiError> {
        let mut f = Fields::new();
        let delta = f.check(
            "delta",
            match i32::try_from(b.delta) {
                Ok(0) => Err("must not be zero".into()),
                Ok(d) if d.unsigned_abs() <= 1_000_000 => Ok(d),
                _ => Err("must be between -1000000 and 1000000".into()),
            },
        );
        let note = f.check("reason", text(&b.reason, 1, 200));
        f.finish()?;
        match (delta, note) {
            (Some(delta), Some(note)) => Ok(Self { delta, note }),
            _ => Err(ApiError::internal("validation passed without values")),
        }
    }
}

/// How a stock decrement is guarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Strategy {
    SpinLock,
    ConditionalUpdate,
    Reservation,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SpinLock => "spinLock",
            Self::ConditionalUpdate => "conditionalUpdate",
            Self::Reservation => "reservation",
        }
    }
}

/// The pool policy of the contract, as applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PoolPolicy {
    pub strategy: Strategy,
    pub lease_ms: u64,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub max_wait_ms: u64,
    pub reconcile_interval_seconds: u64,
}

impl Default for PoolPolicy {
    fn default() -> Self {
        Self {
            strategy: Strategy::ConditionalUpdate,
            lease_ms: 2_000,
            backoff_base_ms: 2,
            backoff_max_ms: 50,
            max_wait_ms: 2_000,
            reconcile_interval_seconds: 30,
        }
    }
}

/// The hash acknowledged when no config document exists.
pub const DEFAULT_HASH: &str = "default";

/// The contract's hash: first 16 hex digits of SHA-256 over the canonical JSON (sorted keys, no
/// whitespace) of the document without `hash`.
pub fn policy_hash(doc: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut canonical = String::new();
    let without_hash: BTreeMap<&str, &serde_json::Value> = doc
        .iter()
        .filter(|(k, _)| *k != "hash")
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    write_object(&mut canonical, &without_hash);
    let digest = Sha256::digest(canonical.as_bytes());
    digest
        .iter()
        .take(8)
        .fold(String::with_capacity(16), |mut s, b| {
            use std::fmt::Write;
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Canonical JSON: keys sorted at every level, no whitespace — independent of whether
/// serde_json preserves insertion order in this build.
fn write_canonical(out: &mut String, v: &serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            let sorted: BTreeMap<&str, &serde_json::Value> =
                m.iter().map(|(k, v)| (k.as_str(), v)).collect();
            write_object(out, &sorted);
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn write_object(out: &mut String, m: &BTreeMap<&str, &serde_json::Value>) {
    out.push('{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::Value::String((*k).to_owned()).to_string());
        out.push(':');
        write_canonical(out, v);
    }
    out.push('}');
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("not a JSON object: {0}")]
    Malformed(String),
    #[error("hash {claimed} does not match the content ({actual})")]
    HashMismatch { claimed: String, actual: String },
    #[error("invalid policy: {0}")]
    Invalid(String),
}

/// Parses a config document; returns the policy and the hash to acknowledge.
pub fn parse_policy(raw: &str) -> Result<(PoolPolicy, String), PolicyError> {
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| PolicyError::Malformed(e.to_string()))?;
    let serde_json::Value::Object(doc) = value else {
        return Err(PolicyError::Malformed("expected an object".into()));
    };
    let actual = policy_hash(&doc);
    let claimed = doc
        .get("hash")
        .and_then(|h| h.as_str())
        .unwrap_or_default()
        .to_owned();
    if claimed != actual {
        return Err(PolicyError::HashMismatch { claimed, actual });
    }
    let policy: PoolPolicy = serde_json::from_value(serde_json::Value::Object(doc))
        .map_err(|e| PolicyError::Invalid(e.to_string()))?;
    if policy.lease_ms == 0
        || policy.backoff_base_ms == 0
        || policy.backoff_max_ms < policy.backoff_base_ms
        || policy.reconcile_interval_seconds == 0
    {
        return Err(PolicyError::Invalid(
            "lease, backoff and reconcile interval must be positive, backoffMax ≥ backoffBase"
                .into(),
        ));
    }
    Ok((policy, claimed))
}

/// A config document for `policy` with its hash (what the operator writes; tests use it too).
pub fn policy_document(policy: &PoolPolicy) -> String {
    let mut doc = match serde_json::to_value(policy) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let hash = policy_hash(&doc);
    doc.insert("hash".into(), serde_json::Value::String(hash));
    serde_json::Value::Object(doc).to_string()
}

/// Exponential backoff with full jitter: a uniform wait in `[0, min(max, base·2^attempt)]`.
/// `unit` is the random draw in `[0, 1)`.
pub fn full_jitter(policy: &PoolPolicy, attempt: u32, unit: f64) -> Duration {
    let cap = policy
        .backoff_base_ms
        .saturating_mul(1u64 << attempt.min(20))
        .min(policy.backoff_max_ms);
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let ms = (cap as f64 * unit.clamp(0.0, 1.0)) as u64;
    Duration::from_millis(ms.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_sorted_and_checked() {
        let a = Uuid::from_u128(2);
        let b = Uuid::from_u128(1);
        let body = ReservationBody {
            reservation_id: Uuid::new_v4(),
            lines: vec![
                LineBody { item_id: a, qty: 1 },
                LineBody { item_id: b, qty: 3 },
            ],
        };
        let r = Reservation::try_from(body).unwrap();
        assert_eq!(
            r.lines.iter().map(|l| l.item_id).collect::<Vec<_>>(),
            [b, a],
            "item-id order"
        );

        for (lines, field) in [
            (vec![], "lines"),
            (vec![LineBody { item_id: a, qty: 0 }], "lines[0].qty"),
            (
                vec![LineBody {
                    item_id: a,
                    qty: -2,
                }],
                "lines[0].qty",
            ),
            (
                vec![
                    LineBody { item_id: a, qty: 1 },
                    LineBody { item_id: a, qty: 1 },
                ],
                "lines",
            ),
        ] {
            let Err(ApiError::Validation(e)) = Reservation::try_from(ReservationBody {
                reservation_id: Uuid::new_v4(),
                lines,
            }) else {
                panic!()
            };
            assert_eq!(e[0].field, field);
        }
    }

    #[test]
    fn policy_documents_round_trip_and_tampering_is_detected() {
        let p = PoolPolicy {
            strategy: Strategy::Reservation,
            lease_ms: 500,
            ..PoolPolicy::default()
        };
        let doc = policy_document(&p);
        let (parsed, hash) = parse_policy(&doc).unwrap();
        assert_eq!(parsed, p);
        assert_eq!(hash.len(), 16);
        let tampered = doc.replace("\"leaseMs\":500", "\"leaseMs\":501");
        assert!(matches!(
            parse_policy(&tampered),
            Err(PolicyError::HashMismatch { .. })
        ));
        assert!(parse_policy("[]").is_err());
        // Key order and whitespace do not change the hash.
        let reordered = format!(
            r#"{{ "strategy": "reservation", "hash": "{hash}", "leaseMs": 500, "backoffBaseMs": 2, "backoffMaxMs": 50, "maxWaitMs": 2000, "reconcileIntervalSeconds": 30 }}"#
        );
        assert_eq!(parse_policy(&reordered).unwrap().1, hash);
    }

    #[test]
    fn the_hash_is_the_contracts() {
        // docs/stockpool-contract.md: sha256 over sorted, whitespace-free JSON without `hash`.
        let mut doc = serde_json::Map::new();
        doc.insert("strategy".into(), "reservation".into());
        doc.insert("leaseMs".into(), 2000.into());
        let expected = {
            let d = Sha256::digest(br#"{"leaseMs":2000,"strategy":"reservation"}"#);
            d.iter().take(8).fold(String::new(), |mut s, b| {
                use std::fmt::Write;
                let _ = write!(s, "{b:02x}");
                s
            })
        };
        assert_eq!(policy_hash(&doc), expected);
    }

    #[test]
    fn missing_fields_take_defaults_and_unknown_ones_are_ignored() {
        let mut doc = serde_json::Map::new();
        doc.insert("strategy".into(), "spinLock".into());
        doc.insert("future".into(), 1.into());
        let hash = policy_hash(&doc);
        doc.insert("hash".into(), hash.into());
        let (p, _) = parse_policy(&serde_json::Value::Object(doc).to_string()).unwrap();
        assert_eq!(p.strategy, Strategy::SpinLock);
        assert_eq!(p.lease_ms, 2_000);
    }

    #[test]
    fn jitter_stays_within_the_exponential_cap() {
        let p = PoolPolicy {
            backoff_base_ms: 2,
            backoff_max_ms: 50,
            ..PoolPolicy::default()
        };
        assert_eq!(full_jitter(&p, 0, 0.999), Duration::from_millis(1));
        assert_eq!(full_jitter(&p, 3, 0.5), Duration::from_millis(8));
        assert_eq!(full_jitter(&p, 30, 1.0), Duration::from_millis(50));
        assert_eq!(full_jitter(&p, 3, 0.0), Duration::from_millis(1));
    }
}
