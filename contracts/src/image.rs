//! The image service's internal API, as the item and review services call it: an upload
//! becomes an item's or a review's image by attachment, is given back by detachment (a
//! compensation) and goes with its owner.

use kommerce_kit::peer::{Peer, PeerError};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What an image can belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ImageOwnerKind)]
pub enum OwnerKind {
    Item,
    Review,
}

impl OwnerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Item => "item",
            Self::Review => "review",
        }
    }
}

/// `POST /internal/v1/images/{id}/attach`: `user_id` must be the uploader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ImageAttachRequest)]
pub struct AttachRequest {
    /// The user the owner is made for (the item's admin, the review's author): must be the
    /// uploader.
    pub user_id: Uuid,
    pub kind: OwnerKind,
    /// The item or review.
    pub owner_id: Uuid,
}

/// `POST /internal/v1/images/{id}/detach`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ImageDetachRequest)]
pub struct DetachRequest {
    pub kind: OwnerKind,
    /// The item or review the image is attached to.
    pub owner_id: Uuid,
}

/// Why an image could not be attached.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("no such image")]
    NotFound,
    #[error("the image was uploaded by someone else")]
    NotYours,
    #[error("the image already belongs to something else")]
    InUse,
    #[error(transparent)]
    Peer(#[from] PeerError),
}

/// An image of a request's `image_ids` that could not be attached: the request's field names
/// it (`image_ids[index]`).
#[derive(Debug, thiserror::Error)]
#[error("image_ids[{index}]: {error}")]
pub struct Refused {
    pub index: usize,
    pub error: AttachError,
}

/// 422 on `image_ids[i]` for a refusal, 503 (or 500) for a peer failure.
impl From<Refused> for kommerce_kit::http::ApiError {
    fn from(r: Refused) -> Self {
        match r.error {
            AttachError::Peer(e) => e.into(),
            refusal => Self::field(format!("image_ids[{}]", r.index), refusal.to_string()),
        }
    }
}

/// The image service's internal API.
#[derive(Debug, Clone)]
pub struct ImageClient(pub Peer);

impl ImageClient {
    /// Attaches `image` to `owner` as `user`'s upload. Attaching it again to the same owner
    /// succeeds.
    pub async fn attach(
        &self,
        image: Uuid,
        user: Uuid,
        kind: OwnerKind,
        owner: Uuid,
    ) -> Result<(), AttachError> {
        let request = AttachRequest {
            user_id: user,
            kind,
            owner_id: owner,
        };
        let reply = self
            .0
            .post(&format!("/internal/v1/images/{image}/attach"), &request)
            .await?;
        match reply.status.as_u16() {
            200 => Ok(()),
            404 => Err(AttachError::NotFound),
            403 => Err(AttachError::NotYours),
            409 => Err(AttachError::InUse),
            _ => Err(self.0.unexpected(&reply, "attach").into()),
        }
    }

    /// Attaches every image of `images` (each with its index in the request) in order; on the
    /// first refusal detaches those it attached, so that all or none are attached.
    pub async fn attach_all(
        &self,
        images: &[(usize, Uuid)],
        user: Uuid,
        kind: OwnerKind,
        owner: Uuid,
    ) -> Result<(), Refused> {
        for (n, &(index, image)) in images.iter().enumerate() {
            if let Err(error) = self.attach(image, user, kind, owner).await {
                self.detach_all(&images[..n], kind, owner).await;
                return Err(Refused { index, error });
            }
        }
        Ok(())
    }

    /// [`Self::detach`] for each of `images`.
    pub async fn detach_all(&self, images: &[(usize, Uuid)], kind: OwnerKind, owner: Uuid) {
        for &(_, image) in images {
            self.detach(image, kind, owner).await;
        }
    }

    /// Deletes images an owner no longer shows, best effort (idempotent; a failure leaves an
    /// orphan, logged).
    pub async fn delete_each(&self, images: &[Uuid]) {
        for &image in images {
            if let Err(e) = self.delete(image).await {
                tracing::warn!(%image, error = %e, "could not delete a removed image");
            }
        }
    }

    /// Compensation, best effort: the image becomes unattached again (the sweeper's clock
    /// restarts); a failure is logged.
    pub async fn detach(&self, image: Uuid, kind: OwnerKind, owner: Uuid) {
        let request = DetachRequest {
            kind,
            owner_id: owner,
        };
        let r = self
            .0
            .post(&format!("/internal/v1/images/{image}/detach"), &request)
            .await;
        if !matches!(&r, Ok(reply) if reply.is_success()) {
            tracing::warn!(%image, kind = kind.as_str(), %owner, "could not detach an image");
        }
    }

    /// Deletes one image (idempotent).
    pub async fn delete(&self, image: Uuid) -> Result<(), PeerError> {
        let reply = self
            .0
            .delete(&format!("/internal/v1/images/{image}"))
            .await?;
        self.0.success(reply, "delete").map(|_| ())
    }

    /// Deletes every image of an owner (idempotent).
    pub async fn delete_of(&self, kind: OwnerKind, owner: Uuid) -> Result<(), PeerError> {
        let reply = self
            .0
            .delete(&format!(
                "/internal/v1/images?kind={}&owner_id={owner}",
                kind.as_str()
            ))
            .await?;
        self.0
            .success(reply, "delete an owner's images")
            .map(|_| ())
    }
}
