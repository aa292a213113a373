//! The item service's internal API, as the order and pay services call it: the catalogue view
//! of a set of items, and stock reservations (all lines or none) with their refusals.

use std::collections::HashMap;

use kommerce_kit::peer::{Peer, PeerError};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::{Money, Quantity};

/// An item as `GET /internal/v1/items?ids=` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ItemView {
    pub id: Uuid,
    pub name: String,
    /// The current price, in minor units.
    pub price_minor: Money,
    /// `on_sale`, `sold_out` or `hidden`.
    #[schema(pattern = "^(on_sale|sold_out|hidden)$")]
    pub status: String,
    /// Available stock.
    pub stock: i64,
    /// The item was deleted (it still resolves: old orders show it).
    pub deleted: bool,
}

impl ItemView {
    pub fn on_sale(&self) -> bool {
        !self.deleted && self.status == "on_sale"
    }
}

/// The body of `GET /internal/v1/items?ids=`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ItemViews {
    /// The items found, by id; an unknown id is absent.
    pub items: Vec<ItemView>,
}

/// `POST /internal/v1/stock/reservations`: reserve every line or none. The id makes it
/// idempotent (the saga uses the payment id): a repeat gets the first answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReservationRequest {
    /// The reservation's id, chosen by the caller: a repeat gets the first answer.
    pub reservation_id: Uuid,
    /// Each item at most once.
    #[schema(min_items = 1, max_items = 50)]
    pub lines: Vec<ReservationLine>,
}

/// One line of a reservation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReservationLine {
    pub item_id: Uuid,
    /// Wide on the wire, so that an out-of-range quantity is a field error, not a parse error.
    #[schema(minimum = 1, maximum = 1000)]
    pub qty: i64,
}

/// Why one line cannot be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ReservationRefusalReason)]
pub enum RefusalReason {
    InsufficientStock,
    NotOnSale,
    /// The item does not exist or was deleted.
    UnknownItem,
}

impl RefusalReason {
    /// The slug (`order.failed` carries it as its reason).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InsufficientStock => "insufficient_stock",
            Self::NotOnSale => "not_on_sale",
            Self::UnknownItem => "unknown_item",
        }
    }

    /// What a shopper reads.
    pub fn detail(self) -> &'static str {
        match self {
            Self::InsufficientStock => "not enough stock for every line",
            Self::NotOnSale => "an item is no longer on sale",
            Self::UnknownItem => "an item no longer exists",
        }
    }
}

/// One refused line of a 409.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ReservationRefusedLine)]
pub struct RefusedLine {
    pub item_id: Uuid,
    pub reason: RefusalReason,
    pub requested: Quantity,
    /// The units available when the line was refused for stock, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub available: Option<i64>,
}

/// The 409 body (problem+json; the extension members are these fields). No lines: the
/// reservation was released before it was made (a release overtook it), and stays refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationRefused {
    pub reservation_id: Uuid,
    pub detail: String,
    #[serde(default)]
    pub lines: Vec<RefusedLine>,
}

impl ReservationRefused {
    /// The slug of why: the first refused line's reason, `cancelled` without lines.
    pub fn reason(&self) -> &'static str {
        self.lines
            .first()
            .map_or("cancelled", |l| l.reason.as_str())
    }

    /// What a shopper reads about it.
    pub fn explanation(&self) -> String {
        self.lines
            .first()
            .map_or_else(|| self.detail.clone(), |l| l.reason.detail().to_owned())
    }
}

/// The item service's answer to a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    Yes,
    /// 409: nothing was reserved.
    Refused(ReservationRefused),
}

/// The item service's internal API.
#[derive(Debug, Clone)]
pub struct ItemClient(pub Peer);

impl ItemClient {
    /// The catalogue view of `ids` (up to 100); an unknown id is absent from the map.
    pub async fn items(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, ItemView>, PeerError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let list: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let reply = self
            .0
            .get(&format!("/internal/v1/items?ids={}", list.join(",")))
            .await?;
        let views: ItemViews = self
            .0
            .success(reply, "an items lookup")?
            .json(self.0.name())?;
        Ok(views.items.into_iter().map(|i| (i.id, i)).collect())
    }

    /// Reserves every line or none (201 or 409).
    pub async fn reserve(&self, request: &ReservationRequest) -> Result<Reserved, PeerError> {
        let reply = self
            .0
            .post("/internal/v1/stock/reservations", request)
            .await?;
        match reply.status.as_u16() {
            201 => Ok(Reserved::Yes),
            409 => Ok(Reserved::Refused(reply.json(self.0.name())?)),
            _ => Err(self.0.unexpected(&reply, "a reservation")),
        }
    }

    /// Gives a reservation's stock back; idempotent (a repeat releases nothing twice).
    pub async fn release(&self, reservation: Uuid) -> Result<(), PeerError> {
        let reply = self
            .0
            .delete(&format!("/internal/v1/stock/reservations/{reservation}"))
            .await?;
        self.0.success(reply, "a release").map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_reads_back_from_the_wire() {
        let body = serde_json::json!({
            "type": "https://kommerce.dev/problems/reservation-refused", "title": "Conflict",
            "status": 409, "detail": "nothing was reserved",
            "reservation_id": Uuid::nil(),
            "lines": [{"item_id": Uuid::nil(), "reason": "not_on_sale", "requested": 2}],
        });
        let r: ReservationRefused = serde_json::from_value(body).expect("a refusal");
        assert_eq!(r.lines[0].reason, RefusalReason::NotOnSale);
        assert_eq!(r.lines[0].available, None);
        assert_eq!(
            RefusalReason::InsufficientStock.as_str(),
            "insufficient_stock"
        );
        assert_eq!(
            serde_json::to_value(RefusalReason::UnknownItem).expect("json"),
            "unknown_item"
        );
        assert_eq!(
            (r.reason(), r.explanation().as_str()),
            ("not_on_sale", "an item is no longer on sale")
        );
    }

    #[test]
    fn a_refusal_without_lines_is_a_cancelled_reservation() {
        let tomb: ReservationRefused = serde_json::from_value(serde_json::json!({
            "type": "https://kommerce.dev/problems/reservation-cancelled", "status": 409,
            "reservation_id": Uuid::nil(),
            "detail": "this reservation was released before it was made",
        }))
        .expect("a refusal");
        assert_eq!(
            (tomb.reason(), tomb.explanation().as_str()),
            (
                "cancelled",
                "this reservation was released before it was made"
            )
        );
    }
}
