//! Batched answers: concurrent reservation answers are written to PostgreSQL together, one
//! statement and one commit per batch, and every caller waits for the commit of its own batch
//! before it answers — so batching costs no durability (an acknowledged reservation is
//! committed), only the wait for the batch in front.

use kommerce_kit::workers::{StopSignal, Workers};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::Answer;
use crate::domain::stock::Line;

/// The most rows one statement writes.
const MAX_BATCH: usize = 512;
/// Batches in flight at once: while one waits for its commit's fsync, the next is written.
const WRITERS: usize = 4;

/// One answer to record: a reservation (with its lines, written as unapplied ledger rows) or a
/// refusal.
#[derive(Debug)]
pub struct Record {
    pub id: Uuid,
    pub answer: Answer,
    /// `Some` for a reservation, `None` for a refusal.
    pub lines: Option<Vec<Line>>,
}

type Reply = oneshot::Sender<Result<bool, String>>;

/// A handle to the writer task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<(Record, Reply)>,
}

impl Writer {
    /// Starts the writers as the service's workers: they stop with it, after the HTTP server
    /// has answered every request in flight (so no answer is left queued).
    pub fn start(workers: &mut Workers, db: &PgPool) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
        for i in 0..WRITERS {
            let (db, rx) = (db.clone(), rx.clone());
            workers.spawn_loop(format!("stock-writer#{i}"), move |stop| {
                run(db.clone(), rx.clone(), stop)
            });
        }
        Self { tx }
    }

    /// Records `r` as its id's first answer. `Ok(true)` if it is (committed), `Ok(false)` if the
    /// id already had an answer.
    pub async fn record(&self, r: Record) -> Result<bool, String> {
        let (reply, wait) = oneshot::channel();
        self.tx
            .send((r, reply))
            .await
            .map_err(|_| "answer writer stopped".to_owned())?;
        wait.await.map_err(|_| "answer writer stopped".to_owned())?
    }
}

type Queue = std::sync::Arc<tokio::sync::Mutex<mpsc::Receiver<(Record, Reply)>>>;

async fn run(db: PgPool, rx: Queue, stop: StopSignal) {
    tokio::pin!(stop);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // Take whatever is queued (at least one), then let the next writer collect while this
        // batch is written.
        let received = tokio::select! {
            () = &mut stop => return,
            received = async { rx.lock().await.recv_many(&mut batch, MAX_BATCH).await } => received,
        };
        if received == 0 {
            return;
        }
        let started = std::time::Instant::now();
        // Ids in a fixed order, so two batches holding a repeated id cannot deadlock.
        let outcome = write(&db, &batch).await;
        #[allow(clippy::cast_precision_loss)]
        metrics::histogram!("stock_answer_batch_size").record(batch.len() as f64);
        metrics::histogram!("stock_answer_batch_seconds").record(started.elapsed().as_secs_f64());
        for (record, reply) in batch.drain(..) {
            let result = match &outcome {
                Ok(claimed) => Ok(claimed.binary_search(&record.id).is_ok()),
                Err(e) => Err(e.clone()),
            };
            let _ = reply.send(result);
        }
    }
}

/// Writes the batch; returns the ids it claimed, sorted.
async fn write(db: &PgPool, batch: &[(Record, Reply)]) -> Result<Vec<Uuid>, String> {
    let mut ids = Vec::with_capacity(batch.len());
    let mut statuses = Vec::with_capacity(batch.len());
    let mut codes = Vec::with_capacity(batch.len());
    let mut answers = Vec::with_capacity(batch.len());
    let (mut line_ids, mut line_items, mut line_qtys) = (Vec::new(), Vec::new(), Vec::new());
    for (r, _) in batch {
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
    let mut claimed: Vec<Uuid> = sqlx::query_scalar(
        "WITH input AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::smallint[], $4::jsonb[]) \
                        AS t(id, status, http_status, answer)), \
              r AS (INSERT INTO reservations (id, status, http_status, answer) \
                    SELECT id, status, http_status, answer FROM input ORDER BY id \
                    ON CONFLICT (id) DO NOTHING RETURNING id), \
              lines AS (SELECT * FROM unnest($5::uuid[], $6::uuid[], $7::int[]) AS u(rid, item, qty)), \
              l AS (INSERT INTO reservation_lines (reservation_id, item_id, qty) \
                    SELECT lines.rid, lines.item, lines.qty FROM lines JOIN r ON r.id = lines.rid), \
              g AS (INSERT INTO stock_ledger (item_id, delta, reason, reservation_id, applied) \
                    SELECT lines.item, -lines.qty, 'reservation', lines.rid, false FROM lines JOIN r ON r.id = lines.rid) \
         SELECT id FROM r",
    )
    .bind(&ids)
    .bind(&statuses)
    .bind(&codes)
    .bind(&answers)
    .bind(&line_ids)
    .bind(&line_items)
    .bind(&line_qtys)
    .fetch_all(db)
    .await
    .map_err(|e| e.to_string())?;
    claimed.sort_unstable();
    Ok(claimed)
}
