//! The PostgreSQL side of stock: answers, guarded updates, the ledger, releases and the fold.

use std::collections::HashMap;

use axum::http::StatusCode;
use kommerce_kit::cache::Redis;
use kommerce_kit::http::ApiError;
use serde::Serialize;
use serde_json::json;
use sqlx::{Acquire, FromRow, PgConnection, PgExecutor, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Answer, Outcome, Refusal, RefusalReason, ReservationRefusal, counters};
use crate::domain::stock::{Adjust, Line, Reservation};
use kommerce_contracts::money::Quantity;

pub async fn answer(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Answer>, ApiError> {
    let row: Option<(i16, serde_json::Value)> =
        sqlx::query_as("SELECT http_status, answer FROM reservations WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(row.map(|(status, body)| Answer {
        status: StatusCode::from_u16(u16::try_from(status).unwrap_or(500))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    }))
}

/// What a reservation request finds before any strategy runs.
#[derive(Debug)]
pub enum Precheck {
    /// The id was answered before: that answer, again.
    Answered(Answer),
    /// The lines whose item is unknown, deleted or not on sale (empty: all can be tried).
    Unavailable(Vec<Refusal>),
}

/// The id's first answer if it has one, else the lines that cannot be had at all — in one
/// round trip.
pub async fn precheck(db: &PgPool, id: Uuid, lines: &[Line]) -> Result<Precheck, ApiError> {
    #[derive(FromRow)]
    struct Row {
        id: Uuid,
        status: Option<String>,
        deleted: Option<bool>,
        first_status: Option<i16>,
        first_answer: Option<serde_json::Value>,
    }
    let ids: Vec<Uuid> = lines.iter().map(|l| l.item_id).collect();
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT u.id, i.status, i.deleted_at IS NOT NULL AS deleted, \
         r.http_status AS first_status, r.answer AS first_answer FROM unnest($2::uuid[]) AS u(id) LEFT JOIN items i ON i.id = u.id \
         LEFT JOIN reservations r ON r.id = $1",
    )
    .bind(id)
    .bind(&ids)
    .fetch_all(db)
    .await?;
    if let Some(Row {
        first_status: Some(status),
        first_answer: Some(body),
        ..
    }) = rows.first()
    {
        return Ok(Precheck::Answered(to_answer(*status, body.clone())));
    }
    let found: HashMap<Uuid, (Option<String>, Option<bool>)> = rows
        .into_iter()
        .map(|r| (r.id, (r.status, r.deleted)))
        .collect();
    Ok(Precheck::Unavailable(
        lines
            .iter()
            .filter_map(|l| {
                let reason = match found.get(&l.item_id) {
                    None | Some((None, _) | (_, Some(true))) => RefusalReason::UnknownItem,
                    Some((Some(status), _)) if status != "on_sale" => RefusalReason::NotOnSale,
                    Some(_) => return None,
                };
                Some(Refusal {
                    item_id: l.item_id,
                    reason,
                    requested: l.qty,
                    available: None,
                })
            })
            .collect(),
    ))
}

fn to_answer(status: i16, body: serde_json::Value) -> Answer {
    Answer {
        status: StatusCode::from_u16(u16::try_from(status).unwrap_or(500))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    }
}

/// Locks an item's row and folds its unapplied ledger rows into `items.stock` (the lock comes
/// first, so the fold and the folder never deadlock with a reservation). The lock is
/// `FOR NO KEY UPDATE`: it does not conflict with the key-share locks that foreign keys to the
/// item (ledger and reservation lines) take, which `FOR UPDATE` would turn into deadlocks.
/// `None` if the item does not exist.
pub async fn lock_and_fold(tx: &mut PgConnection, item: Uuid) -> Result<Option<()>, sqlx::Error> {
    let pending: Option<bool> = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM stock_ledger WHERE item_id = $1 AND NOT applied) \
         FROM items WHERE id = $1 FOR NO KEY UPDATE",
    )
    .bind(item)
    .fetch_optional(&mut *tx)
    .await?;
    match pending {
        None => Ok(None),
        Some(false) => Ok(Some(())),
        Some(true) => {
            sqlx::query(
                "WITH f AS (UPDATE stock_ledger SET applied = true WHERE item_id = $1 AND NOT applied \
                 RETURNING delta, reason) \
                 UPDATE items SET stock = stock + s.total, sold_count = sold_count - s.sold, updated_at = now() \
                 FROM (SELECT COALESCE(sum(delta), 0) AS total, \
                       COALESCE(sum(delta) FILTER (WHERE reason IN ('reservation', 'release')), 0) AS sold FROM f) s \
                 WHERE id = $1",
            )
            .bind(item)
            .execute(&mut *tx)
            .await?;
            Ok(Some(()))
        }
    }
}

/// Folds every item with unapplied ledger rows, one short transaction per item. Returns how
/// many items were folded.
pub async fn fold_pending(db: &PgPool) -> Result<usize, sqlx::Error> {
    let items: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT item_id FROM stock_ledger WHERE NOT applied ORDER BY item_id LIMIT 500",
    )
    .fetch_all(db)
    .await?;
    for item in &items {
        let mut tx = db.begin().await?;
        lock_and_fold(&mut tx, *item).await?;
        tx.commit().await?;
    }
    Ok(items.len())
}

