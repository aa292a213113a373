//! Batched answers: concurrent reservation answers are written to PostgreSQL together, one
//! statement and one commit per batch, and every caller waits for the commit of its own batch
//! before it answers — so batching costs no durability (an acknowledged reservation is
//! committed), only the wait for the batch in front.
//!
//! PostgreSQL has the last word on a batch's reservations: under the lock of their items' rows
//! it takes each from the available stock whole or not at all ([`take`]), so no state of the
//! Redis gate — counters rebuilt after Redis lost its keys while reservations were in flight,
//! say — can sell more than there is. One row lock per item per batch, not per reservation.
//!
//! Holding that lock anyway, the batch applies what it takes to `items.stock` in the same
//! statement (one row update per item per batch, its ledger rows written as applied, any
//! unapplied rows of the item folded in with it): available stock stays one row plus the few
//! rows of releases and corrections, instead of a sum over every sale since the last fold,
//! which grew inside the lock under a hot item (ADR 0028).

use std::collections::{HashMap, HashSet};

use kommerce_kit::http::ApiError;
use kommerce_kit::workers::{StopSignal, Workers};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::store::AVAILABLE;
use super::{Answer, Refusal};
use crate::domain::stock::{Line, take};

/// The most rows one statement writes.
const MAX_BATCH: usize = 512;
/// Writers, each with a queue of its own. A record goes to the writer of its first item, so
/// all reservations of one item are written by one writer: a hot item's reservations make one
/// large batch at a time instead of several small ones queueing for its row lock (they cannot
/// be written side by side anyway), and batches of different items are written side by side.
const WRITERS: usize = 4;

/// One answer to record: a reservation (with its lines, written as applied ledger rows) or a
/// refusal.
#[derive(Debug)]
pub struct Record {
    pub id: Uuid,
    pub answer: Answer,
    /// `Some` for a reservation, `None` for a refusal.
    pub lines: Option<Vec<Line>>,
}

/// What became of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// It is its id's first answer, committed.
    First,
    /// The id already had an answer; nothing was written.
    Answered,
    /// A reservation the stock in PostgreSQL does not cover: nothing was written.
    Short(Vec<Refusal>),
}

/// Why a batch was not written: every record of it gets the same.
#[derive(Debug, Clone)]
pub enum Failed {
    Db(std::sync::Arc<sqlx::Error>),
    /// The writer stopped (the service is shutting down).
    Stopped,
}

impl From<Failed> for ApiError {
    fn from(f: Failed) -> Self {
        match f {
            Failed::Db(e) => Self::from_shared_db(&e),
            Failed::Stopped => Self::database_unreachable(),
        }
    }
}

type Reply = oneshot::Sender<Result<Recorded, Failed>>;

/// A handle to the writer tasks. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Writer {
    queues: Vec<mpsc::Sender<(Record, Reply)>>,
}

/// The writer of a record: its first item's (a refusal has none: its id's).
fn writer_of(r: &Record) -> usize {
    let key = r
        .lines
        .as_ref()
        .and_then(|lines| lines.first())
        .map_or(r.id, |l| l.item_id);
    usize::from(key.as_bytes()[15]) % WRITERS
}

impl Writer {
    /// Starts the writers as the service's workers: they stop with it, after the HTTP server
    /// has answered every request in flight (so no answer is left queued).
    pub fn start(workers: &mut Workers, db: &PgPool) -> Self {
        let mut queues = Vec::with_capacity(WRITERS);
        for i in 0..WRITERS {
            let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
            let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
            let db = db.clone();
            workers.spawn_loop(format!("stock-writer#{i}"), move |stop| {
                run(db.clone(), rx.clone(), stop)
            });
            queues.push(tx);
        }
        Self { queues }
    }

    /// Records `r` as its id's first answer, if it is the first and (for a reservation) the
    /// stock covers it.
    pub async fn record(&self, r: Record) -> Result<Recorded, Failed> {
        let (reply, wait) = oneshot::channel();
        self.queues[writer_of(&r)]
            .send((r, reply))
            .await
            .map_err(|_| Failed::Stopped)?;
        wait.await.map_err(|_| Failed::Stopped)?
    }
}

type Queue = std::sync::Arc<tokio::sync::Mutex<mpsc::Receiver<(Record, Reply)>>>;

