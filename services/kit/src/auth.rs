//! Access tokens: EdDSA (Ed25519) JWTs signed by the user service alone and verified by every
//! service with the public key, plus a Redis deny-list that makes logout and session revocation
//! take effect on every service at once.
//!
//! Deny-list keys (shared by all services of a deployment, under the Redis key prefix):
//! - `auth:deny:<jti>`: one access token, until it would have expired (logout);
//! - `auth:session-revoked:<sid>`: every access token of one login session (reuse of a rotated
//!   refresh token, password change), for one access-token lifetime.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::AuthSettings;
use crate::cache::Redis;
use crate::http::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "customer" => Some(Self::Customer),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    pub role: Role,
    /// The login session (refresh-token family) this token belongs to.
    pub sid: Uuid,
    /// This token's id, the deny-list key.
    pub jti: Uuid,
    pub iss: String,
    pub iat: u64,
    pub exp: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("auth.public_key is not a base64url Ed25519 public key")]
    PublicKey,
    #[error("auth.signing_key is not a PKCS#8 Ed25519 private key (base64url or PEM)")]
    SigningKey,
    #[error("cannot generate a key pair")]
    Generate,
    #[error("auth.service_key is not a PKCS#8 Ed25519 private key (base64url or PEM)")]
    ServiceKey,
    #[error("auth.service_keys.{0} is not a base64url Ed25519 public key")]
    ServicePublicKey(String),
}

/// An Ed25519 private key as PKCS#8 DER with its public key, from the text of a setting or a
/// key file: base64url (what `kommerce up` writes) or PEM (`-----BEGIN PRIVATE KEY-----`, what
/// Helm's `genPrivateKey "ed25519"`, `openssl genpkey -algorithm ed25519` and cert-manager
/// write), PKCS#8 v1 (no public key inside) or v2. `None` when it is neither.
pub fn ed25519_private_key(text: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let text = text.trim();
    let der = if let Some(body) = text
        .strip_prefix("-----BEGIN PRIVATE KEY-----")
        .and_then(|rest| rest.trim_end().strip_suffix("-----END PRIVATE KEY-----"))
    {
        let b64: String = body.split_whitespace().collect();
        base64::engine::general_purpose::STANDARD.decode(b64).ok()?
    } else {
        URL_SAFE_NO_PAD.decode(text).ok()?
    };
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).ok()?;
    let public = pair.public_key().as_ref().to_vec();
    Some((der, public))
}

/// The public key, base64url (the form `auth.service_keys` and JWKS take), of a private key's
/// text ([`ed25519_private_key`]).
pub fn ed25519_public_key(private: &str) -> Option<String> {
    ed25519_private_key(private).map(|(_, public)| URL_SAFE_NO_PAD.encode(public))
}

/// The private keys of a key file, in order: PEM blocks, or else one base64url key per line
/// (blank lines and `#` comments ignored). `None` if any of them is not a key.
pub fn ed25519_private_keys(text: &str) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    const END: &str = "-----END PRIVATE KEY-----";
    if text.contains("-----BEGIN") {
        return text
            .split_inclusive(END)
            .filter(|block| !block.trim().is_empty())
            .map(ed25519_private_key)
            .collect();
    }
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(ed25519_private_key)
        .collect()
}

/// A fresh Ed25519 key pair as `(signing_key, public_key)`, both base64url, in the form
/// [`AuthSettings`] expects. Used by `kommerce up` and tests; production keys come from a Secret.
pub fn generate_key_pair() -> Result<(String, String), KeyError> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Generate)?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| KeyError::Generate)?;
    Ok((
        URL_SAFE_NO_PAD.encode(pkcs8.as_ref()),
        URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
    ))
}

/// Clock skew tolerated on `exp`, seconds (access tokens and service credentials).
pub(crate) const LEEWAY_SECS: u64 = 5;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn deny_key(redis: &Redis, jti: Uuid) -> String {
    redis.key(&["auth", "deny", &jti.to_string()])
}

pub fn session_revoked_key(redis: &Redis, sid: Uuid) -> String {
    redis.key(&["auth", "session-revoked", &sid.to_string()])
}

/// Present while Redis holds every revocation: the user service sets it after restoring them
/// from its database (a Redis that lost its keys lost the deny-list too). Without it every
/// service refuses to judge a token (503) rather than accept a revoked one.
pub fn revocations_ready_key(redis: &Redis) -> String {
    redis.key(REVOCATIONS_READY)
}

/// The parts of [`revocations_ready_key`] under a service's key prefix.
pub(crate) const REVOCATIONS_READY: &[&str] = &["auth", "revocations-ready"];

