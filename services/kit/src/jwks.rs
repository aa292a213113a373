//! Access-token keys by `kid` (ADR 0015): the user service signs with the first of its keys
//! and publishes all of them as a JWKS document; every service verifies by `kid` from a cached
//! copy of that document, refreshed in the background and at once when a token names a key it
//! has not seen. A key is introduced, made active and retired by editing the key file (a
//! mounted Secret in a cluster): no restart, and no valid token refused.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::{Deserialize, Serialize};

use crate::auth::KeyError;
use crate::reread::Reread;

/// The RFC 7638 thumbprint of an Ed25519 public key: its `kid`.
pub fn kid(public: &[u8]) -> String {
    let x = URL_SAFE_NO_PAD.encode(public);
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        canonical.as_bytes(),
    ))
}

/// One public key of the set (RFC 8037: an Ed25519 `OKP` key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Jwk {
    /// Always `OKP`.
    pub kty: String,
    /// Always `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// The key's RFC 7638 thumbprint, as access tokens name it.
    pub kid: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub usage: String,
    /// Always `EdDSA`.
    pub alg: String,
}

impl Jwk {
    fn of(public: &[u8]) -> Self {
        Self {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(public),
            kid: kid(public),
            usage: "sig".into(),
            alg: "EdDSA".into(),
        }
    }
}

/// The published keys: the one that signs now and those that may still have signed a valid
/// token, or will soon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

/// A private key to sign with, with its id and its public half.
#[derive(Clone)]
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pub(crate) encoding: EncodingKey,
    public: Vec<u8>,
}

fn signing_key((der, public): (Vec<u8>, Vec<u8>)) -> SigningKey {
    SigningKey {
        kid: kid(&public),
        encoding: EncodingKey::from_ed_der(&der),
        public,
    }
}

/// The keys of a key file ([`crate::auth::ed25519_private_keys`]: PEM blocks or base64url
/// lines), the first the one that signs. At least one.
fn parse_key_file(text: &str) -> Result<Vec<SigningKey>, KeyError> {
    let keys = crate::auth::ed25519_private_keys(text).ok_or(KeyError::SigningKey)?;
    if keys.is_empty() {
        return Err(KeyError::SigningKey);
    }
    Ok(keys.into_iter().map(signing_key).collect())
}

/// How often a key file is looked at again.
const FILE_CHECK: Duration = Duration::from_secs(1);

enum Source {
    Fixed(Arc<Vec<SigningKey>>),
    File(Reread<String, Vec<SigningKey>>),
}

/// The keys the user service signs with and publishes: `auth.signing_keys_file` (re-read when
/// it changes; a file that no longer reads keeps the keys it had, loudly) or the single
/// `auth.signing_key`.
pub(crate) struct SigningKeys {
    source: Source,
}

impl SigningKeys {
    pub(crate) fn new(settings: &crate::AuthSettings) -> Result<Self, KeyError> {
        if settings.signing_keys_file.is_empty() {
            let key = signing_key(
                crate::auth::ed25519_private_key(settings.signing_key.expose())
                    .ok_or(KeyError::SigningKey)?,
            );
            return Ok(Self {
                source: Source::Fixed(Arc::new(vec![key])),
            });
        }
        let path = PathBuf::from(&settings.signing_keys_file);
        let text = std::fs::read_to_string(&path).map_err(|_| KeyError::SigningKey)?;
        let keys = parse_key_file(&text)?;
        Ok(Self {
            source: Source::File(Reread::new(
                "the access-token key file",
                path,
                FILE_CHECK,
                |path| std::fs::read_to_string(path),
                |text| parse_key_file(text).map_err(|e| e.to_string()),
                Some((text, keys)),
            )),
        })
    }

    /// The keys now, the first the one that signs.
    pub(crate) fn current(&self) -> Arc<Vec<SigningKey>> {
        match &self.source {
            Source::Fixed(keys) => keys.clone(),
            Source::File(file) => file.current(),
        }
    }

    pub(crate) fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.current().iter().map(|k| Jwk::of(&k.public)).collect(),
        }
    }
}

/// A verifier's copy of the published keys.
#[derive(Default)]
struct Cached {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
}

/// A failed fetch is not tried again for this long when tokens name an unknown key (an
/// attacker's made-up `kid` must not turn every request into a fetch).
const RETRY_AFTER_UNKNOWN: Duration = Duration::from_secs(2);

/// The JWKS document of `url`, cached; refreshed in the background once older than `refresh`,
/// and at once (at most every [`RETRY_AFTER_UNKNOWN`]) for a `kid` it does not hold.
pub(crate) struct JwksCache {
    url: String,
    refresh: Duration,
    http: reqwest::Client,
    cached: std::sync::RwLock<Cached>,
    fetching: tokio::sync::Mutex<()>,
}

