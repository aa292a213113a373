//! The order service's internal API: a user's cart (pay prices a checkout from it) and the
//! verified-purchase check (review).

use kommerce_kit::peer::{Peer, PeerError};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One cart line as `GET /internal/v1/carts/{user_id}` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CartLineView {
    /// The line (what a checkout names in `cart_line_ids`).
    pub id: Uuid,
    pub item_id: Uuid,
    /// A line holds 1 to 99 units.
    #[schema(minimum = 1, maximum = 99)]
    pub qty: i32,
}

/// The body of `GET /internal/v1/carts/{user_id}`: a user's cart lines, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CartView {
    pub user_id: Uuid,
    /// Empty for a user who has no cart.
    pub lines: Vec<CartLineView>,
}

/// The body of `GET /internal/v1/purchases?user_id=&item_id=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Purchased {
    /// Whether an order of the user that is not cancelled (nor being cancelled) has a line for
    /// the item.
    pub purchased: bool,
}

/// The order service's internal API.
#[derive(Debug, Clone)]
pub struct OrderClient(pub Peer);

impl OrderClient {
    pub async fn cart(&self, user: Uuid) -> Result<CartView, PeerError> {
        let reply = self.0.get(&format!("/internal/v1/carts/{user}")).await?;
        self.0.success(reply, "a cart lookup")?.json(self.0.name())
    }

    /// Whether `user` has a paid, not-cancelled order with a line for `item`.
    pub async fn purchased(&self, user: Uuid, item: Uuid) -> Result<bool, PeerError> {
        let reply = self
            .0
            .get(&format!(
                "/internal/v1/purchases?user_id={user}&item_id={item}"
            ))
            .await?;
        let purchased: Purchased = self
            .0
            .success(reply, "a purchase check")?
            .json(self.0.name())?;
        Ok(purchased.purchased)
    }
}
