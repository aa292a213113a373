//! SagaTopic, the broker half: observe and change topics through the Kafka Admin API
//! (rdkafka's AdminClient; config changes through [`crate::kafka_wire`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::desired::{ConfigChange, DesiredTopic, ObservedTopic};
use crate::kafka_wire::{self, Change, WireError};

/// Why a broker call failed: unreachable (retry later) or refused (look at the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    #[error("broker unreachable: {0}")]
    Unreachable(String),
    #[error("{0}")]
    Rejected(String),
}

impl BrokerError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => kommerce_crds::reasons::BROKER_UNREACHABLE,
            Self::Rejected(_) => kommerce_crds::reasons::BROKER_REJECTED,
        }
    }
}

fn unreachable_code(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::Resolve
            | RDKafkaErrorCode::NetworkException
            | RDKafkaErrorCode::BrokerNotAvailable
    )
}

fn classify(what: &str, e: &KafkaError) -> BrokerError {
    let code = match e {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    };
    match code {
        Some(code) if unreachable_code(code) => BrokerError::Unreachable(format!("{what}: {e}")),
        _ => BrokerError::Rejected(format!("{what}: {e}")),
    }
}

impl From<WireError> for BrokerError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Unreachable(_) | WireError::Io(_) | WireError::Timeout(_) => {
                Self::Unreachable(e.to_string())
            }
            WireError::Malformed(_) | WireError::Rejected { .. } => Self::Rejected(e.to_string()),
        }
    }
}

/// An admin connection to one Kafka cluster.
pub struct Broker {
    admin: Arc<AdminClient<DefaultClientContext>>,
    bootstrap: String,
    timeout: Duration,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

impl Broker {
    pub fn connect(bootstrap: &str, timeout: Duration) -> Result<Self, BrokerError> {
        let ms = timeout.as_millis().to_string();
        let admin = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("client.id", crate::MANAGER)
            .set("socket.timeout.ms", &ms)
            .set("socket.connection.setup.timeout.ms", &ms)
            .set("reconnect.backoff.max.ms", "2000")
            .create::<AdminClient<DefaultClientContext>>()
            .map_err(|e| {
                BrokerError::Rejected(format!("cannot create a Kafka admin client: {e}"))
            })?;
        Ok(Self {
            admin: Arc::new(admin),
            bootstrap: bootstrap.to_owned(),
            timeout,
        })
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout))
    }

    /// The named topics that exist, with partitions and config. Lists all topics' metadata
    /// (asking for named topics could auto-create them on brokers configured to do so).
    #[tracing::instrument(skip(self), fields(bootstrap = %self.bootstrap))]
    pub async fn observe(
        &self,
        names: &[String],
    ) -> Result<BTreeMap<String, ObservedTopic>, BrokerError> {
        let admin = self.admin.clone();
        let timeout = self.timeout;
        let partitions: BTreeMap<String, i32> = tokio::task::spawn_blocking(move || {
            admin.inner().fetch_metadata(None, timeout).map(|md| {
                md.topics()
                    .iter()
                    .filter(|t| t.error().is_none())
                    .map(|t| {
                        (
                            t.name().to_owned(),
                            i32::try_from(t.partitions().len()).unwrap_or(i32::MAX),
                        )
                    })
                    .collect()
            })
        })
        .await
        .map_err(|e| BrokerError::Rejected(format!("metadata task failed: {e}")))?
        .map_err(|e| classify("fetching metadata", &e))?;

        let existing: Vec<&String> = names
            .iter()
            .filter(|n| partitions.contains_key(*n))
            .collect();
        if existing.is_empty() {
            return Ok(BTreeMap::new());
        }
        let specifiers: Vec<ResourceSpecifier<'_>> = existing
            .iter()
            .map(|n| ResourceSpecifier::Topic(n))
            .collect();
        let described = self
            .admin
            .describe_configs(&specifiers, &self.options())
            .await
            .map_err(|e| classify("describing topic configs", &e))?;
        let mut out = BTreeMap::new();
        for (name, result) in existing.into_iter().zip(described) {
            let resource = result.map_err(|code| {
                let e = KafkaError::AdminOp(code);
                classify(&format!("describing the config of {name}"), &e)
            })?;
            let config = resource
                .entries
                .into_iter()
                .filter_map(|entry| entry.value.map(|v| (entry.name, v)))
                .collect();
            out.insert(
                name.clone(),
                ObservedTopic {
                    partitions: partitions.get(name).copied().unwrap_or(0),
                    config,
                },
            );
        }
        Ok(out)
    }

    #[tracing::instrument(skip(self, topic), fields(topic = %topic.name, partitions = topic.partitions))]
    pub async fn create(&self, topic: &DesiredTopic) -> Result<(), BrokerError> {
        let mut new = NewTopic::new(
            &topic.name,
            topic.partitions,
            TopicReplication::Fixed(i32::from(topic.replication_factor)),
        );
        for (key, value) in &topic.config {
            new = new.set(key, value);
        }
        let results = self
            .admin
            .create_topics([&new], &self.options())
            .await
            .map_err(|e| classify("creating topics", &e))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(classify(
                        &format!("creating topic {name}"),
                        &KafkaError::AdminOp(code),
                    ));
                }
            }
        }
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    pub async fn add_partitions(&self, topic: &str, total: i32) -> Result<(), BrokerError> {
        let new = NewPartitions::new(topic, usize::try_from(total).unwrap_or(1));
        let results = self
            .admin
            .create_partitions([&new], &self.options())
            .await
            .map_err(|e| classify(&format!("adding partitions to {topic}"), &e))?;
        for result in results {
            if let Err((name, code)) = result {
                return Err(classify(
                    &format!("adding partitions to {name} (to {total})"),
                    &KafkaError::AdminOp(code),
                ));
            }
        }
        Ok(())
    }

    #[tracing::instrument(skip(self, changes))]
    pub async fn set_config(
        &self,
        topic: &str,
        changes: &[ConfigChange],
    ) -> Result<(), BrokerError> {
        let changes: Vec<Change> = changes
            .iter()
            .map(|c| Change::Set(c.key.clone(), c.desired.clone()))
            .collect();
        kafka_wire::alter_topic_config(&self.bootstrap, topic, &changes, self.timeout)
            .await
            .map_err(BrokerError::from)
    }

    /// Deletes topics; a topic that is already gone counts as deleted.
    #[tracing::instrument(skip(self))]
    pub async fn delete(&self, names: &[String]) -> Result<(), BrokerError> {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let results = self
            .admin
            .delete_topics(&refs, &self.options())
            .await
            .map_err(|e| classify("deleting topics", &e))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((name, code)) => {
                    return Err(classify(
                        &format!("deleting topic {name}"),
                        &KafkaError::AdminOp(code),
                    ));
                }
            }
        }
        Ok(())
    }
}
