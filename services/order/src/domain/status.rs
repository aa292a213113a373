//! An order's life: `created` → `shipped` → `delivered`, or `created` → `cancel_requested` →
//! `cancelled` (once pay has refunded). Every change goes through [`Status::apply`].

use kommerce_kit::db::UnknownValue;
use serde::{Deserialize, Serialize};

/// Where an order is in its life: `created` → `shipped` → `delivered`, or `created` →
/// `cancel_requested` → `cancelled` (once pay has refunded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = OrderStatus)]
pub enum Status {
    Created,
    CancelRequested,
    Cancelled,
    Shipped,
    Delivered,
}

/// What can happen to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The owner asks to cancel.
    RequestCancel,
    /// pay refunded the payment.
    Refunded,
    Ship,
    Deliver,
}

/// The result of an action on an order in some status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The order moves to this status.
    To(Status),
    /// Already done (a repeated request or a redelivered event): nothing changes.
    Unchanged,
    /// Not allowed from this status.
    Refused(&'static str),
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::CancelRequested => "cancel_requested",
            Self::Cancelled => "cancelled",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created" => Self::Created,
            "cancel_requested" => Self::CancelRequested,
            "cancelled" => Self::Cancelled,
            "shipped" => Self::Shipped,
            "delivered" => Self::Delivered,
            _ => return None,
        })
    }

    pub fn apply(self, action: Action) -> Transition {
        use Action::{Deliver, RequestCancel, Ship};
        use Status::{CancelRequested, Cancelled, Created, Delivered, Shipped};
        match (self, action) {
            (Created, RequestCancel) => Transition::To(CancelRequested),
            (CancelRequested | Cancelled, RequestCancel) | (Cancelled, Action::Refunded) => {
                Transition::Unchanged
            }
            (Shipped | Delivered, RequestCancel) => {
                Transition::Refused("the order has already shipped")
            }
            (CancelRequested, Action::Refunded) => Transition::To(Cancelled),
            (_, Action::Refunded) => Transition::Refused("no cancellation was requested"),
            (Created, Ship) => Transition::To(Shipped),
            (Shipped, Ship) | (Delivered, Ship | Deliver) => Transition::Unchanged,
            (Shipped, Deliver) => Transition::To(Delivered),
            (CancelRequested | Cancelled, Ship | Deliver) => {
                Transition::Refused("the order is cancelled")
            }
            (Created, Deliver) => Transition::Refused("the order has not shipped"),
        }
    }

    /// Whether the order counts as a purchase (for verified-purchase reviews).
    pub fn is_purchase(self) -> bool {
        matches!(self, Self::Created | Self::Shipped | Self::Delivered)
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
    use super::Action::*;
    use super::Status::*;
    use super::*;

    #[test]
    fn a_stored_status_reads_back_and_an_unknown_one_is_an_error() {
        for s in [Created, CancelRequested, Cancelled, Shipped, Delivered] {
            assert_eq!(Status::try_from(s.as_str().to_owned()), Ok(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(
            Status::try_from("refunded".to_owned()),
            Err(UnknownValue("refunded".into()))
        );
    }

    #[test]
    fn cancel_is_allowed_until_shipped_and_repeats_change_nothing() {
        assert_eq!(
            Created.apply(RequestCancel),
            Transition::To(CancelRequested)
        );
        assert_eq!(CancelRequested.apply(RequestCancel), Transition::Unchanged);
        assert_eq!(Cancelled.apply(RequestCancel), Transition::Unchanged);
        assert!(matches!(
            Shipped.apply(RequestCancel),
            Transition::Refused(_)
        ));
        assert!(matches!(
            Delivered.apply(RequestCancel),
            Transition::Refused(_)
        ));
    }

    #[test]
    fn only_a_requested_cancel_is_completed_by_a_refund() {
        assert_eq!(CancelRequested.apply(Refunded), Transition::To(Cancelled));
        assert_eq!(Cancelled.apply(Refunded), Transition::Unchanged);
        assert!(matches!(Created.apply(Refunded), Transition::Refused(_)));
        assert!(matches!(Shipped.apply(Refunded), Transition::Refused(_)));
    }

    #[test]
    fn shipping_moves_forward_only() {
        assert_eq!(Created.apply(Ship), Transition::To(Shipped));
        assert_eq!(Shipped.apply(Deliver), Transition::To(Delivered));
        assert_eq!(Shipped.apply(Ship), Transition::Unchanged);
        assert!(matches!(Created.apply(Deliver), Transition::Refused(_)));
        assert!(matches!(Cancelled.apply(Ship), Transition::Refused(_)));
        assert!(matches!(
            CancelRequested.apply(Ship),
            Transition::Refused(_)
        ));
    }

    #[test]
    fn names_round_trip_and_purchases_exclude_cancellations() {
        for s in [Created, CancelRequested, Cancelled, Shipped, Delivered] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("paid"), None);
        assert!(Created.is_purchase() && Shipped.is_purchase() && Delivered.is_purchase());
        assert!(!CancelRequested.is_purchase() && !Cancelled.is_purchase());
    }
}
