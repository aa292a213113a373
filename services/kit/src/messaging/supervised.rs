//! The relay and the consumers as supervised [`Workers`]: `workers.messaging(&db, kafka)`
//! starts them beside whatever else the service runs, under the same stop.

use std::sync::{Arc, Mutex};

use sqlx::PgPool;

use super::{Consumer, ConsumerError, Handler, Hooks, Relay, RelayError};
use crate::KafkaSettings;
use crate::workers::{WorkerExit, Workers};

/// A service's workers, seen from its database and its broker.
#[derive(Debug)]
pub struct Bus<'a> {
    workers: &'a mut Workers,
    db: PgPool,
    kafka: KafkaSettings,
}

impl Workers {
    /// Starts messaging workers (relay, consumers) over `db` and `kafka`.
    pub fn messaging(&mut self, db: &PgPool, kafka: &KafkaSettings) -> Bus<'_> {
        Bus {
            workers: self,
            db: db.clone(),
            kafka: kafka.clone(),
        }
    }
}

impl Bus<'_> {
    /// Starts the outbox relay.
    pub fn relay(&mut self) -> Result<(), RelayError> {
        // The first relay is made here, so that a configuration error fails the start-up; later
        // ones are the supervisor's.
        let first = Mutex::new(Some(Relay::new(self.db.clone(), &self.kafka)?));
        let (db, kafka) = (self.db.clone(), self.kafka.clone());
        self.workers.spawn("relay", move |stop| {
            let relay = match first.lock().ok().and_then(|mut f| f.take()) {
                Some(relay) => relay,
                None => Relay::new(db.clone(), &kafka).map_err(|e| e.to_string())?,
            };
            Ok(Box::pin(async move {
                relay.run(stop).await.map_err(WorkerExit::from)
            }))
        });
        Ok(())
    }

    /// Starts `count` consumers in `group` (one per partition at most does work), sharing
    /// `handler`.
    pub fn consumers<H: Handler + 'static>(
        &mut self,
        group: &str,
        topics: &[&str],
        handler: &Arc<H>,
        count: u32,
        hooks: &Hooks,
    ) -> Result<(), ConsumerError> {
        let topics: Vec<String> = topics.iter().map(|&t| t.to_owned()).collect();
        for i in 0..count.max(1) {
            let make = {
                let mut kafka = self.kafka.clone();
                // Static membership: one name per consumer, the same after a restart.
                kafka.instance_id = kafka.instance_id.map(|id| format!("{id}#{i}"));
                let (db, group, topics) = (self.db.clone(), group.to_owned(), topics.clone());
                let (handler, hooks) = (Arc::clone(handler), hooks.clone());
                move || {
                    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
                    Consumer::new(db.clone(), &kafka, &group, &topics, Arc::clone(&handler))
                        .map(|c| c.with_hooks(hooks.clone()))
                }
            };
            // The first one is made here, so that a configuration error fails the start-up.
            let first = Mutex::new(Some(make()?));
            self.workers
                .spawn(format!("consumer:{group}#{i}"), move |stop| {
                    let consumer = match first.lock().ok().and_then(|mut f| f.take()) {
                        Some(consumer) => consumer,
                        None => make().map_err(|e| e.to_string())?,
                    };
                    Ok(Box::pin(async move {
                        consumer.run(stop).await.map_err(WorkerExit::from)
                    }))
                });
        }
        Ok(())
    }
}
