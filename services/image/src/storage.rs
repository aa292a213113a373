//! The bytes, behind `object_store`: a local directory by default, an S3-compatible bucket by
//! configuration. Object names are built from the image id, version and variant only.
//!
//! The local backend writes each object to a temporary file in the target directory and
//! renames it into place, so a reader never sees a half-written file.

use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use uuid::Uuid;

use crate::config::{Backend, StorageSettings};
use crate::domain::Variant;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot create the storage directory {0}")]
    Directory(String, #[source] std::io::Error),
    #[error("storage.s3.bucket must be set for the s3 backend")]
    NoBucket,
    #[error(transparent)]
    Store(#[from] object_store::Error),
}

#[derive(Debug, Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
}

/// `<id>/<version>/<variant>`
pub fn object_name(id: Uuid, version: i32, variant: Variant) -> Path {
    Path::from(format!("{id}/{version}/{}", variant.as_str()))
}

impl Blobs {
    pub fn open(settings: &StorageSettings) -> Result<Self, StorageError> {
        let store: Arc<dyn ObjectStore> = match settings.backend {
            Backend::Local => {
                std::fs::create_dir_all(&settings.path)
                    .map_err(|e| StorageError::Directory(settings.path.clone(), e))?;
                Arc::new(LocalFileSystem::new_with_prefix(&settings.path)?)
            }
            Backend::S3 => {
                let s3 = &settings.s3;
                if s3.bucket.trim().is_empty() {
                    return Err(StorageError::NoBucket);
                }
                let mut b = AmazonS3Builder::new()
                    .with_bucket_name(&s3.bucket)
                    .with_allow_http(s3.allow_http);
                if !s3.region.is_empty() {
                    b = b.with_region(&s3.region);
                }
                if !s3.endpoint.is_empty() {
                    b = b.with_endpoint(&s3.endpoint);
                }
                if !s3.access_key_id.is_empty() {
                    b = b
                        .with_access_key_id(&s3.access_key_id)
                        .with_secret_access_key(s3.secret_access_key.expose());
                }
                Arc::new(b.build()?)
            }
        };
        Ok(Self { store })
    }

    pub async fn put(
        &self,
        id: Uuid,
        version: i32,
        variant: Variant,
        bytes: Vec<u8>,
    ) -> Result<(), StorageError> {
        self.store
            .put(
                &object_name(id, version, variant),
                PutPayload::from(Bytes::from(bytes)),
            )
            .await?;
        Ok(())
    }

    /// The object's bytes; `None` when it does not exist.
    pub async fn get(
        &self,
        id: Uuid,
        version: i32,
        variant: Variant,
    ) -> Result<Option<Bytes>, StorageError> {
        match self.store.get(&object_name(id, version, variant)).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes both variants of one version; missing objects are fine (idempotent).
    pub async fn delete_version(&self, id: Uuid, version: i32) -> Result<(), StorageError> {
        for variant in [Variant::Original, Variant::Thumb] {
            match self.store.delete(&object_name(id, version, variant)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Best effort after a commit: a failure leaves an orphan object, logged, never an error.
    pub async fn forget_version(&self, id: Uuid, version: i32) {
        if let Err(e) = self.delete_version(id, version).await {
            tracing::warn!(%id, version, error = %e, "could not delete image objects");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::S3Settings;

    #[test]
    fn object_names_come_from_ids_only() {
        let id = Uuid::nil();
        assert_eq!(
            object_name(id, 3, Variant::Thumb).as_ref(),
            "00000000-0000-0000-0000-000000000000/3/thumb"
        );
    }

    #[test]
    fn an_s3_compatible_store_is_configured_without_touching_the_network() {
        let settings = StorageSettings {
            backend: Backend::S3,
            path: String::new(),
            s3: S3Settings {
                bucket: "shop-images".into(),
                region: "eu-west-1".into(),
                endpoint: "http://127.0.0.1:9000".into(),
                access_key_id: "key".into(),
                secret_access_key: kommerce_kit::Secret::new("secret"),
                allow_http: true,
            },
        };
        assert!(Blobs::open(&settings).is_ok());
        let missing_bucket = StorageSettings {
            s3: S3Settings::default(),
            ..settings
        };
        assert!(Blobs::open(&missing_bucket).is_err());
    }
}
