//! Which stores of a topology can be queried, and how: each store's kind
//! (key-value, window, session, versioned), its sub-topology, and the serdes
//! its keys and values have.
//!
//! Serdes are declared only on sources and sinks, so a store's are found in
//! the topology around it. A table's store has its source's. Otherwise the
//! key serde is that of the nearest sink downstream (or source upstream)
//! reached through nodes that keep the key, and the value serde that of the
//! nearest sink downstream reached through nodes that keep the value; a
//! count's values are `i64`s, and a reducer's have its input's serde. A store
//! nothing tells about has `bytes` (shown as text where it is UTF-8).
//!
//! Stores that hold an operator's own bookkeeping (suppression buffers, join
//! and group-by state) in layouts of its own are not queryable.

use std::collections::BTreeSet;

use crate::plugin::FunctionKind;
use crate::serdes::Serde;
use crate::task::subtopology_of;
use crate::topology::{Op, Topology};
use crate::window::Windows;

/// The kind of a queryable store, which says how its keys are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    /// One value per key: a table, count, aggregate, reduce, materialized
    /// table, or a processor's store.
    KeyValue,
    /// Time windows (tumbling, hopping or sliding): keys are the key then the
    /// window start.
    Window(Windows),
    /// Session windows: keys are the key then the session's end and start.
    Session(Windows),
    /// A versioned table: every version of a key, each valid from its time.
    Versioned {
        /// How long, in ms of stream time, versions before the latest stay.
        history_retention: i64,
    },
}

impl StoreType {
    /// The kind's name in answers: `key-value`, `window`, `session` or
    /// `versioned`.
    pub fn name(&self) -> &'static str {
        match self {
            StoreType::KeyValue => "key-value",
            StoreType::Window(_) => "window",
            StoreType::Session(_) => "session",
            StoreType::Versioned { .. } => "versioned",
        }
    }
}

/// A queryable store of a topology.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreInfo {
    /// The store's name.
    pub name: String,
    /// The node that owns it.
    pub node: String,
    /// Its sub-topology: it has one instance per task of it.
    pub subtopology: usize,
    /// How its keys are laid out.
    pub kind: StoreType,
    /// The serde of its keys (without their window).
    pub key_serde: Serde,
    /// The serde of its values.
    pub value_serde: Serde,
}

/// A store of the topology that cannot be queried, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalStore {
    /// The store's name.
    pub name: String,
    /// What it is (`the buffer of suppress node 'finals'`).
    pub what: String,
}

/// The queryable stores of `topology`, and the others. A table's store has
/// its source's serdes; other stores the serdes of the nearest sink
/// downstream through nodes that keep the key (for keys) or the value (for
/// values), keys failing that the nearest source upstream's; a count's
/// values are `i64`s, a reducer's have its input's serde; `bytes` where
/// nothing says.
pub fn catalog(topology: &Topology) -> (Vec<StoreInfo>, Vec<InternalStore>) {
    let of = subtopology_of(topology);
    let (mut queryable, mut internal) = (Vec::new(), Vec::new());
    for (node, spec) in topology.stores() {
        let n = &topology.nodes[node];
        let kind_of = |window: &Option<Windows>| match window {
            None => StoreType::KeyValue,
            Some(w @ Windows::Session(_)) => StoreType::Session(*w),
            Some(w) => StoreType::Window(*w),
        };
        let found = match &n.op {
            Op::Source { key_serde, value_serde, versioned, .. } => {
                let kind = match versioned {
                    Some(history_retention) => StoreType::Versioned { history_retention: *history_retention },
                    None => StoreType::KeyValue,
                };
                Some((kind, *key_serde, *value_serde))
            }
            Op::Count { window, .. } => Some((kind_of(window), key_serde(topology, node), Serde::I64)),
            Op::Aggregate { window, .. } => {
                Some((kind_of(window), key_serde(topology, node), value_serde(topology, node)))
            }
            Op::Materialize { .. } => {
                Some((StoreType::KeyValue, key_serde(topology, node), value_serde(topology, node)))
            }
            // A processor's store holds what the processor puts there.
            Op::Process { .. } if spec.segments.is_none() => Some((StoreType::KeyValue, Serde::Bytes, Serde::Bytes)),
            _ => None,
        };
        match (found, of[node]) {
            (Some((kind, key_serde, value_serde)), Some(subtopology)) => queryable.push(StoreInfo {
                name: spec.name.clone(),
                node: n.name.clone(),
                subtopology,
                kind,
                key_serde,
                value_serde,
            }),
            _ => internal.push(InternalStore {
                name: spec.name.clone(),
                what: format!("the state of {} node '{}'", n.op.keyword(), n.name),
            }),
        }
    }
    (queryable, internal)
}

/// True if `topic` is one the topology writes and reads itself.
fn is_internal(topology: &Topology, topic: &str) -> bool {
    topology.internal_topics.iter().any(|t| t.name == topic)
}

/// True if records keep their key through `op`.
fn keeps_key(op: &Op) -> bool {
    match op {
        Op::Transform { kind, .. } => {
            matches!(kind, FunctionKind::MapValues | FunctionKind::FlatMapValues | FunctionKind::Peek)
        }
        Op::Filter { .. }
        | Op::Split { .. }
        | Op::Branch
        | Op::Merge
        | Op::ToStream
        | Op::Suppress { .. }
        | Op::Materialize { .. }
        | Op::Count { .. }
        | Op::Aggregate { .. }
        | Op::StreamTableJoin { .. }
        | Op::TableTableJoin { .. }
        | Op::GlobalTableJoin { .. }
        | Op::Sink { .. }
        | Op::Source { .. } => true,
        _ => false,
    }
}

