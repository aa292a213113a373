//! What pay consumes (order's `orders` topic) and publishes (`payments`).
//!
//! - `order.created` → the payment is `completed` with its order id.
//! - `order.failed` → refunded (at most once), `cancelled` with the reason,
//!   `payment.cancelled`.
//! - `order.cancel-requested` → refunded, `refunded`, `payment.refunded`.

use kommerce_contracts::money::Money;
use kommerce_contracts::saga::{
    OrderCancelRequested, OrderCreated, OrderFailed, PaymentCancelled, PaymentRefunded,
};
use kommerce_kit::messaging::{Envelope, Event, Handler, HandlerError, publish_in_tx};
use kommerce_kit::saga::{self, NewStep};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::SERVICE;
use crate::domain::status::{OrderOutcome, Status, Transition};
use crate::store;

#[derive(Debug)]
pub struct SagaHandler {
    pub payments_topic: String,
}

impl Handler for SagaHandler {
    async fn handle(&self, tx: &mut PgConnection, event: &Envelope) -> Result<(), HandlerError> {
        if event.is::<OrderCreated>() {
            let e: OrderCreated = event.decode()?;
            self.step(
                tx,
                event,
                e.payment_id,
                Some(e.order_id),
                OrderOutcome::Created,
                None,
            )
            .await
        } else if event.is::<OrderFailed>() {
            let e: OrderFailed = event.decode()?;
            let why = format!("{}: {}", e.reason, e.detail);
            self.step(
                tx,
                event,
                e.payment_id,
                None,
                OrderOutcome::Failed,
                Some(&why),
            )
            .await
        } else if event.is::<OrderCancelRequested>() {
            let e: OrderCancelRequested = event.decode()?;
            self.step(
                tx,
                event,
                e.payment_id,
                Some(e.order_id),
                OrderOutcome::CancelRequested,
                Some("order cancelled by the customer"),
            )
            .await
        } else {
            Ok(())
        }
    }
}

impl SagaHandler {
    async fn step(
        &self,
        tx: &mut PgConnection,
        event: &Envelope,
        payment_id: Uuid,
        order_id: Option<Uuid>,
        outcome: OrderOutcome,
        reason: Option<&str>,
    ) -> Result<(), HandlerError> {
        let Some(payment) = store::lock(tx, payment_id).await? else {
            return Err(HandlerError::Permanent(format!(
                "{} for unknown payment {payment_id}",
                event.kind
            )));
        };
        let (status, refund) = match payment.status.apply(outcome) {
            Transition::Unchanged => return Ok(()),
            Transition::Refused(why) => return Err(HandlerError::Permanent(why.to_owned())),
            Transition::To { status, refund } => (status, refund),
        };
        let refunded = if refund {
            store::refund(tx, &payment, reason.unwrap_or("refunded")).await?
        } else {
            false
        };
        store::set_status(tx, payment_id, status, order_id, reason).await?;
        let encode = |e: Result<Envelope, serde_json::Error>| {
            e.map_err(|e| HandlerError::Permanent(e.to_string()))
        };
        match status {
            Status::Cancelled => {
                let out = PaymentCancelled {
                    payment_id,
                    user_id: payment.user_id,
                    reason: reason.unwrap_or_default().to_owned(),
                    refunded_minor: Money::minor(payment.amount_minor),
                };
                publish_in_tx(
                    tx,
                    &self.payments_topic,
                    &encode(Envelope::caused_by(&out, event))?,
                )
                .await?;
            }
            Status::Refunded => {
                let out = PaymentRefunded {
                    payment_id,
                    order_id: order_id.or(payment.order_id).unwrap_or_default(),
                    user_id: payment.user_id,
                    refunded_minor: Money::minor(payment.amount_minor),
                };
                publish_in_tx(
                    tx,
                    &self.payments_topic,
                    &encode(Envelope::caused_by(&out, event))?,
                )
                .await?;
            }
            Status::PendingOrder | Status::Completed => {}
        }
        let outcome_text = match (status, refunded) {
            (Status::Completed, _) => "payment completed".to_owned(),
            (s, true) => format!(
                "{}: {} back to the {}",
                s.as_str(),
                payment.amount_minor,
                payment.method
            ),
            (s, false) => s.as_str().to_owned(),
        };
        saga::record(
            tx,
            NewStep {
                saga_id: payment_id,
                order_id: order_id.or(payment.order_id),
                service: SERVICE,
                step: &event.kind,
                outcome: &outcome_text,
                detail: reason,
            },
        )
        .await?;
        metrics::counter!("payments_settled_total", "status" => status.as_str()).increment(1);
        if refunded {
            metrics::counter!("payments_refunded_total").increment(1);
        }
        Ok(())
    }
}

/// Records that a payment was charged (the saga's first step).
pub async fn charged(
    tx: &mut PgConnection,
    payment_id: Uuid,
    method: &str,
) -> Result<(), sqlx::Error> {
    saga::record(
        tx,
        NewStep {
            saga_id: payment_id,
            order_id: None,
            service: SERVICE,
            step: kommerce_contracts::saga::PaymentCompleted::TYPE,
            outcome: "charged, waiting for the order",
            detail: Some(method),
        },
    )
    .await
}
