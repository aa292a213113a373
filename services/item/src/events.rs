//! What the item service consumes: `review.rating-changed` keeps each item's rating average and
//! count equal to the review service's totals.

use kommerce_kit::cache::Redis;
use kommerce_kit::messaging::{Envelope, Event, Handler, HandlerError};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::cache;

/// The review service's topic (before the Kafka namespace).
pub const REVIEWS_TOPIC: &str = "reviews";

/// An item's rating totals after a review change, with the review service's per-item sequence
/// number (the same schema as `kommerce_review::events::RatingChanged`).
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

/// Applies rating changes: newer `seq` wins, older or repeated ones change nothing.
#[derive(Debug, Clone)]
pub struct RatingHandler {
    pub redis: Redis,
}

impl Handler for RatingHandler {
    async fn handle(&self, tx: &mut PgConnection, event: &Envelope) -> Result<(), HandlerError> {
        if !event.is::<RatingChanged>() {
            return Ok(()); // the topic may carry other review events one day
        }
        let e: RatingChanged = event.decode()?;
        e.check().map_err(HandlerError::Permanent)?;
        let applied = sqlx::query(
            "UPDATE items SET rating_count = $2::integer, \
             rating_avg = CASE WHEN $2 = 0 THEN 0 ELSE $3::float8 / $2::float8 END, \
             rating_seq = $4, updated_at = now() WHERE id = $1 AND rating_seq < $4",
        )
        .bind(e.item_id)
        .bind(e.rating_count)
        .bind(e.rating_sum)
        .bind(e.seq)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if applied > 0 {
            // Before the commit: a page cached in between lives until its TTL at worst.
            cache::forget(&self.redis, &[cache::key(&self.redis, e.item_id)]).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(count: i64, sum: i64, seq: i64) -> RatingChanged {
        RatingChanged {
            item_id: Uuid::nil(),
            rating_count: count,
            rating_sum: sum,
            seq,
        }
    }

    #[test]
    fn only_totals_of_one_to_five_stars_are_plausible() {
        assert!(event(0, 0, 1).check().is_ok());
        assert!(event(2, 2, 3).check().is_ok());
        assert!(event(2, 10, 3).check().is_ok());
        assert!(event(2, 11, 3).check().is_err());
        assert!(event(2, 1, 3).check().is_err());
        assert!(event(-1, 0, 3).check().is_err());
        assert!(event(1, 3, 0).check().is_err());
    }
}
