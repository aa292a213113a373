//! The `reservation` strategy: an atomic Redis script decides over the counters
//! ([`super::counters`]) and the reservation is recorded as ledger rows; and reconcile, which
//! rebuilds the counters from PostgreSQL. Per reservation: `item:resv:<id>` (a repeat marker).

use std::sync::LazyLock;

use kommerce_kit::cache::Redis;
use kommerce_kit::http::ApiError;
use redis::Script;
use sqlx::PgPool;
use uuid::Uuid;

use super::counters::{self, end, line_keys, run, shortages, unavailable};
use super::writer::{Record, Recorded, Writer};
use super::{Outcome, store};
use crate::domain::stock::Reservation;

/// KEYS: marker, then (avail, gen, inflight) per line. ARGV: qty per line, then marker TTL.
static GATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = #ARGV - 1
if redis.call('EXISTS', KEYS[1]) == 1 then return {'dup'} end
local short = {}
for i = 1, n do
  local v = redis.call('GET', KEYS[3 * i - 1])
  if not v then return {'cold', tostring(i)} end
  if tonumber(v) < tonumber(ARGV[i]) then
    table.insert(short, tostring(i))
    table.insert(short, v)
  end
end
if #short > 0 then
  table.insert(short, 1, 'short')
  return short
end
for i = 1, n do
  redis.call('DECRBY', KEYS[3 * i - 1], ARGV[i])
  redis.call('INCR', KEYS[3 * i])
  redis.call('INCR', KEYS[3 * i + 1])
  redis.call('EXPIRE', KEYS[3 * i + 1], 60)
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[n + 1])
return {'ok'}
",
    )
});

fn marker(redis: &Redis, reservation: Uuid) -> String {
    redis.key(&["item", "resv", &reservation.to_string()])
}

fn gate_keys(redis: &Redis, r: &Reservation) -> Vec<String> {
    let mut keys = vec![marker(redis, r.id)];
    keys.extend(line_keys(redis, &r.lines));
    keys
}

/// One pass of the gate: `None` when a counter is cold (missing), so PostgreSQL must decide.
async fn attempt(
    db: &PgPool,
    redis: &Redis,
    writer: &Writer,
    r: &Reservation,
    marker_ttl_secs: u64,
) -> Result<Option<Outcome>, ApiError> {
    let keys = gate_keys(redis, r);
    let mut args: Vec<i64> = r.lines.iter().map(|l| i64::from(l.qty)).collect();
    args.push(i64::try_from(marker_ttl_secs).unwrap_or(86_400));
    let verdict = run(redis, &GATE, &keys, &args)
        .await
        .map_err(|e| unavailable(&e))?;
    match verdict.first().map(String::as_str) {
        Some("ok") => record(db, redis, writer, r).await.map(Some),
        Some("short") => Ok(Some(Outcome::Short(shortages(&verdict, &r.lines)))),
        Some("dup") => match store::answer(db, r.id).await? {
            Some(first) => Ok(Some(Outcome::Repeat(first))),
            None => Err(ApiError::unavailable("this reservation is being processed")),
        },
        Some("cold") => Ok(None),
        other => Err(ApiError::internal(format!(
            "unexpected gate verdict {other:?}"
        ))),
    }
}

/// The `reservation` strategy's fast path, before any PostgreSQL read: counters exist only for
/// items on sale (reconcile creates none for others, and a status change or delete removes
/// them), so a warm gate can decide alone; a repeated id is caught by its marker, or by the
/// answer's primary key when the write conflicts. `None`: cold, ask PostgreSQL first.
pub async fn reserve_fast(
    db: &PgPool,
    redis: &Redis,
    writer: &Writer,
    r: &Reservation,
    marker_ttl_secs: u64,
) -> Result<Option<Outcome>, ApiError> {
    attempt(db, redis, writer, r, marker_ttl_secs).await
}

