//! StockPool, the pure half: the spec validated into the contract's document
//! (`kommerce_contracts::stock_pool`, which owns the hash and the Redis names), the
//! acknowledgement count and the conditions. No client, no clock.

use kommerce_contracts::stock_pool::{PoolKeys, PoolPolicy, Strategy};
use kommerce_crds::conditions::{DEGRADED, PROGRESSING, READY};
use kommerce_crds::{StockPool, reasons};
use kube::ResourceExt as _;

use crate::claims::Claim;
use crate::conditions::{Desired, no_conflict};

pub use kommerce_contracts::stock_pool::DEFAULT_HASH;

/// A spec that passed every check, with defaults resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    pub pool: String,
    pub redis_url: String,
    pub key_prefix: String,
    /// The document's content: the contract's type, hashed and written by the contract's code.
    pub document: PoolPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("spinLock.backoffBaseMs ({base}) exceeds spinLock.backoffMaxMs ({max})")]
    Backoff { base: u32, max: u32 },
    #[error("redis.keyPrefix '{0}' has whitespace")]
    KeyPrefix(String),
    #[error("redis.url must start with redis:// or rediss://")]
    RedisUrl,
}

pub fn validate(sp: &StockPool, default_redis_url: &str) -> Result<Validated, Invalid> {
    let spec = &sp.spec;
    let lock = &spec.spin_lock;
    if lock.backoff_base_ms > lock.backoff_max_ms {
        return Err(Invalid::Backoff {
            base: lock.backoff_base_ms,
            max: lock.backoff_max_ms,
        });
    }
    if spec.redis.key_prefix.contains(char::is_whitespace) {
        return Err(Invalid::KeyPrefix(spec.redis.key_prefix.clone()));
    }
    let redis_url = spec
        .redis
        .url
        .clone()
        .unwrap_or_else(|| default_redis_url.to_owned());
    if !(redis_url.starts_with("redis://") || redis_url.starts_with("rediss://")) {
        return Err(Invalid::RedisUrl);
    }
    Ok(Validated {
        pool: sp.name_any(),
        redis_url,
        key_prefix: spec.redis.key_prefix.clone(),
        document: PoolPolicy {
            strategy: strategy(spec.strategy),
            lease_ms: lock.lease_ms.into(),
            backoff_base_ms: lock.backoff_base_ms.into(),
            backoff_max_ms: lock.backoff_max_ms.into(),
            max_wait_ms: lock.max_wait_ms.into(),
            reconcile_interval_seconds: spec.reservation.reconcile_interval_seconds.into(),
        },
    })
}

/// The CRD's strategy as the contract's (exhaustive: a new strategy breaks the build here).
fn strategy(s: kommerce_crds::Strategy) -> Strategy {
    use kommerce_crds::Strategy as Crd;
    match s {
        Crd::SpinLock => Strategy::SpinLock,
        Crd::ConditionalUpdate => Strategy::ConditionalUpdate,
        Crd::Reservation => Strategy::Reservation,
    }
}

/// The contract's Redis names of the pool.
pub fn keys(v: &Validated) -> PoolKeys {
    PoolKeys::new(&v.key_prefix, &v.pool)
}

/// The names a StockPool claims: its key in its Redis (credentials stripped).
pub fn claim(sp: &StockPool, v: &Validated) -> Claim {
    let server = v
        .redis_url
        .rsplit_once('@')
        .map_or(v.redis_url.as_str(), |(_, host)| host)
        .trim_start_matches("rediss://")
        .trim_start_matches("redis://");
    Claim {
        namespace: sp.namespace().unwrap_or_default(),
        name: sp.name_any(),
        uid: sp.uid().unwrap_or_default(),
        created: sp.creation_timestamp(),
        names: [format!("{server}/{}", keys(v).config)].into(),
    }
}

/// Acknowledgements of the live instances against the current hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acks {
    /// M: live instances (ack keys that have not expired).
    pub live: usize,
    /// N: those on the current hash.
    pub current: usize,
}

impl Acks {
    pub fn count(acked_hashes: &[Option<String>], hash: &str) -> Self {
        let live: Vec<&String> = acked_hashes.iter().flatten().collect();
        Self {
            live: live.len(),
            current: live.iter().filter(|h| h.as_str() == hash).count(),
        }
    }

    /// Ready per the contract: M ≥ 1 and N = M.
    pub fn all_on_current(self) -> bool {
        self.live >= 1 && self.current == self.live
    }

    /// `"N/M instances on <hash>"`.
    pub fn summary(self, hash: &str) -> String {
        format!("{}/{} instances on {hash}", self.current, self.live)
    }
}

pub fn conditions_acks(acks: Acks, hash: &str) -> Vec<Desired> {
    let summary = acks.summary(hash);
    let (ready, reason) = if acks.all_on_current() {
        (true, reasons::ALL_ACKNOWLEDGED)
    } else if acks.live == 0 {
        (false, reasons::NO_LIVE_INSTANCES)
    } else {
        (false, reasons::WAITING_FOR_ACKNOWLEDGEMENT)
    };
    vec![
        Desired::new(READY, ready, reason, summary.clone()),
        Desired::new(PROGRESSING, !ready, reason, summary),
        Desired::new(DEGRADED, false, reasons::HEALTHY, ""),
        no_conflict(),
    ]
}

