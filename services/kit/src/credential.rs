//! Service credentials for the internal APIs (`/internal/v1/...`, ADR 0014).
//!
//! Every service (and the `kommerce` command) has an Ed25519 key pair of its own: the private
//! key in its configuration (`auth.service_key`, a Secret in a cluster), the public keys of
//! every caller in each callee's (`auth.service_keys.<name>`). A caller sends a short-lived
//! JWT in the [`HEADER`] header: `kid` and `iss` name the caller, `aud` the callee, `exp` a
//! minute ahead. The callee picks the key by `kid`, checks signature, issuer, audience and
//! expiry (401 otherwise), then the route's callers (403 for any other service).
//!
//! Which services may call a route is stated once, in the route's OpenAPI annotation
//! (`security(("service" = ["pay", "order"]))`): [`Policy::from_document`] reads the served
//! document, so the published contract *is* the policy. An internal route that names no
//! caller refuses every one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::AuthSettings;
use crate::auth::KeyError;
use crate::http::ApiError;
use crate::reread::Reread;
use crate::verified::Verified;

/// The request header that carries a service credential.
pub const HEADER: &str = "Kommerce-Service-Token";

/// The OpenAPI security scheme of a service credential; its scopes are the callers.
pub const SCHEME: &str = "service";

/// The identity of the `kommerce` command (saga traces, benchmarks, the operator's probes).
pub const COMMAND: &str = "kommerce";

/// The claims of a service credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceClaims {
    /// The calling service.
    pub iss: String,
    /// The called service.
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Signs this service's credentials, one per callee, each reused until half its life is left.
pub struct ServiceSigner {
    name: String,
    key: Option<EncodingKey>,
    ttl: Duration,
    cache: Mutex<HashMap<String, (String, u64)>>,
}

impl std::fmt::Debug for ServiceSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceSigner")
            .field("name", &self.name)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl ServiceSigner {
    /// `name`'s signer from `auth.service_key`; without a key it signs nothing (its calls
    /// are refused with 401 by any callee).
    pub fn new(name: &str, settings: &AuthSettings) -> Result<Self, KeyError> {
        let key = if settings.service_key.is_empty() {
            None
        } else {
            let (der, _) = crate::auth::ed25519_private_key(settings.service_key.expose())
                .ok_or(KeyError::ServiceKey)?;
            Some(EncodingKey::from_ed_der(&der))
        };
        Ok(Self {
            name: name.to_owned(),
            key,
            ttl: Duration::from_secs(settings.service_ttl_secs.max(2)),
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A credential for calling `audience`, or `None` without a key.
    pub fn token_for(&self, audience: &str) -> Option<String> {
        let key = self.key.as_ref()?;
        let now = now_secs();
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((token, exp)) = cache.get(audience) {
            if *exp > now + self.ttl.as_secs() / 2 {
                return Some(token.clone());
            }
        }
        let claims = ServiceClaims {
            iss: self.name.clone(),
            aud: audience.to_owned(),
            iat: now,
            exp: now + self.ttl.as_secs(),
        };
        let token = sign(&self.name, &claims, key)?;
        cache.insert(audience.to_owned(), (token.clone(), claims.exp));
        Some(token)
    }
}

/// A JWT of `claims` signed with `key`, `kid` naming the signer.
fn sign(kid: &str, claims: &ServiceClaims, key: &EncodingKey) -> Option<String> {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).ok()
}

/// A credential with any claims, signed with `service_key` (PKCS#8, base64url): for tests
/// of expired or misaddressed credentials and for tools that hold a key.
pub fn sign_with(service_key: &str, claims: &ServiceClaims) -> Result<String, KeyError> {
    let (der, _) = crate::auth::ed25519_private_key(service_key).ok_or(KeyError::ServiceKey)?;
    sign(&claims.iss, claims, &EncodingKey::from_ed_der(&der)).ok_or(KeyError::ServiceKey)
}

/// A credential `caller` → `audience` valid for `ttl` from now.
pub fn credential(
    service_key: &str,
    caller: &str,
    audience: &str,
    ttl: Duration,
) -> Result<String, KeyError> {
    let now = now_secs();
    sign_with(
        service_key,
        &ServiceClaims {
            iss: caller.to_owned(),
            aud: audience.to_owned(),
            iat: now,
            exp: now + ttl.as_secs(),
        },
    )
}

/// The public keys of every service allowed to call this one, by name: one or more each (a
/// comma-separated list while a key is being rotated) — from `auth.service_keys`, and from the
/// files of `auth.service_keys_dir`, read again at most once a second when they change.
#[derive(Clone)]
pub struct Keyring {
    fixed: Keys,
    dir: Option<Arc<Reread<Files, Keys>>>,
    /// Credentials that verified lately: the caller, the audience, and the directory's keys
    /// they verified against (a change of the keys makes every entry a miss).
    verified: Arc<Verified<Accepted>>,
}

type Keys = HashMap<String, Vec<DecodingKey>>;
/// What a credential that verified was: its caller, its audience, the directory's keys then.
type Accepted = (String, String, Option<Arc<Keys>>);
/// A key directory's `(file name, content)`s, by name.
type Files = Vec<(String, String)>;

/// How often the key directory is looked at again.
const DIR_CHECK: Duration = Duration::from_secs(1);

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.fixed.keys().collect();
        names.sort();
        f.debug_struct("Keyring")
            .field("callers", &names)
            .field(
                "dir",
                &self.dir.as_ref().map(|d| d.path().display().to_string()),
            )
            .finish_non_exhaustive()
    }
}

