//! Cache-aside for product pages: `item:cache:<id>` holds the rendered item JSON with a TTL and
//! is deleted on every change to the item, its stock or its rating. Every cache call is bounded
//! by a short timeout and its failure only logged: a cache outage degrades to the database, it
//! never fails a request.

use std::time::Duration;

use kommerce_kit::cache::Redis;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_millis(150);

pub fn key(redis: &Redis, item: Uuid) -> String {
    redis.key(&["item", "cache", &item.to_string()])
}

fn outcome(result: &'static str) {
    metrics::counter!("item_cache_total", "result" => result).increment(1);
}

pub async fn get(redis: &Redis, item: Uuid) -> Option<String> {
    let cmd = redis::cmd("GET").arg(key(redis, item)).clone();
    match tokio::time::timeout(
        TIMEOUT,
        cmd.query_async::<Option<String>>(&mut redis.conn()),
    )
    .await
    {
        Ok(Ok(Some(hit))) => {
            outcome("hit");
            Some(hit)
        }
        Ok(Ok(None)) => {
            outcome("miss");
            None
        }
        Ok(Err(e)) => {
            outcome("error");
            tracing::warn!(error = %e, "item cache unavailable; reading the database");
            None
        }
        Err(_) => {
            outcome("error");
            tracing::warn!("item cache timed out; reading the database");
            None
        }
    }
}

pub async fn put(redis: &Redis, item: Uuid, json: &str, ttl_secs: u64) {
    let cmd = redis::cmd("SET")
        .arg(key(redis, item))
        .arg(json)
        .arg("EX")
        .arg(ttl_secs)
        .clone();
    if !matches!(
        tokio::time::timeout(TIMEOUT, cmd.query_async::<()>(&mut redis.conn())).await,
        Ok(Ok(()))
    ) {
        tracing::warn!("item not cached");
    }
}

pub async fn forget(redis: &Redis, keys: &[String]) {
    if keys.is_empty() {
        return;
    }
    let cmd = redis::cmd("DEL").arg(keys).clone();
    if !matches!(
        tokio::time::timeout(TIMEOUT, cmd.query_async::<i64>(&mut redis.conn())).await,
        Ok(Ok(_))
    ) {
        // A stale page can now live until its TTL: say so loudly.
        tracing::error!(
            ?keys,
            "item cache invalidation failed; pages may be stale until their TTL"
        );
    }
}
