//! The `spinLock` strategy's lock, done right: `SET key token NX PX lease` with a random owner
//! token, exponential backoff with full jitter between attempts, a bounded total wait (then 503
//! with nothing changed), locks taken in item-id order, and a compare-and-delete release so a
//! holder whose lease expired can never free someone else's lock.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use kommerce_kit::cache::Redis;
use kommerce_kit::http::ApiError;
use rand::Rng;
use redis::Script;
use uuid::Uuid;

use crate::domain::stock::{PoolPolicy, full_jitter};

static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
});

/// Locks held by one request, released together.
#[derive(Debug)]
pub struct Held {
    redis: Redis,
    locks: Vec<(String, String)>,
}

impl Held {
    pub async fn release(self) {
        for (key, token) in &self.locks {
            let released: redis::RedisResult<i64> = RELEASE
                .key(key)
                .arg(token)
                .invoke_async(&mut self.redis.conn())
                .await;
            if let Err(e) = released {
                tracing::warn!(error = %e, %key, "lock not released; its lease will expire");
            }
        }
    }
}

fn lock_key(redis: &Redis, item: Uuid) -> String {
    redis.key(&["item", "lock", &item.to_string()])
}

/// Takes the lock of every item (already in item-id order) or none.
pub async fn acquire_all(
    redis: &Redis,
    items: &[Uuid],
    policy: &PoolPolicy,
) -> Result<Held, ApiError> {
    let deadline = Instant::now() + Duration::from_millis(policy.max_wait_ms);
    let mut held = Held {
        redis: redis.clone(),
        locks: Vec::with_capacity(items.len()),
    };
    for item in items {
        let key = lock_key(redis, *item);
        let token = Uuid::new_v4().to_string();
        let mut attempt = 0u32;
        loop {
            metrics::counter!("stock_lock_attempts_total").increment(1);
            let got: redis::RedisResult<Option<String>> = redis::cmd("SET")
                .arg(&key)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(policy.lease_ms)
                .query_async(&mut redis.conn())
                .await;
            match got {
                Ok(Some(_)) => break,
                Ok(None) => {}
                Err(e) => {
                    held.release().await;
                    tracing::error!(error = %e, "lock store unreachable");
                    return Err(ApiError::unavailable(
                        "stock is temporarily unavailable; nothing was changed",
                    ));
                }
            }
            let now = Instant::now();
            if now >= deadline {
                held.release().await;
                metrics::counter!("stock_lock_timeouts_total").increment(1);
                return Err(ApiError::unavailable(
                    "stock is busy; nothing was changed, try again",
                ));
            }
            let unit: f64 = rand::rng().random();
            let wait = full_jitter(policy, attempt, unit).min(deadline - now);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
        held.locks.push((key, token));
    }
    Ok(held)
}