/// `name`'s public keys from their text (base64url, comma- or line-separated).
fn public_keys(name: &str, text: &str) -> Result<Vec<DecodingKey>, KeyError> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|public| {
            URL_SAFE_NO_PAD
                .decode(public)
                .ok()
                .filter(|raw| raw.len() == 32)
                .map(|raw| DecodingKey::from_ed_der(&raw))
                .ok_or_else(|| KeyError::ServicePublicKey(name.to_owned()))
        })
        .collect()
}

/// Every `(file name, content)` of a key directory, by name; hidden entries (a mounted
/// ConfigMap's `..data` links) skipped.
fn read_dir(path: &std::path::Path) -> std::io::Result<Files> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.path().is_file() {
            continue;
        }
        files.push((name, std::fs::read_to_string(entry.path())?));
    }
    files.sort();
    Ok(files)
}

/// The keys of a key directory's files, by caller.
#[allow(clippy::ptr_arg)] // the shape Reread reads and compares
fn parse_dir(files: &Files) -> Result<Keys, String> {
    files
        .iter()
        .map(|(name, content)| {
            public_keys(name, content)
                .map(|keys| (name.clone(), keys))
                .map_err(|e| e.to_string())
        })
        .collect()
}

impl Keyring {
    pub fn new(settings: &AuthSettings) -> Result<Self, KeyError> {
        Self::checking_dir_every(settings, DIR_CHECK)
    }

    fn checking_dir_every(settings: &AuthSettings, every: Duration) -> Result<Self, KeyError> {
        let mut fixed = HashMap::new();
        for (name, publics) in &settings.service_keys {
            fixed.insert(name.clone(), public_keys(name, publics)?);
        }
        let dir = (!settings.service_keys_dir.is_empty()).then(|| {
            Arc::new(Reread::new(
                "the service public keys",
                settings.service_keys_dir.clone().into(),
                every,
                read_dir,
                parse_dir,
                None,
            ))
        });
        Ok(Self {
            fixed,
            dir,
            verified: Arc::default(),
        })
    }