async fn run(db: PgPool, rx: Queue, stop: StopSignal) {
    tokio::pin!(stop);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // Take whatever is queued (at least one); what comes while it is written is the next
        // batch.
        let received = tokio::select! {
            () = &mut stop => return,
            received = async { rx.lock().await.recv_many(&mut batch, MAX_BATCH).await } => received,
        };
        if received == 0 {
            // Every handle is gone: the service is stopping. Ending now, before the stop
            // signal, would read as a worker dying (an error in the log on every shutdown).
            stop.await;
            return;
        }
        let started = std::time::Instant::now();
        // Ids in a fixed order, so two batches holding a repeated id cannot deadlock.
        let outcome = write(&db, &batch).await;
        #[allow(clippy::cast_precision_loss)]
        metrics::histogram!("stock_answer_batch_size").record(batch.len() as f64);
        metrics::histogram!("stock_answer_batch_seconds").record(started.elapsed().as_secs_f64());
        match outcome {
            Ok(outcomes) => {
                for ((_, reply), recorded) in batch.drain(..).zip(outcomes) {
                    let _ = reply.send(Ok(recorded));
                }
            }
            Err(e) => {
                let failed = Failed::Db(std::sync::Arc::new(e));
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(failed.clone()));
                }
            }
        }
    }
}

