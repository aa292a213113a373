//! The pay service's internal API: its half of a saga's timeline (order merges it into the
//! order's).

use kommerce_kit::peer::{Peer, PeerError};
use kommerce_kit::saga::Step;
use uuid::Uuid;

/// The pay service's internal API.
#[derive(Debug, Clone)]
pub struct PayClient(pub Peer);

impl PayClient {
    /// The steps pay recorded for the saga of `payment`, oldest first.
    pub async fn saga_steps(&self, payment: Uuid) -> Result<Vec<Step>, PeerError> {
        let reply = self.0.get(&format!("/internal/v1/saga/{payment}")).await?;
        self.0.success(reply, "a saga lookup")?.json(self.0.name())
    }
}
