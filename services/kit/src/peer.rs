//! Calls to another service's internal API (`/internal/v1/...`). A peer that cannot be
//! reached, times out or answers 5xx is [`PeerError::Unavailable`]: an HTTP handler turns it
//! into 503 (nothing changed), a consumer into a transient error (retried).

use std::time::Duration;

use axum::http::StatusCode;
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::http::ApiError;
use crate::messaging::HandlerError;

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("{peer} service unavailable: {reason}")]
    Unavailable { peer: &'static str, reason: String },
    #[error("{peer} service answered something unreadable: {reason}")]
    Malformed { peer: &'static str, reason: String },
}

impl From<PeerError> for ApiError {
    fn from(e: PeerError) -> Self {
        match e {
            PeerError::Unavailable { peer, .. } => {
                tracing::warn!(error = %e, "peer call failed");
                ApiError::unavailable(format!(
                    "the {peer} service is unavailable; nothing was changed"
                ))
            }
            PeerError::Malformed { .. } => ApiError::internal(e),
        }
    }
}

/// An unreachable peer may come back (retried); an answer outside the contract will not.
impl From<PeerError> for HandlerError {
    fn from(e: PeerError) -> Self {
        match e {
            PeerError::Unavailable { .. } => HandlerError::Transient(Box::new(e)),
            PeerError::Malformed { .. } => HandlerError::Permanent(e.to_string()),
        }
    }
}

/// An answer below 500: its status and JSON body (`null` when empty).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: serde_json::Value,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// The body as `T` (a peer answering another shape is a bug, not an outage).
    pub fn json<T: DeserializeOwned>(self, peer: &'static str) -> Result<T, PeerError> {
        serde_json::from_value(self.body).map_err(|e| PeerError::Malformed {
            peer,
            reason: e.to_string(),
        })
    }
}

/// One peer service.
#[derive(Debug, Clone)]
pub struct Peer {
    name: &'static str,
    base: String,
    http: reqwest::Client,
    /// Signs this service's credential for the peer's internal API (ADR 0014).
    signer: Option<std::sync::Arc<crate::credential::ServiceSigner>>,
}

impl Peer {
    pub fn new(name: &'static str, base_url: &str, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_default();
        Self {
            name,
            base: base_url.trim_end_matches('/').to_owned(),
            http,
            signer: None,
        }
    }

    /// This peer, called with `signer`'s credential on every request.
    #[must_use]
    pub fn signed(mut self, signer: &std::sync::Arc<crate::credential::ServiceSigner>) -> Self {
        self.signer = Some(signer.clone());
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// An answer the contract does not allow for `what` (a bug on one side, not an outage).
    pub fn unexpected(&self, reply: &Reply, what: &str) -> PeerError {
        PeerError::Malformed {
            peer: self.name,
            reason: format!("answered {} to {what}", reply.status),
        }
    }

    /// `reply` when it is a 2xx, else [`Self::unexpected`].
    pub fn success(&self, reply: Reply, what: &str) -> Result<Reply, PeerError> {
        if reply.is_success() {
            Ok(reply)
        } else {
            Err(self.unexpected(&reply, what))
        }
    }

    pub async fn get(&self, path: &str) -> Result<Reply, PeerError> {
        self.send(Method::GET, path, None::<&()>).await
    }

    pub async fn post<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Reply, PeerError> {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Reply, PeerError> {
        self.send(Method::DELETE, path, None::<&()>).await
    }

    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Reply, PeerError> {
        let unavailable = |reason: String| PeerError::Unavailable {
            peer: self.name,
            reason,
        };
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = self.signer.as_ref().and_then(|s| s.token_for(self.name)) {
            request = request.header(crate::credential::HEADER, token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(unavailable(format!("answered {status}")));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let body = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| PeerError::Malformed {
                peer: self.name,
                reason: e.to_string(),
            })?
        };
        if crate::credential::refused(status.as_u16(), &body) {
            // A deployment fault (a missing or rotated key, a route's callers), not an
            // answer: nothing happened, and retrying once it is mended is safe.
            tracing::error!(peer = self.name, %status, "the peer refused this service's credential");
            return Err(unavailable(format!(
                "refused this service's credential ({status})"
            )));
        }
        Ok(Reply {
            status: StatusCode::from_u16(status.as_u16())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        })
    }
}
