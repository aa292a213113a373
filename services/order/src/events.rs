//! What the order service consumes (pay's `payments` topic) and publishes (`orders`).
//!
//! - `payment.completed` → reserve the stock (reservation id = payment id, so a redelivery
//!   gets the item service's first answer), then in this consumer's transaction: the order,
//!   the bought cart lines removed, `order.created`; or, when stock is short or an item is
//!   gone, `order.failed` and no order.
//! - `payment.refunded` → the stock reservation released, the order cancelled.

use kommerce_contracts::item::{ItemClient, ReservationLine, ReservationRequest, Reserved};
use kommerce_contracts::saga::{OrderCreated, OrderFailed, PaymentCompleted, PaymentRefunded};
use kommerce_kit::messaging::{Envelope, Event, Handler, HandlerError, publish_in_tx};
use kommerce_kit::saga::{self, NewStep};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::SERVICE;
use crate::domain::status::{Action, Status, Transition};
use crate::store::{self, NewOrder};

#[derive(Debug)]
pub struct SagaHandler {
    pub item: ItemClient,
    pub orders_topic: String,
}

impl Handler for SagaHandler {
    async fn handle(&self, tx: &mut PgConnection, event: &Envelope) -> Result<(), HandlerError> {
        if event.is::<PaymentCompleted>() {
            self.payment_completed(tx, event).await
        } else if event.is::<PaymentRefunded>() {
            self.payment_refunded(tx, event).await
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