/// Signs access tokens, each naming its key (`kid`). Only the user service builds one.
pub struct TokenSigner {
    keys: crate::jwks::SigningKeys,
    issuer: String,
    ttl: Duration,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("issuer", &self.issuer)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// From `auth.signing_keys_file` (re-read when it changes) or `auth.signing_key`.
    pub fn new(settings: &AuthSettings) -> Result<Self, KeyError> {
        Ok(Self {
            keys: crate::jwks::SigningKeys::new(settings)?,
            issuer: settings.issuer.clone(),
            ttl: Duration::from_secs(settings.access_ttl_secs),
        })
    }

    /// The published keys: every key of the key file, the signing one first.
    pub fn jwks(&self) -> crate::jwks::JwkSet {
        self.keys.jwks()
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new access token for `user` in login session `sid`.
    pub fn sign(&self, user: Uuid, role: Role, sid: Uuid) -> Result<(String, Claims), ApiError> {
        let iat = now_secs();
        let claims = Claims {
            sub: user,
            role,
            sid,
            jti: Uuid::new_v4(),
            iss: self.issuer.clone(),
            iat,
            exp: iat + self.ttl.as_secs(),
        };
        let keys = self.keys.current();
        let key = keys
            .first()
            .ok_or_else(|| ApiError::internal(KeyError::SigningKey))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        let token =
            jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(ApiError::internal)?;
        Ok((token, claims))
    }
}

/// Verifies access tokens: the key their `kid` names (`auth.public_key`, or the user service's
/// published keys at `auth.jwks_url`), signature, issuer, expiry, then the deny-list.
pub struct TokenVerifier {
    /// `auth.public_key`, with its `kid` (none configured: only the published keys).
    fixed: Option<(String, DecodingKey)>,
    jwks: Option<Arc<crate::jwks::JwksCache>>,
    validation: Validation,
    redis: Redis,
    /// The public keys of the services that may call this one's internal API.
    services: crate::credential::Keyring,
    /// Tokens whose signature and claims checked out lately, with the id of the key that
    /// signed them.
    verified: crate::verified::Verified<(Claims, String)>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").finish_non_exhaustive()
    }
}

impl TokenVerifier {
    pub fn new(settings: &AuthSettings, redis: Redis) -> Result<Self, KeyError> {
        let jwks = (!settings.jwks_url.is_empty()).then(|| {
            crate::jwks::JwksCache::new(
                &settings.jwks_url,
                Duration::from_secs(settings.jwks_refresh_secs.max(1)),
            )
        });
        let fixed = if settings.public_key.is_empty() && jwks.is_some() {
            None
        } else {
            let raw = URL_SAFE_NO_PAD
                .decode(&settings.public_key)
                .map_err(|_| KeyError::PublicKey)?;
            if raw.len() != 32 {
                return Err(KeyError::PublicKey);
            }
            Some((crate::jwks::kid(&raw), DecodingKey::from_ed_der(&raw)))
        };
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = LEEWAY_SECS;
        Ok(Self {
            fixed,
            jwks,
            validation,
            redis,
            services: crate::credential::Keyring::new(settings)?,
            verified: crate::verified::Verified::default(),
        })
    }

    pub fn redis(&self) -> &Redis {
        &self.redis
    }

    /// The keys a token naming `kid` may be signed with: the configured key if it is that one,
    /// else the published key of that id. A token naming no key (issued before keys had ids)
    /// is tried against every key held.
    async fn keys_for(&self, kid: Option<&str>) -> Result<Vec<DecodingKey>, ApiError> {
        let Some(kid) = kid else {
            let mut all: Vec<DecodingKey> = self.fixed.iter().map(|(_, k)| k.clone()).collect();
            all.extend(self.jwks.iter().flat_map(|j| j.all()));
            return Ok(all);
        };
        if let Some((_, key)) = self.fixed.as_ref().filter(|(id, _)| id == kid) {
            return Ok(vec![key.clone()]);
        }
        let Some(jwks) = &self.jwks else {
            return Err(ApiError::Unauthorized);
        };
        match jwks.key(kid).await {
            Ok(key) => Ok(vec![key]),
            Err(crate::jwks::Lookup::Unknown) => Err(ApiError::Unauthorized),
            // A key may exist that cannot be looked up now: not the caller's fault.
            Err(crate::jwks::Lookup::Unavailable) => Err(ApiError::unavailable(
                "authentication is temporarily unavailable",
            )),
        }
    }

