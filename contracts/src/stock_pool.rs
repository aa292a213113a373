//! The StockPool live-config contract (docs/stockpool-contract.md) that the operator writes
//! and every item-service instance applies: the policy document, its hash, and the Redis
//! names. One implementation, so that the two sides cannot disagree on a hash.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The hash an instance acknowledges when no document exists (contract, "Defaults and absence").
pub const DEFAULT_HASH: &str = "default";

/// How a stock decrement is guarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = StockPoolStrategy)]
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

/// The pool policy: the document's fields (a missing one takes its default; an unknown one is
/// ignored, so that an older instance reads a newer document).
///
/// As served (`GET /internal/v1/stock/policy`) every field is present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
#[schema(as = StockPoolPolicy)]
pub struct PoolPolicy {
    #[schema(required = true)]
    pub strategy: Strategy,
    /// `spinLock`: how long a lock is held at most.
    #[schema(required = true)]
    pub lease_ms: u64,
    /// `spinLock`: the first backoff between attempts.
    #[schema(required = true)]
    pub backoff_base_ms: u64,
    /// `spinLock`: the longest backoff between attempts.
    #[schema(required = true)]
    pub backoff_max_ms: u64,
    /// `spinLock`: the longest wait for the locks before a 503.
    #[schema(required = true)]
    pub max_wait_ms: u64,
    /// How often the stock counters are rebuilt from PostgreSQL.
    #[schema(required = true)]
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

impl PoolPolicy {
    fn fields(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }

    /// The contract's hash of this policy.
    pub fn hash(&self) -> String {
        policy_hash(&self.fields())
    }