/// The `reservation` strategy, once PostgreSQL has found every item on sale: rebuilds cold
/// counters and retries; counters that stay cold (work in flight on them) leave the decision to
/// the database guard.
pub async fn reserve(
    db: &PgPool,
    redis: &Redis,
    writer: &Writer,
    r: &Reservation,
    marker_ttl_secs: u64,
) -> Result<Outcome, ApiError> {
    for _ in 0..3 {
        if let Some(outcome) = attempt(db, redis, writer, r, marker_ttl_secs).await? {
            return Ok(outcome);
        }
        let items: Vec<Uuid> = r.lines.iter().map(|l| l.item_id).collect();
        reconcile(db, redis, &items).await?;
    }
    tracing::warn!("stock counters not ready; reserving through the database guard");
    store::reserve_guarded(&mut *db.acquire().await?, redis, r).await
}

async fn record(
    db: &PgPool,
    redis: &Redis,
    writer: &Writer,
    r: &Reservation,
) -> Result<Outcome, ApiError> {
    let record = Record {
        id: r.id,
        answer: super::reserved(r),
        lines: Some(r.lines.clone()),
    };
    match writer.record(record).await {
        Ok(Recorded::First) => {
            end(redis, &r.lines, false).await;
            Ok(Outcome::Reserved)
        }
        Ok(Recorded::Short(short)) => {
            // The gate promised what PostgreSQL does not have (its counters were rebuilt while
            // reservations were in flight, after Redis lost them): forget them, so the next
            // reservation rebuilds them from the truth.
            end(redis, &r.lines, false).await;
            for line in &r.lines {
                counters::forget(redis, line.item_id).await;
            }
            forget_marker(redis, r.id).await;
            tracing::warn!(reservation = %r.id, "the stock gate promised more than there is; PostgreSQL refused");
            metrics::counter!("stock_gate_overpromised_total").increment(1);
            Ok(Outcome::Short(short))
        }
        outcome => {
            // Not recorded: give the units back and forget the reservation id.
            end(redis, &r.lines, true).await;
            forget_marker(redis, r.id).await;
            match outcome {
                Ok(_) => Ok(store::answer(db, r.id)
                    .await?
                    .map_or(Outcome::Short(Vec::new()), Outcome::Repeat)),
                Err(e) => Err(e.into()),
            }
        }
    }
}

async fn forget_marker(redis: &Redis, reservation: Uuid) {
    let forgot: redis::RedisResult<i64> = redis::cmd("DEL")
        .arg(marker(redis, reservation))
        .query_async(&mut redis.conn())
        .await;
    if let Err(e) = forgot {
        tracing::warn!(error = %e, "reservation marker not removed; it expires");
    }
}

/// Why counters could not be rebuilt: one of the two stores failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

impl From<ReconcileError> for ApiError {
    fn from(e: ReconcileError) -> Self {
        match e {
            ReconcileError::Db(e) => e.into(),
            ReconcileError::Redis(e) => unavailable(&e),
        }
    }
}

/// Rebuilds the counters of `items` that are on sale from PostgreSQL, skipping any counter that
/// changed or has work in flight since PostgreSQL was read. Returns how many were set.
pub async fn reconcile(
    db: &PgPool,
    redis: &Redis,
    items: &[Uuid],
) -> Result<usize, ReconcileError> {
    let mut set = 0;
    for chunk in items.chunks(200) {
        let gens = counters::generations(redis, chunk).await?;
        let available = store::available(db, chunk, true).await?;
        for (item, generation_before) in chunk.iter().zip(gens) {
            let Some(&units) = available.get(item) else {
                continue;
            };
            if counters::set_if_unchanged(redis, *item, generation_before, units).await {
                set += 1;
            }
        }
    }
    Ok(set)
}

/// Every live item's counter.
pub async fn reconcile_all(db: &PgPool, redis: &Redis) -> Result<usize, ReconcileError> {
    let items: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM items WHERE deleted_at IS NULL ORDER BY id")
            .fetch_all(db)
            .await?;
    reconcile(db, redis, &items).await
}
