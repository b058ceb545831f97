//! The Kafka topics of a deployment, provisioned when a role starts: created with the configured
//! partitions, replication, `min.insync.replicas` and retention where missing, and checked where
//! they exist (`kafka.on_topic_mismatch`: a warning per difference, or no start at all). Brokers
//! that cannot be reached now are asked again in the background until they answer, since
//! producers never create a topic themselves.

use std::time::Duration;

use anyhow::bail;
use trackwire_ingest::log::kafka::{Drift, TopicSpec, provision};

use crate::config::{Config, RoleSettings, TopicMismatch};

/// Between attempts while the brokers cannot be reached.
const RETRY_EVERY: Duration = Duration::from_secs(10);

/// The topics `role` writes: the events and points topics wherever the pipeline's sinks run with
/// Kafka, and the raw topic in every role of a scaled-out deployment.
pub fn specs(config: &Config, role: &RoleSettings) -> Vec<TopicSpec> {
    if config.kafka.brokers.is_none() {
        return Vec::new();
    }
    let mut specs = config.kafka.output_topic_specs();
    match role {
        RoleSettings::All => {}
        RoleSettings::Gateway { raw } | RoleSettings::Api { raw, .. } | RoleSettings::Pipeline { raw, .. } => {
            specs.push(raw.spec());
        }
    }
    specs
}

/// Provisions the topics `role` writes before it starts. A difference from the configuration
/// is a warning, or (with `on_topic_mismatch = "refuse"`) the reason the role does not start.
pub fn provision_at_start(config: &Config, role: &RoleSettings) -> anyhow::Result<()> {
    let specs = specs(config, role);
    if specs.is_empty() {
        return Ok(());
    }
    let client = config.kafka.admin_client();
    let mode = config.kafka.on_topic_mismatch;
    match provision(&client, &specs) {
        Ok(drift) => report(&drift, mode),
        Err(error) => {
            tracing::warn!(%error, "kafka topics not provisioned now; asking the brokers again every 10 s");
            std::thread::Builder::new().name("topics".into()).spawn(move || {
                loop {
                    std::thread::sleep(RETRY_EVERY);
                    match provision(&client, &specs) {
                        Ok(drift) => {
                            if let Err(error) = report(&drift, mode) {
                                tracing::error!(%error, "kafka topics differ from the configuration (found after start)");
                            }
                            return;
                        }
                        Err(error) => tracing::debug!(%error, "kafka topics still not provisioned"),
                    }
                }
            })?;
            Ok(())
        }
    }
}

fn report(drift: &[Drift], mode: TopicMismatch) -> anyhow::Result<()> {
    if drift.is_empty() {
        return Ok(());
    }
    let listed = drift.iter().map(Drift::to_string).collect::<Vec<_>>().join("; ");
    match mode {
        TopicMismatch::Refuse => bail!(
            "kafka topics differ from the configuration: {listed}. Change the topics (kafka-configs.sh --alter; \
             partitions and replication need a reassignment) or the [kafka] settings, or set \
             kafka.on_topic_mismatch = \"warn\""
        ),
        TopicMismatch::Warn => {
            for difference in drift {
                tracing::warn!(topic = %difference.topic, setting = difference.setting, wanted = %difference.wanted,
                    found = %difference.found, "kafka topic differs from the configuration");
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_provisions_what_it_writes_and_the_raw_topic_is_never_compacted() {
        let mut config = Config::default();
        assert!(specs(&config, &RoleSettings::All).is_empty(), "no brokers, no topics");
        config.kafka.brokers = Some("broker:9092".into());
        let names = |specs: Vec<TopicSpec>| specs.into_iter().map(|s| (s.name, s.compacted)).collect::<Vec<_>>();
        let outputs = vec![("trackwire.workout-events.v2".to_owned(), true), ("trackwire.points.v1".to_owned(), true)];
        assert_eq!(names(specs(&config, &RoleSettings::All)), outputs);
        let raw = config.kafka.raw_topic_config(16).unwrap();
        let gateway = specs(&config, &RoleSettings::Gateway { raw });
        let raw_spec = gateway.last().unwrap();
        assert_eq!((raw_spec.name.as_str(), raw_spec.compacted, raw_spec.partitions), ("trackwire.raw.v1", false, 8));
        assert_eq!(raw_spec.settings.replication_factor, 3);
        assert_eq!(raw_spec.settings.retention_ms, 90 * 86_400_000);
        config.kafka.retention_days = 0;
        assert_eq!(config.kafka.topic_settings().retention_ms, -1, "0 days: kept forever");
    }
}
