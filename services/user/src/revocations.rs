//! The deny-list's durable copy (ADR 0018): every revoked access token (logout) and session
//! (refresh-token reuse, password change) is recorded in PostgreSQL before Redis, and a worker
//! restores the Redis keys whenever Redis has lost them — it then sets
//! `auth:revocations-ready`, without which every service refuses to judge a token (503)
//! rather than accept a revoked one. A logout stays a logout across a Redis restart.

use std::time::Duration;

use kommerce_kit::auth::{deny_key, revocations_ready_key, session_revoked_key};
use kommerce_kit::cache::Redis;
use sqlx::PgPool;
use uuid::Uuid;

/// What is revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One access token, by `jti`.
    Token,
    /// Every access token of a login session, by `sid`.
    Session,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Session => "session",
        }
    }

    fn key(self, redis: &Redis, id: Uuid) -> String {
        match self {
            Self::Token => deny_key(redis, id),
            Self::Session => session_revoked_key(redis, id),
        }
    }
}

/// Records a revocation for `ttl` (before it goes to Redis).
pub async fn record(db: &PgPool, kind: Kind, id: Uuid, ttl: Duration) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO revocations (kind, id, expires_at) \
         VALUES ($1, $2, now() + make_interval(secs => $3)) \
         ON CONFLICT (kind, id) DO UPDATE SET expires_at = greatest(revocations.expires_at, EXCLUDED.expires_at)",
    )
    .bind(kind.as_str())
    .bind(id)
    .bind(ttl.as_secs_f64())
    .execute(db)
    .await?;
    Ok(())
}

/// When Redis does not say the list is complete: every unexpired revocation written back, then
/// the mark. Returns how many were restored (`None`: nothing was missing).
pub async fn restore_if_lost(db: &PgPool, redis: &Redis) -> anyhow::Result<Option<usize>> {
    let mut conn = redis.conn();
    let ready: bool = redis::cmd("EXISTS")
        .arg(revocations_ready_key(redis))
        .query_async(&mut conn)
        .await?;
    if ready {
        return Ok(None);
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // whole seconds left
    let rows: Vec<(String, Uuid, f64)> = sqlx::query_as(
        "SELECT kind, id, extract(epoch FROM expires_at - now())::float8 FROM revocations \
         WHERE expires_at > now()",
    )
    .fetch_all(db)
    .await?;
    let mut pipe = redis::pipe();
    for (kind, id, left) in &rows {
        let kind = if kind == "token" {
            Kind::Token
        } else {
            Kind::Session
        };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let secs = (left.ceil() as u64).max(1);
        pipe.set_ex(kind.key(redis, *id), 1, secs).ignore();
    }
    pipe.set(revocations_ready_key(redis), 1).ignore();
    pipe.query_async::<()>(&mut conn).await?;
    Ok(Some(rows.len()))
}

/// Keeps the deny-list whole until the service stops: restores it at once, then looks every
/// `every`; drops expired rows.
pub async fn keep(
    db: PgPool,
    redis: Redis,
    every: Duration,
    stop: impl Future<Output = ()> + Send,
) {
    tokio::pin!(stop);
    loop {
        match restore_if_lost(&db, &redis).await {
            Ok(Some(n)) => {
                tracing::warn!(
                    restored = n,
                    "the revocation list was missing from Redis: restored"
                );
                metrics::counter!("auth_revocations_restored_total").increment(1);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot check the revocation list; will retry"),
        }
        let _ = sqlx::query("DELETE FROM revocations WHERE expires_at < now()")
            .execute(&db)
            .await;
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
