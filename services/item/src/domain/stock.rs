//! Stock requests, the spin lock's backoff and the database's last word on a batch, all pure.
//! The stock-pool policy itself (the live-config contract in docs/stockpool-contract.md) is
//! `kommerce_contracts::stock_pool`.

use std::collections::HashMap;
use std::time::Duration;

pub use kommerce_contracts::item::{
    RefusalReason, RefusedLine, ReservationLine, ReservationRequest,
};
use kommerce_contracts::money::Quantity;
/// The StockPool policy is the contract's: one implementation for the operator and the item.
pub use kommerce_contracts::stock_pool::{DEFAULT_HASH, PoolPolicy, Strategy, parse_policy};
use kommerce_kit::http::ApiError;
use kommerce_kit::validate::{Fields, text};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const MAX_LINES: usize = 50;
pub const MAX_QTY: i32 = 1_000;

/// One reserved line.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[schema(as = ReservedLine)]
pub struct Line {
    pub item_id: Uuid,
    pub qty: Quantity,
}

/// A reservation request: 1..=50 lines, distinct items, qty 1..=1000, sorted by item id (the
/// order locks are taken in, so two reservations never deadlock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: Uuid,
    pub lines: Vec<Line>,
}

impl TryFrom<ReservationRequest> for Reservation {
    type Error = ApiError;
    fn try_from(b: ReservationRequest) -> Result<Self, ApiError> {
        let mut f = Fields::new();
        if b.lines.is_empty() || b.lines.len() > MAX_LINES {
            f.add("lines", format!("must have 1 to {MAX_LINES} lines"));
        }
        let mut lines = Vec::with_capacity(b.lines.len());
        for (i, l) in b.lines.iter().enumerate() {
            match i32::try_from(l.qty) {
                Ok(qty) if (1..=MAX_QTY).contains(&qty) => lines.push(Line {
                    item_id: l.item_id,
                    qty: Quantity::new(qty),
                }),
                _ => f.add(
                    &format!("lines[{i}].qty"),
                    format!("must be from 1 to {MAX_QTY}"),
                ),
            }
        }
        lines.sort();
        if lines.windows(2).any(|w| w[0].item_id == w[1].item_id) {
            f.add("lines", "must not name an item twice");
        }
        f.finish()?;
        Ok(Self {
            id: b.reservation_id,
            lines,
        })
    }
}

/// A stock correction.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustBody {
    /// Units to add (positive) or take away (negative); never 0.
    #[schema(minimum = -1_000_000, maximum = 1_000_000)]
    pub delta: i64,
    /// Why, kept in the ledger as the row's `note`: trimmed, 1 to 200 characters, no control
    /// characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[\t\n\x0b\x0c\r\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub reason: String,
}

/// An admin's stock correction: a non-zero signed delta with a reason for the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjust {
    pub delta: i32,
    pub note: String,
}

impl TryFrom<AdjustBody> for Adjust {
    type Error = ApiError;
    fn try_from(b: AdjustBody) -> Result<Self, ApiError> {
        let mut f = Fields::new();
        let delta = f.check(
            "delta",
            match i32::try_from(b.delta) {
                Ok(0) => Err("must not be zero".into()),
                Ok(d) if d.unsigned_abs() <= 1_000_000 => Ok(d),
                _ => Err("must be between -1000000 and 1000000".into()),
            },
        );
        let note = f.check("reason", text(&b.reason, 1, 200));
        f.finish()?;
        match (delta, note) {
            (Some(delta), Some(note)) => Ok(Self { delta, note }),
            _ => Err(ApiError::internal("validation passed without values")),
        }
    }
}

/// Exponential backoff with full jitter: a uniform wait in `[0, min(max, base·2^attempt)]`.
/// `unit` is the random draw in `[0, 1)`.
pub fn full_jitter(policy: &PoolPolicy, attempt: u32, unit: f64) -> Duration {
    let cap = policy
        .backoff_base_ms
        .saturating_mul(1u64 << attempt.min(20))
        .min(policy.backoff_max_ms);
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let ms = (cap as f64 * unit.clamp(0.0, 1.0)) as u64;
    Duration::from_millis(ms.max(1))
}

