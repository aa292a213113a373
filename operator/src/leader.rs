//! Leader election on a `coordination.k8s.io/v1` Lease, so two replicas are safe: only the
//! holder reconciles. The protocol is client-go's: the holder renews `renewTime` every third of
//! the lease duration; anyone may take the Lease once `renewTime + leaseDurationSeconds` has
//! passed; every write carries the `resourceVersion` it read, so of two racing candidates the
//! API server lets exactly one win (the other gets 409 and waits). A leader that cannot renew
//! within the lease duration stops (the pod restarts and campaigns again) — it must assume a
//! successor is already reconciling.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;

use crate::cli::Settings;

/// What a candidate should do with the Lease as it reads it (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Free, expired, or already ours: write ourselves in. `transitions` is the new
    /// `leaseTransitions`.
    Take { transitions: i32, renewing: bool },
    /// Someone else holds it for a while yet.
    Wait { holder: String },
}

/// Decides from the Lease spec, our identity and the current time.
pub fn decide(spec: Option<&LeaseSpec>, me: &str, now: jiff::Timestamp) -> Decision {
    let Some(spec) = spec else {
        return Decision::Take {
            transitions: 0,
            renewing: false,
        };
    };
    let transitions = spec.lease_transitions.unwrap_or(0);
    match spec.holder_identity.as_deref() {
        Some(holder) if holder == me => Decision::Take {
            transitions,
            renewing: true,
        },
        None | Some("") => Decision::Take {
            transitions: transitions + 1,
            renewing: false,
        },
        Some(holder) => {
            let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
                (Some(renewed), Some(secs)) => {
                    renewed.0 + jiff::SignedDuration::from_secs(i64::from(secs)) <= now
                }
                // A Lease without a renew time or duration cannot be proven alive.
                _ => true,
            };
            if expired {
                Decision::Take {
                    transitions: transitions + 1,
                    renewing: false,
                }
            } else {
                Decision::Wait {
                    holder: holder.to_owned(),
                }
            }
        }
    }
}

/// The spec we write when taking or renewing.
pub fn claimed(
    previous: Option<&LeaseSpec>,
    me: &str,
    duration: Duration,
    transitions: i32,
    renewing: bool,
    now: jiff::Timestamp,
) -> LeaseSpec {
    let acquire_time = if renewing {
        previous
            .and_then(|p| p.acquire_time.clone())
            .unwrap_or(MicroTime(now))
    } else {
        MicroTime(now)
    };
    LeaseSpec {
        holder_identity: Some(me.to_owned()),
        lease_duration_seconds: Some(i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX)),
        acquire_time: Some(acquire_time),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    }
}

/// How leadership ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// We were asked to stop.
    Stopped,
    /// Renewing failed for a whole lease duration, or someone else took the Lease.
    Lost(String),
}

/// A candidate for one Lease.
#[derive(Clone)]
pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

impl std::fmt::Debug for LeaseLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseLock")
            .field("name", &self.name)
            .field("identity", &self.identity)
            .field("duration", &self.duration)
            .finish_non_exhaustive()
    }
}

/// Proof of holding the Lease.
#[derive(Debug)]
pub struct Held {
    lock: LeaseLock,
}

impl LeaseLock {
    pub fn new(client: kube::Client, settings: &Settings) -> Self {
        Self::with(
            Api::namespaced(client, &settings.lease_namespace),
            &settings.lease_name,
            &settings.identity,
            settings.lease_duration,
        )
    }

    pub fn with(api: Api<Lease>, name: &str, identity: &str, duration: Duration) -> Self {
        Self {
            api,
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration,
        }
    }

    fn retry_period(&self) -> Duration {
        (self.duration / 3).max(Duration::from_millis(200))
    }

    /// One attempt: read, decide, write. `Ok(true)` when we hold the Lease afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = jiff::Timestamp::now();
        let current = self.api.get_opt(&self.name).await?;
        let spec = current.as_ref().and_then(|l| l.spec.as_ref());
        let Decision::Take {
            transitions,
            renewing,
        } = decide(spec, &self.identity, now)
        else {
            return Ok(false);
        };
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                resource_version: current
                    .as_ref()
                    .and_then(|l| l.metadata.resource_version.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(claimed(
                spec,
                &self.identity,
                self.duration,
                transitions,
                renewing,
                now,
            )),
        };
        let written = if current.is_some() {
            self.api
                .replace(&self.name, &PostParams::default(), &lease)
                .await
        } else {
            self.api.create(&PostParams::default(), &lease).await
        };
        match written {
            Ok(_) => {
                if !renewing {
                    tracing::info!(lease = %self.name, identity = %self.identity, "became leader");
                }
                Ok(true)
            }
            // Someone else wrote first (409 on a stale resourceVersion or a racing create).
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Campaigns until we lead (`Some`) or `stop` resolves (`None`). API errors are logged and
    /// retried: a candidate has nothing better to do.
    pub async fn acquire(
        self,
        stop: impl Future<Output = ()>,
    ) -> Result<Option<Held>, kube::Error> {
        tokio::pin!(stop);
        let mut logged_wait = false;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    crate::metrics::leader(&self.identity, true);
                    return Ok(Some(Held { lock: self }));
                }
                Ok(false) => {
                    if !logged_wait {
                        tracing::info!(lease = %self.name, "another replica leads; standing by");
                        logged_wait = true;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, lease = %self.name, "cannot read or write the lease");
                }
            }
            tokio::select! {
                () = &mut stop => return Ok(None),
                () = tokio::time::sleep(self.retry_period()) => {}
            }
        }
    }
}

