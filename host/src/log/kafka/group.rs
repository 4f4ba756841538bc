//! Group membership on Kafka: which tasks a worker thread owns.
//!
//! Each worker thread is a member of the application's consumer group (the
//! application id), as each Kafka Streams thread is. The members subscribe
//! to one internal topic, `<application-id>-eddy-tasks`, with one partition
//! per task, and the group coordinator shares its partitions among them
//! with the cooperative-sticky assignor: owning partition `i` is owning task
//! `i`. A task reads partition `p` of each of its sub-topology's topics, so
//! co-partitioned partitions always land on the same member, whatever the
//! sub-topologies and partition counts; and the cooperative protocol moves
//! only the tasks that must move, while the others keep running.
//!
//! librdkafka hands each change to the member and waits: the runtime
//! commits and closes the revoked tasks first, then completes the change
//! ([`Member::complete`]), so no other member starts a task before its last
//! owner committed it. The member's generation goes with every offset commit
//! (in a transaction, with `sendOffsetsToTransaction`), so a member the
//! group has dropped (a zombie: paused past its session timeout) cannot
//! commit.
//!
//! Every member of one instance goes by the same `client.id` (the
//! instance's name, its transactional id prefix), so [`members`] can tell
//! from the coordinator's description which instance owns which task: the
//! runtime places standby replicas with it.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext};

use super::{ClientKind, KafkaOptions, kafka};
use crate::log::{GroupMember, LogError, Member, Rebalance};

/// How long the coordinator waits for a silent member before it gives the
/// member's tasks to others.
pub(super) const SESSION_TIMEOUT_MS: u32 = 10_000;

/// The internal topic whose partitions stand for `group`'s tasks.
pub fn tasks_topic(group: &str) -> String {
    format!("{group}-eddy-tasks")
}

/// Changes the coordinator handed over, waiting for the runtime.
#[derive(Default)]
pub(super) struct Changes {
    pending: Mutex<VecDeque<(bool, TopicPartitionList)>>,
    /// The member is leaving: changes apply at once (librdkafka waits for
    /// them to close the consumer).
    leaving: AtomicBool,
}

/// Applies a change to the member's consumer.
fn apply(consumer: &BaseConsumer<Changes>, assign: bool, list: &TopicPartitionList) -> Result<(), KafkaError> {
    if assign { consumer.incremental_assign(list) } else { consumer.incremental_unassign(list) }
}

impl ClientContext for Changes {}

impl ConsumerContext for Changes {
    /// Keeps the change for [`Member::poll`] instead of applying it: the
    /// runtime applies it once the revoked tasks are committed.
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let assign = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => true,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => false,
            other => {
                tracing::warn!("kafka group: unexpected rebalance event {other:?}");
                return;
            }
        };
        if self.leaving.load(Ordering::SeqCst) {
            if let Err(e) = apply(consumer, assign, tpl) {
                tracing::warn!("kafka group: leaving: {e}");
            }
            return;
        }
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).push_back((assign, tpl.clone()));
    }
}

/// A worker thread's membership in its application's group.
pub struct KafkaMember {
    group: String,
    consumer: BaseConsumer<Changes>,
    /// The change `poll` returned and `complete` applies.
    applying: Option<(bool, TopicPartitionList)>,
}

impl KafkaMember {
    pub(super) fn join(options: &KafkaOptions, group: &str) -> Result<KafkaMember, LogError> {
        let config: ClientConfig = options.client_config(ClientKind::Consumer, |config| {
            config
                .set("group.id", group)
                .set("client.id", options.instance_name())
                .set("partition.assignment.strategy", "cooperative-sticky")
                .set("session.timeout.ms", SESSION_TIMEOUT_MS.to_string())
                .set("heartbeat.interval.ms", "1000")
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("isolation.level", "read_committed")
                .set("allow.auto.create.topics", "false");
        });
        let consumer: BaseConsumer<Changes> =
            config.create_with_context(Changes::default()).map_err(kafka(format!("joining group {group}")))?;
        let topic = tasks_topic(group);
        consumer.subscribe(&[&topic]).map_err(kafka(format!("subscribing to {topic}")))?;
        Ok(KafkaMember { group: group.to_owned(), consumer, applying: None })
    }

    /// The member's consumer: its group metadata and offset commits.
    pub(super) fn consumer(&self) -> &BaseConsumer<Changes> {
        &self.consumer
    }
}

impl Drop for KafkaMember {
    /// Leaves the group: changes still waiting are applied, so that
    /// librdkafka can close the consumer (and the group moves the tasks at
    /// once instead of after the session timeout).
    fn drop(&mut self) {
        let changes = self.consumer.context();
        changes.leaving.store(true, Ordering::SeqCst);
        let waiting: Vec<_> = self
            .applying
            .take()
            .into_iter()
            .chain(changes.pending.lock().unwrap_or_else(|p| p.into_inner()).drain(..))
            .collect();
        for (assign, list) in waiting {
            if let Err(e) = apply(&self.consumer, assign, &list) {
                tracing::warn!("kafka group {}: leaving: {e}", self.group);
            }
        }
    }
}

