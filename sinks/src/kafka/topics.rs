//! Topic provisioning: the sink's topics are created from config when they are missing.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;

use super::KafkaConfig;

/// Creates the topics if they are missing; a broker that is down now only gets a warning (the
/// producer retries, and the topics are created when it comes back).
pub(super) fn create_topics(client: &ClientConfig, config: &KafkaConfig) {
    let result = (|| -> Result<(), String> {
        let admin: AdminClient<DefaultClientContext> = client.create().map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        let topics: Vec<NewTopic<'_>> = [&config.events_topic, &config.points_topic]
            .into_iter()
            .map(|t| NewTopic::new(t, config.partitions, TopicReplication::Fixed(1)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = runtime
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(15), admin.create_topics(&topics, &options)).await
            })
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| e.to_string())?;
        for result in results {
            match result {
                Ok(topic) => tracing::info!(topic, "kafka topic created"),
                Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => tracing::debug!(topic, "kafka topic exists"),
                Err((topic, code)) => return Err(format!("creating {topic}: {code}")),
            }
        }
        Ok(())
    })();
    if let Err(error) = result {
        tracing::warn!(brokers = %config.brokers, %error, "kafka topics not created now; producing will retry");
    }
}
