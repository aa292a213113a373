//! The user service's internal API: a user's address (pay snapshots it into the payment).

use kommerce_kit::peer::{Peer, PeerError};
use uuid::Uuid;

/// The user service's internal API.
#[derive(Debug, Clone)]
pub struct UserClient(pub Peer);

impl UserClient {
    /// The address `id` of `user` as the user service serves it; `None` when the user has no
    /// such address.
    pub async fn address(
        &self,
        user: Uuid,
        id: Uuid,
    ) -> Result<Option<serde_json::Value>, PeerError> {
        let reply = self
            .0
            .get(&format!("/internal/v1/users/{user}/addresses/{id}"))
            .await?;
        match reply.status.as_u16() {
            200 => Ok(Some(reply.body)),
            404 => Ok(None),
            _ => Err(self.0.unexpected(&reply, "an address lookup")),
        }
    }
}