/// True if records keep their value through `op`.
fn keeps_value(op: &Op) -> bool {
    match op {
        Op::Transform { kind, .. } => matches!(kind, FunctionKind::SelectKey | FunctionKind::Peek),
        Op::Filter { .. }
        | Op::Split { .. }
        | Op::Branch
        | Op::Merge
        | Op::ToStream
        | Op::Suppress { .. }
        | Op::Materialize { .. }
        | Op::Sink { .. } => true,
        _ => false,
    }
}

/// The first serde `found` gives, walking from `node` through nodes that
/// `keeps` lets through: downstream if `down`, else upstream.
fn walk(
    topology: &Topology,
    node: usize,
    down: bool,
    keeps: fn(&Op) -> bool,
    found: &dyn Fn(&Op) -> Option<Serde>,
) -> Option<Serde> {
    let children = topology.children();
    let mut seen = BTreeSet::from([node]);
    let mut queue = std::collections::VecDeque::new();
    let next = |at: usize| if down { children[at].clone() } else { topology.nodes[at].inputs.clone() };
    queue.extend(next(node));
    while let Some(at) = queue.pop_front() {
        if !seen.insert(at) {
            continue;
        }
        let op = &topology.nodes[at].op;
        if let Some(serde) = found(op) {
            return Some(serde);
        }
        if keeps(op) {
            queue.extend(next(at));
        }
    }
    None
}

/// The key serde of the store of `node` (see the module documentation).
fn key_serde(topology: &Topology, node: usize) -> Serde {
    let sink = |op: &Op| match op {
        Op::Sink { topic, key_serde, .. } if !is_internal(topology, topic) => Some(*key_serde),
        _ => None,
    };
    let source = |op: &Op| match op {
        Op::Source { topics, key_serde, .. } if !topics.iter().any(|t| is_internal(topology, t)) => Some(*key_serde),
        _ => None,
    };
    walk(topology, node, true, keeps_key, &sink)
        .or_else(|| walk(topology, node, false, keeps_key, &source))
        .unwrap_or(Serde::Bytes)
}

/// The value serde of the store of `node` (see the module documentation).
fn value_serde(topology: &Topology, node: usize) -> Serde {
    let sink = |op: &Op| match op {
        Op::Sink { topic, value_serde, .. } if !is_internal(topology, topic) => Some(*value_serde),
        _ => None,
    };
    let source = |op: &Op| match op {
        Op::Source { topics, value_serde, .. } if !topics.iter().any(|t| is_internal(topology, t)) => {
            Some(*value_serde)
        }
        Op::Count { .. } => Some(Serde::I64),
        _ => None,
    };
    // A reducer's and a materialized table's values are their input's.
    let upstream = match &topology.nodes[node].op {
        Op::Aggregate { kind: FunctionKind::Reducer, .. } | Op::Materialize { .. } => {
            walk(topology, node, false, keeps_value, &source)
        }
        _ => None,
    };
    walk(topology, node, true, keeps_value, &sink).or(upstream).unwrap_or(Serde::Bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog_of(yaml: &str) -> (Vec<StoreInfo>, Vec<InternalStore>) {
        let mut topology = Topology::from_yaml(yaml).unwrap();
        topology.qualify_internal_topics("app");
        catalog(&topology)
    }

    #[test]
    fn stores_get_their_kind_and_the_serdes_around_them() {
        let (stores, internal) = catalog_of(
            "
- { name: lines, source: [lines], value-serde: string }
- { name: split, flat-map: split_words }
- { name: counts, count: word-counts }
- { name: out, to: counts-out, key-serde: string, value-serde: i64 }
- { name: per-minute, from: split, count: minutes, window: { type: tumbling, size-ms: 60000 } }
- { name: sessions, from: split, reduce: longest, window: { type: session, gap-ms: 1000 } }
- { name: final, suppress: until-window-closes }
- { name: final-out, to: sessions-out, key-serde: string, value-serde: json }
- { name: users, table: users, key-serde: i64, value-serde: json }
- { name: prices, table: prices, key-serde: string, value-serde: json, versioned: { history-retention-ms: 1000 } }
",
        );
        let find = |name: &str| stores.iter().find(|s| s.name == name).unwrap();
        let counts = find("word-counts");
        assert_eq!(
            (counts.kind, counts.key_serde, counts.value_serde),
            (StoreType::KeyValue, Serde::String, Serde::I64)
        );
        let minutes = find("minutes");
        assert!(matches!(minutes.kind, StoreType::Window(Windows::Time(_))));
        assert_eq!((minutes.key_serde, minutes.value_serde), (Serde::Bytes, Serde::I64), "nothing names its keys");
        let sessions = find("sessions");
        assert!(matches!(sessions.kind, StoreType::Session(_)));
        assert_eq!((sessions.key_serde, sessions.value_serde), (Serde::String, Serde::Json), "through the suppress");
        let users = find("users");
        assert_eq!((users.kind, users.key_serde, users.value_serde), (StoreType::KeyValue, Serde::I64, Serde::Json));
        assert_eq!(find("prices").kind, StoreType::Versioned { history_retention: 1000 });
        assert_ne!(counts.subtopology, users.subtopology);
        assert_eq!(internal.len(), 1);
        assert_eq!(internal[0].name, "final");
        assert!(internal[0].what.contains("suppress node 'final'"), "{}", internal[0].what);
    }
}
