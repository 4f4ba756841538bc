//! The graph a topology document is built into: nodes added one at a time,
//! each knowing whether its records' keys were changed, and the repartition
//! topics put in where records must be re-keyed into place.

use std::collections::HashMap;

use super::repartition::{changes_key, keyed_afresh};
use super::{INTERNAL_PREFIX, InternalTopic, Node, Op, RepartitionReason, Timestamps, TopologyError};
use crate::serdes::Serde;

/// Nodes under construction, by position and by name.
#[derive(Default)]
pub(super) struct Graph {
    pub nodes: Vec<Node>,
    pub by_name: HashMap<String, usize>,
    pub internal_topics: Vec<InternalTopic>,
}

impl Graph {
    /// Adds a node after its inputs and returns its index; works out which
    /// node last changed its records' keys.
    pub fn add(&mut self, name: String, inputs: Vec<usize>, op: Op, table: bool) -> Result<usize, TopologyError> {
        let index = self.nodes.len();
        if self.by_name.insert(name.clone(), index).is_some() {
            return Err(TopologyError::DuplicateName(name));
        }
        let rekeyed_by = if changes_key(&op) {
            Some(index)
        } else if keyed_afresh(&op) {
            None
        } else {
            inputs.iter().find_map(|&i| self.nodes[i].rekeyed_by)
        };
        let windowed = match &op {
            Op::Count { window, .. } | Op::Aggregate { window, .. } => window.map(|w| w.keys()),
            op if changes_key(op) || keyed_afresh(op) => None,
            _ => inputs.iter().find_map(|&i| self.nodes[i].windowed),
        };
        self.nodes.push(Node { name, inputs, op, table, rekeyed_by, windowed });
        Ok(index)
    }

    /// The first of `inputs` whose keys were changed, if any.
    pub fn rekeyed(&self, inputs: &[usize]) -> Option<usize> {
        inputs.iter().find_map(|&i| self.nodes[i].rekeyed_by)
    }

    /// Sends `inputs` through the repartition topic `<app>-<name>-repartition`
    /// (nodes `<name>-repartition-sink` and `<source_name>`) and returns the
    /// source node that reads it back, partitioned by key.
    pub fn repartition(
        &mut self,
        name: &str,
        source_name: String,
        inputs: Vec<usize>,
        partitions: Option<u32>,
        node: &str,
        reason: RepartitionReason,
    ) -> Result<usize, TopologyError> {
        let topic = InternalTopic {
            name: format!("{INTERNAL_PREFIX}{name}-repartition"),
            partitions,
            copartition: None,
            node: node.to_owned(),
            reason,
        };
        self.link(format!("{name}-repartition-sink"), source_name, inputs, topic)
    }

    /// Sends `inputs` through the internal topic `topic` (a sink node
    /// `sink_name` writes it) and returns the source node `source_name` that
    /// reads it back.
    pub fn link(
        &mut self,
        sink_name: String,
        source_name: String,
        inputs: Vec<usize>,
        topic: InternalTopic,
    ) -> Result<usize, TopologyError> {
        let sink = Op::Sink { topic: topic.name.clone(), key_serde: Serde::Bytes, value_serde: Serde::Bytes };
        self.add(sink_name, inputs, sink, false)?;
        let source = Op::Source {
            topics: vec![topic.name.clone()],
            key_serde: Serde::Bytes,
            value_serde: Serde::Bytes,
            table: None,
            timestamps: Timestamps::Record,
            versioned: None,
        };
        let index = self.add(source_name, Vec::new(), source, false)?;
        self.internal_topics.push(topic);
        Ok(index)
    }

    /// Repartitions `inputs` of the aggregation `node` through
    /// `<app>-<prefix>-repartition` if any of them had its keys changed;
    /// otherwise returns them as they are.
    pub fn repartition_if_rekeyed(
        &mut self,
        prefix: &str,
        node: &str,
        inputs: Vec<usize>,
    ) -> Result<Vec<usize>, TopologyError> {
        let Some(by) = self.rekeyed(&inputs) else { return Ok(inputs) };
        let reason = RepartitionReason::KeyChanged { by: self.nodes[by].name.clone(), op: self.nodes[by].op.keyword() };
        let source = self.repartition(prefix, format!("{prefix}-repartition-source"), inputs, None, node, reason)?;
        Ok(vec![source])
    }
}
