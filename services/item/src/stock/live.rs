//! The live StockPool policy (docs/stockpool-contract.md): read from Redis at start-up, applied
//! again on every change announcement (and every `ack_interval` in case one was missed), and
//! acknowledged per instance with a TTL. Also runs the fold and the periodic reconcile.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kommerce_kit::RedisSettings;
use kommerce_kit::cache::Redis;
use kommerce_kit::workers::{StopSignal, Workers};
use sqlx::PgPool;
use tokio::sync::watch;

use super::{fold_pending, gate};
use kommerce_contracts::stock_pool::{DEFAULT_HASH, PoolKeys, PoolPolicy, Strategy, parse_policy};

/// The policy in force and the hash acknowledged for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub policy: PoolPolicy,
    pub hash: String,
}

impl Default for Applied {
    fn default() -> Self {
        Self {
            policy: PoolPolicy::default(),
            hash: DEFAULT_HASH.into(),
        }
    }
}

/// The Redis names this instance uses: the contract's, and its own acknowledgement key.
#[derive(Debug, Clone)]
pub struct Keys {
    pub pool: PoolKeys,
    pub ack: String,
}

pub fn keys(redis: &Redis, pool: &str, instance: &str) -> Keys {
    let pool = PoolKeys::new(redis.prefix(), pool);
    Keys {
        ack: pool.ack(instance),
        pool,
    }
}

/// Reads the document: `Ok(None)` when there is none (use the default).
async fn read(redis: &Redis, keys: &Keys) -> redis::RedisResult<Option<String>> {
    redis::cmd("GET")
        .arg(&keys.pool.config)
        .query_async(&mut redis.conn())
        .await
}

/// What to apply given the document (pure): the default without one; the last good policy
/// when the document is bad.
pub fn decide(current: &Applied, doc: Option<&str>) -> Applied {
    match doc {
        None => Applied::default(),
        Some(raw) => match parse_policy(raw) {
            Ok((policy, hash)) => Applied { policy, hash },
            Err(e) => {
                tracing::error!(error = %e, "ignoring a bad stock-pool config; keeping the last good one");
                current.clone()
            }
        },
    }
}

/// Loads and applies the document once; reconciles the counters before switching to
/// `reservation`. Returns whether the policy changed.
pub async fn refresh(
    db: &PgPool,
    redis: &Redis,
    keys: &Keys,
    tx: &watch::Sender<Arc<Applied>>,
) -> bool {
    let doc = match read(redis, keys).await {
        Ok(doc) => doc,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the stock-pool config; keeping the current one");
            return false;
        }
    };
    let current = tx.borrow().clone();
    let next = decide(&current, doc.as_deref());
    if next == *current {
        return false;
    }
    if doc.is_none() {
        tracing::info!("no stock-pool config in Redis: using the default (conditionalUpdate)");
    }
    if next.policy.strategy == Strategy::Reservation
        && current.policy.strategy != Strategy::Reservation
    {
        match gate::reconcile_all(db, redis).await {
            Ok(n) => tracing::info!(
                counters = n,
                "stock counters rebuilt for the reservation strategy"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "stock counters not rebuilt; the gate falls back while cold");
            }
        }
    }
    tracing::info!(strategy = next.policy.strategy.as_str(), hash = %next.hash, "stock-pool policy applied");
    tx.send_replace(Arc::new(next));
    true
}

async fn acknowledge(redis: &Redis, keys: &Keys, hash: &str) {
    let acked: redis::RedisResult<()> = redis::cmd("SET")
        .arg(&keys.ack)
        .arg(hash)
        .arg("EX")
        .arg(30)
        .query_async(&mut redis.conn())
        .await;
    if let Err(e) = acked {
        tracing::warn!(error = %e, "stock-pool acknowledgement not written");
    }
}

/// Applies the current document, then starts two workers under the service's stop: one
/// follows the document (announcements, and every `ack_interval` in case one was missed), one
/// folds and reconciles ([`maintain`]).
pub async fn start(
    workers: &mut Workers,
    db: PgPool,
    redis: Redis,
    settings: RedisSettings,
    keys: Keys,
    ack_interval: Duration,
    fold_interval: Duration,
) -> watch::Receiver<Arc<Applied>> {
    let (tx, rx) = watch::channel(Arc::new(Applied {
        hash: String::new(),
        ..Applied::default()
    }));
    refresh(&db, &redis, &keys, &tx).await;
    acknowledge(&redis, &keys, &rx.borrow().hash).await;
    {
        let (db, redis, rx) = (db.clone(), redis.clone(), rx.clone());
        workers.spawn_loop("stock-maintain", move |stop| {
            maintain(db.clone(), redis.clone(), rx.clone(), fold_interval, stop)
        });
    }
    let tx = Arc::new(tx);
    workers.spawn_loop("stock-policy", move |stop| {
        follow(
            Follower {
                db: db.clone(),
                redis: redis.clone(),
                settings: settings.clone(),
                keys: keys.clone(),
                tx: Arc::clone(&tx),
            },
            ack_interval,
            stop,
        )
    });
    rx
}

/// What the policy follower works with.
struct Follower {
    db: PgPool,
    redis: Redis,
    settings: RedisSettings,
    keys: Keys,
    tx: Arc<watch::Sender<Arc<Applied>>>,
}

/// Applies and acknowledges the document on every announcement and every `ack_interval`,
/// until `stop`; re-subscribes when the subscription ends.
async fn follow(f: Follower, ack_interval: Duration, stop: StopSignal) {
    tokio::pin!(stop);
    loop {
        let mut messages = match subscribe(&f.settings, &f.keys.pool.channel).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to stock-pool changes; polling");
                None
            }
        };
        loop {
            let next = async {
                match messages.as_mut() {
                    Some(m) => m.next().await.is_some(),
                    None => std::future::pending().await,
                }
            };
            let alive = tokio::select! {
                () = &mut stop => return,
                alive = next => alive,
                () = tokio::time::sleep(ack_interval) => true,
            };
            refresh(&f.db, &f.redis, &f.keys, &f.tx).await;
            let hash = f.tx.borrow().hash.clone();
            acknowledge(&f.redis, &f.keys, &hash).await;
            if !alive {
                break;
            }
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

async fn subscribe(
    settings: &RedisSettings,
    channel: &str,
) -> redis::RedisResult<impl futures::Stream<Item = redis::Msg> + Unpin + Send> {
    let client = redis::Client::open(settings.url.expose())?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub.into_on_message())
}

/// Folds reservation-strategy ledger rows into `items.stock`, and reconciles the counters every
/// `reconcileIntervalSeconds` — whatever the strategy, since every strategy checks them.
/// Ends at `stop`.
async fn maintain(
    db: PgPool,
    redis: Redis,
    policy: watch::Receiver<Arc<Applied>>,
    fold_interval: Duration,
    stop: StopSignal,
) {
    tokio::pin!(stop);
    let mut last_reconcile = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(fold_interval) => {}
        }
        if let Err(e) = fold_pending(&db).await {
            tracing::warn!(error = %e, "stock fold failed; retrying");
        }
        let p = policy.borrow().policy.clone();
        if last_reconcile.elapsed() >= Duration::from_secs(p.reconcile_interval_seconds) {
            last_reconcile = tokio::time::Instant::now();
            if let Err(e) = gate::reconcile_all(&db, &redis).await {
                tracing::warn!(error = %e, "stock reconcile failed");
            }
        }
    }
}
