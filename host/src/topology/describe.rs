//! `eddy describe`: a topology as text, in the layout of Kafka Streams'
//! `Topology#describe()`: sub-topologies with their sources, processors,
//! stores and sinks, then global stores and the repartition topics added.

use std::fmt::Write;

use super::{Op, Topology};

impl Topology {
    /// The topology as Kafka Streams users know it from
    /// `Topology#describe()`, followed by why each repartition topic is there.
    pub fn describe(&self) -> String {
        let children = self.children();
        let names = |ids: &[usize]| -> String {
            if ids.is_empty() {
                "none".to_owned()
            } else {
                ids.iter().map(|&i| self.nodes[i].name.as_str()).collect::<Vec<_>>().join(", ")
            }
        };
        let mut out = String::from("Topologies:\n");
        let subtopologies = self.subtopologies();
        for sub in &subtopologies {
            let _ = writeln!(out, "   Sub-topology: {}", sub.id);
            for &i in &sub.nodes {
                let n = &self.nodes[i];
                let line = match &n.op {
                    Op::Source { topics, table, .. } => {
                        let store = table.as_ref().map(|s| format!(", stores: [{}]", s.name)).unwrap_or_default();
                        format!("Source: {} (topics: [{}]{store})", n.name, topics.join(", "))
                    }
                    Op::Sink { topic, .. } => format!("Sink: {} (topic: {topic})", n.name),
                    op => format!("Processor: {} ({}{})", n.name, what(op), stores(op)),
                };
                let _ = writeln!(out, "    {line}");
                if !matches!(n.op, Op::Sink { .. }) {
                    let _ = writeln!(out, "      --> {}", names(&children[i]));
                }
                if !n.inputs.is_empty() {
                    let _ = writeln!(out, "      <-- {}", names(&n.inputs));
                }
            }
        }
        for (k, (i, topic, store)) in self.global_tables().into_iter().enumerate() {
            let _ = writeln!(
                out,
                "   Sub-topology: {} for global store (will not generate tasks)",
                subtopologies.len() + k
            );
            let _ = writeln!(out, "    Source: {} (topics: [{topic}], stores: [{}])", self.nodes[i].name, store.name);
        }
        if !self.internal_topics.is_empty() {
            out.push_str("Repartition topics:\n");
            for t in &self.internal_topics {
                let partitions = t.partitions.map(|p| format!(", {p} partitions")).unwrap_or_default();
                let _ = writeln!(out, "   {} (read by '{}'{partitions}): {}", t.name, t.node, t.reason);
            }
        }
        out
    }
}

/// What a processor node does: its operator and function.
fn what(op: &Op) -> String {
    match op {
        Op::Filter { function, .. } | Op::Transform { function, .. } | Op::TableGroupBy { function, .. } => {
            format!("{}: {function}", op.keyword())
        }
        Op::Aggregate { function, subtractor: Some(s), .. } => format!("{}: {function}, subtractor: {s}", op.keyword()),
        Op::Aggregate { function, cogroup, .. } if cogroup.is_empty() => format!("{}: {function}", op.keyword()),
        Op::Process { function, punctuate: Some(p), .. } => {
            format!(
                "process: {function}, punctuate: {} every {} ms of {} time",
                p.function,
                p.every_ms,
                p.time.as_str()
            )
        }
        Op::Process { function, .. } => format!("process: {function}"),
        Op::Suppress { .. } => "suppress: until-window-closes".to_owned(),
        Op::Split { branches } => {
            let preds: Vec<&str> = branches.iter().map(|(_, p)| p.as_deref().unwrap_or("(the rest)")).collect();
            format!("split: {}", preds.join(", "))
        }
        op => op.keyword().to_owned(),
    }
}

/// The stores a node uses, as `, stores: [a, b]`, or nothing.
fn stores(op: &Op) -> String {
    let names: Vec<&str> = match op {
        Op::Count { store, .. }
        | Op::Aggregate { store, .. }
        | Op::TableGroupBy { store, .. }
        | Op::Suppress { store, .. }
        | Op::TableTableJoin { store, .. }
        | Op::Materialize { store } => vec![&store.name],
        Op::Process { stores, .. } => stores.iter().map(|s| s.name.as_str()).collect(),
        _ => return String::new(),
    };
    format!(", stores: [{}]", names.join(", "))
}
