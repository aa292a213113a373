//! Deletes unattached images older than `images.unattached_max_age_secs`: uploads that no item
//! or review ever referenced.

use std::future::Future;
use std::time::Duration;

use sqlx::PgPool;

use crate::storage::Blobs;
use crate::store;

const BATCH: i64 = 100;

#[derive(Debug, Clone)]
pub struct Sweeper {
    db: PgPool,
    blobs: Blobs,
    max_age_secs: i64,
}

impl Sweeper {
    pub fn new(db: PgPool, blobs: Blobs, max_age: Duration) -> Self {
        Self {
            db,
            blobs,
            max_age_secs: i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
        }
    }

    /// One full pass; returns how many images it deleted. Safe in several replicas at once
    /// (`FOR UPDATE SKIP LOCKED`).
    pub async fn sweep_once(&self) -> Result<usize, sqlx::Error> {
        let mut total = 0;
        loop {
            let gone = store::delete_stale_unattached(&self.db, self.max_age_secs, BATCH).await?;
            for (id, version) in &gone {
                self.blobs.forget_version(*id, *version).await;
            }
            total += gone.len();
            if gone.len() < usize::try_from(BATCH).unwrap_or(usize::MAX) {
                break;
            }
        }
        if total > 0 {
            tracing::info!(deleted = total, "swept unattached images");
            metrics::counter!("image_swept_total").increment(total as u64);
        }
        Ok(total)
    }

    /// Sweeps every `interval` (first after one interval) until `stop`.
    pub async fn run(self, interval: Duration, stop: impl Future<Output = ()> + Send) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(interval) => {}
            }
            if let Err(e) = self.sweep_once().await {
                tracing::warn!(error = %e, "sweep failed; will retry");
            }
        }
    }
}