impl Held {
    /// Renews every retry period until `stop` resolves or the Lease is lost.
    pub async fn keep_renewing(&self, stop: impl Future<Output = ()>) -> Outcome {
        tokio::pin!(stop);
        let lock = &self.lock;
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = &mut stop => return Outcome::Stopped,
                () = tokio::time::sleep(lock.retry_period()) => {}
            }
            match lock.try_acquire_or_renew().await {
                Ok(true) => last_renewed = tokio::time::Instant::now(),
                Ok(false) => {
                    crate::metrics::leader(&lock.identity, false);
                    return Outcome::Lost("another replica holds the lease".into());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot renew the lease");
                    if last_renewed.elapsed() >= lock.duration {
                        crate::metrics::leader(&lock.identity, false);
                        return Outcome::Lost(format!("not renewed for {:?}: {e}", lock.duration));
                    }
                }
            }
        }
    }

    /// Gives the Lease up (graceful shutdown), so a standby takes over at once instead of
    /// after the lease duration.
    pub async fn release(self) {
        let lock = self.lock;
        crate::metrics::leader(&lock.identity, false);
        let Ok(Some(mut lease)) = lock.api.get_opt(&lock.name).await else {
            return;
        };
        let ours = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(lock.identity.as_str());
        if !ours {
            return;
        }
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
            spec.renew_time = None;
            spec.acquire_time = None;
        }
        match lock
            .api
            .replace(&lock.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(lease = %lock.name, "released the lease"),
            Err(e) => tracing::warn!(error = %e, "cannot release the lease; it expires on its own"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(secs).expect("valid")
    }

    fn held_by(holder: &str, renewed: i64, secs: i32, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(ts(renewed))),
            acquire_time: Some(MicroTime(ts(renewed - 100))),
            lease_duration_seconds: Some(secs),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_missing_lease_is_taken() {
        assert_eq!(
            decide(None, "me", ts(0)),
            Decision::Take {
                transitions: 0,
                renewing: false
            }
        );
    }

    #[test]
    fn a_live_lease_of_another_holder_is_respected() {
        let spec = held_by("other", 100, 15, 2);
        assert_eq!(
            decide(Some(&spec), "me", ts(114)),
            Decision::Wait {
                holder: "other".into()
            }
        );
    }

    #[test]
    fn an_expired_lease_is_taken_and_counts_a_transition() {
        let spec = held_by("other", 100, 15, 2);
        assert_eq!(
            decide(Some(&spec), "me", ts(115)),
            Decision::Take {
                transitions: 3,
                renewing: false
            }
        );
    }

    #[test]
    fn our_own_lease_is_renewed_keeping_acquire_time() {
        let spec = held_by("me", 100, 15, 4);
        let d = decide(Some(&spec), "me", ts(105));
        assert_eq!(
            d,
            Decision::Take {
                transitions: 4,
                renewing: true
            }
        );
        let written = claimed(Some(&spec), "me", Duration::from_secs(15), 4, true, ts(105));
        assert_eq!(written.acquire_time, spec.acquire_time);
        assert_eq!(written.renew_time, Some(MicroTime(ts(105))));
        assert_eq!(written.lease_duration_seconds, Some(15));
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let mut spec = held_by("other", 100, 15, 1);
        spec.holder_identity = None;
        assert_eq!(
            decide(Some(&spec), "me", ts(101)),
            Decision::Take {
                transitions: 2,
                renewing: false
            }
        );
    }

    #[test]
    fn taking_over_stamps_a_new_acquire_time() {
        let spec = held_by("other", 100, 15, 1);
        let written = claimed(
            Some(&spec),
            "me",
            Duration::from_secs(15),
            2,
            false,
            ts(200),
        );
        assert_eq!(written.holder_identity.as_deref(), Some("me"));
        assert_eq!(written.acquire_time, Some(MicroTime(ts(200))));
        assert_eq!(written.lease_transitions, Some(2));
    }
}
