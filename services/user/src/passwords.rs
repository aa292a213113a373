//! argon2id password hashing on a small pool of dedicated threads.
//!
//! Each worker owns one argon2 memory buffer (19 MiB with the default parameters) and reuses it
//! for every hash, so memory stays at workers × 19 MiB however many logins arrive; letting every
//! hash allocate its own buffer on tokio's blocking threads left hundreds of MiB in the
//! allocator's per-thread arenas after a burst of logins. The pool also bounds the CPU that
//! hashing takes: as many workers as cores, the rest of the requests wait their turn.

use std::sync::{Mutex, OnceLock, mpsc};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use kommerce_kit::http::ApiError;
use tokio::sync::oneshot;

use crate::domain::Password;

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

fn pool() -> &'static mpsc::Sender<Job> {
    static POOL: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        let workers = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        for i in 0..workers {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    let mut memory = Vec::new();
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut memory),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-hashing thread");
            }
        }
        tx
    })
}

/// Runs `f` on a hashing worker with its reusable memory.
async fn on_worker<T: Send + 'static>(
    f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let (reply, result) = oneshot::channel();
    pool()
        .send(Box::new(move |memory| {
            let _ = reply.send(f(memory));
        }))
        .map_err(|_| ApiError::internal("password hashing stopped"))?;
    result
        .await
        .map_err(|_| ApiError::internal("password hashing stopped"))
}

/// argon2id with OWASP's parameters (m = 19 MiB, t = 2, p = 1), the crate's defaults.
fn hasher(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_into(
    memory: &mut Vec<Block>,
    plain: &[u8],
) -> Result<String, argon2::password_hash::Error> {
    let params = Params::default();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_buf)?;
    memory.resize(params.block_count(), Block::default());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    hasher(params.clone()).hash_password_into_with_memory(
        plain,
        salt_bytes,
        &mut out,
        &mut memory[..],
    )?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out)?),
    };
    Ok(phc.to_string())
}

fn verify_into(
    memory: &mut Vec<Block>,
    plain: &[u8],
    stored: &str,
) -> Result<bool, argon2::password_hash::Error> {
    let phc = PasswordHash::new(stored)?;
    let params = Params::try_from(&phc)?;
    let expected = phc.hash.ok_or(argon2::password_hash::Error::Password)?;
    let salt = phc.salt.ok_or(argon2::password_hash::Error::Password)?;
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf)?;
    memory.resize(params.block_count(), Block::default());
    let mut out = vec![0u8; expected.len()];
    hasher(params).hash_password_into_with_memory(plain, salt_bytes, &mut out, &mut memory[..])?;
    // `Output` compares in constant time.
    Ok(Output::new(&out)? == expected)
}

pub async fn hash(password: &Password) -> Result<String, ApiError> {
    let plain = password.expose().to_owned();
    on_worker(move |memory| hash_into(memory, plain.as_bytes()))
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Whether `plain` matches `stored`. With `stored = None` (unknown account) a dummy hash is
/// checked, so that an unknown e-mail costs as much time as a wrong password.
pub async fn verify(plain: &str, stored: Option<String>) -> Result<bool, ApiError> {
    let plain = plain.to_owned();
    on_worker(move |memory| {
        let known = stored.is_some();
        let stored = match stored {
            Some(s) => s,
            None => dummy_hash(memory),
        };
        verify_into(memory, plain.as_bytes(), &stored).unwrap_or(false) && known
    })
    .await
}

fn dummy_hash(memory: &mut Vec<Block>) -> String {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY
        .get_or_init(|| hash_into(memory, b"no account has this password").unwrap_or_default())
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    #[tokio::test]
    async fn round_trip() {
        let p = Password::parse("correct horse battery").unwrap();
        let h = hash(&p).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(
            verify("correct horse battery", Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify("wrong horse battery", Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("no account has this password", None).await.unwrap());
        // The standard verifier agrees: the stored strings are ordinary PHC argon2id hashes.
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
    }

    #[tokio::test]
    async fn hashes_made_by_the_standard_hasher_verify() {
        use argon2::PasswordHasher;
        let salt = SaltString::generate(&mut OsRng);
        let h = Argon2::default()
            .hash_password(b"made elsewhere 123", &salt)
            .unwrap()
            .to_string();
        assert!(verify("made elsewhere 123", Some(h)).await.unwrap());
    }
}
