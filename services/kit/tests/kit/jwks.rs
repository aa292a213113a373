//! Verifying by `kid` from the user service's published keys (a stub serving a JWKS document
//! that the test edits, and a real key file for the signer): a new key is learnt the moment a
//! token names it, a retired one is refused once the cache refreshes, and an unreachable
//! document is a 503, never a 401 for a token that may be valid.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use kommerce_kit::auth::{Role, TokenSigner, TokenVerifier, generate_key_pair};
use kommerce_kit::cache::Redis;
use kommerce_kit::http::ApiError;
use kommerce_kit::testing::{RedisNamespace, eventually, serve_stub};
use kommerce_kit::{AuthSettings, Secret};
use uuid::Uuid;

/// The user service's signer over a key file in a temporary directory.
struct KeyFile {
    dir: std::path::PathBuf,
}

impl KeyFile {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("kommerce-keys-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.join("signing-keys")
    }

    fn write(&self, keys: &[&str]) {
        // As the kubelet updates a mounted Secret: a new file moved into place.
        let tmp = self.dir.join("next");
        std::fs::write(&tmp, keys.join("\n")).unwrap();
        std::fs::rename(&tmp, self.path()).unwrap();
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Key files are looked at every second, caches refresh every second.
const LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

fn token(signer: &TokenSigner) -> String {
    signer
        .sign(Uuid::new_v4(), Role::Customer, Uuid::new_v4())
        .unwrap()
        .0
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test]
async fn a_key_is_introduced_activated_and_retired_without_refusing_a_valid_token() {
    let (a, _) = generate_key_pair().unwrap();
    let (b, _) = generate_key_pair().unwrap();
    let file = KeyFile::new();
    file.write(&[&a]);
    let signer = Arc::new(
        TokenSigner::new(&AuthSettings {
            signing_keys_file: file.path().display().to_string(),
            ..AuthSettings::default()
        })
        .unwrap(),
    );
    // The user service's /api/v1/auth/jwks.json, served from the signer as the service does.
    let published: Arc<Mutex<Option<Arc<TokenSigner>>>> =
        Arc::new(Mutex::new(Some(signer.clone())));
    let jwks = serve_stub(
        Router::new()
            .route(
                "/jwks.json",
                get(
                    |State(s): State<Arc<Mutex<Option<Arc<TokenSigner>>>>>| async move {
                        let signer = s.lock().unwrap().clone();
                        match signer {
                            Some(signer) => Ok(axum::Json(signer.jwks())),
                            None => Err(axum::http::StatusCode::SERVICE_UNAVAILABLE),
                        }
                    },
                ),
            )
            .with_state(published.clone()),
    )
    .await;
    let ns = RedisNamespace::new();
    let redis = Redis::connect(&ns.settings()).await.unwrap();
    let verifier = TokenVerifier::new(
        &AuthSettings {
            jwks_url: format!("{jwks}/jwks.json"),
            jwks_refresh_secs: 1,
            signing_key: Secret::default(),
            ..AuthSettings::default()
        },
        redis,
    )
    .unwrap();

    let old = token(&signer);
    verifier
        .verify(&old)
        .await
        .expect("A's token, fetched on first use");

    // Introduce B: published, not yet signing.
    file.write(&[&a, &b]);
    eventually("B is published", LIMIT, || async {
        signer.jwks().keys.len() == 2
    })
    .await;
    assert_eq!(kid_of(&token(&signer)), kid_of(&old), "A still signs");

    // Activate B: a token naming B is verified at once, though the cache is fresh.
    file.write(&[&b, &a]);
    eventually("B signs", LIMIT, || async {
        kid_of(&token(&signer)) != kid_of(&old)
    })
    .await;
    let new = token(&signer);
    verifier.verify(&new).await.expect("B's token");
    verifier
        .verify(&old)
        .await
        .expect("A's token, A still published");

    // Retire A: once the cache refreshes, A's tokens are refused; B's never are.
    file.write(&[&b]);
    eventually("A's token refused", LIMIT, || async {
        matches!(verifier.verify(&old).await, Err(ApiError::Unauthorized))
    })
    .await;
    verifier.verify(&new).await.expect("B's token, throughout");

    // The document cannot be fetched: a key not held is a 503 (maybe valid), not a 401.
    *published.lock().unwrap() = None;
    let (c, _) = generate_key_pair().unwrap();
    file.write(&[&c, &b]);
    eventually("C signs", LIMIT, || async {
        kid_of(&token(&signer)) != kid_of(&new)
    })
    .await;
    let unknown = token(&signer);
    eventually(
        "an unknown key while the document is down is a 503",
        LIMIT,
        || async {
            matches!(
                verifier.verify(&unknown).await,
                Err(ApiError::Unavailable { .. })
            )
        },
    )
    .await;
    verifier
        .verify(&new)
        .await
        .expect("a held key still verifies");
}
