//! What every controller shares: the client, the settings, the Event recorder.

use std::fmt::{Debug, Display};

use futures::{Stream, StreamExt as _};
use k8s_openapi::NamespaceResourceScope;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource, ResourceExt as _};
use serde::de::DeserializeOwned;
use tracing::field;

use crate::MANAGER;
use crate::cli::Settings;

#[derive(Clone)]
pub struct Shared {
    pub client: Client,
    pub settings: Settings,
    pub recorder: Recorder,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub fn new(client: Client, settings: Settings) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: MANAGER.into(),
                instance: Some(settings.identity.clone()),
            },
        );
        Self {
            client,
            settings,
            recorder,
        }
    }
}

impl Shared {
    /// What a controller watches: the configured namespace, or all of them.
    pub fn watched<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        match &self.settings.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }

    /// Publishes a Kubernetes Event about `obj`; a failure is logged, never fatal.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "cannot publish event");
        }
    }
}

/// The span of one reconcile: controller, namespace, name, generation.
pub fn reconcile_span<K: Resource>(controller: &'static str, obj: &K) -> tracing::Span {
    let span = tracing::info_span!(
        "reconcile",
        controller,
        namespace = field::Empty,
        name = %obj.name_any(),
        generation = field::Empty,
    );
    if let Some(ns) = obj.namespace() {
        span.record("namespace", ns);
    }
    if let Some(g) = obj.meta().generation {
        span.record("generation", g);
    }
    span
}

/// Drives a controller's result stream to its end (the controller's graceful shutdown),
/// logging failed reconciles.
pub async fn drive<T, E: Display>(
    controller: &'static str,
    results: impl Stream<Item = Result<T, E>>,
) {
    tracing::info!(controller, "starting");
    results
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(controller, error = %e, "reconcile failed");
            }
        })
        .await;
    tracing::info!(controller, "stopped");
}
