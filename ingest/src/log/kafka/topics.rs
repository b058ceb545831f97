//! Topic provisioning: the topics Trackwire writes are created with the settings the
//! configuration gives (partitions, replication factor, `min.insync.replicas`, retention,
//! compaction where tombstones are written), and topics that exist already are checked against
//! them, each difference reported in words an operator can act on.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;

/// How durable and how long-lived a topic is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSettings {
    /// Copies of each partition (3 in production: an ack then survives a broker).
    pub replication_factor: i32,
    /// Copies that must have a message before the producer's `acks=all` is answered.
    pub min_insync_replicas: i32,
    /// How long messages are kept (`retention.ms`; -1: forever).
    pub retention_ms: i64,
}

/// One topic as it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub settings: TopicSettings,
    /// Compacted as well as expired (`cleanup.policy=compact,delete`): for topics that carry
    /// tombstones, which only compaction acts on.
    pub compacted: bool,
    /// Messages stay at least this long before compaction may drop them
    /// (`min.compaction.lag.ms`), so consumers that keep up see every one.
    pub compaction_lag_ms: i64,
}

/// A setting of an existing topic that differs from its spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub topic: String,
    pub setting: &'static str,
    pub wanted: String,
    pub found: String,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "topic {} has {} = {} where the configuration asks for {}",
            self.topic, self.setting, self.found, self.wanted
        )
    }
}

impl TopicSpec {
    fn cleanup_policy(&self) -> &'static str {
        if self.compacted { "compact,delete" } else { "delete" }
    }

    /// The topic-level settings (`name`, value) the topic is created with and checked for.
    fn configs(&self) -> Vec<(&'static str, String)> {
        let mut configs = vec![
            ("min.insync.replicas", self.settings.min_insync_replicas.to_string()),
            ("retention.ms", self.settings.retention_ms.to_string()),
            ("cleanup.policy", self.cleanup_policy().to_owned()),
        ];
        if self.compacted {
            configs.push(("min.compaction.lag.ms", self.compaction_lag_ms.to_string()));
        }
        configs
    }

    /// How `found` (the topic as the broker describes it) differs from this spec.
    pub fn drift(&self, found: &FoundTopic) -> Vec<Drift> {
        let mut drift = Vec::new();
        let mut differs = |setting: &'static str, wanted: String, found: Option<String>| {
            let found = found.unwrap_or_else(|| "(not reported)".into());
            if !same(setting, &wanted, &found) {
                drift.push(Drift { topic: self.name.clone(), setting, wanted, found });
            }
        };
        differs("partitions", self.partitions.to_string(), Some(found.partitions.to_string()));
        differs(
            "replication factor",
            self.settings.replication_factor.to_string(),
            Some(found.replication_factor.to_string()),
        );
        for (name, wanted) in self.configs() {
            let value = found.configs.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
            differs(name, wanted, value);
        }
        drift
    }
}

/// `cleanup.policy` lists its policies in any order.
fn same(setting: &str, wanted: &str, found: &str) -> bool {
    if setting == "cleanup.policy" {
        let sorted = |s: &str| {
            let mut parts: Vec<String> = s.split(',').map(|p| p.trim().to_ascii_lowercase()).collect();
            parts.sort();
            parts
        };
        return sorted(wanted) == sorted(found);
    }
    wanted == found
}

/// A topic as the broker describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoundTopic {
    pub partitions: usize,
    /// Replicas of its first partition.
    pub replication_factor: usize,
    /// Its topic-level settings, as `(name, value)`.
    pub configs: Vec<(String, String)>,
}

/// Creates the topics that are missing and describes every one; the differences between the
/// topics and their specs, or why the brokers could not be asked.
pub fn provision(client: &ClientConfig, specs: &[TopicSpec]) -> Result<Vec<Drift>, String> {
    let admin: AdminClient<DefaultClientContext> = client.create().map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let configs: Vec<Vec<(&'static str, String)>> = specs.iter().map(TopicSpec::configs).collect();
    let new_topics: Vec<NewTopic<'_>> = specs
        .iter()
        .zip(&configs)
        .map(|(spec, configs)| {
            let topic =
                NewTopic::new(&spec.name, spec.partitions, TopicReplication::Fixed(spec.settings.replication_factor));
            configs.iter().fold(topic, |topic, (name, value)| topic.set(name, value))
        })
        .collect();
    let created = runtime
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(15), admin.create_topics(&new_topics, &options)).await
        })
        .map_err(|_| "creating topics: the brokers did not answer within 15 s".to_string())?
        .map_err(|e| format!("creating topics: {e}"))?;
    for result in created {
        match result {
            Ok(topic) => tracing::info!(topic, "kafka topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(format!("creating topic {topic}: {code}")),
        }
    }
    let metadata = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(|e| format!("reading the topics' metadata: {e}"))?;
    let resources: Vec<ResourceSpecifier<'_>> = specs.iter().map(|s| ResourceSpecifier::Topic(&s.name)).collect();
    let described = runtime
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(15), admin.describe_configs(&resources, &options)).await
        })
        .map_err(|_| "describing topics: the brokers did not answer within 15 s".to_string())?
        .map_err(|e| format!("describing topics: {e}"))?;
    let mut drift = Vec::new();
    for (spec, description) in specs.iter().zip(described) {
        let topic = metadata.topics().iter().find(|t| t.name() == spec.name);
        let found = FoundTopic {
            partitions: topic.map_or(0, |t| t.partitions().len()),
            replication_factor: topic.and_then(|t| t.partitions().first()).map_or(0, |p| p.replicas().len()),
            configs: match description {
                Ok(resource) => {
                    resource.entries.into_iter().filter_map(|entry| Some((entry.name, entry.value?))).collect()
                }
                Err(code) => return Err(format!("describing topic {}: {code}", spec.name)),
            },
        };
        drift.extend(spec.drift(&found));
    }
    Ok(drift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> TopicSpec {
        TopicSpec {
            name: "events".into(),
            partitions: 8,
            settings: TopicSettings { replication_factor: 3, min_insync_replicas: 2, retention_ms: 7_776_000_000 },
            compacted: true,
            compaction_lag_ms: 604_800_000,
        }
    }

    fn found(configs: &[(&str, &str)]) -> FoundTopic {
        FoundTopic {
            partitions: 8,
            replication_factor: 3,
            configs: configs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn a_topic_as_specified_has_no_drift_whatever_the_order_of_its_policies() {
        let topic = found(&[
            ("min.insync.replicas", "2"),
            ("retention.ms", "7776000000"),
            ("cleanup.policy", "delete,compact"),
            ("min.compaction.lag.ms", "604800000"),
            ("segment.bytes", "1073741824"),
        ]);
        assert_eq!(events().drift(&topic), vec![]);
    }

    #[test]
    fn each_difference_is_named_with_what_was_wanted_and_found() {
        let mut topic =
            found(&[("min.insync.replicas", "1"), ("retention.ms", "604800000"), ("cleanup.policy", "delete")]);
        topic.replication_factor = 1;
        let drift = events().drift(&topic);
        let settings: Vec<&str> = drift.iter().map(|d| d.setting).collect();
        assert_eq!(
            settings,
            ["replication factor", "min.insync.replicas", "retention.ms", "cleanup.policy", "min.compaction.lag.ms"]
        );
        assert_eq!(drift[0].to_string(), "topic events has replication factor = 1 where the configuration asks for 3");
        assert_eq!(drift[4].found, "(not reported)");
    }
}
