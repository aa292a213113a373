//! Login sessions: rotating refresh tokens in Redis.
//!
//! A session (`sid`) is a family of refresh tokens. Each refresh token is 32 random bytes,
//! stored only as its SHA-256 under `user:refresh:<hash>` (a hash with `user`, `sid`, `state`),
//! and is good for one use: using it marks it `rotated` (atomically, by a Lua script) and issues
//! the next token of the family. Presenting a `rotated` token again means it was stolen or
//! replayed, so the whole family is revoked. Keys:
//! - `user:refresh:<hash>`: one token (TTL: the refresh lifetime);
//! - `user:session:<sid>`: the set of the family's token hashes;
//! - `user:sessions:<user>`: the set of the user's live session ids.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kommerce_kit::auth::{deny_key, session_revoked_key};
use kommerce_kit::cache::Redis;
use kommerce_kit::http::ApiError;
use rand::RngCore;
use redis::AsyncCommands;
use uuid::Uuid;

/// Marks an active token rotated and returns its previous state, user and session.
const ROTATE: &str = r"
local fields = redis.call('HMGET', KEYS[1], 'state', 'user', 'sid')
if not fields[1] then return false end
if fields[1] == 'active' then redis.call('HSET', KEYS[1], 'state', 'rotated') end
return fields
";

#[derive(Debug, Clone)]
pub struct Sessions {
    /// Where revocations are recorded durably (`crate::revocations`).
    db: sqlx::PgPool,
    redis: Redis,
    refresh_ttl: Duration,
    access_ttl: Duration,
}

/// A verified, just-rotated refresh token.
#[derive(Debug)]
pub struct Rotated {
    pub user: Uuid,
    pub sid: Uuid,
    pub refresh_token: String,
}

fn unavailable(e: &redis::RedisError) -> ApiError {
    tracing::error!(error = %e, "session store failed");
    ApiError::unavailable("sessions are temporarily unavailable")
}

fn token_hash(token: &str) -> String {
    kommerce_kit::digest::sha256_hex(token.as_bytes(), 32)
}

impl Sessions {
    pub fn new(
        db: sqlx::PgPool,
        redis: Redis,
        refresh_ttl: Duration,
        access_ttl: Duration,
    ) -> Self {
        Self {
            db,
            redis,
            refresh_ttl,
            access_ttl,
        }
    }

    pub fn refresh_ttl(&self) -> Duration {
        self.refresh_ttl
    }

    fn token_key(&self, hash: &str) -> String {
        self.redis.key(&["user", "refresh", hash])
    }

    fn family_key(&self, sid: Uuid) -> String {
        self.redis.key(&["user", "session", &sid.to_string()])
    }

    fn user_key(&self, user: Uuid) -> String {
        self.redis.key(&["user", "sessions", &user.to_string()])
    }

    /// Stores a new refresh token of session `sid` and returns it.
    async fn issue(&self, user: Uuid, sid: Uuid) -> Result<String, ApiError> {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let hash = token_hash(&token);
        let ttl = i64::try_from(self.refresh_ttl.as_secs()).unwrap_or(i64::MAX);
        let key = self.token_key(&hash);
        redis::pipe()
            .atomic()
            .hset_multiple(
                &key,
                &[
                    ("state", "active"),
                    ("user", &user.to_string()),
                    ("sid", &sid.to_string()),
                ],
            )
            .expire(&key, ttl)
            .sadd(self.family_key(sid), &hash)
            .expire(self.family_key(sid), ttl)
            .sadd(self.user_key(user), sid.to_string())
            .expire(self.user_key(user), ttl)
            .query_async::<()>(&mut self.redis.conn())
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(token)
    }

    /// Starts a login session: a new `sid` and its first refresh token.
    pub async fn start(&self, user: Uuid) -> Result<(Uuid, String), ApiError> {
        let sid = Uuid::new_v4();
        let token = self.issue(user, sid).await?;
        Ok((sid, token))
    }

    /// Uses a refresh token once. Unknown or expired → 401; already used → the session is
    /// revoked (reuse detection) and 401.
    pub async fn rotate(&self, token: &str) -> Result<Rotated, ApiError> {
        let fields: Option<Vec<Option<String>>> = redis::Script::new(ROTATE)
            .key(self.token_key(&token_hash(token)))
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(|e| unavailable(&e))?;
        let Some([Some(state), Some(user), Some(sid)]) =
            fields.and_then(|f| <[_; 3]>::try_from(f).ok())
        else {
            return Err(ApiError::Unauthorized);
        };
        let (Ok(user), Ok(sid)) = (user.parse::<Uuid>(), sid.parse::<Uuid>()) else {
            return Err(ApiError::Unauthorized);
        };
        if state != "active" {
            tracing::warn!(%user, %sid, "refresh token reused: revoking the session");
            self.revoke(user, sid).await?;
            return Err(ApiError::Unauthorized);
        }
        let refresh_token = self.issue(user, sid).await?;
        Ok(Rotated {
            user,
            sid,
            refresh_token,
        })
    }

    /// Ends session `sid`: its refresh tokens are deleted and every access token issued in it
    /// is refused by every service from now on.
    pub async fn revoke(&self, user: Uuid, sid: Uuid) -> Result<(), ApiError> {
        crate::revocations::record(
            &self.db,
            crate::revocations::Kind::Session,
            sid,
            self.access_ttl,
        )
        .await?;
        let mut conn = self.redis.conn();
        let hashes: Vec<String> = conn
            .smembers(self.family_key(sid))
            .await
            .map_err(|e| unavailable(&e))?;
        let access_ttl = self.access_ttl.as_secs().max(1);
        let mut pipe = redis::pipe();
        pipe.atomic();
        for h in &hashes {
            pipe.del(self.token_key(h));
        }
        pipe.del(self.family_key(sid))
            .srem(self.user_key(user), sid.to_string())
            .set_ex(session_revoked_key(&self.redis, sid), 1, access_ttl);
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| unavailable(&e))
    }

    /// Ends every session of `user` except `keep` (password change).
    pub async fn revoke_others(&self, user: Uuid, keep: Uuid) -> Result<usize, ApiError> {
        let sids: Vec<String> = self
            .redis
            .conn()
            .smembers(self.user_key(user))
            .await
            .map_err(|e| unavailable(&e))?;
        let mut revoked = 0;
        for sid in sids
            .iter()
            .filter_map(|s| s.parse::<Uuid>().ok())
            .filter(|s| *s != keep)
        {
            self.revoke(user, sid).await?;
            revoked += 1;
        }
        Ok(revoked)
    }

    /// Refuses one access token until it would have expired anyway.
    pub async fn deny_access_token(&self, jti: Uuid, remaining_secs: u64) -> Result<(), ApiError> {
        crate::revocations::record(
            &self.db,
            crate::revocations::Kind::Token,
            jti,
            Duration::from_secs(remaining_secs.max(1)),
        )
        .await?;
        self.redis
            .conn()
            .set_ex::<_, _, ()>(deny_key(&self.redis, jti), 1, remaining_secs.max(1))
            .await
            .map_err(|e| unavailable(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::token_hash;

    #[test]
    fn stores_only_a_digest() {
        let h = token_hash("abc");
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
