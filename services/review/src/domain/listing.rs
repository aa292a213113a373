//! The listing's sort orders and opaque keyset cursors.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The order of a listing: newest first, or by rating (ties newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ReviewSort)]
pub enum Sort {
    Newest,
    RatingDesc,
    RatingAsc,
}

impl Sort {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "newest" => Ok(Self::Newest),
            "rating_desc" => Ok(Self::RatingDesc),
            "rating_asc" => Ok(Self::RatingAsc),
            _ => Err("must be one of newest, rating_desc, rating_asc".into()),
        }
    }

    /// `ORDER BY` (ties: newest first, then id).
    pub fn order_by(self) -> &'static str {
        match self {
            Self::Newest => "created_at DESC, id DESC",
            Self::RatingDesc => "rating DESC, created_at DESC, id DESC",
            Self::RatingAsc => "rating ASC, created_at DESC, id DESC",
        }
    }

    /// The rows after the cursor ($c_rating, $c_at, $c_id are the cursor's parameters).
    pub fn after(self, rating: &str, at: &str, id: &str) -> String {
        let tie = format!("(created_at, id) < ({at}, {id})");
        match self {
            Self::Newest => tie,
            Self::RatingDesc => format!("(rating < {rating} OR (rating = {rating} AND {tie}))"),
            Self::RatingAsc => format!("(rating > {rating} OR (rating = {rating} AND {tie}))"),
        }
    }
}

/// Where a page ended: the last row's sort key. Opaque to clients (base64url JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    pub sort: Sort,
    pub rating: i16,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// A cursor made for `sort`; any other string (or another sort's cursor) is an error.
    pub fn decode(s: &str, sort: Sort) -> Result<Self, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| "not a cursor from this listing".to_owned())?;
        let c: Self = serde_json::from_slice(&bytes)
            .map_err(|_| "not a cursor from this listing".to_owned())?;
        if c.sort == sort {
            Ok(c)
        } else {
            Err("the cursor belongs to another sort order".into())
        }
    }
}

/// `limit`: 1..=100, default 20.
pub fn limit(raw: Option<&str>) -> Result<i64, String> {
    match raw {
        None => Ok(20),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| "must be a number from 1 to 100".into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_sorts_and_garbage() {
        let c = Cursor {
            sort: Sort::RatingDesc,
            rating: 4,
            at: OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_000).unwrap(),
            id: Uuid::new_v4(),
        };
        let s = c.encode();
        assert_eq!(Cursor::decode(&s, Sort::RatingDesc), Ok(c));
        assert!(Cursor::decode(&s, Sort::Newest).is_err());
        assert!(Cursor::decode("bm9wZQ", Sort::Newest).is_err());
        assert!(Cursor::decode("%%%", Sort::Newest).is_err());
    }

    #[test]
    fn sorts_and_limits_parse() {
        assert_eq!(Sort::parse("rating_asc"), Ok(Sort::RatingAsc));
        assert!(Sort::parse("oldest").is_err());
        assert_eq!(limit(None), Ok(20));
        assert_eq!(limit(Some("100")), Ok(100));
        assert!(limit(Some("0")).is_err());
        assert!(limit(Some("101")).is_err());
    }
}