/// What PostgreSQL decides for each record before anything is written: `None` to write it,
/// or its outcome (already answered; a reservation the stock does not cover).
/// Also returns the items locked (sorted).
async fn decide(
    tx: &mut sqlx::PgConnection,
    batch: &[(Record, Reply)],
) -> Result<(Vec<Option<Recorded>>, Vec<uuid::Uuid>), sqlx::Error> {
    let mut outcomes: Vec<Option<Recorded>> = vec![None; batch.len()];
    let ids: Vec<uuid::Uuid> = batch.iter().map(|(r, _)| r.id).collect();
    let mut items: Vec<uuid::Uuid> = batch
        .iter()
        .flat_map(|(r, _)| r.lines.iter().flatten().map(|l| l.item_id))
        .collect();
    items.sort_unstable();
    items.dedup();
    if !items.is_empty() {
        // The lock first, in item-id order (as every stock change takes it); what is available,
        // and which ids are answered, is read by the next statement, whose snapshot sees every
        // batch committed before ours.
        sqlx::query("SELECT 1 FROM items WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
            .bind(&items)
            .execute(&mut *tx)
            .await?;
    }
    let rows: Vec<(bool, uuid::Uuid, i64)> = sqlx::query_as(&format!(
        "SELECT true, items.id, {AVAILABLE} FROM items WHERE items.id = ANY($1) \
         UNION ALL SELECT false, id, 0::bigint FROM reservations WHERE id = ANY($2)"
    ))
    .bind(&items)
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut available = HashMap::new();
    let mut answered = HashSet::new();
    for (is_item, id, units) in rows {
        if is_item {
            available.insert(id, units);
        } else {
            answered.insert(id);
        }
    }
    // One answer per id: a later record of an id this batch or an earlier one answered gets
    // that answer, whatever it is (a reservation and a refusal of one id, say).
    let mut seen = HashSet::new();
    for ((r, _), outcome) in batch.iter().zip(outcomes.iter_mut()) {
        if answered.contains(&r.id) || !seen.insert(r.id) {
            *outcome = Some(Recorded::Answered);
        } else if let Some(lines) = &r.lines
            && let Err(short) = take(&mut available, lines)
        {
            *outcome = Some(Recorded::Short(short));
        }
    }
    Ok((outcomes, items))
}

/// Writes the batch in one transaction; returns what became of each record, in batch order.
async fn write(db: &PgPool, batch: &[(Record, Reply)]) -> Result<Vec<Recorded>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let (outcomes, locked) = decide(&mut tx, batch).await?;
    let mut ids = Vec::with_capacity(batch.len());
    let mut statuses = Vec::with_capacity(batch.len());
    let mut codes = Vec::with_capacity(batch.len());
    let mut answers = Vec::with_capacity(batch.len());
    let (mut line_ids, mut line_items, mut line_qtys) = (Vec::new(), Vec::new(), Vec::new());
    for ((r, _), outcome) in batch.iter().zip(&outcomes) {
        if outcome.is_some() {
            continue;
        }
        ids.push(r.id);
        statuses.push(if r.lines.is_some() {
            "reserved"
        } else {
            "rejected"
        });
        codes.push(i16::try_from(r.answer.status.as_u16()).unwrap_or(500));
        answers.push(r.answer.body.clone());
        for l in r.lines.iter().flatten() {
            line_ids.push(r.id);
            line_items.push(l.item_id);
            line_qtys.push(l.qty.get());
        }
    }
    let mut claimed: Vec<uuid::Uuid> = sqlx::query_scalar(
        "WITH input AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::smallint[], $4::jsonb[]) \
                        AS t(id, status, http_status, answer)), \
              r AS (INSERT INTO reservations (id, status, http_status, answer) \
                    SELECT id, status, http_status, answer FROM input ORDER BY id \
                    ON CONFLICT (id) DO NOTHING RETURNING id, status), \
              lines AS (SELECT * FROM unnest($5::uuid[], $6::uuid[], $7::int[]) AS u(rid, item, qty)), \
              l AS (INSERT INTO reservation_lines (reservation_id, item_id, qty) \
                    SELECT lines.rid, lines.item, lines.qty FROM lines JOIN r ON r.id = lines.rid AND r.status = 'reserved'), \
              g AS (INSERT INTO stock_ledger (item_id, delta, reason, reservation_id, applied) \
                    SELECT lines.item, -lines.qty, 'reservation', lines.rid, true FROM lines JOIN r ON r.id = lines.rid AND r.status = 'reserved'), \
              f AS (UPDATE stock_ledger SET applied = true WHERE item_id = ANY($8) AND NOT applied \
                    RETURNING item_id, delta, reason), \
              d AS (SELECT item_id, delta, reason FROM f \
                    UNION ALL SELECT lines.item, -lines.qty, 'reservation' FROM lines JOIN r ON r.id = lines.rid AND r.status = 'reserved'), \
              s AS (SELECT item_id, sum(delta) AS total, \
                           COALESCE(sum(delta) FILTER (WHERE reason IN ('reservation', 'release')), 0) AS sold \
                    FROM d GROUP BY item_id), \
              u AS (UPDATE items SET stock = items.stock + s.total, sold_count = items.sold_count - s.sold, updated_at = now() \
                    FROM s WHERE items.id = s.item_id) \
         SELECT id FROM r",
    )
    .bind(&ids)
    .bind(&statuses)
    .bind(&codes)
    .bind(&answers)
    .bind(&line_ids)
    .bind(&line_items)
    .bind(&line_qtys)
    .bind(&locked)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    claimed.sort_unstable();
    Ok(batch
        .iter()
        .zip(outcomes)
        .map(|((r, _), outcome)| {
            outcome.unwrap_or_else(|| {
                if claimed.binary_search(&r.id).is_ok() {
                    Recorded::First
                } else {
                    Recorded::Answered
                }
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::{Answer, Record, WRITERS, writer_of};
    use crate::domain::stock::Line;
    use axum::http::StatusCode;
    use kommerce_contracts::money::Quantity;
    use uuid::Uuid;

    fn record(lines: Option<Vec<Uuid>>) -> Record {
        Record {
            id: Uuid::now_v7(),
            answer: Answer {
                status: StatusCode::CREATED,
                body: serde_json::Value::Null,
            },
            lines: lines.map(|items| {
                items
                    .into_iter()
                    .map(|item_id| Line {
                        item_id,
                        qty: Quantity::new(1),
                    })
                    .collect()
            }),
        }
    }

    #[test]
    fn one_item_is_written_by_one_writer_and_items_spread_over_all() {
        let hot = Uuid::now_v7();
        let first = writer_of(&record(Some(vec![hot])));
        for _ in 0..50 {
            assert_eq!(writer_of(&record(Some(vec![hot, Uuid::now_v7()]))), first);
        }
        let used: std::collections::HashSet<usize> = (0..400)
            .map(|_| writer_of(&record(Some(vec![Uuid::now_v7()]))))
            .chain((0..400).map(|_| writer_of(&record(None))))
            .collect();
        assert_eq!(used.len(), WRITERS, "every writer takes a share");
    }
}
