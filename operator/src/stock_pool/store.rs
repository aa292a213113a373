//! StockPool, the Redis half: write and announce the document, read the acknowledgements,
//! remove the key.

use std::time::Duration;

use redis::AsyncCommands as _;
use redis::aio::ConnectionManager;

/// Connects (bounded by `timeout`; a manager reconnects on its own afterwards).
pub async fn connect(url: &str, timeout: Duration) -> Result<ConnectionManager, String> {
    let client = redis::Client::open(url).map_err(|e| format!("invalid Redis URL: {e}"))?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1);
    tokio::time::timeout(timeout, ConnectionManager::new_with_config(client, config))
        .await
        .map_err(|_| format!("Redis did not answer within {timeout:?}"))?
        .map_err(|e| format!("cannot connect to Redis: {e}"))
}

/// `SET` the document and `PUBLISH` its hash, unless the key already holds exactly this
/// document. Returns whether it wrote.
pub async fn publish(
    conn: &mut ConnectionManager,
    key: &str,
    channel: &str,
    document: &str,
    hash: &str,
) -> redis::RedisResult<bool> {
    let current: Option<String> = conn.get(key).await?;
    if current.as_deref() == Some(document) {
        return Ok(false);
    }
    let () = conn.set(key, document).await?;
    let _receivers: i64 = conn.publish(channel, hash).await?;
    Ok(true)
}

/// The hashes acknowledged by live instances (`SCAN MATCH` + `MGET`; a key that expired
/// between the two reads as `None`).
pub async fn acknowledgements(
    conn: &mut ConnectionManager,
    pattern: &str,
) -> redis::RedisResult<Vec<Option<String>>> {
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(500)
            .query_async(conn)
            .await?;
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    redis::cmd("MGET").arg(&keys).query_async(conn).await
}

/// Deletes the document and announces the fallback, so instances switch to their default now.
pub async fn remove(
    conn: &mut ConnectionManager,
    key: &str,
    channel: &str,
    fallback_hash: &str,
) -> redis::RedisResult<()> {
    let _deleted: i64 = conn.del(key).await?;
    let _receivers: i64 = conn.publish(channel, fallback_hash).await?;
    Ok(())
}
