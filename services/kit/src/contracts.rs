//! The contracts between services: the checkout saga's events and the review service's rating
//! events. Both sides of a contract
//! compile against the same types, so a field renamed on one side cannot go unnoticed.
//! Every saga event is keyed by the payment id, so one saga's events keep their order within
//! a topic.

pub mod saga {
    use serde::{Deserialize, Serialize};
    use uuid::Uuid;

    use crate::messaging::Event;

    /// pay publishes here: `payment.completed`, `payment.cancelled`, `payment.refunded`.
    pub const PAYMENTS_TOPIC: &str = "payments";
    /// order publishes here: `order.created`, `order.failed`, `order.cancel-requested`.
    pub const ORDERS_TOPIC: &str = "orders";

    /// One bought line, at the price that was charged.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct PaidLine {
        pub item_id: Uuid,
        pub name: String,
        pub unit_price_minor: i64,
        pub qty: i32,
    }

    /// The payment is charged and waits for its order.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct PaymentCompleted {
        pub payment_id: Uuid,
        pub user_id: Uuid,
        pub amount_minor: i64,
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
        pub refunded_minor: i64,
    }

    /// A cancelled order's payment was refunded.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct PaymentRefunded {
        pub payment_id: Uuid,
        pub order_id: Uuid,
        pub user_id: Uuid,
        pub refunded_minor: i64,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct OrderCreated {
        pub order_id: Uuid,
        pub payment_id: Uuid,
        pub user_id: Uuid,
        pub total_minor: i64,
    }

    /// No order: stock was short or an item is gone. `reason` is a slug
    /// (`insufficient_stock`, `not_on_sale`, `not_found`, `cancelled`).
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
    saga_event!(OrderCreated, "order.created");
    saga_event!(OrderFailed, "order.failed");
    saga_event!(OrderCancelRequested, "order.cancel-requested");
}

pub mod reviews {
    use serde::{Deserialize, Serialize};
    use uuid::Uuid;

    use crate::messaging::Event;

    /// review publishes here; item consumes.
    pub const REVIEWS_TOPIC: &str = "reviews";

    /// An item's rating totals after a review was created, changed or deleted. `seq` grows by
    /// one with every change of the item's totals, so a consumer keeps the state with the
    /// highest `seq` and ignores older or repeated events.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RatingChanged {
        pub item_id: Uuid,
        pub rating_count: i64,
        pub rating_sum: i64,
        pub seq: i64,
    }

    impl Event for RatingChanged {
        const TYPE: &'static str = "review.rating-changed";
        const VERSION: u16 = 1;
        fn key(&self) -> String {
            self.item_id.to_string()
        }
    }

    impl RatingChanged {
        /// Totals that 1-to-5-star reviews can add up to; anything else is a broken producer.
        pub fn check(&self) -> Result<(), String> {
            let plausible = self.seq > 0
                && self.rating_count >= 0
                && i32::try_from(self.rating_count).is_ok()
                && self.rating_sum >= self.rating_count
                && self.rating_sum <= self.rating_count.saturating_mul(5);
            if plausible {
                Ok(())
            } else {
                Err(format!("impossible rating totals: {self:?}"))
            }
        }
    }
}

pub mod catalogue {
    use std::collections::HashMap;

    use serde::Deserialize;
    use uuid::Uuid;

    use crate::peer::{Peer, PeerError};

    /// An item as the item service's `GET /internal/v1/items?ids=` reports it.
    #[derive(Debug, Clone, Deserialize)]
    pub struct ItemView {
        pub id: Uuid,
        pub name: String,
        pub price_minor: i64,
        pub status: String,
        pub stock: i64,
        pub deleted: bool,
    }

    impl ItemView {
        pub fn on_sale(&self) -> bool {
            !self.deleted && self.status == "on_sale"
        }
    }

    #[derive(Deserialize)]
    struct Items {
        items: Vec<ItemView>,
    }

    /// The item service's view of `ids` (up to 100); an unknown id is absent from the map.
    pub async fn items(item: &Peer, ids: &[Uuid]) -> Result<HashMap<Uuid, ItemView>, PeerError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let list: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let items: Items = item
            .get(&format!("/internal/v1/items?ids={}", list.join(",")))
            .await?
            .json(item.name())?;
        Ok(items.items.into_iter().map(|i| (i.id, i)).collect())
    }
}