/// The lines `available` (units per item) does not cover, each named with what there is.
pub fn short_lines<S: std::hash::BuildHasher>(
    available: &HashMap<Uuid, i64, S>,
    lines: &[Line],
) -> Vec<RefusedLine> {
    lines
        .iter()
        .filter_map(|l| {
            let have = available.get(&l.item_id).copied().unwrap_or(0);
            (have < i64::from(l.qty)).then_some(RefusedLine {
                item_id: l.item_id,
                reason: RefusalReason::InsufficientStock,
                requested: l.qty,
                available: Some(have.max(0)),
            })
        })
        .collect()
}

/// Takes one reservation's lines out of `available` (units per item, as PostgreSQL has them
/// under lock) if every line is covered; otherwise changes nothing and names each line that is
/// not. Applied to a batch in order, it admits reservations whole or not at all and never more
/// than there is — whatever the Redis gate believed.
pub fn take<S: std::hash::BuildHasher>(
    available: &mut HashMap<Uuid, i64, S>,
    lines: &[Line],
) -> Result<(), Vec<RefusedLine>> {
    let short = short_lines(available, lines);
    if !short.is_empty() {
        return Err(short);
    }
    for l in lines {
        if let Some(have) = available.get_mut(&l.item_id) {
            *have -= i64::from(l.qty);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_takes_whole_reservations_and_never_more_than_there_is() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let line = |item_id, qty| Line {
            item_id,
            qty: Quantity::new(qty),
        };
        let mut available = HashMap::from([(a, 3), (b, 1)]);
        assert_eq!(take(&mut available, &[line(a, 2), line(b, 1)]), Ok(()));
        // b is gone: the whole reservation is refused, and a keeps its unit.
        let refused = take(&mut available, &[line(a, 1), line(b, 1)]).unwrap_err();
        assert_eq!(refused.len(), 1);
        assert_eq!((refused[0].item_id, refused[0].available), (b, Some(0)));
        assert_eq!(available[&a], 1);
        assert_eq!(take(&mut available, &[line(a, 1)]), Ok(()));
        assert!(take(&mut available, &[line(a, 1)]).is_err());
        // An item PostgreSQL does not have covers nothing.
        let unknown = Uuid::from_u128(9);
        assert_eq!(
            take(&mut available, &[line(unknown, 1)]).unwrap_err()[0].available,
            Some(0)
        );
    }

    #[test]
    fn reservations_are_sorted_and_checked() {
        let a = Uuid::from_u128(2);
        let b = Uuid::from_u128(1);
        let body = ReservationRequest {
            reservation_id: Uuid::new_v4(),
            lines: vec![
                ReservationLine { item_id: a, qty: 1 },
                ReservationLine { item_id: b, qty: 3 },
            ],
        };
        let r = Reservation::try_from(body).unwrap();
        assert_eq!(
            r.lines.iter().map(|l| l.item_id).collect::<Vec<_>>(),
            [b, a],
            "item-id order"
        );

        for (lines, field) in [
            (vec![], "lines"),
            (vec![ReservationLine { item_id: a, qty: 0 }], "lines[0].qty"),
            (
                vec![ReservationLine {
                    item_id: a,
                    qty: -2,
                }],
                "lines[0].qty",
            ),
            (
                vec![
                    ReservationLine { item_id: a, qty: 1 },
                    ReservationLine { item_id: a, qty: 1 },
                ],
                "lines",
            ),
        ] {
            let Err(ApiError::Validation(e)) = Reservation::try_from(ReservationRequest {
                reservation_id: Uuid::new_v4(),
                lines,
            }) else {
                panic!()
            };
            assert_eq!(e[0].field, field);
        }
    }

    #[test]
    fn jitter_stays_within_the_exponential_cap() {
        let p = PoolPolicy {
            backoff_base_ms: 2,
            backoff_max_ms: 50,
            ..PoolPolicy::default()
        };
        assert_eq!(full_jitter(&p, 0, 0.999), Duration::from_millis(1));
        assert_eq!(full_jitter(&p, 3, 0.5), Duration::from_millis(8));
        assert_eq!(full_jitter(&p, 30, 1.0), Duration::from_millis(50));
        assert_eq!(full_jitter(&p, 3, 0.0), Duration::from_millis(1));
    }
}
