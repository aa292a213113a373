//! Topic provisioning outside Kubernetes (in a cluster the SagaTopic operator owns topics).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer as _;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::client_config;
use crate::KafkaSettings;

/// `<topic>.dlq`
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// Creates each topic and its dead-letter topic with `settings.partitions` partitions, if
/// missing. Existing topics are left as they are.
pub async fn ensure_topics(settings: &KafkaSettings, topics: &[&str]) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(settings).create()?;
    let names: Vec<String> = topics
        .iter()
        .flat_map(|t| [(*t).to_owned(), dead_letter_topic(t)])
        .collect();
    let new: Vec<NewTopic<'_>> = names
        .iter()
        .map(|n| NewTopic::new(n, settings.partitions, TopicReplication::Fixed(1)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new, &opts).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                tracing::error!(%topic, ?code, "cannot create topic");
                return Err(KafkaError::AdminOp(code));
            }
        }
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error("missing topics: {0:?} (in a cluster, their SagaTopic resources create them)")]
    Missing(Vec<String>),
}

/// Where the SagaTopic operator owns topics (`kafka.ensure_topics = false`), a service only
/// checks that its topics and their dead-letter topics exist, and fails start-up otherwise.
pub async fn check_topics(settings: &KafkaSettings, topics: &[&str]) -> Result<(), TopicError> {
    let consumer: rdkafka::consumer::BaseConsumer = client_config(settings).create()?;
    let settings_timeout = Duration::from_secs(10);
    let metadata =
        tokio::task::spawn_blocking(move || consumer.fetch_metadata(None, settings_timeout))
            .await
            .map_err(|_| KafkaError::Canceled)??;
    let present: Vec<&str> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(rdkafka::metadata::MetadataTopic::name)
        .collect();
    let missing: Vec<String> = topics
        .iter()
        .flat_map(|t| [(*t).to_owned(), dead_letter_topic(t)])
        .filter(|t| !present.contains(&t.as_str()))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(TopicError::Missing(missing))
    }
}

/// `ensure_topics` or `check_topics`, as `kafka.ensure_topics` says.
pub async fn provision_topics(settings: &KafkaSettings, topics: &[&str]) -> Result<(), TopicError> {
    if settings.ensure_topics {
        ensure_topics(settings, topics)
            .await
            .map_err(TopicError::from)
    } else {
        check_topics(settings, topics).await
    }
}
