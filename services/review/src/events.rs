//! What the review service publishes.

use kommerce_kit::messaging::Event;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The topic (before the Kafka namespace): `kafka.topic(REVIEWS_TOPIC)`.
pub const REVIEWS_TOPIC: &str = "reviews";

/// An item's rating totals after a review was created, changed or deleted. `seq` grows by one
/// with every change of the item's totals, so a consumer keeps the state with the highest
/// `seq` and ignores older or repeated events.
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