    /// The caller a credential addressed to `audience` names, if it is valid: signed by the
    /// key of the service in its `kid`, issued by that service, for `audience`, unexpired.
    /// One that verified within the last [`crate::verified::HOLD`] seconds against the same
    /// keys is not verified again.
    pub fn verify(&self, token: &str, audience: &str) -> Result<String, ApiError> {
        let from_dir = self.dir.as_ref().map(|d| d.current());
        if let Some((caller, to, keys)) = self.verified.get(token) {
            let same_keys = match (&keys, &from_dir) {
                (Some(then), Some(now)) => Arc::ptr_eq(then, now),
                (None, None) => true,
                _ => false,
            };
            if to == audience && same_keys {
                return Ok(caller);
            }
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| ApiError::Unauthorized)?;
        let caller = header.kid.ok_or(ApiError::Unauthorized)?;
        let keys: Vec<&DecodingKey> = self
            .fixed
            .get(&caller)
            .into_iter()
            .chain(from_dir.as_ref().and_then(|k| k.get(&caller)))
            .flatten()
            .collect();
        if keys.is_empty() {
            return Err(ApiError::Unauthorized);
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[caller.as_str()]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = crate::auth::LEEWAY_SECS;
        let claims = keys
            .iter()
            .find_map(|key| jsonwebtoken::decode::<ServiceClaims>(token, key, &validation).ok())
            .ok_or(ApiError::Unauthorized)?
            .claims;
        self.verified.insert(
            token,
            (caller.clone(), audience.to_owned(), from_dir),
            claims.exp + crate::auth::LEEWAY_SECS,
        );
        Ok(caller)
    }
}

/// Which services may call each internal operation: `(method, route template)` → callers.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    routes: HashMap<(Method, String), Vec<String>>,
}

impl Policy {
    /// The policy a service's document states: every operation under `/internal/` with the
    /// callers its [`SCHEME`] requirement names (none when it names none).
    pub fn from_document(doc: &utoipa::openapi::OpenApi) -> Self {
        let mut routes = HashMap::new();
        let json = serde_json::to_value(doc).unwrap_or_default();
        let Some(paths) = json["paths"].as_object() else {
            return Self { routes };
        };
        for (path, item) in paths.iter().filter(|(p, _)| p.starts_with("/internal/")) {
            let Some(ops) = item.as_object() else {
                continue;
            };
            for (method, op) in ops {
                let Ok(method) = method.to_ascii_uppercase().parse::<Method>() else {
                    continue;
                };
                let callers: Vec<String> = op["security"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|req| req[SCHEME].as_array())
                    .flatten()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect();
                routes.insert((method, path.clone()), callers);
            }
        }
        Self { routes }
    }

    /// The callers of `method` on route `template`; `None` for a route outside the policy.
    pub fn callers(&self, method: &Method, template: &str) -> Option<&[String]> {
        self.routes
            .get(&(method.clone(), template.to_owned()))
            .map(Vec::as_slice)
    }

    /// The callers of `method` on a concrete `path` (`/internal/v1/images/3f…/attach`), its
    /// route found by matching segments (`{id}` matches any one).
    pub fn callers_of_path(&self, method: &Method, path: &str) -> Option<&[String]> {
        let path = path.split('?').next().unwrap_or(path);
        let segments: Vec<&str> = path.split('/').collect();
        self.routes
            .iter()
            .find(|((m, template), _)| {
                let parts: Vec<&str> = template.split('/').collect();
                m == method
                    && parts.len() == segments.len()
                    && parts
                        .iter()
                        .zip(&segments)
                        .all(|(t, s)| t.starts_with('{') || t == s)
            })
            .map(|(_, callers)| callers.as_slice())
    }
}

/// The problem type of a credential refused by the guard, so that a caller can tell it from
/// an answer of the route itself (a route may answer 403 for reasons of its own).
const REFUSED: &str = "service-credential-refused";

/// Whether an answer is the guard refusing the caller's credential (401, or the 403 of a
/// caller the route does not allow).
pub fn refused(status: u16, body: &serde_json::Value) -> bool {
    (status == 401 || status == 403)
        && body["type"]
            .as_str()
            .is_some_and(|t| t.ends_with(&format!("/{REFUSED}")))
}

fn refusal(status: axum::http::StatusCode, detail: &str) -> Response {
    crate::http::Problem::new(status, REFUSED, "Service credential refused")
        .detail(detail)
        .into_response()
}

/// The service a request's credential named (a request extension on internal routes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub String);