/// Available stock of the row `items`: `items.stock` plus ledger rows not yet folded in. The
/// one definition every query uses.
pub const AVAILABLE: &str = "(items.stock + COALESCE((SELECT sum(l.delta) FROM stock_ledger l \
     WHERE l.item_id = items.id AND NOT l.applied), 0))::bigint";

/// Available stock of each of `items`; with `for_sale_only`, of the live items on sale only
/// (the ones the gate may hold counters for).
pub async fn available(
    db: impl PgExecutor<'_>,
    items: &[Uuid],
    for_sale_only: bool,
) -> Result<HashMap<Uuid, i64>, sqlx::Error> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(&format!(
        "SELECT items.id, {AVAILABLE} FROM items WHERE items.id = ANY($1) \
         AND (NOT $2 OR (items.deleted_at IS NULL AND items.status = 'on_sale'))"
    ))
    .bind(items)
    .bind(for_sale_only)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().collect())
}

pub(crate) async fn shortages(
    db: impl PgExecutor<'_>,
    lines: &[Line],
) -> Result<Vec<Refusal>, ApiError> {
    let ids: Vec<Uuid> = lines.iter().map(|l| l.item_id).collect();
    let avail = available(db, &ids, false).await?;
    Ok(crate::domain::stock::short_lines(&avail, lines))
}

async fn insert_ledger(
    tx: &mut PgConnection,
    lines: &[Line],
    sign: i32,
    reason: &str,
    reservation: Option<Uuid>,
    applied: bool,
) -> Result<(), sqlx::Error> {
    let items: Vec<Uuid> = lines.iter().map(|l| l.item_id).collect();
    let deltas: Vec<i32> = lines.iter().map(|l| sign * l.qty.get()).collect();
    sqlx::query(
        "INSERT INTO stock_ledger (item_id, delta, reason, reservation_id, applied) \
         SELECT * , $3, $4, $5 FROM unnest($1::uuid[], $2::int[])",
    )
    .bind(&items)
    .bind(&deltas)
    .bind(reason)
    .bind(reservation)
    .bind(applied)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Claims the reservation id inside `tx`; `false` if another request holds it.
pub async fn claim(
    tx: &mut PgConnection,
    r: &Reservation,
    ok: &Answer,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "INSERT INTO reservations (id, status, http_status, answer) VALUES ($1, 'reserved', 201, $2) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(r.id)
    .bind(&ok.body)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1)
}

/// The reservation's lines and their ledger rows, written after the stock was taken.
async fn record_lines(
    tx: &mut PgConnection,
    r: &Reservation,
    applied: bool,
) -> Result<(), sqlx::Error> {
    let items: Vec<Uuid> = r.lines.iter().map(|l| l.item_id).collect();
    let qtys: Vec<i32> = r.lines.iter().map(|l| l.qty.get()).collect();
    sqlx::query("INSERT INTO reservation_lines (reservation_id, item_id, qty) SELECT $1, * FROM unnest($2::uuid[], $3::int[])")
        .bind(r.id)
        .bind(&items)
        .bind(&qtys)
        .execute(&mut *tx)
        .await?;
    insert_ledger(tx, &r.lines, -1, "reservation", Some(r.id), applied).await
}

/// `conditionalUpdate` (and the write of `spinLock`): every line's guarded update in item-id
/// order in one transaction; Redis counters are taken from before the commit.
///
/// Runs on a connection the caller already holds, so the spin lock's critical section never
/// queues for the pool while other requests wait for the lock.
pub async fn reserve_guarded(
    conn: &mut PgConnection,
    redis: &Redis,
    r: &Reservation,
) -> Result<Outcome, ApiError> {
    let ok = super::reserved(r);
    let mut tx = conn.begin().await?;
    if !claim(&mut tx, r, &ok).await? {
        tx.rollback().await?;
        return Ok(answer(&mut *conn, r.id)
            .await?
            .map_or(Outcome::Short(Vec::new()), Outcome::Repeat));
    }
    for line in &r.lines {
        lock_and_fold(&mut tx, line.item_id).await?;
        let updated = sqlx::query(
            "UPDATE items SET stock = stock - $2, sold_count = sold_count + $2, updated_at = now() \
             WHERE id = $1 AND stock >= $2",
        )
        .bind(line.item_id)
        .bind(line.qty.get())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            tx.rollback().await?;
            let mut short = shortages(&mut *conn, &r.lines).await?;
            if short.is_empty() {
                // Stock came back between the attempt and the report: name the line that failed.
                short.push(Refusal {
                    item_id: line.item_id,
                    reason: RefusalReason::InsufficientStock,
                    requested: line.qty,
                    available: None,
                });
            }
            return Ok(Outcome::Short(short));
        }
    }
    record_lines(&mut tx, r, true).await?;
    let promised = counters::begin(redis, &r.lines, true).await?;
    if !promised.is_empty() {
        tx.rollback().await?;
        return Ok(Outcome::Short(promised));
    }
    let committed = tx.commit().await;
    counters::end(redis, &r.lines, committed.is_err()).await;
    committed?;
    Ok(Outcome::Reserved)
}

