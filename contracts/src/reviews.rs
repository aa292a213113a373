//! The review service's rating events, consumed by the item service.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use kommerce_kit::messaging::Event;

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
