//! The Redis side of stock: the `reservation` strategy's atomic gate, and the counters every
//! other path keeps at or below the truth.
//!
//! Per item: `item:avail:<id>` (units the gate may hand out), `item:gen:<id>` (bumped at both
//! ends of every change, so reconcile can tell that something moved after it read PostgreSQL)
//! and `item:inflight:<id>` (changes whose PostgreSQL commit is not finished; expires, so a
//! crashed holder cannot block reconcile for ever). Per reservation: `item:resv:<id>`.
//!
//! Every PostgreSQL stock change is bracketed: [`begin`] before its commit (decrements take
//! their units here), [`end`] after it (increments give theirs here). So a counter is never
//! above the truth, and reconcile — which writes only when the generation it read before
//! PostgreSQL is unchanged and nothing is in flight — cannot write a stale value.

use std::sync::LazyLock;

use kommerce_kit::cache::Redis;
use kommerce_kit::http::ApiError;
use redis::Script;
use sqlx::PgPool;
use uuid::Uuid;

use super::writer::{Record, Writer};
use super::{Outcome, Refusal, RefusalReason, store};
use crate::domain::stock::{Line, Reservation};

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

/// Opens a bracket around a PostgreSQL stock change. KEYS: (avail, gen, inflight) per line.
/// ARGV: units to take from the counter now, per line (0 for an increment). A counter that
/// cannot cover its take refuses the whole change (`short`, index, counter) and changes nothing.
static BEGIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local short = {}
for i = 1, #ARGV do
  if tonumber(ARGV[i]) > 0 then
    local v = redis.call('GET', KEYS[3 * i - 2])
    if v and tonumber(v) < tonumber(ARGV[i]) then
      table.insert(short, tostring(i))
      table.insert(short, v)
    end
  end
end
if #short > 0 then
  table.insert(short, 1, 'short')
  return short
end
for i = 1, #ARGV do
  if tonumber(ARGV[i]) > 0 and redis.call('EXISTS', KEYS[3 * i - 2]) == 1 then
    redis.call('DECRBY', KEYS[3 * i - 2], ARGV[i])
  end
  redis.call('INCR', KEYS[3 * i - 1])
  redis.call('INCR', KEYS[3 * i])
  redis.call('EXPIRE', KEYS[3 * i], 60)
end
return {'1'}
",
    )
});

/// Closes a bracket. KEYS: (avail, gen, inflight) per line. ARGV: units to give back to the
/// counter, per line (an increment that committed, or a take whose change did not).
static END: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for i = 1, #ARGV do
  if tonumber(ARGV[i]) > 0 and redis.call('EXISTS', KEYS[3 * i - 2]) == 1 then
    redis.call('INCRBY', KEYS[3 * i - 2], ARGV[i])
  end
  redis.call('INCR', KEYS[3 * i - 1])
  if tonumber(redis.call('DECR', KEYS[3 * i])) <= 0 then redis.call('DEL', KEYS[3 * i]) end
end
return {'1'}
",
    )
});

/// KEYS: avail, gen, inflight. ARGV: the gen read before PostgreSQL, the available stock.
static RECONCILE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local g = tonumber(redis.call('GET', KEYS[2]) or '0')
local inflight = tonumber(redis.call('GET', KEYS[3]) or '0')
if g == tonumber(ARGV[1]) and inflight <= 0 then
  redis.call('SET', KEYS[1], ARGV[2])
  return {'1'}
end
return {'0'}
",
    )
});

fn avail(redis: &Redis, item: Uuid) -> String {
    redis.key(&["item", "avail", &item.to_string()])
}
fn generation(redis: &Redis, item: Uuid) -> String {
    redis.key(&["item", "gen", &item.to_string()])
}
fn inflight(redis: &Redis, item: Uuid) -> String {
    redis.key(&["item", "inflight", &item.to_string()])
}
fn marker(redis: &Redis, reservation: Uuid) -> String {
    redis.key(&["item", "resv", &reservation.to_string()])
}

fn gate_keys(redis: &Redis, r: &Reservation) -> Vec<String> {
    let mut keys = vec![marker(redis, r.id)];
    keys.extend(line_keys(redis, &r.lines));
    keys
}

fn unavailable(e: &redis::RedisError) -> ApiError {
    tracing::error!(error = %e, "stock counters unreachable");
    ApiError::unavailable("stock is temporarily unavailable; nothing was changed")
}

async fn run(
    redis: &Redis,
    script: &Script,
    keys: &[String],
    args: &[i64],
) -> redis::RedisResult<Vec<String>> {
    let mut inv = script.prepare_invoke();
    for k in keys {
        inv.key(k);
    }
    for a in args {
        inv.arg(*a);
    }
    inv.invoke_async(&mut redis.conn()).await
}

fn line_keys(redis: &Redis, lines: &[Line]) -> Vec<String> {
    lines
        .iter()
        .flat_map(|l| {
            [
                avail(redis, l.item_id),
                generation(redis, l.item_id),
                inflight(redis, l.item_id),
            ]
        })
        .collect()
}

fn units(lines: &[Line], yes: bool) -> Vec<i64> {
    lines
        .iter()
        .map(|l| if yes { i64::from(l.qty) } else { 0 })
        .collect()
}