/// Releases a reservation. Returns its lines if this call released it.
pub async fn release(
    db: &PgPool,
    redis: &Redis,
    id: Uuid,
    via_ledger: bool,
) -> Result<Option<Vec<Line>>, ApiError> {
    let mut tx = db.begin().await?;
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM reservations WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    match status.as_deref() {
        None => {
            let tombstone = json!(ReservationRefusal::cancelled(id));
            sqlx::query("INSERT INTO reservations (id, status, http_status, answer, released_at) VALUES ($1, 'cancelled', 409, $2, now()) ON CONFLICT (id) DO NOTHING")
                .bind(id)
                .bind(tombstone)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(None)
        }
        Some("reserved") => {
            let lines: Vec<Line> = sqlx::query_as::<_, (Uuid, i32)>(
                "SELECT item_id, qty FROM reservation_lines WHERE reservation_id = $1 ORDER BY item_id",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(item_id, qty)| Line {
                item_id,
                qty: Quantity::new(qty),
            })
            .collect();
            if !via_ledger {
                for l in &lines {
                    lock_and_fold(&mut tx, l.item_id).await?;
                    sqlx::query("UPDATE items SET stock = stock + $2, sold_count = sold_count - $2, updated_at = now() WHERE id = $1")
                        .bind(l.item_id)
                        .bind(l.qty.get())
                        .execute(&mut *tx)
                        .await?;
                }
            }
            insert_ledger(&mut tx, &lines, 1, "release", Some(id), !via_ledger).await?;
            sqlx::query(
                "UPDATE reservations SET status = 'released', released_at = now() WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            counters::begin(redis, &lines, false).await?;
            let committed = tx.commit().await;
            counters::end(redis, &lines, committed.is_ok()).await;
            committed?;
            Ok(Some(lines))
        }
        Some(_) => Ok(None),
    }
}

/// An admin adjustment. Returns the stock after it.
pub async fn adjust(db: &PgPool, redis: &Redis, item: Uuid, a: &Adjust) -> Result<i64, ApiError> {
    let mut tx = db.begin().await?;
    lock_and_fold(&mut tx, item)
        .await?
        .ok_or(ApiError::NotFound("item"))?;
    let stock: Option<i32> = sqlx::query_scalar(
        "UPDATE items SET stock = stock + $2, updated_at = now() WHERE id = $1 AND stock + $2 >= 0 RETURNING stock",
    )
    .bind(item)
    .bind(a.delta)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(stock) = stock else {
        return Err(ApiError::conflict(
            "insufficient-stock",
            "stock cannot go below zero",
        ));
    };
    let line = Line {
        item_id: item,
        qty: Quantity::new(a.delta.abs()),
    };
    let reason = if a.delta > 0 {
        "admin_increase"
    } else {
        "admin_decrease"
    };
    sqlx::query("INSERT INTO stock_ledger (item_id, delta, reason, note, applied) VALUES ($1, $2, $3, $4, true)")
        .bind(item)
        .bind(a.delta)
        .bind(reason)
        .bind(&a.note)
        .execute(&mut *tx)
        .await?;
    let taking = a.delta < 0;
    if !counters::begin(redis, &[line], taking).await?.is_empty() {
        return Err(ApiError::conflict(
            "insufficient-stock",
            "those units are promised to reservations in flight",
        ));
    }
    let committed = tx.commit().await;
    // Give back a decrement that did not commit, or an increment that did.
    counters::end(redis, &[line], committed.is_ok() != taking).await;
    committed?;
    Ok(i64::from(stock))
}

/// One stock ledger row: every change of an item's stock is one.
#[derive(Debug, Serialize, FromRow, utoipa::ToSchema)]
#[schema(as = ItemLedgerEntry)]
pub struct LedgerRow {
    /// Increasing: newer rows have larger ids.
    pub id: i64,
    /// Units added (positive) or taken (negative); never 0.
    pub delta: i32,
    /// `initial` (the stock an item was created with), `reservation`, `release`,
    /// `admin_increase` or `admin_decrease`.
    #[schema(pattern = "^(initial|reservation|release|admin_increase|admin_decrease)$")]
    pub reason: String,
    /// The reservation of a `reservation` or `release` row.
    #[schema(required = true)]
    pub reservation_id: Option<Uuid>,
    /// An admin correction's reason.
    #[schema(required = true)]
    pub note: Option<String>,
    /// Whether the row is folded into the item's stock row yet (the `reservation` strategy
    /// writes rows that are folded in batches); available stock counts both.
    pub applied: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

pub async fn ledger(db: &PgPool, item: Uuid, limit: i64) -> Result<Vec<LedgerRow>, ApiError> {
    Ok(sqlx::query_as::<_, LedgerRow>(
        "SELECT id, delta, reason, reservation_id, note, applied, created_at FROM stock_ledger \
         WHERE item_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(item)
    .bind(limit)
    .fetch_all(db)
    .await?)
}
