//! Tasks, as in Kafka Streams: the work of one sub-topology on one partition
//! number. A sub-topology has as many tasks as the largest partition count
//! of the topics it reads; task `s_p` reads partition `p` of each of them
//! that has one, owns partition `p` of its stores' changelogs, and keeps its
//! own stream time. Tasks of different sub-topologies are independent: they
//! may run on different threads and move separately.

use std::fmt;

use crate::log::{Log, LogError, TopicPartition};
use crate::store::StoreSpec;
use crate::topology::{Op, Topology};

/// A task's name: its sub-topology and partition, shown as `1_3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId {
    /// The sub-topology ([`Topology::subtopologies`]).
    pub subtopology: usize,
    /// The partition number it works on.
    pub partition: u32,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.subtopology, self.partition)
    }
}

/// One task and the input partitions it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Its name.
    pub id: TaskId,
    /// Partition `id.partition` of each source topic of its sub-topology that
    /// has one.
    pub inputs: Vec<TopicPartition>,
}

/// The tasks of a topology on a log, sub-topology by sub-topology.
pub fn plan(topology: &Topology, log: &dyn Log) -> Result<Vec<Task>, LogError> {
    let mut tasks = Vec::new();
    for sub in topology.subtopologies() {
        let mut counts: Vec<(&str, u32)> = Vec::new();
        for &node in &sub.nodes {
            let Op::Source { topics, .. } = &topology.nodes[node].op else { continue };
            for topic in topics {
                if counts.iter().any(|(t, _)| t == topic) {
                    continue;
                }
                let n = log.partitions(topic)?.ok_or_else(|| LogError::UnknownTopic(topic.to_owned()))?;
                counts.push((topic, n));
            }
        }
        let partitions = counts.iter().map(|(_, n)| *n).max().unwrap_or(0);
        for partition in 0..partitions {
            let inputs =
                counts.iter().filter(|(_, n)| partition < *n).map(|(t, _)| TopicPartition::new(t, partition)).collect();
            tasks.push(Task { id: TaskId { subtopology: sub.id, partition }, inputs });
        }
    }
    Ok(tasks)
}

/// The topics of the sources `node` reads from, directly or through other
/// nodes of its sub-topology.
pub fn source_topics_upstream(topology: &Topology, node: usize) -> Vec<String> {
    let mut topics: Vec<String> = Vec::new();
    let mut seen = vec![false; topology.nodes.len()];
    let mut stack = vec![node];
    while let Some(at) = stack.pop() {
        if std::mem::replace(&mut seen[at], true) {
            continue;
        }
        if let Op::Source { topics: ts, .. } = &topology.nodes[at].op {
            for t in ts {
                if !topics.contains(t) {
                    topics.push(t.clone());
                }
            }
        }
        stack.extend(topology.nodes[at].inputs.iter().copied());
    }
    topics
}

/// The stores each task of `subtopology` holds, with their store ids (their
/// index in [`Topology::stores`], as the pipeline numbers them).
pub fn stores_of(topology: &Topology, subtopology: usize) -> Vec<(usize, &StoreSpec)> {
    let of = subtopology_of(topology);
    topology
        .stores()
        .into_iter()
        .enumerate()
        .filter(|(_, (node, _))| of[*node] == Some(subtopology))
        .map(|(id, (_, spec))| (id, spec))
        .collect()
}

/// For each node, its sub-topology (`None` for global tables).
pub fn subtopology_of(topology: &Topology) -> Vec<Option<usize>> {
    let mut of = vec![None; topology.nodes.len()];
    for sub in topology.subtopologies() {
        for &n in &sub.nodes {
            of[n] = Some(sub.id);
        }
    }
    of
}
