//! The Redis counters every stock path keeps at or below the truth, and the bracket around
//! each PostgreSQL stock change.
//!
//! Per item: `item:avail:<id>` (units the gate may hand out), `item:gen:<id>` (bumped at both
//! ends of every change, so reconcile can tell that something moved after it read PostgreSQL)
//! and `item:inflight:<id>` (changes whose PostgreSQL commit is not finished; expires, so a
//! crashed holder cannot block reconcile for ever).
//!
//! Every PostgreSQL stock change is bracketed: [`begin`] before its commit (decrements take
//! their units here), [`end`] after it (increments give theirs here). So a counter is never
//! above the truth, and reconcile — which writes only when the generation it read before
//! PostgreSQL is unchanged and nothing is in flight ([`set_if_unchanged`]) — cannot write a
//! stale value. This module knows Redis only: the strategies ([`super::gate`]) and the
//! PostgreSQL side ([`super::store`]) both use it, and it uses neither.

use std::sync::LazyLock;

use kommerce_kit::cache::Redis;
use kommerce_kit::http::ApiError;
use redis::Script;
use uuid::Uuid;

use super::{Refusal, RefusalReason};
use crate::domain::stock::Line;

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

pub(super) fn avail(redis: &Redis, item: Uuid) -> String {
    redis.key(&["item", "avail", &item.to_string()])
}
pub(super) fn generation(redis: &Redis, item: Uuid) -> String {
    redis.key(&["item", "gen", &item.to_string()])
}
pub(super) fn inflight(redis: &Redis, item: Uuid) -> String {
    redis.key(&["item", "inflight", &item.to_string()])
}
pub(super) fn unavailable(e: &redis::RedisError) -> ApiError {
    tracing::error!(error = %e, "stock counters unreachable");
    ApiError::unavailable("stock is temporarily unavailable; nothing was changed")
}

pub(super) async fn run(
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

pub(super) fn line_keys(redis: &Redis, lines: &[Line]) -> Vec<String> {
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
pub(super) fn shortages(verdict: &[String], lines: &[Line]) -> Vec<Refusal> {
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

/// The generations of `items` as they are now (read before PostgreSQL, for
/// [`set_if_unchanged`]).
pub async fn generations(redis: &Redis, items: &[Uuid]) -> redis::RedisResult<Vec<Option<i64>>> {
    let keys: Vec<String> = items.iter().map(|i| generation(redis, *i)).collect();
    redis::cmd("MGET")
        .arg(&keys)
        .query_async(&mut redis.conn())
        .await
}

/// Sets an item's counter to `units` (what PostgreSQL said) unless its generation moved since
/// `generation_before` was read or a change is in flight. Returns whether it was set.
pub async fn set_if_unchanged(
    redis: &Redis,
    item: Uuid,
    generation_before: Option<i64>,
    units: i64,
) -> bool {
    let keys = [
        avail(redis, item),
        generation(redis, item),
        inflight(redis, item),
    ];
    let applied = run(
        redis,
        &RECONCILE,
        &keys,
        &[generation_before.unwrap_or(0), units],
    )
    .await;
    matches!(applied.as_deref(), Ok([s]) if s == "1")
}