    /// The claims of a token signed by one of the keys and valid now (issuer, expiry), and
    /// the id of its key when it names one.
    async fn verify_signature(&self, token: &str) -> Result<(Claims, Option<String>), ApiError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| ApiError::Unauthorized)?;
        let keys = self.keys_for(header.kid.as_deref()).await?;
        let claims = keys
            .iter()
            .find_map(|key| jsonwebtoken::decode::<Claims>(token, key, &self.validation).ok())
            .ok_or(ApiError::Unauthorized)?
            .claims;
        Ok((claims, header.kid))
    }

    /// The keys service credentials are verified with.
    pub fn services(&self) -> &crate::credential::Keyring {
        &self.services
    }

    /// The claims of a valid, unrevoked token. A revocation check that cannot reach Redis
    /// fails closed (503): a logged-out token must never work because Redis blinked.
    /// A token that verified within the last [`crate::verified::HOLD`] seconds, signed by a
    /// key still held, is not verified again; the revocation check runs every time.
    pub async fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let seen = match self.verified.get(token) {
            Some((claims, kid)) if self.keys_for(Some(&kid)).await.is_ok() => Some(claims),
            _ => None,
        };
        let claims = if let Some(claims) = seen {
            claims
        } else {
            let (claims, kid) = self.verify_signature(token).await?;
            if let Some(kid) = kid {
                let expires = claims.exp + LEEWAY_SECS;
                self.verified.insert(token, (claims.clone(), kid), expires);
            }
            claims
        };
        let keys = [
            deny_key(&self.redis, claims.jti),
            session_revoked_key(&self.redis, claims.sid),
        ];
        let (revoked, ready): (u32, u32) = redis::pipe()
            .cmd("EXISTS")
            .arg(&keys)
            .cmd("EXISTS")
            .arg(revocations_ready_key(&self.redis))
            .query_async(&mut self.redis.conn())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "token revocation check failed");
                ApiError::unavailable("authentication is temporarily unavailable")
            })?;
        if revoked > 0 {
            return Err(ApiError::Unauthorized);
        }
        if ready == 0 {
            // Redis lost its keys (restart, flush) and the deny-list is not restored yet.
            tracing::warn!("the revocation list is not restored yet; refusing to judge tokens");
            return Err(ApiError::unavailable(
                "authentication is temporarily unavailable",
            ));
        }
        Ok(claims)
    }
}

/// The caller, from a valid `Authorization: Bearer` access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    pub id: Uuid,
    pub role: Role,
    pub session_id: Uuid,
    pub token_id: Uuid,
    /// Unix seconds when the access token expires.
    pub expires_at: u64,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Seconds the access token has left to live (at least 1).
    pub fn remaining_secs(&self) -> u64 {
        self.expires_at.saturating_sub(now_secs()).max(1)
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<TokenVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        let verifier = Arc::<TokenVerifier>::from_ref(state);
        let claims = verifier.verify(token.trim()).await?;
        Ok(Self {
            id: claims.sub,
            role: claims.role,
            session_id: claims.sid,
            token_id: claims.jti,
            expires_at: claims.exp,
        })
    }
}

/// An authenticated admin; any other caller gets 403 (401 without a valid token).
#[derive(Debug, Clone, Copy)]
pub struct AdminUser(pub AuthUser);

impl<S> FromRequestParts<S> for AdminUser
where
    Arc<TokenVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if user.is_admin() {
            Ok(Self(user))
        } else {
            Err(ApiError::Forbidden("admin role required".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AuthSettings {
        let (signing, public) = generate_key_pair().unwrap();
        AuthSettings {
            public_key: public,
            signing_key: crate::Secret::new(signing),
            ..AuthSettings::default()
        }
    }

    #[test]
    fn a_signed_token_decodes_with_the_public_key_only() {
        let s = settings();
        let signer = TokenSigner::new(&s).unwrap();
        let (token, claims) = signer
            .sign(Uuid::new_v4(), Role::Admin, Uuid::new_v4())
            .unwrap();
        let key = DecodingKey::from_ed_der(&URL_SAFE_NO_PAD.decode(&s.public_key).unwrap());
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_issuer(&["kommerce"]);
        let decoded = jsonwebtoken::decode::<Claims>(&token, &key, &v)
            .unwrap()
            .claims;
        assert_eq!(decoded.sub, claims.sub);
        assert_eq!(decoded.role, Role::Admin);
        assert_eq!(decoded.exp - decoded.iat, 15 * 60);

        // Another deployment's key does not verify it.
        let other = settings();
        let other_key =
            DecodingKey::from_ed_der(&URL_SAFE_NO_PAD.decode(&other.public_key).unwrap());
        assert!(jsonwebtoken::decode::<Claims>(&token, &other_key, &v).is_err());
    }

    #[test]
    fn malformed_keys_are_rejected_at_start_up() {
        let mut s = settings();
        s.signing_key = crate::Secret::new("not-a-key");
        assert!(matches!(TokenSigner::new(&s), Err(KeyError::SigningKey)));
    }
}