impl Member for KafkaMember {
    fn group(&self) -> &str {
        &self.group
    }

    fn poll(&mut self, timeout: Duration) -> Result<Option<Rebalance>, LogError> {
        if self.applying.is_some() {
            return Err(LogError::Kafka {
                op: format!("group {}: a change polled before the last one completed", self.group),
                source: KafkaError::Rebalance(rdkafka::error::RDKafkaErrorCode::IllegalGeneration),
            });
        }
        let taken =
            |c: &BaseConsumer<Changes>| c.context().pending.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
        let mut next = taken(&self.consumer);
        if next.is_none() {
            // The tasks topic holds no records: polling only serves the
            // group's events (and keeps the member alive).
            if let Some(Err(e)) = self.consumer.poll(timeout) {
                tracing::warn!("kafka group {}: {e}", self.group);
            }
            next = taken(&self.consumer);
        }
        let Some((assign, list)) = next else { return Ok(None) };
        let tasks: Vec<u32> = list.elements().iter().map(|e| e.partition() as u32).collect();
        let change = if assign {
            Rebalance { assigned: tasks, ..Rebalance::default() }
        } else {
            Rebalance { revoked: tasks, lost: self.consumer.assignment_lost(), ..Rebalance::default() }
        };
        self.applying = Some((assign, list));
        Ok(Some(change))
    }

    fn complete(&mut self, _change: &Rebalance) -> Result<(), LogError> {
        let Some((assign, list)) = self.applying.take() else { return Ok(()) };
        apply(&self.consumer, assign, &list).map_err(kafka(format!("group {}: applying a rebalance", self.group)))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The members of `group` and their tasks, from the coordinator's
/// description of the group (DescribeGroups): each member's `client.id` is
/// its instance, its assignment (Kafka's consumer protocol encoding) its
/// partitions of the tasks topic.
pub(super) fn members(client: &BaseConsumer, group: &str, timeout: Duration) -> Result<Vec<GroupMember>, LogError> {
    let list = super::retry(format!("describing group {group}"), || client.fetch_group_list(Some(group), timeout))?;
    let topic = tasks_topic(group);
    let mut members = Vec::new();
    for info in list.groups().iter().filter(|g| g.name() == group) {
        for m in info.members() {
            let tasks = m.assignment().and_then(|bytes| assigned_partitions(bytes, &topic)).unwrap_or_default();
            members.push(GroupMember { instance: m.client_id().to_owned(), tasks });
        }
    }
    Ok(members)
}

/// The partitions of `topic` in a consumer protocol assignment (version,
/// then an array of topic name and partition array, then user data; the
/// same layout in every version); `None` if the bytes are not one.
fn assigned_partitions(bytes: &[u8], topic: &str) -> Option<Vec<u32>> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let slice = bytes.get(at..at + n)?;
        at += n;
        Some(slice)
    };
    let _version = take(2)?;
    let topics = i32::from_be_bytes(take(4)?.try_into().ok()?);
    let mut partitions = Vec::new();
    for _ in 0..topics.max(0) {
        let len = i16::from_be_bytes(take(2)?.try_into().ok()?);
        let name = take(len.max(0) as usize)?.to_vec();
        let count = i32::from_be_bytes(take(4)?.try_into().ok()?);
        for _ in 0..count.max(0) {
            let p = i32::from_be_bytes(take(4)?.try_into().ok()?);
            if name == topic.as_bytes() && p >= 0 {
                partitions.push(p as u32);
            }
        }
    }
    Some(partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_partitions_of_a_consumer_protocol_assignment() {
        // Version 1; topics "other" [7] and "app-eddy-tasks" [0, 3]; no user data.
        let mut bytes = vec![0, 1, 0, 0, 0, 2];
        for (name, partitions) in [("other", &[7i32][..]), ("app-eddy-tasks", &[0, 3][..])] {
            bytes.extend((name.len() as i16).to_be_bytes());
            bytes.extend(name.as_bytes());
            bytes.extend((partitions.len() as i32).to_be_bytes());
            for p in partitions {
                bytes.extend((*p).to_be_bytes());
            }
        }
        bytes.extend((-1i32).to_be_bytes());
        assert_eq!(assigned_partitions(&bytes, "app-eddy-tasks"), Some(vec![0, 3]));
        assert_eq!(assigned_partitions(&bytes[..9], "app-eddy-tasks"), None, "cut short");
        assert_eq!(assigned_partitions(&[], "app-eddy-tasks"), None);
    }
}
