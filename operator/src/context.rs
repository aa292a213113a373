//! What every controller shares: the client, the settings, the Event recorder.

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

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
