//! Cart rules: quantities 1..=99, at most 50 lines, an item can be bought only while on sale.

use serde::Deserialize;
use uuid::Uuid;

pub const MAX_QTY: i64 = 99;
pub const MAX_LINES: i64 = 50;

/// `POST /api/v1/cart/items`: an item to put in the cart, or to add to its line.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AddToCartBody)]
pub struct AddBody {
    /// An item that exists and is on sale.
    pub item_id: Uuid,
    /// Units to add; with what the line already holds, at most 99 in total.
    #[schema(minimum = 1, maximum = 99)]
    pub qty: i64,
}

/// `PATCH /api/v1/cart/items/{item_id}`: the quantity a line is to hold.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SetCartQtyBody)]
pub struct SetBody {
    #[schema(minimum = 1, maximum = 99)]
    pub qty: i64,
}

/// A quantity a line may hold.
pub fn qty(q: i64) -> Result<i32, String> {
    if (1..=MAX_QTY).contains(&q) {
        i32::try_from(q).map_err(|_| format!("must be from 1 to {MAX_QTY}"))
    } else {
        Err(format!("must be from 1 to {MAX_QTY}"))
    }
}

/// The quantity after adding `added` to a line that holds `current` (0 for a new line).
pub fn merged_qty(current: i32, added: i32) -> Result<i32, String> {
    qty(i64::from(current) + i64::from(added)).map_err(|_| {
        format!("the cart already holds {current}; at most {MAX_QTY} of an item in total")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_bounded_on_their_own_and_when_merged() {
        assert_eq!(qty(1), Ok(1));
        assert_eq!(qty(99), Ok(99));
        assert!(qty(0).is_err() && qty(100).is_err() && qty(-3).is_err());
        assert!(qty(i64::MAX).is_err());
        assert_eq!(merged_qty(0, 5), Ok(5));
        assert_eq!(merged_qty(90, 9), Ok(99));
        assert!(merged_qty(90, 10).unwrap_err().contains("already holds 90"));
    }
}