/// Opens the bracket every PostgreSQL stock change sits in, *before* its commit: marks the
/// items in flight (reconcile leaves them alone) and, for a decrement (`taking`), takes the
/// units from the counters now. A counter that cannot cover its take means the gate has
/// already promised those units (a reservation whose PostgreSQL write is still in flight, which
/// the database guard cannot see yet): the lines it names are returned as short and nothing is
/// taken. An error means the caller must not commit: a decrement the counters missed would
/// leave them above the truth.
pub async fn begin(redis: &Redis, lines: &[Line], taking: bool) -> Result<Vec<Refusal>, ApiError> {
    let verdict = run(
        redis,
        &BEGIN,
        &line_keys(redis, lines),
        &units(lines, taking),
    )
    .await
    .map_err(|e| unavailable(&e))?;
    Ok(shortages(&verdict, lines))
}

/// `['short', i, counter, ...]` → the refused lines; anything else → none.
fn shortages(verdict: &[String], lines: &[Line]) -> Vec<Refusal> {
    if verdict.first().map(String::as_str) != Some("short") {
        return Vec::new();
    }
    verdict[1..]
        .chunks(2)
        .filter_map(|pair| {
            let i: usize = pair.first()?.parse().ok()?;
            let line = lines.get(i.checked_sub(1)?)?;
            let available = pair.get(1)?.parse().ok();
            Some(Refusal {
                item_id: line.item_id,
                reason: RefusalReason::InsufficientStock,
                requested: line.qty,
                available,
            })
        })
        .collect()
}

/// Closes the bracket *after* the commit (or the failure): gives units to the counters when
/// `give_back` (an increment that committed, or a decrement that did not), bumps the generation
/// so a reconcile that read PostgreSQL in between cannot overwrite, clears the in-flight mark.
/// A failure leaves counters low (underselling) until the in-flight mark expires and reconcile
/// heals them — never high.
pub async fn end(redis: &Redis, lines: &[Line], give_back: bool) {
    if let Err(e) = run(
        redis,
        &END,
        &line_keys(redis, lines),
        &units(lines, give_back),
    )
    .await
    {
        tracing::warn!(error = %e, "stock counters not updated; reconcile will heal them");
    }
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
        reconcile(db, redis, &items)
            .await
            .map_err(ApiError::internal)?;
    }
    tracing::warn!("stock counters not ready; reserving through the database guard");
    store::reserve_guarded(&mut *db.acquire().await?, redis, r).await
}

/// Removes an item's counter (its status changed, or it was deleted): the gate then sends its
/// reservations to PostgreSQL, which knows the status. The generation moves, so a reconcile
/// that read the old status cannot bring the counter back.
pub async fn forget(redis: &Redis, item: Uuid) {
    let forgot: redis::RedisResult<()> = redis::pipe()
        .atomic()
        .del(avail(redis, item))
        .incr(generation(redis, item), 1)
        .query_async(&mut redis.conn())
        .await;
    if let Err(e) = forgot {
        tracing::error!(error = %e, %item, "stock counter not removed after a status change");
    }
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
        Ok(true) => {
            end(redis, &r.lines, false).await;
            Ok(Outcome::Reserved)
        }
        outcome => {
            // Not recorded: give the units back and forget the reservation id.
            end(redis, &r.lines, true).await;
            let forgot: redis::RedisResult<i64> = redis::cmd("DEL")
                .arg(marker(redis, r.id))
                .query_async(&mut redis.conn())
                .await;
            if let Err(e) = forgot {
                tracing::warn!(error = %e, "reservation marker not removed; it expires");
            }
            match outcome {
                Ok(_) => Ok(store::answer(db, r.id)
                    .await?
                    .map_or(Outcome::Short(Vec::new()), Outcome::Repeat)),
                Err(e) => Err(ApiError::internal(e)),
            }
        }
    }
}

/// Rebuilds the counters of `items` that are on sale from PostgreSQL, skipping any counter that
/// changed or has work in flight since PostgreSQL was read. Returns how many were set.
pub async fn reconcile(
    db: &PgPool,
    redis: &Redis,
    items: &[Uuid],
) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let mut conn = redis.conn();
    let mut set = 0;
    for chunk in items.chunks(200) {
        let gen_keys: Vec<String> = chunk.iter().map(|i| generation(redis, *i)).collect();
        let gens: Vec<Option<i64>> = redis::cmd("MGET")
            .arg(&gen_keys)
            .query_async(&mut conn)
            .await?;
        let available = store::available(db, chunk, true).await?;
        for (item, generation_before) in chunk.iter().zip(gens) {
            let Some(units) = available.get(item) else {
                continue;
            };
            let keys = [
                avail(redis, *item),
                generation(redis, *item),
                inflight(redis, *item),
            ];
            let applied = run(
                redis,
                &RECONCILE,
                &keys,
                &[generation_before.unwrap_or(0), *units],
            )
            .await;
            if matches!(applied.as_deref(), Ok([s]) if s == "1") {
                set += 1;
            }
        }
    }
    Ok(set)
}

/// Every live item's counter.
pub async fn reconcile_all(
    db: &PgPool,
    redis: &Redis,
) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let items: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM items WHERE deleted_at IS NULL ORDER BY id")
            .fetch_all(db)
            .await?;
    reconcile(db, redis, &items).await
}
