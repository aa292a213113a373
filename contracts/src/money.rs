//! Money and quantities where arithmetic happens: a price times a quantity, a total of lines,
//! a balance. Amounts are integers in the currency's minor unit (KRW has none: 1 = ₩1); every
//! operation that could overflow is checked. On the wire both are plain integers.

use serde::{Deserialize, Serialize};

/// An amount in minor units.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct Money(i64);

/// How many units of an item (a cart line, a bought line, a reservation line).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct Quantity(i32);

impl Money {
    pub const ZERO: Self = Self(0);

    pub const fn minor(amount: i64) -> Self {
        Self(amount)
    }

    /// The amount in minor units (what is stored and sent).
    pub const fn as_minor(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self)
    }

    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.0.checked_sub(other.0).map(Self)
    }

    /// `self` per unit, times `qty`.
    pub fn times(self, qty: Quantity) -> Option<Self> {
        self.0.checked_mul(i64::from(qty.0)).map(Self)
    }

    /// The total of `(unit price, quantity)` lines; `None` on overflow.
    pub fn total(lines: impl IntoIterator<Item = (Self, Quantity)>) -> Option<Self> {
        lines.into_iter().try_fold(Self::ZERO, |sum, (price, qty)| {
            sum.checked_add(price.times(qty)?)
        })
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Quantity {
    pub const fn new(units: i32) -> Self {
        Self(units)
    }

    pub const fn get(self) -> i32 {
        self.0
    }

    /// `self + other`, when the sum is within `1..=max` (a merged cart line).
    pub fn merged(self, other: Self, max: i32) -> Option<Self> {
        self.0
            .checked_add(other.0)
            .filter(|sum| (1..=max).contains(sum))
            .map(Self)
    }
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<Quantity> for i64 {
    fn from(q: Quantity) -> Self {
        i64::from(q.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_checked_and_plain_on_the_wire() {
        let lines = [
            (Money::minor(250), Quantity::new(2)),
            (Money::minor(1000), Quantity::new(1)),
        ];
        assert_eq!(Money::total(lines), Some(Money::minor(1500)));
        assert_eq!(Money::total([]), Some(Money::ZERO));
        assert_eq!(
            Money::total([(Money::minor(i64::MAX), Quantity::new(2))]),
            None
        );
        assert_eq!(
            Money::total([
                (Money::minor(i64::MAX), Quantity::new(1)),
                (Money::minor(1), Quantity::new(1))
            ]),
            None
        );
        assert_eq!(
            Money::minor(5).checked_sub(Money::minor(7)),
            Some(Money::minor(-2))
        );
        assert_eq!(
            serde_json::to_string(&Money::minor(1500)).expect("json"),
            "1500"
        );
        assert_eq!(
            serde_json::from_str::<Quantity>("3").expect("json"),
            Quantity::new(3)
        );
    }

    #[test]
    fn a_merged_quantity_stays_within_its_bound() {
        assert_eq!(
            Quantity::new(98).merged(Quantity::new(1), 99),
            Some(Quantity::new(99))
        );
        assert_eq!(Quantity::new(98).merged(Quantity::new(2), 99), None);
        assert_eq!(Quantity::new(i32::MAX).merged(Quantity::new(1), 99), None);
    }
}
