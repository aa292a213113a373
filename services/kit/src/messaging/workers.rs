//! A service's messaging workers — its relay and its consumers — started with the service
//! and stopped with it: a stop lets each finish the message in hand.

use std::future::Future;
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Consumer, ConsumerError, Handler, Hooks, Relay, RelayError};
use crate::KafkaSettings;

/// What runs beside the HTTP server.
#[derive(Debug)]
pub struct Workers {
    db: PgPool,
    kafka: KafkaSettings,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Workers {
    pub fn new(db: PgPool, kafka: &KafkaSettings) -> Self {
        Self {
            db,
            kafka: kafka.clone(),
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }

    fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.stop.subscribe();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }

    /// Starts the outbox relay.
    pub fn relay(&mut self) -> Result<(), RelayError> {
        let relay = Relay::new(self.db.clone(), &self.kafka)?;
        let stop = self.stopped();
        self.tasks.push(tokio::spawn(async move {
            if let Err(e) = relay.run(stop).await {
                tracing::error!(error = %e, "relay stopped");
            }
        }));
        Ok(())
    }

    /// Starts `count` consumers in `group` (one per partition at most does work), sharing
    /// `handler`. A consumer stopped by a failpoint stays stopped, as a killed process would.
    pub fn consumers<H: Handler + 'static>(
        &mut self,
        group: &str,
        topics: &[&str],
        handler: &Arc<H>,
        count: u32,
        hooks: &Hooks,
    ) -> Result<(), ConsumerError> {
        for _ in 0..count.max(1) {
            let consumer = Consumer::new(
                self.db.clone(),
                &self.kafka,
                group,
                topics,
                Arc::clone(handler),
            )?
            .with_hooks(hooks.clone());
            let stop = self.stopped();
            self.tasks.push(tokio::spawn(async move {
                if let Err(e) = consumer.run(stop).await {
                    tracing::error!(error = %e, "consumer stopped");
                }
            }));
        }
        Ok(())
    }

    /// Stops every worker and waits for it.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
