//! Topic provisioning outside Kubernetes (in a cluster the SagaTopic operator owns topics).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
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
