//! The checkout saga's events between pay and order. Every saga event is keyed by the payment
//! id, so one saga's events keep their order within a topic.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::{Money, Quantity};

use kommerce_kit::messaging::Event;

/// pay publishes here: `payment.completed`, `payment.cancelled`, `payment.refunded`.
pub const PAYMENTS_TOPIC: &str = "payments";
/// order publishes here: `order.created`, `order.failed`, `order.cancel-requested`.
pub const ORDERS_TOPIC: &str = "orders";

/// One bought line, at the price that was charged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaidLine {
    pub item_id: Uuid,
    pub name: String,
    pub unit_price_minor: Money,
    pub qty: Quantity,
}

/// The payment is charged and waits for its order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCompleted {
    pub payment_id: Uuid,
    pub user_id: Uuid,
    pub amount_minor: Money,
    pub method: String,
    pub lines: Vec<PaidLine>,
    /// The shipping address as it was at payment (a snapshot, not a reference).
    pub address: serde_json::Value,
}

/// The order could not be made; the payment was refunded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCancelled {
    pub payment_id: Uuid,
    pub user_id: Uuid,
    pub reason: String,
    pub refunded_minor: Money,
}

/// A cancelled order's payment was refunded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub refunded_minor: Money,
}

/// The payment has waited past the saga's deadline for its order: the order service decides
/// once for good — `order.created` again if the order exists, else `order.failed` with reason
/// `deadline` (and the payment can never get an order after that), so pay refunds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentDeadline {
    pub payment_id: Uuid,
    pub user_id: Uuid,
}

/// [`OrderFailed::reason`] when the order service answered a [`PaymentDeadline`] with no order.
pub const DEADLINE: &str = "deadline";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub user_id: Uuid,
    pub total_minor: Money,
}

/// No order: stock was short or an item is gone. `reason` is a slug
/// (a refused line's [`crate::item::RefusalReason`] — `insufficient_stock`,
/// `not_on_sale`, `unknown_item` — or `cancelled`, or [`DEADLINE`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderFailed {
    pub payment_id: Uuid,
    pub user_id: Uuid,
    pub reason: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelRequested {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub user_id: Uuid,
}

macro_rules! saga_event {
    ($t:ty, $name:literal) => {
        impl Event for $t {
            const TYPE: &'static str = $name;
            const VERSION: u16 = 1;
            fn key(&self) -> String {
                self.payment_id.to_string()
            }
        }
    };
}

saga_event!(PaymentCompleted, "payment.completed");
saga_event!(PaymentCancelled, "payment.cancelled");
saga_event!(PaymentRefunded, "payment.refunded");
saga_event!(PaymentDeadline, "payment.deadline");
saga_event!(OrderCreated, "order.created");
saga_event!(OrderFailed, "order.failed");
saga_event!(OrderCancelRequested, "order.cancel-requested");
