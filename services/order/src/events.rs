//! What the order service consumes (pay's `payments` topic) and publishes (`orders`).
//!
//! - `payment.completed` → reserve the stock (reservation id = payment id, so a redelivery
//!   gets the item service's first answer), then in this consumer's transaction: the order,
//!   the bought cart lines removed, `order.created`; or, when stock is short or an item is
//!   gone, `order.failed` and no order.
//! - `payment.refunded` → the stock reservation released, the order cancelled.

use axum::http::StatusCode;
use kommerce_kit::contracts::saga::{OrderCreated, OrderFailed, PaymentCompleted, PaymentRefunded};
use kommerce_kit::messaging::{Envelope, Event, Handler, HandlerError, publish_in_tx};
use kommerce_kit::peer::Peer;
use kommerce_kit::saga::{self, NewStep};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::SERVICE;
use crate::domain::status::{Action, Status, Transition};
use crate::store::{self, NewOrder};

#[derive(Debug)]
pub struct SagaHandler {
    pub item: Peer,
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

/// Why the item service refused a reservation, from its 409 body: the first line's reason.
pub fn refusal(body: &serde_json::Value) -> (String, String) {
    let reason = body["lines"][0]["reason"]
        .as_str()
        .map_or_else(|| "cancelled".to_owned(), str::to_owned);
    let detail = match reason.as_str() {
        "insufficient_stock" => "not enough stock for every line".to_owned(),
        "not_on_sale" => "an item is no longer on sale".to_owned(),
        "not_found" => "an item no longer exists".to_owned(),
        _ => body["detail"]
            .as_str()
            .unwrap_or("the stock reservation was refused")
            .to_owned(),
    };
    (reason, detail)
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
        let lines: Vec<_> = p
            .lines
            .iter()
            .map(|l| json!({ "item_id": l.item_id, "qty": l.qty }))
            .collect();
        let reply = self
            .item
            .post(
                "/internal/v1/stock/reservations",
                &json!({ "reservation_id": p.payment_id, "lines": lines }),
            )
            .await?;
        match reply.status {
            StatusCode::CREATED => {
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
            StatusCode::CONFLICT => {
                let (reason, detail) = refusal(&reply.body);
                let failed = OrderFailed {
                    payment_id: p.payment_id,
                    user_id: p.user_id,
                    reason: reason.clone(),
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
                        outcome: &reason,
                        detail: Some(&detail),
                    },
                )
                .await?;
                metrics::counter!("orders_failed_total", "reason" => reason).increment(1);
                Ok(())
            }
            other => Err(HandlerError::Permanent(format!(
                "the item service refused the reservation with {other}: {}",
                reply.body
            ))),
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
                let reply = self
                    .item
                    .delete(&format!("/internal/v1/stock/reservations/{}", r.payment_id))
                    .await?;
                if !reply.is_success() {
                    return Err(HandlerError::Permanent(format!(
                        "the item service refused the release with {}",
                        reply.status
                    )));
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_first_line_reason() {
        let body = json!({"lines": [{"reason": "insufficient_stock"}], "detail": "x"});
        assert_eq!(refusal(&body).0, "insufficient_stock");
        let tomb = json!({"detail": "this reservation was released before it was made"});
        assert_eq!(
            refusal(&tomb),
            (
                "cancelled".to_owned(),
                "this reservation was released before it was made".to_owned()
            )
        );
    }
}
