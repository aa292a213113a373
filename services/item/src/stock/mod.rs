//! Stock that never oversells, under three live-switchable strategies.
//!
//! PostgreSQL is the truth: available stock = `items.stock` + the sum of unapplied ledger
//! deltas, and `items.stock >= 0` is a CHECK constraint. Every change is a ledger row.
//! - `conditionalUpdate`: `UPDATE items SET stock = stock - n WHERE id = $1 AND stock >= n`,
//!   lines in item-id order inside one transaction (all or nothing, no deadlocks).
//! - `spinLock`: the original system's Redis lock done right ([`lock`]) around the same guarded
//!   update (the lock keeps contention off PostgreSQL; the guard keeps correctness if a lease
//!   expires under a slow holder).
//! - `reservation`: an atomic Redis script is the gate ([`gate`]); reservations are written in
//!   batches ([`writer`]), each batch applied to `items.stock` under the row lock it takes for
//!   the oversell guard (one row update per item per batch); a folder applies what else is
//!   left unapplied (releases).
//!   Redis counters never exceed the truth: every PostgreSQL stock change is bracketed by
//!   [`counters::begin`] (decrements take their units before the commit) and [`counters::end`]
//!   (increments give theirs after it), and reconcile refuses to overwrite a counter that
//!   changed or has work in flight since it read PostgreSQL.

pub mod counters;
pub mod gate;
pub mod live;
pub mod lock;
mod store;
mod writer;

use std::sync::Arc;

use axum::http::StatusCode;
use kommerce_kit::cache::Redis;
use kommerce_kit::http::ApiError;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::watch;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::stock::{Adjust, Line, PoolPolicy, Reservation, Strategy};
pub use live::Applied;
pub use store::{AVAILABLE, LedgerRow, ledger};

/// The first answer to a reservation id, replayed verbatim to every repeat.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

/// Why one line of a reservation cannot be had (the contract's type).
pub use kommerce_contracts::item::{RefusalReason, RefusedLine as Refusal};

/// What a reservation answers when made (201), stored and replayed to every repeat.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = StockReservation)]
pub struct Reserved {
    pub reservation_id: Uuid,
    pub status: ReservationStatus,
    /// The reserved lines, by item id.
    pub lines: Vec<Line>,
}

/// A made reservation's status: always `reserved` (it is answered when made).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = StockReservationStatus)]
pub enum ReservationStatus {
    Reserved,
}

/// What a refused reservation answers (409, problem+json with the reservation's id and the
/// refused lines as extension members), stored and replayed to every repeat. Two kinds:
/// `reservation-refused` (with `lines`: which could not be had) and `reservation-cancelled`
/// (without: the reservation was released before it was made, so it stays refused).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReservationRefusal {
    #[serde(rename = "type")]
    #[schema(pattern = r"^https://kommerce\.dev/problems/reservation-(refused|cancelled)$")]
    pub kind: &'static str,
    /// `Conflict`.
    #[schema(pattern = "^Conflict$")]
    pub title: &'static str,
    /// 409.
    #[schema(minimum = 409, maximum = 409)]
    pub status: u16,
    pub detail: &'static str,
    pub reservation_id: Uuid,
    /// The refused lines (`reservation-refused` only); nothing was reserved.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub lines: Option<Vec<Refusal>>,
}

impl ReservationRefusal {
    fn refused(id: Uuid, lines: &[Refusal]) -> Self {
        Self {
            kind: "https://kommerce.dev/problems/reservation-refused",
            title: "Conflict",
            status: 409,
            detail: "not every line can be reserved; nothing was reserved",
            reservation_id: id,
            lines: Some(lines.to_vec()),
        }
    }

    /// The tombstone of a release that arrived before its reservation.
    pub(crate) fn cancelled(id: Uuid) -> Self {
        Self {
            kind: "https://kommerce.dev/problems/reservation-cancelled",
            title: "Conflict",
            status: 409,
            detail: "this reservation was released before it was made",
            reservation_id: id,
            lines: None,
        }
    }
}

fn reserved(r: &Reservation) -> Answer {
    Answer {
        status: StatusCode::CREATED,
        body: json!(Reserved {
            reservation_id: r.id,
            status: ReservationStatus::Reserved,
            lines: r.lines.clone(),
        }),
    }
}

fn refused(r: &Reservation, lines: &[Refusal]) -> Answer {
    Answer {
        status: StatusCode::CONFLICT,
        body: json!(ReservationRefusal::refused(r.id, lines)),
    }
}

/// What every strategy needs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Stock {
    db: PgPool,
    redis: Redis,
    writer: writer::Writer,
    policy: watch::Receiver<Arc<Applied>>,
    marker_ttl_secs: u64,
}

impl Stock {
    /// The engine; its answer writers run as `workers`.
    pub fn new(
        workers: &mut kommerce_kit::workers::Workers,
        db: PgPool,
        redis: Redis,
        policy: watch::Receiver<Arc<Applied>>,
        marker_ttl_secs: u64,
    ) -> Self {
        let writer = writer::Writer::start(workers, &db);
        Self {
            db,
            redis,
            writer,
            policy,
            marker_ttl_secs,
        }
    }

