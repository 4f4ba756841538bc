//! `eddy describe`: a topology as text, in the layout of Kafka Streams'
//! `Topology#describe()`: sub-topologies with their sources, processors,
//! stores and sinks, then global stores and the repartition topics added.

use std::fmt::Write;

use super::{Op, Topology, Until, WhenFull};
use crate::window::Windows;

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
                    Op::Source { topics, table, versioned, .. } => {
                        let store = table.as_ref().map(|s| format!(", stores: [{}]", s.name)).unwrap_or_default();
                        let history =
                            versioned.map(|ms| format!(", versioned: {ms} ms of history")).unwrap_or_default();
                        format!("Source: {} (topics: [{}]{store}{history})", n.name, topics.join(", "))
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
                let partitions = match (&t.partitions, &t.copartition) {
                    (Some(p), _) => format!(", {p} partitions"),
                    (None, Some(node)) => format!(", partitions as '{node}'"),
                    (None, None) => String::new(),
                };
                let _ = writeln!(out, "   {} (read by '{}'{partitions}): {}", t.name, t.node, t.reason);
            }
        }
        out
    }
}

impl Topology {
    /// The topology as a Graphviz `digraph`: one cluster per sub-topology,
    /// topics as boxes, stores as cylinders, and each repartition topic
    /// linking the sink that writes it to the source that reads it.
    pub fn describe_dot(&self) -> String {
        // Node names are free text; topics and stores get their own ids, so
        // a node may share its name with its topic.
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\\\""));
        let topic = |t: &str| quote(&format!("topic:{t}"));
        let store = |s: &str| quote(&format!("store:{s}"));
        let mut out = String::from("digraph topology {\n  rankdir=LR;\n  node [shape=ellipse];\n");
        for sub in self.subtopologies() {
            let _ = writeln!(out, "  subgraph cluster_{} {{\n    label=\"sub-topology {}\";", sub.id, sub.id);
            for &i in &sub.nodes {
                let n = &self.nodes[i];
                let label = match &n.op {
                    Op::Source { .. } | Op::Sink { .. } => quote(&n.name),
                    op => quote(&format!("{}\\n{}", n.name, what(op))),
                };
                let _ = writeln!(out, "    {} [label={label}];", quote(&n.name));
            }
            out.push_str("  }\n");
        }
        let mut topics: Vec<&str> = Vec::new();
        let mut stores: Vec<&str> = Vec::new();
        for n in &self.nodes {
            for &input in &n.inputs {
                let _ = writeln!(out, "  {} -> {};", quote(&self.nodes[input].name), quote(&n.name));
            }
            match &n.op {
                Op::Source { topics: ts, .. } => {
                    for t in ts {
                        let _ = writeln!(out, "  {} -> {};", topic(t), quote(&n.name));
                        topics.push(t);
                    }
                }
                Op::Sink { topic: t, .. } => {
                    let _ = writeln!(out, "  {} -> {};", quote(&n.name), topic(t));
                    topics.push(t);
                }
                Op::GlobalTable { topic: t, store: s } => {
                    let _ = writeln!(out, "  {} -> {} [style=dashed];", topic(t), store(&s.name));
                    topics.push(t);
                    stores.push(&s.name);
                }
                _ => {}
            }
            for s in node_stores(&n.op) {
                let _ = writeln!(out, "  {} -> {} [dir=both, style=dotted];", quote(&n.name), store(s));
                stores.push(s);
            }
        }
        topics.sort_unstable();
        topics.dedup();
        stores.sort_unstable();
        stores.dedup();
        for t in topics {
            let _ = writeln!(out, "  {} [shape=box, label={}];", topic(t), quote(t));
        }
        for s in stores {
            let _ = writeln!(out, "  {} [shape=cylinder, label={}];", store(s), quote(s));
        }
        out.push_str("}\n");
        out
    }
}

impl Topology {
    /// The topology as JSON for drawing (the server's console): its
    /// sub-topologies, each with its nodes in order (name, `source`,
    /// `processor` or `sink`, what it does, its topics, stores and inputs),
    /// and the global tables.
    pub fn describe_graph(&self) -> serde_json::Value {
        use serde_json::json;
        let node = |i: usize| {
            let n = &self.nodes[i];
            let (kind, topics) = match &n.op {
                Op::Source { topics, .. } => ("source", topics.clone()),
                Op::Sink { topic, .. } => ("sink", vec![topic.clone()]),
                _ => ("processor", Vec::new()),
            };
            json!({
                "name": n.name,
                "kind": kind,
                "what": what(&n.op),
                "topics": topics,
                "stores": node_stores(&n.op),
                "inputs": n.inputs.iter().map(|&i| self.nodes[i].name.as_str()).collect::<Vec<_>>(),
            })
        };
        let subtopologies: Vec<_> = self
            .subtopologies()
            .iter()
            .map(|sub| json!({ "id": sub.id, "nodes": sub.nodes.iter().map(|&i| node(i)).collect::<Vec<_>>() }))
            .collect();
        let globals: Vec<_> = self
            .global_tables()
            .into_iter()
            .map(|(i, topic, store)| json!({ "name": self.nodes[i].name, "topic": topic, "store": store.name }))
            .collect();
        json!({ "subtopologies": subtopologies, "global_tables": globals })
    }
}

