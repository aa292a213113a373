//! The saga's deadline (ADR 0017): no payment stays `pending_order` for ever. A payment still
//! waiting for its order `saga.deadline_secs` after it was charged gets one
//! `payment.deadline`, on the payments topic with the payment's key — so the order service
//! reads it after that payment's `payment.completed` — and the order service decides once for
//! good: `order.created` again if the order exists, else `order.failed` (reason `deadline`),
//! after which that payment can never get an order. Pay itself never refunds on its own
//! clock: a refund racing an order being made is exactly what this avoids.

use std::time::Duration;

use kommerce_contracts::saga::PaymentDeadline;
use kommerce_kit::messaging::{Envelope, Event, publish_in_tx};
use kommerce_kit::saga::{self, NewStep};
use sqlx::PgPool;
use uuid::Uuid;

use crate::SERVICE;

/// Publishes `payment.deadline` for the payments that are due (at most 100 per call, each
/// once); returns how many.
pub async fn publish_due(db: &PgPool, topic: &str, deadline: Duration) -> anyhow::Result<usize> {
    let mut tx = db.begin().await?;
    #[allow(clippy::cast_precision_loss)] // seconds
    let due: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "UPDATE payments SET deadline_sent_at = now() WHERE id IN ( \
           SELECT id FROM payments WHERE status = 'pending_order' AND deadline_sent_at IS NULL \
           AND created_at < now() - make_interval(secs => $1) \
           ORDER BY created_at LIMIT 100 FOR UPDATE SKIP LOCKED) \
         RETURNING id, user_id",
    )
    .bind(deadline.as_secs_f64())
    .fetch_all(&mut *tx)
    .await?;
    let detail = format!("still waiting for its order after {} s", deadline.as_secs());
    for (payment_id, user_id) in &due {
        let event = PaymentDeadline {
            payment_id: *payment_id,
            user_id: *user_id,
        };
        publish_in_tx(&mut tx, topic, &Envelope::new(&event)?).await?;
        saga::record(
            &mut tx,
            NewStep {
                saga_id: *payment_id,
                order_id: None,
                service: SERVICE,
                step: PaymentDeadline::TYPE,
                outcome: "deadline passed: the order service decides",
                detail: Some(&detail),
            },
        )
        .await?;
    }
    tx.commit().await?;
    if !due.is_empty() {
        tracing::warn!(payments = due.len(), "payments past the saga's deadline");
        metrics::counter!("payments_past_deadline_total").increment(due.len() as u64);
    }
    Ok(due.len())
}

/// Looks for due payments every `every` until the service stops.
pub async fn run(
    db: PgPool,
    topic: String,
    deadline: Duration,
    every: Duration,
    stop: impl Future<Output = ()> + Send,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(every) => {}
        }
        if let Err(e) = publish_due(&db, &topic, deadline).await {
            tracing::warn!(error = %e, "looking for payments past the deadline failed; will retry");
        }
    }
}
