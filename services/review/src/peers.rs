//! The review service's calls to the order service (verified purchase) and the image service
//! (attaching and deleting a review's images).

use axum::http::StatusCode;
use kommerce_kit::http::ApiError;
use kommerce_kit::peer::{Peer, PeerError};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Orders(pub Peer);

#[derive(Debug, Deserialize)]
struct Purchased {
    purchased: bool,
}

impl Orders {
    /// Whether `user` has a paid, not-cancelled order with a line for `item`.
    pub async fn purchased(&self, user: Uuid, item: Uuid) -> Result<bool, ApiError> {
        let reply = self
            .0
            .get(&format!(
                "/internal/v1/purchases?user_id={user}&item_id={item}"
            ))
            .await?;
        if reply.status != StatusCode::OK {
            return Err(ApiError::internal(format!(
                "order service answered {} to a purchase check",
                reply.status
            )));
        }
        Ok(reply.json::<Purchased>("order")?.purchased)
    }
}

#[derive(Debug, Clone)]
pub struct Images(pub Peer);

/// Why an image could not be attached.
#[derive(Debug)]
pub enum AttachError {
    NotFound,
    NotYours,
    InUse,
    Peer(ApiError),
}

impl From<PeerError> for AttachError {
    fn from(e: PeerError) -> Self {
        Self::Peer(e.into())
    }
}

impl Images {
    pub async fn attach(&self, image: Uuid, user: Uuid, review: Uuid) -> Result<(), AttachError> {
        let reply = self
            .0
            .post(
                &format!("/internal/v1/images/{image}/attach"),
                &json!({"user_id": user, "kind": "review", "owner_id": review}),
            )
            .await?;
        match reply.status {
            StatusCode::OK => Ok(()),
            StatusCode::NOT_FOUND => Err(AttachError::NotFound),
            StatusCode::FORBIDDEN => Err(AttachError::NotYours),
            StatusCode::CONFLICT => Err(AttachError::InUse),
            other => Err(AttachError::Peer(ApiError::internal(format!(
                "image service answered {other} to attach"
            )))),
        }
    }

    /// Compensation: gives the image back to its uploader as unattached. Best effort (the
    /// sweeper's clock restarts; a failure is logged).
    pub async fn detach(&self, image: Uuid, review: Uuid) {
        let r = self
            .0
            .post(
                &format!("/internal/v1/images/{image}/detach"),
                &json!({"kind": "review", "owner_id": review}),
            )
            .await;
        if !matches!(&r, Ok(reply) if reply.is_success()) {
            tracing::warn!(%image, %review, "could not detach an image");
        }
    }

    /// Deletes one image (idempotent).
    pub async fn delete(&self, image: Uuid) -> Result<(), ApiError> {
        let reply = self
            .0
            .delete(&format!("/internal/v1/images/{image}"))
            .await?;
        if reply.is_success() {
            Ok(())
        } else {
            Err(ApiError::internal(format!(
                "image service answered {} to delete",
                reply.status
            )))
        }
    }

    /// Deletes every image of a review (idempotent).
    pub async fn delete_of_review(&self, review: Uuid) -> Result<(), ApiError> {
        let reply = self
            .0
            .delete(&format!(
                "/internal/v1/images?kind=review&owner_id={review}"
            ))
            .await?;
        if reply.is_success() {
            Ok(())
        } else {
            Err(ApiError::internal(format!(
                "image service answered {} to delete a review's images",
                reply.status
            )))
        }
    }
}
