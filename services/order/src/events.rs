//! What the order service consumes (pay's `payments` topic) and publishes (`orders`).
//!
//! - `payment.completed` → reserve the stock (reservation id = payment id, so a redelivery
//!   gets the item service's first answer), then in this consumer's transaction: the order,
//!   the bought cart lines removed, `order.created`; or, when stock is short or an item is
//!   gone, `order.failed` and no order.
//! - `payment.refunded` → the stock reservation released, the order cancelled.
//! - `payment.deadline` → decided once for good (`payment_outcomes`, ADR 0017): the order
//!   exists → `order.created` again; else the payment is expired → `order.failed` (reason
//!   `deadline`), and a `payment.completed` seen later makes no order.

use kommerce_contracts::item::{ItemClient, ReservationLine, ReservationRequest, Reserved};
use kommerce_contracts::money::Money;
use kommerce_contracts::saga::{
    DEADLINE, OrderCreated, OrderFailed, PaymentCompleted, PaymentDeadline, PaymentRefunded,
};
use kommerce_kit::messaging::{Envelope, Event, Handler, HandlerError, publish_in_tx};
use kommerce_kit::saga::{self, NewStep};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::SERVICE;
use crate::domain::status::{Action, Status, Transition};
use crate::store::{self, NewOrder, Outcome};

#[derive(Debug)]
pub struct SagaHandler {
    pub item: ItemClient,
    pub orders_topic: String,
    /// Tests only: a reserved order waits here for a permit before it is made (holds order
    /// creation past a payment's deadline, deterministically).
    pub gate: Option<std::sync::Arc<tokio::sync::Semaphore>>,
}

impl Handler for SagaHandler {
    async fn handle(&self, tx: &mut PgConnection, event: &Envelope) -> Result<(), HandlerError> {
        if event.is::<PaymentCompleted>() {
            self.payment_completed(tx, event).await
        } else if event.is::<PaymentRefunded>() {
            self.payment_refunded(tx, event).await
        } else if event.is::<PaymentDeadline>() {
            self.payment_deadline(tx, event).await
        } else {
            // payment.cancelled closes a saga that never had an order.
            Ok(())
        }
    }
}

fn encode<E: Event>(e: &E, cause: &Envelope) -> Result<Envelope, HandlerError> {
    Envelope::caused_by(e, cause).map_err(|e| HandlerError::Permanent(e.to_string()))
}

impl SagaHandler {
    async fn payment_completed(
        &self,
        tx: &mut PgConnection,
        event: &Envelope,
    ) -> Result<(), HandlerError> {
        let p: PaymentCompleted = event.decode()?;
        if store::order_for_payment(tx, p.payment_id).await?.is_some() {
            return Ok(());
        }
        if store::outcome(tx, p.payment_id).await? == Some(Outcome::Expired) {
            // Its deadline was answered with a refund (a replayed dead letter, say): never an
            // order now.
            return expired_step(tx, p.payment_id, "the payment expired before; no order").await;
        }
        let request = ReservationRequest {
            reservation_id: p.payment_id,
            lines: p
                .lines
                .iter()
                .map(|l| ReservationLine {
                    item_id: l.item_id,
                    qty: i64::from(l.qty),
                })
                .collect(),
        };
        match self.item.reserve(&request).await? {
            Reserved::Yes => {
                if let Some(gate) = &self.gate {
                    gate.acquire()
                        .await
                        .map_err(|e| HandlerError::Permanent(e.to_string()))?
                        .forget();
                }
                if store::decide(tx, p.payment_id, Outcome::Order).await?.0 == Outcome::Expired {
                    // The deadline was decided while the stock was being reserved: give it back.
                    self.item.release(p.payment_id).await?;
                    return expired_step(
                        tx,
                        p.payment_id,
                        "the deadline was decided first; the reservation released",
                    )
                    .await;
                }
                let order_id = Uuid::now_v7();
                store::insert_order(
                    tx,
                    &NewOrder {
                        id: order_id,
                        user_id: p.user_id,
                        payment_id: p.payment_id,
                        total_minor: p.amount_minor,
                        address: &p.address,
                        lines: &p.lines,
                    },
                )
                .await?;
                let items: Vec<Uuid> = p.lines.iter().map(|l| l.item_id).collect();
                store::remove_items(tx, p.user_id, &items).await?;
                let created = OrderCreated {
                    order_id,
                    payment_id: p.payment_id,
                    user_id: p.user_id,
                    total_minor: p.amount_minor,
                };
                publish_in_tx(tx, &self.orders_topic, &encode(&created, event)?).await?;
                saga::record(
                    tx,
                    NewStep {
                        saga_id: p.payment_id,
                        order_id: Some(order_id),
                        service: SERVICE,
                        step: OrderCreated::TYPE,
                        outcome: "order created, stock reserved, cart lines removed",
                        detail: None,
                    },
                )
                .await?;
                metrics::counter!("orders_created_total").increment(1);
                Ok(())
            }
            Reserved::Refused(refused) => {
                let (reason, detail) = (refused.reason(), refused.explanation());
                let failed = OrderFailed {
                    payment_id: p.payment_id,
                    user_id: p.user_id,
                    reason: reason.to_owned(),
                    detail: detail.clone(),
                };
                publish_in_tx(tx, &self.orders_topic, &encode(&failed, event)?).await?;
                saga::record(
                    tx,
                    NewStep {
                        saga_id: p.payment_id,
                        order_id: None,
                        service: SERVICE,
                        step: OrderFailed::TYPE,
                        outcome: reason,
                        detail: Some(&detail),
                    },
                )
                .await?;
                metrics::counter!("orders_failed_total", "reason" => reason).increment(1);
                Ok(())
            }
        }
    }

