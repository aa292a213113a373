//! argon2id password hashing, off the async executor.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use kommerce_kit::http::ApiError;

use crate::domain::Password;

/// argon2id with the crate's defaults (OWASP: m = 19 MiB, t = 2, p = 1).
fn hasher() -> Argon2<'static> {
    Argon2::default()
}

pub async fn hash(password: &Password) -> Result<String, ApiError> {
    let plain = password.expose().to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(plain.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await
    .map_err(ApiError::internal)?
}

/// Whether `plain` matches `stored`. With `stored = None` (unknown account) a dummy hash is
/// checked, so that an unknown e-mail costs as much time as a wrong password.
pub async fn verify(plain: &str, stored: Option<String>) -> Result<bool, ApiError> {
    let plain = plain.to_owned();
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| dummy_hash().to_owned());
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        hasher().verify_password(plain.as_bytes(), &parsed).is_ok() && known
    })
    .await
    .map_err(ApiError::internal)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(b"no account has this password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip() {
        let p = Password::parse("correct horse battery").unwrap();
        let h = hash(&p).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(
            verify("correct horse battery", Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("wrong horse battery", Some(h)).await.unwrap());
        assert!(!verify("no account has this password", None).await.unwrap());
    }
}
