//! Checks of a Kafka cluster before an application runs on it: what its
//! internal topics and transactions need to survive a broker's loss.
//!
//! The `production` profile refuses to run where the cluster cannot keep
//! its promises: fewer than 3 brokers (internal topics get 3 replicas and
//! `min.insync.replicas=2`, as Kafka's notes require for durability), and,
//! exactly-once, a transaction log with fewer than 3 replicas or a minimum
//! ISR under 2. The `development` profile (the default, fit for one local
//! broker) says the same as warnings and runs.

use rdkafka::admin::{AdminOptions, ResourceSpecifier};
use rdkafka::consumer::Consumer as _;

use super::{Guarantee, KafkaLog, REQUEST_TIMEOUT, kafka};
use crate::log::LogError;

/// How strictly an application checks its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Warn about what would not survive a broker's loss, and run.
    #[default]
    Development,
    /// Refuse to run where the cluster cannot keep the guarantees.
    Production,
}

/// Replicas of internal topics under the production profile.
pub const PRODUCTION_REPLICAS: i32 = 3;
/// `min.insync.replicas` of internal topics under the production profile.
pub const PRODUCTION_MIN_ISR: i32 = 2;

impl KafkaLog {
    /// What the cluster lacks for `guarantee` with production durability,
    /// one sentence each (empty when nothing).
    pub fn durability_problems(&self, guarantee: Guarantee) -> Result<Vec<String>, LogError> {
        let metadata =
            self.meta.fetch_metadata(None, REQUEST_TIMEOUT).map_err(kafka("reading the cluster's brokers"))?;
        let brokers: Vec<i32> = metadata.brokers().iter().map(|b| b.id()).collect();
        let mut problems = Vec::new();
        if brokers.len() < PRODUCTION_REPLICAS as usize {
            problems.push(format!(
                "the cluster has {} broker(s): internal topics need {PRODUCTION_REPLICAS} replicas with min.insync.replicas={PRODUCTION_MIN_ISR} to survive the loss of one",
                brokers.len()
            ));
        }
        if guarantee == Guarantee::ExactlyOnce
            && let Some(&broker) = brokers.first()
        {
            let options = AdminOptions::new().request_timeout(Some(REQUEST_TIMEOUT));
            let results = self
                .runtime
                .block_on(self.admin.describe_configs([&ResourceSpecifier::Broker(broker)], &options))
                .map_err(kafka("reading the broker's configuration"))?;
            let setting = |name: &str| -> Option<i32> {
                results.iter().flatten().find_map(|r| r.get(name)?.value.as_deref()?.parse().ok())
            };
            for (name, least) in [
                ("transaction.state.log.replication.factor", PRODUCTION_REPLICAS),
                ("transaction.state.log.min.isr", PRODUCTION_MIN_ISR),
            ] {
                match setting(name) {
                    Some(v) if v >= least => {}
                    Some(v) => problems.push(format!(
                        "exactly-once: the broker's {name} is {v}; transactions survive a broker's loss only with {least} or more"
                    )),
                    None => problems.push(format!("exactly-once: the broker does not say its {name}")),
                }
            }
        }
        Ok(problems)
    }
}
