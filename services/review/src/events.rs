//! What the review service publishes: `review.rating-changed` on `kafka.topic(REVIEWS_TOPIC)`
//! (the contract lives in the kit, shared with the item service that consumes it).

pub use kommerce_contracts::reviews::{REVIEWS_TOPIC, RatingChanged};