/// Why a key could not be found.
pub(crate) enum Lookup {
    /// The document does not hold it (after a fresh look).
    Unknown,
    /// The document could not be fetched: the token cannot be judged now.
    Unavailable,
}

impl JwksCache {
    pub(crate) fn new(url: &str, refresh: Duration) -> Arc<Self> {
        Arc::new(Self {
            url: url.to_owned(),
            refresh,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            cached: std::sync::RwLock::new(Cached::default()),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Cached> {
        self.cached
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Fetches the document and replaces the cached keys (a retired key leaves the cache).
    async fn fetch(&self) -> bool {
        let _one = self.fetching.lock().await;
        let started = Instant::now();
        if self
            .read()
            .fetched
            .is_some_and(|f| f.elapsed() < Duration::from_millis(200))
        {
            return true; // another caller just did
        }
        let result = async {
            self.http
                .get(&self.url)
                .send()
                .await?
                .error_for_status()?
                .json::<JwkSet>()
                .await
        }
        .await;
        let mut cached = self
            .cached
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cached.attempted = Some(started);
        match result {
            Ok(set) => {
                cached.keys = set
                    .keys
                    .iter()
                    .filter(|k| k.kty == "OKP" && k.crv == "Ed25519")
                    .filter_map(|k| {
                        let raw = URL_SAFE_NO_PAD.decode(&k.x).ok()?;
                        (raw.len() == 32 && kid(&raw) == k.kid)
                            .then(|| (k.kid.clone(), DecodingKey::from_ed_der(&raw)))
                    })
                    .collect();
                cached.fetched = Some(started);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, url = %self.url, "cannot fetch the access-token keys");
                false
            }
        }
    }

    /// The key named `kid`.
    pub(crate) async fn key(self: &Arc<Self>, kid: &str) -> Result<DecodingKey, Lookup> {
        let (found, stale, recently_tried) = {
            let cached = self.read();
            (
                cached.keys.get(kid).cloned(),
                cached.fetched.is_none_or(|f| f.elapsed() >= self.refresh),
                cached
                    .attempted
                    .is_some_and(|a| a.elapsed() < RETRY_AFTER_UNKNOWN),
            )
        };
        if let Some(key) = found {
            if stale && !recently_tried {
                let me = self.clone();
                tokio::spawn(async move { me.fetch().await });
            }
            return Ok(key);
        }
        if recently_tried && !stale {
            return Err(Lookup::Unknown);
        }
        if !self.fetch().await {
            return Err(Lookup::Unavailable);
        }
        self.read().keys.get(kid).cloned().ok_or(Lookup::Unknown)
    }

    /// Every cached key (for a token that names none).
    pub(crate) fn all(&self) -> Vec<DecodingKey> {
        self.read().keys.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        // RFC 8037, appendix A.3: the thumbprint of the example Ed25519 key.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .expect("the RFC's key");
        assert_eq!(kid(&x), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn a_key_file_lists_the_signing_key_first_and_refuses_garbage() {
        let (a, _) = crate::auth::generate_key_pair().expect("a key pair");
        let (b, _) = crate::auth::generate_key_pair().expect("a key pair");
        let keys = parse_key_file(&format!("# rotation\n{a}\n\n{b}\n")).expect("two keys");
        assert_eq!(keys.len(), 2);
        let first = crate::auth::ed25519_private_key(&a).expect("a key");
        assert_eq!(keys[0].kid, signing_key(first).kid);
        assert!(parse_key_file("").is_err(), "no key at all");
        assert!(parse_key_file(&format!("{a}\nnot-a-key\n")).is_err());
    }

    /// RFC 8410, section 10.3: a PKCS#8 v1 key in PEM, as Helm's `genPrivateKey "ed25519"` and
    /// openssl write them; its public key is the one of section 10.1.
    const RFC_8410_PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
        MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
        -----END PRIVATE KEY-----\n";

    #[test]
    fn pem_keys_and_pkcs8_v1_are_read_too() {
        let (_, public) = crate::auth::ed25519_private_key(RFC_8410_PEM).expect("the RFC's key");
        assert_eq!(
            URL_SAFE_NO_PAD.encode(&public),
            "Gb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE"
        );
        // A key file of PEM blocks: the first signs.
        let (b, _) = crate::auth::generate_key_pair().expect("a key pair");
        let (der, _) = crate::auth::ed25519_private_key(&b).expect("a key");
        let b_pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(der)
        );
        let keys = parse_key_file(&format!("{RFC_8410_PEM}{b_pem}")).expect("two PEM keys");
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].public, public);
        assert!(
            parse_key_file("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .is_err()
        );
    }
}