    /// The document as stored: the fields plus `hash`, canonical (sorted keys, no whitespace),
    /// so that writing the same policy twice writes the same bytes.
    pub fn document(&self) -> String {
        let mut doc = self.fields();
        doc.insert("hash".into(), Value::String(self.hash()));
        let mut out = String::new();
        write_canonical(&mut out, &Value::Object(doc));
        out
    }
}

/// The canonical JSON the hash is computed over: the document without `hash`, keys sorted at
/// every level, no whitespace — whatever order the document's writer used.
pub fn canonical_json(doc: &Map<String, Value>) -> String {
    let without_hash: BTreeMap<&str, &Value> = doc
        .iter()
        .filter(|(k, _)| *k != "hash")
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let mut out = String::new();
    write_object(&mut out, &without_hash);
    out
}

/// The contract's hash: the first 16 hex digits of SHA-256 over [`canonical_json`].
pub fn policy_hash(doc: &Map<String, Value>) -> String {
    kommerce_kit::digest::sha256_hex(canonical_json(doc).as_bytes(), 8)
}

fn write_canonical(out: &mut String, v: &Value) {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&str, &Value> = m.iter().map(|(k, v)| (k.as_str(), v)).collect();
            write_object(out, &sorted);
        }
        Value::Array(items) => {
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

fn write_object(out: &mut String, m: &BTreeMap<&str, &Value>) {
    out.push('{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String((*k).to_owned()).to_string());
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

/// Reads a stored document: the policy and the hash to acknowledge.
pub fn parse_policy(raw: &str) -> Result<(PoolPolicy, String), PolicyError> {
    let value: Value =
        serde_json::from_str(raw).map_err(|e| PolicyError::Malformed(e.to_string()))?;
    let Value::Object(doc) = value else {
        return Err(PolicyError::Malformed("expected an object".into()));
    };
    let actual = policy_hash(&doc);
    let claimed = doc
        .get("hash")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if claimed != actual {
        return Err(PolicyError::HashMismatch { claimed, actual });
    }
    let policy: PoolPolicy = serde_json::from_value(Value::Object(doc))
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

/// The Redis names of pool `pool` under key prefix `prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolKeys {
    /// `<prefix>stockpool:<pool>`: the document.
    pub config: String,
    /// `<config>:changed`: where a new hash (or `default`) is announced.
    pub channel: String,
}

impl PoolKeys {
    pub fn new(prefix: &str, pool: &str) -> Self {
        let config = format!("{prefix}stockpool:{pool}");
        Self {
            channel: format!("{config}:changed"),
            config,
        }
    }

    /// `<config>:ack:<instance>`: an instance's acknowledged hash (with a TTL: live instances).
    pub fn ack(&self, instance: &str) -> String {
        format!("{}:ack:{instance}", self.config)
    }

    /// `SCAN MATCH` pattern of every acknowledgement, glob characters of the prefix escaped.
    pub fn ack_pattern(&self) -> String {
        let mut escaped = String::new();
        for c in self.config.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                escaped.push('\\');
            }
            escaped.push(c);
        }
        format!("{escaped}:ack:*")
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use sha2::{Digest as _, Sha256};

    use super::*;

    #[test]
    fn documents_round_trip_and_tampering_is_detected() {
        let p = PoolPolicy {
            strategy: Strategy::Reservation,
            lease_ms: 500,
            ..PoolPolicy::default()
        };
        let doc = p.document();
        let (parsed, hash) = parse_policy(&doc).expect("parses");
        assert_eq!(parsed, p);
        assert_eq!(hash, p.hash());
        assert_eq!(hash.len(), 16);
        let tampered = doc.replace("\"leaseMs\":500", "\"leaseMs\":501");
        assert!(matches!(
            parse_policy(&tampered),
            Err(PolicyError::HashMismatch { .. })
        ));
        assert!(matches!(parse_policy("[]"), Err(PolicyError::Malformed(_))));
        // Key order and whitespace do not change the hash.
        let reordered = format!(
            r#"{{ "strategy": "reservation", "hash": "{hash}", "leaseMs": 500, "backoffBaseMs": 2, "backoffMaxMs": 50, "maxWaitMs": 2000, "reconcileIntervalSeconds": 30 }}"#
        );
        assert_eq!(parse_policy(&reordered).expect("parses").1, hash);
    }

    #[test]
    fn the_hash_is_sha256_over_sorted_compact_json_without_the_hash() {
        let mut doc = Map::new();
        doc.insert("strategy".into(), "reservation".into());
        doc.insert("leaseMs".into(), 2000.into());
        doc.insert("hash".into(), "ignored".into());
        let expected = Sha256::digest(br#"{"leaseMs":2000,"strategy":"reservation"}"#)
            .iter()
            .take(8)
            .fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            });
        assert_eq!(policy_hash(&doc), expected);
    }

    #[test]
    fn the_document_is_canonical_and_carries_its_hash() {
        let p = PoolPolicy::default();
        assert_eq!(
            p.document(),
            format!(
                r#"{{"backoffBaseMs":2,"backoffMaxMs":50,"hash":"{}","leaseMs":2000,"maxWaitMs":2000,"reconcileIntervalSeconds":30,"strategy":"conditionalUpdate"}}"#,
                p.hash()
            )
        );
    }

    #[test]
    fn missing_fields_take_defaults_and_unknown_ones_are_ignored() {
        let mut doc = Map::new();
        doc.insert("strategy".into(), "spinLock".into());
        doc.insert("future".into(), 1.into());
        let hash = policy_hash(&doc);
        doc.insert("hash".into(), hash.into());
        let (p, _) = parse_policy(&Value::Object(doc).to_string()).expect("parses");
        assert_eq!(p.strategy, Strategy::SpinLock);
        assert_eq!(p.lease_ms, 2_000);
    }

    #[test]
    fn keys_follow_the_contract() {
        let k = PoolKeys::new("t[1]*:", "default");
        assert_eq!(k.config, "t[1]*:stockpool:default");
        assert_eq!(k.channel, "t[1]*:stockpool:default:changed");
        assert_eq!(k.ack("i-1"), "t[1]*:stockpool:default:ack:i-1");
        assert_eq!(k.ack_pattern(), r"t\[1\]\*:stockpool:default:ack:*");
    }
}