/// A windowed aggregation's windows, as `, window: ...`.
fn window(windows: &Windows) -> String {
    let grace = |g: i64| if g > 0 { format!(", grace {g} ms") } else { String::new() };
    match windows {
        Windows::Time(w) if w.is_tumbling() => format!(", window: tumbling {} ms{}", w.size, grace(w.grace)),
        Windows::Time(w) => format!(", window: hopping {} ms every {} ms{}", w.size, w.advance, grace(w.grace)),
        Windows::Sliding(w) => format!(", window: sliding {} ms{}", w.difference, grace(w.grace)),
        Windows::Session(w) => format!(", window: session, gap {} ms{}", w.gap, grace(w.grace)),
    }
}

/// What a processor node does: its operator and function.
fn what(op: &Op) -> String {
    match op {
        Op::Count { window: Some(w), .. } => format!("count{}", window(w)),
        Op::Aggregate { function, window: Some(w), merger, .. } => format!(
            "{}: {function}{}{}",
            op.keyword(),
            merger.as_ref().map(|m| format!(", merger: {m}")).unwrap_or_default(),
            window(w)
        ),
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
        Op::Suppress { until, bound, .. } => {
            let mut text = match until {
                Until::WindowCloses(_) => "suppress: until-window-closes".to_owned(),
                Until::TimeLimit(ms) => format!("suppress: until a time limit of {ms} ms"),
            };
            if let Some(m) = bound.max_records {
                text += &format!(", max {m} keys");
            }
            if let Some(m) = bound.max_bytes {
                text += &format!(", max {m} bytes");
            }
            if bound.max_records.is_some() || bound.max_bytes.is_some() {
                text += match bound.when_full {
                    WhenFull::EmitEarly => ", then emits early",
                    WhenFull::ShutDown => ", then shuts down",
                };
            }
            text
        }
        Op::StreamTableJoin { joiner, left, grace, .. } => format!(
            "{} join with a table: {joiner}{}",
            if *left { "left" } else { "inner" },
            grace.as_ref().map(|g| format!(", grace {} ms", g.grace_ms)).unwrap_or_default()
        ),
        Op::TableTableJoin { joiner, kind, .. } => {
            format!("{} table-table join: {joiner}", format!("{kind:?}").to_lowercase())
        }
        Op::ForeignKeySubscribe { extractor, .. } => format!("foreign-key join, subscribe by foreign key: {extractor}"),
        Op::ForeignKeyRespond { .. } => "foreign-key join, answer subscriptions and right-table updates".to_owned(),
        Op::ForeignKeyJoin { joiner, kind, .. } => {
            format!("{} foreign-key join: {joiner}", format!("{kind:?}").to_lowercase())
        }
        Op::StreamStreamJoin { joiner, kind, windows, .. } => format!(
            "{} stream-stream join: {joiner}, window -{} ms / +{} ms, grace {} ms",
            format!("{kind:?}").to_lowercase(),
            windows.before,
            windows.after,
            windows.grace
        ),
        Op::GlobalTableJoin { joiner, key_mapper, left, .. } => format!(
            "{} join with a global table: {joiner}{}",
            if *left { "left" } else { "inner" },
            key_mapper.as_ref().map(|m| format!(", key-mapper: {m}")).unwrap_or_default()
        ),
        Op::Split { branches } => {
            let preds: Vec<&str> = branches.iter().map(|(_, p)| p.as_deref().unwrap_or("(the rest)")).collect();
            format!("split: {}", preds.join(", "))
        }
        op => op.keyword().to_owned(),
    }
}

/// The stores a node uses, as `, stores: [a, b]`, or nothing.
fn stores(op: &Op) -> String {
    let names = node_stores(op);
    if names.is_empty() && !matches!(op, Op::Process { .. }) {
        return String::new();
    }
    format!(", stores: [{}]", names.join(", "))
}

/// The names of the stores a node uses.
fn node_stores(op: &Op) -> Vec<&str> {
    match op {
        Op::GlobalTable { .. } => Vec::new(),
        op => op.stores().into_iter().map(|s| s.name.as_str()).collect(),
    }
}
