//! What the item service consumes: `review.rating-changed` keeps each item's rating average and
//! count equal to the review service's totals.

use kommerce_kit::cache::Redis;
use kommerce_kit::messaging::{Envelope, Handler, HandlerError};
use sqlx::PgConnection;

use crate::cache;

pub use kommerce_contracts::reviews::{REVIEWS_TOPIC, RatingChanged};

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
    use uuid::Uuid;

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
