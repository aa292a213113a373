//! A payment's life: `pending_order` → `completed` (its order exists) → `refunded` (the order
//! was cancelled); or `pending_order` → `cancelled` (no order could be made; refunded).

use kommerce_kit::db::UnknownValue;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = PaymentStatus)]
pub enum Status {
    PendingOrder,
    Completed,
    Cancelled,
    Refunded,
}

/// What the order service reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderOutcome {
    Created,
    Failed,
    CancelRequested,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Move to this status; `refund` says whether the money goes back.
    To {
        status: Status,
        refund: bool,
    },
    /// A redelivery or a repeat: nothing changes.
    Unchanged,
    Refused(&'static str),
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingOrder => "pending_order",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending_order" => Self::PendingOrder,
            "completed" => Self::Completed,
            "cancelled" => Self::Cancelled,
            "refunded" => Self::Refunded,
            _ => return None,
        })
    }

    pub fn apply(self, outcome: OrderOutcome) -> Transition {
        use OrderOutcome::{CancelRequested, Created, Failed};
        use Status::{Cancelled, Completed, PendingOrder, Refunded};
        let to = |status, refund| Transition::To { status, refund };
        match (self, outcome) {
            (PendingOrder, Created) => to(Completed, false),
            (PendingOrder, Failed) => to(Cancelled, true),
            (Completed, CancelRequested) => to(Refunded, true),
            (Completed | Refunded, Created) | (Cancelled, Failed) | (Refunded, CancelRequested) => {
                Transition::Unchanged
            }
            (PendingOrder, CancelRequested) => Transition::Refused("the payment has no order yet"),
            (Cancelled, Created | CancelRequested) => {
                Transition::Refused("the payment was cancelled")
            }
            (Completed | Refunded, Failed) => Transition::Refused("the payment has an order"),
        }
    }
}

/// A stored status this code does not know is a read error (see [`UnknownValue`]).
impl TryFrom<String> for Status {
    type Error = UnknownValue;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s).ok_or(UnknownValue(s))
    }
}

#[cfg(test)]
mod tests {
    use super::OrderOutcome::*;
    use super::Status::*;
    use super::*;

    #[test]
    fn a_stored_status_reads_back_and_an_unknown_one_is_an_error() {
        for s in [PendingOrder, Completed, Cancelled, Refunded] {
            assert_eq!(Status::try_from(s.as_str().to_owned()), Ok(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(
            Status::try_from("shipped".to_owned()),
            Err(UnknownValue("shipped".into()))
        );
    }

    #[test]
    fn money_goes_back_exactly_when_no_order_stands() {
        assert_eq!(
            PendingOrder.apply(Created),
            Transition::To {
                status: Completed,
                refund: false
            }
        );
        assert_eq!(
            PendingOrder.apply(Failed),
            Transition::To {
                status: Cancelled,
                refund: true
            }
        );
        assert_eq!(
            Completed.apply(CancelRequested),
            Transition::To {
                status: Refunded,
                refund: true
            }
        );
    }

    #[test]
    fn redeliveries_change_nothing_and_impossible_orders_are_refused() {
        assert_eq!(Completed.apply(Created), Transition::Unchanged);
        assert_eq!(Cancelled.apply(Failed), Transition::Unchanged);
        assert_eq!(Refunded.apply(CancelRequested), Transition::Unchanged);
        assert_eq!(Refunded.apply(Created), Transition::Unchanged);
        assert!(matches!(
            PendingOrder.apply(CancelRequested),
            Transition::Refused(_)
        ));
        assert!(matches!(Cancelled.apply(Created), Transition::Refused(_)));
        assert!(matches!(Completed.apply(Failed), Transition::Refused(_)));
        for s in [PendingOrder, Completed, Cancelled, Refunded] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
    }
}
