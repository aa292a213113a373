//! The image service, as the item service uses it: an admin's uploads become the item's images
//! when the item references them, and go when the item is deleted.

use axum::http::StatusCode;
use kommerce_kit::http::ApiError;
use kommerce_kit::peer::Peer;
use serde_json::json;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Images(pub Peer);

impl Images {
    /// Attaches `images` (with their index in the request) to `item` as `admin`'s; on the first
    /// refusal detaches those already attached and answers 422 on `image_ids[i]` (or 503).
    pub async fn attach_all(
        &self,
        images: &[(usize, Uuid)],
        admin: Uuid,
        item: Uuid,
    ) -> Result<(), ApiError> {
        for (n, (index, image)) in images.iter().enumerate() {
            let refused = match self
                .0
                .post(
                    &format!("/internal/v1/images/{image}/attach"),
                    &json!({"user_id": admin, "kind": "item", "owner_id": item}),
                )
                .await
            {
                Ok(r) if r.status == StatusCode::OK => None,
                Ok(r) => Some(ApiError::field(
                    format!("image_ids[{index}]"),
                    match r.status {
                        StatusCode::NOT_FOUND => "no such image",
                        StatusCode::FORBIDDEN => "the image was uploaded by someone else",
                        StatusCode::CONFLICT => "the image already belongs to something else",
                        _ => "the image cannot be attached",
                    },
                )),
                Err(e) => Some(e.into()),
            };
            if let Some(e) = refused {
                self.detach_all(&images[..n], item).await;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Compensation, best effort: the images become unattached again.
    pub async fn detach_all(&self, images: &[(usize, Uuid)], item: Uuid) {
        for (_, image) in images {
            let r = self
                .0
                .post(
                    &format!("/internal/v1/images/{image}/detach"),
                    &json!({"kind": "item", "owner_id": item}),
                )
                .await;
            if !matches!(&r, Ok(reply) if reply.is_success()) {
                tracing::warn!(%image, %item, "could not detach an image");
            }
        }
    }

    /// Deletes images an item no longer shows (idempotent; failures are logged).
    pub async fn delete(&self, images: &[Uuid]) {
        for image in images {
            let r = self.0.delete(&format!("/internal/v1/images/{image}")).await;
            if !matches!(&r, Ok(reply) if reply.is_success()) {
                tracing::warn!(%image, "could not delete a removed item image");
            }
        }
    }

    /// Deletes every image of `item` (idempotent).
    pub async fn delete_of_item(&self, item: Uuid) -> Result<(), ApiError> {
        let reply = self
            .0
            .delete(&format!("/internal/v1/images?kind=item&owner_id={item}"))
            .await?;
        if reply.is_success() {
            Ok(())
        } else {
            Err(ApiError::internal(format!(
                "image service answered {} to delete an item's images",
                reply.status
            )))
        }
    }
}