pub fn conditions_invalid(err: &Invalid) -> Vec<Desired> {
    crate::conditions::invalid(err)
}

pub fn conditions_redis_failed(message: &str) -> Vec<Desired> {
    crate::conditions::failed(reasons::REDIS_UNAVAILABLE, message)
}

pub fn conditions_conflict(key: &str, owner: &str) -> Vec<Desired> {
    crate::conditions::conflict(key, "StockPool", owner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kommerce_crds::{
        RedisLocation, ReservationParams, SpinLockParams, StockPoolSpec, Strategy,
    };

    fn pool(strategy: Strategy) -> StockPool {
        StockPool::new(
            "default",
            StockPoolSpec {
                strategy,
                spin_lock: SpinLockParams::default(),
                reservation: ReservationParams::default(),
                redis: RedisLocation::default(),
            },
        )
    }

    #[test]
    fn the_document_matches_the_contract_example_shape() {
        let v = validate(&pool(Strategy::Reservation), "redis://r:6379").expect("valid");
        let doc = &v.document;
        let stored: serde_json::Value = serde_json::from_str(&doc.document()).expect("json");
        let mut without_hash = stored.as_object().expect("an object").clone();
        without_hash.remove("hash");
        assert_eq!(
            serde_json::Value::Object(without_hash).to_string(),
            r#"{"backoffBaseMs":2,"backoffMaxMs":50,"leaseMs":2000,"maxWaitMs":2000,"reconcileIntervalSeconds":30,"strategy":"reservation"}"#
        );
        assert_eq!(stored["hash"], serde_json::json!(doc.hash()));
        assert_eq!(stored["strategy"], "reservation");
        assert_eq!(stored["leaseMs"], 2000);
    }

    #[test]
    fn a_different_strategy_or_parameter_changes_the_hash() {
        let a = validate(&pool(Strategy::SpinLock), "redis://r")
            .expect("valid")
            .document
            .hash();
        let b = validate(&pool(Strategy::ConditionalUpdate), "redis://r")
            .expect("valid")
            .document
            .hash();
        let mut p = pool(Strategy::SpinLock);
        p.spec.spin_lock.lease_ms = 3000;
        let c = validate(&p, "redis://r").expect("valid").document.hash();
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn redis_names_follow_the_contract() {
        let mut p = pool(Strategy::SpinLock);
        p.spec.redis.key_prefix = "t[1]*:".into();
        let v = validate(&p, "redis://r").expect("valid");
        assert_eq!(keys(&v).config, "t[1]*:stockpool:default");
        assert_eq!(keys(&v).channel, "t[1]*:stockpool:default:changed");
        assert_eq!(keys(&v).ack_pattern(), r"t\[1\]\*:stockpool:default:ack:*");
    }

    #[test]
    fn invalid_specs_are_named() {
        let mut p = pool(Strategy::SpinLock);
        p.spec.spin_lock.backoff_base_ms = 100;
        assert_eq!(
            validate(&p, "redis://r"),
            Err(Invalid::Backoff { base: 100, max: 50 })
        );
        assert_eq!(
            validate(&pool(Strategy::SpinLock), "http://r"),
            Err(Invalid::RedisUrl)
        );
    }

    #[test]
    fn acknowledgements_count_live_instances_and_those_on_the_hash() {
        let acks = Acks::count(
            &[
                Some("h1".into()),
                Some("h0".into()),
                None,
                Some("h1".into()),
            ],
            "h1",
        );
        assert_eq!(
            acks,
            Acks {
                live: 3,
                current: 2
            }
        );
        assert_eq!(acks.summary("h1"), "2/3 instances on h1");
        assert!(!acks.all_on_current());
        assert!(
            Acks {
                live: 2,
                current: 2
            }
            .all_on_current()
        );
        assert!(
            !Acks {
                live: 0,
                current: 0
            }
            .all_on_current()
        );
    }

    #[test]
    fn conditions_follow_the_acknowledgements() {
        let ready = conditions_acks(
            Acks {
                live: 1,
                current: 1,
            },
            "h",
        );
        assert!(ready[0].status && ready[0].reason == reasons::ALL_ACKNOWLEDGED);
        assert!(!ready[1].status);
        let waiting = conditions_acks(
            Acks {
                live: 2,
                current: 1,
            },
            "h",
        );
        assert!(!waiting[0].status && waiting[0].reason == reasons::WAITING_FOR_ACKNOWLEDGEMENT);
        assert!(waiting[1].status);
        let none = conditions_acks(
            Acks {
                live: 0,
                current: 0,
            },
            "h",
        );
        assert_eq!(none[0].reason, reasons::NO_LIVE_INSTANCES);
        assert_eq!(none[0].message, "0/0 instances on h");
    }

    #[test]
    fn claims_ignore_credentials() {
        let v = validate(&pool(Strategy::SpinLock), "redis://user:secret@r:6379/0").expect("valid");
        let c = claim(&pool(Strategy::SpinLock), &v);
        assert_eq!(
            c.names.iter().next().map(String::as_str),
            Some("r:6379/0/kommerce:stockpool:default")
        );
    }
}