    /// The payment's deadline passed: its order again, or — none made — the payment expires
    /// for good and `order.failed` makes pay refund it.
    async fn payment_deadline(
        &self,
        tx: &mut PgConnection,
        event: &Envelope,
    ) -> Result<(), HandlerError> {
        let d: PaymentDeadline = event.decode()?;
        let mut outcome = Outcome::Order;
        if store::order_for_payment(tx, d.payment_id).await?.is_none() {
            let (decided, now) = store::decide(tx, d.payment_id, Outcome::Expired).await?;
            if decided == Outcome::Expired && !now {
                return Ok(()); // answered before: its order.failed is on its way
            }
            outcome = decided;
        }
        if outcome == Outcome::Order {
            // Made before, or just now by a concurrent consumer (its insert committed first).
            let Some(order) = store::order_for_payment(tx, d.payment_id).await? else {
                return Err(HandlerError::Permanent(format!(
                    "payment {} decided for an order that does not exist",
                    d.payment_id
                )));
            };
            let created = OrderCreated {
                order_id: order.id,
                payment_id: d.payment_id,
                user_id: order.user_id,
                total_minor: Money::minor(order.total_minor),
            };
            publish_in_tx(tx, &self.orders_topic, &encode(&created, event)?).await?;
            saga::record(
                tx,
                NewStep {
                    saga_id: d.payment_id,
                    order_id: Some(order.id),
                    service: SERVICE,
                    step: PaymentDeadline::TYPE,
                    outcome: "the order exists: order.created again",
                    detail: None,
                },
            )
            .await?;
            return Ok(());
        }
        let failed = OrderFailed {
            payment_id: d.payment_id,
            user_id: d.user_id,
            reason: DEADLINE.to_owned(),
            detail: "no order was made before the saga's deadline".to_owned(),
        };
        publish_in_tx(tx, &self.orders_topic, &encode(&failed, event)?).await?;
        saga::record(
            tx,
            NewStep {
                saga_id: d.payment_id,
                order_id: None,
                service: SERVICE,
                step: PaymentDeadline::TYPE,
                outcome: "no order: the payment expired, order.failed",
                detail: None,
            },
        )
        .await?;
        metrics::counter!("orders_failed_total", "reason" => DEADLINE).increment(1);
        Ok(())
    }

    async fn payment_refunded(
        &self,
        tx: &mut PgConnection,
        event: &Envelope,
    ) -> Result<(), HandlerError> {
        let r: PaymentRefunded = event.decode()?;
        let Some(order) = store::order_for_payment(tx, r.payment_id).await? else {
            return Err(HandlerError::Permanent(format!(
                "a refund for payment {} that has no order",
                r.payment_id
            )));
        };
        match order.status.apply(Action::Refunded) {
            Transition::Unchanged => Ok(()),
            Transition::Refused(why) => Err(HandlerError::Permanent(why.to_owned())),
            Transition::To(next) => {
                // Idempotent on the item side: a redelivery releases nothing twice.
                self.item.release(r.payment_id).await?;
                debug_assert_eq!(next, Status::Cancelled);
                store::set_status(tx, order.id, next).await?;
                saga::record(
                    tx,
                    NewStep {
                        saga_id: r.payment_id,
                        order_id: Some(order.id),
                        service: SERVICE,
                        step: PaymentRefunded::TYPE,
                        outcome: "order cancelled, stock released",
                        detail: None,
                    },
                )
                .await?;
                metrics::counter!("orders_cancelled_total").increment(1);
                Ok(())
            }
        }
    }
}

/// Records that a `payment.completed` made no order because the payment had expired.
async fn expired_step(
    tx: &mut PgConnection,
    payment: Uuid,
    outcome: &str,
) -> Result<(), HandlerError> {
    saga::record(
        tx,
        NewStep {
            saga_id: payment,
            order_id: None,
            service: SERVICE,
            step: PaymentCompleted::TYPE,
            outcome,
            detail: None,
        },
    )
    .await?;
    Ok(())
}