    pub fn policy(&self) -> Arc<Applied> {
        self.policy.borrow().clone()
    }

    /// Reserves every line or none. A repeated id gets its first answer and changes nothing.
    #[tracing::instrument(skip_all, fields(reservation = %r.id))]
    pub async fn reserve(&self, r: &Reservation) -> Result<Answer, ApiError> {
        let applied = self.policy();
        let started = std::time::Instant::now();
        let fast = if applied.policy.strategy == Strategy::Reservation {
            gate::reserve_fast(&self.db, &self.redis, &self.writer, r, self.marker_ttl_secs).await?
        } else {
            None
        };
        let outcome = if let Some(outcome) = fast {
            Ok(outcome)
        } else {
            let refusals = match store::precheck(&self.db, r.id, &r.lines).await? {
                store::Precheck::Answered(first) => return Ok(first),
                store::Precheck::Unavailable(refusals) => refusals,
            };
            if !refusals.is_empty() {
                return self.record_refusal(r.id, refused(r, &refusals)).await;
            }
            match applied.policy.strategy {
                Strategy::ConditionalUpdate => {
                    store::reserve_guarded(&mut *self.db.acquire().await?, &self.redis, r).await
                }
                Strategy::SpinLock => self.reserve_locked(r, &applied.policy).await,
                Strategy::Reservation => {
                    gate::reserve(&self.db, &self.redis, &self.writer, r, self.marker_ttl_secs)
                        .await
                }
            }
        };
        let strategy = applied.policy.strategy.as_str();
        metrics::histogram!("stock_reservation_seconds", "strategy" => strategy)
            .record(started.elapsed().as_secs_f64());
        let outcome = outcome?;
        let answer = match outcome {
            Outcome::Reserved => reserved(r),
            Outcome::Short(lines) => refused(r, &lines),
            Outcome::Repeat(answer) => return Ok(answer),
        };
        metrics::counter!("stock_reservations_total", "strategy" => strategy, "status" => answer.status.as_str().to_owned()).increment(1);
        if answer.status == StatusCode::CONFLICT {
            return self.record_refusal(r.id, answer).await;
        }
        self.invalidate(&r.lines).await;
        Ok(answer)
    }

    /// Stores a refusal as the id's first answer (batched), unless another answer got there
    /// first, and returns whichever answer is now the first.
    async fn record_refusal(&self, id: Uuid, refusal: Answer) -> Result<Answer, ApiError> {
        let record = writer::Record {
            id,
            answer: refusal.clone(),
            lines: None,
        };
        if self.writer.record(record).await? == writer::Recorded::First {
            return Ok(refusal);
        }
        Ok(store::answer(&self.db, id).await?.unwrap_or(refusal))
    }

    async fn reserve_locked(
        &self,
        r: &Reservation,
        policy: &PoolPolicy,
    ) -> Result<Outcome, ApiError> {
        let items: Vec<Uuid> = r.lines.iter().map(|l| l.item_id).collect();
        // The connection first: a lock holder that then queued for the pool behind every
        // waiting request would hold the lock for the length of that queue.
        let mut conn = self.db.acquire().await?;
        let held = lock::acquire_all(&self.redis, &items, policy).await?;
        let outcome = store::reserve_guarded(&mut conn, &self.redis, r).await;
        held.release().await;
        outcome
    }

    /// Gives a reservation's stock back. Idempotent; a release that arrives before its
    /// reservation leaves a tombstone so the late reservation is refused.
    #[tracing::instrument(skip_all, fields(reservation = %id))]
    pub async fn release(&self, id: Uuid) -> Result<(), ApiError> {
        let via_ledger = self.policy().policy.strategy == Strategy::Reservation;
        if let Some(lines) = store::release(&self.db, &self.redis, id, via_ledger).await? {
            self.invalidate(&lines).await;
        }
        Ok(())
    }

    /// An admin correction, guarded like a decrement (never below zero).
    pub async fn adjust(&self, item: Uuid, a: &Adjust) -> Result<i64, ApiError> {
        let line = Line {
            item_id: item,
            qty: kommerce_contracts::money::Quantity::new(a.delta.abs()),
        };
        let stock = store::adjust(&self.db, &self.redis, item, a).await?;
        self.invalidate(&[line]).await;
        Ok(stock)
    }

    /// An item's status changed or it was deleted: the gate must ask PostgreSQL again.
    pub async fn status_changed(&self, item: Uuid) {
        counters::forget(&self.redis, item).await;
    }

    async fn invalidate(&self, lines: &[Line]) {
        let keys: Vec<String> = lines
            .iter()
            .map(|l| crate::cache::key(&self.redis, l.item_id))
            .collect();
        crate::cache::forget(&self.redis, &keys).await;
    }

    pub fn db(&self) -> &PgPool {
        &self.db
    }

    pub fn redis(&self) -> &Redis {
        &self.redis
    }
}

/// What a strategy did.
#[derive(Debug)]
pub enum Outcome {
    Reserved,
    Short(Vec<Refusal>),
    /// Another request with this id got there first: its answer.
    Repeat(Answer),
}

pub(crate) use store::fold_pending;