/// The guard of the internal routes, for a `route_layer`: a request to a route in `policy`
/// needs a valid credential addressed to `audience` (401) from one of its callers (403).
pub async fn guard(
    policy: Arc<Policy>,
    verifier: Arc<crate::auth::TokenVerifier>,
    audience: Arc<str>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(template) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
    else {
        return next.run(req).await;
    };
    let Some(callers) = policy.callers(req.method(), &template) else {
        return next.run(req).await;
    };
    let token = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let Some(token) = token else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            &format!("an internal route needs a {HEADER} header"),
        );
    };
    let Ok(caller) = verifier.services().verify(token, &audience) else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "the service credential is invalid, expired or not for this service",
        );
    };
    if !callers.contains(&caller) {
        return refusal(
            StatusCode::FORBIDDEN,
            &format!("the {caller} service may not call this route"),
        );
    }
    req.extensions_mut().insert(Caller(caller));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::generate_key_pair;
    use crate::secret::Secret;

    fn settings(names: &[&str]) -> (AuthSettings, HashMap<String, String>) {
        let mut private = HashMap::new();
        let mut s = AuthSettings::default();
        for name in names {
            let (signing, public) = generate_key_pair().expect("a key pair");
            s.service_keys.insert((*name).to_owned(), public);
            private.insert((*name).to_owned(), signing);
        }
        (s, private)
    }

    #[test]
    fn a_credential_names_its_caller_to_its_audience_only() {
        let (mut s, private) = settings(&["pay", "order"]);
        s.service_key = Secret::new(private["pay"].clone());
        let signer = ServiceSigner::new("pay", &s).expect("a signer");
        let keyring = Keyring::new(&s).expect("a keyring");
        let token = signer.token_for("user").expect("a token");
        assert_eq!(keyring.verify(&token, "user").expect("valid"), "pay");
        assert!(keyring.verify(&token, "item").is_err(), "another audience");
        // Reused while fresh.
        assert_eq!(signer.token_for("user").as_deref(), Some(token.as_str()));
    }

    #[test]
    fn a_forged_expired_or_unknown_credential_is_refused() {
        let (s, private) = settings(&["pay", "order"]);
        let keyring = Keyring::new(&s).expect("a keyring");
        let hour = Duration::from_secs(3600);
        // Signed by order's key but claiming to be pay.
        let forged = sign_with(
            &private["order"],
            &ServiceClaims {
                iss: "pay".into(),
                aud: "user".into(),
                iat: now_secs(),
                exp: now_secs() + 60,
            },
        )
        .expect("signed");
        assert!(keyring.verify(&forged, "user").is_err());
        let expired = sign_with(
            &private["pay"],
            &ServiceClaims {
                iss: "pay".into(),
                aud: "user".into(),
                iat: now_secs() - 7200,
                exp: now_secs() - hour.as_secs(),
            },
        )
        .expect("signed");
        assert!(keyring.verify(&expired, "user").is_err());
        let (stranger, _) = generate_key_pair().expect("a key pair");
        let unknown = credential(&stranger, "review", "user", hour).expect("signed");
        assert!(keyring.verify(&unknown, "user").is_err());
        assert!(keyring.verify("not a token", "user").is_err());
        let good = credential(&private["pay"], "pay", "user", hour).expect("signed");
        assert_eq!(keyring.verify(&good, "user").expect("valid"), "pay");
    }

    #[test]
    fn callers_keys_come_from_a_directory_read_again_when_it_changes() {
        let dir = std::env::temp_dir().join(format!("kommerce-keys-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("..data")).expect("a directory");
        let (order_private, order_public) = generate_key_pair().expect("a key pair");
        std::fs::write(dir.join("order"), &order_public).expect("written");
        std::fs::write(dir.join("..data").join("ignored"), "not a key").expect("written");
        let s = AuthSettings {
            service_keys_dir: dir.display().to_string(),
            ..AuthSettings::default()
        };
        let keyring = Keyring::checking_dir_every(&s, Duration::ZERO).expect("a keyring");
        let hour = Duration::from_secs(3600);
        let from_order = credential(&order_private, "order", "item", hour).expect("signed");
        assert_eq!(keyring.verify(&from_order, "item").expect("valid"), "order");
        let (pay_private, pay_public) = generate_key_pair().expect("a key pair");
        let from_pay = credential(&pay_private, "pay", "item", hour).expect("signed");
        assert!(
            keyring.verify(&from_pay, "item").is_err(),
            "pay has no key yet"
        );
        // The operator adds pay's key: no restart needed.
        std::fs::write(dir.join("pay"), &pay_public).expect("written");
        assert_eq!(keyring.verify(&from_pay, "item").expect("valid"), "pay");
        // A file that does not read keeps the keys there were, loudly.
        std::fs::write(dir.join("pay"), "garbage").expect("written");
        assert_eq!(keyring.verify(&from_pay, "item").expect("kept"), "pay");
        // order's key rotated: its old credentials are refused.
        let (_, other_public) = generate_key_pair().expect("a key pair");
        std::fs::write(dir.join("pay"), &pay_public).expect("written");
        std::fs::write(dir.join("order"), &other_public).expect("written");
        assert!(keyring.verify(&from_order, "item").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn during_a_rotation_both_keys_of_a_caller_are_accepted() {
        let (old_private, old_public) = generate_key_pair().expect("a key pair");
        let (new_private, new_public) = generate_key_pair().expect("a key pair");
        let mut s = AuthSettings::default();
        s.service_keys
            .insert("pay".into(), format!("{old_public}, {new_public}"));
        let keyring = Keyring::new(&s).expect("a keyring");
        let hour = Duration::from_secs(3600);
        for key in [&old_private, &new_private] {
            let token = credential(key, "pay", "user", hour).expect("signed");
            assert_eq!(keyring.verify(&token, "user").expect("valid"), "pay");
        }
        s.service_keys.insert("pay".into(), new_public);
        let keyring = Keyring::new(&s).expect("a keyring");
        let old = credential(&old_private, "pay", "user", hour).expect("signed");
        assert!(keyring.verify(&old, "user").is_err(), "the retired key");
    }

    #[test]
    fn without_a_key_a_signer_signs_nothing() {
        let signer = ServiceSigner::new("pay", &AuthSettings::default()).expect("a signer");
        assert_eq!(signer.token_for("user"), None);
    }

    #[test]
    fn the_policy_is_what_the_document_states() {
        use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
        use utoipa::openapi::security::SecurityRequirement;
        use utoipa::openapi::{InfoBuilder, OpenApi, PathsBuilder};
        let op = |callers: &[&str]| {
            let mut b = OperationBuilder::new();
            if !callers.is_empty() {
                b = b.security(SecurityRequirement::new(SCHEME, callers.to_vec()));
            }
            b.build()
        };
        let doc = OpenApi::new(
            InfoBuilder::new().title("t").version("0").build(),
            PathsBuilder::new()
                .path(
                    "/internal/v1/a/{id}",
                    PathItem::new(HttpMethod::Get, op(&["pay", "order"])),
                )
                .path("/internal/v1/b", PathItem::new(HttpMethod::Post, op(&[])))
                .path("/api/v1/c", PathItem::new(HttpMethod::Get, op(&[]))),
        );
        let policy = Policy::from_document(&doc);
        assert_eq!(
            policy.callers(&Method::GET, "/internal/v1/a/{id}"),
            Some(&["pay".to_owned(), "order".to_owned()][..])
        );
        assert_eq!(policy.callers(&Method::POST, "/internal/v1/a/{id}"), None);
        assert_eq!(
            policy.callers(&Method::POST, "/internal/v1/b"),
            Some(&[][..]),
            "an internal route naming no caller refuses every one"
        );
        assert_eq!(policy.callers(&Method::GET, "/api/v1/c"), None);
        assert_eq!(
            policy.callers_of_path(&Method::GET, "/internal/v1/a/42?x=1"),
            Some(&["pay".to_owned(), "order".to_owned()][..])
        );
        assert_eq!(
            policy.callers_of_path(&Method::GET, "/internal/v1/a/42/b"),
            None
        );
        assert_eq!(policy.callers_of_path(&Method::GET, "/api/v1/c"), None);
    }
}
