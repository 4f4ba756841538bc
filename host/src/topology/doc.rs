//! The topology document (YAML or JSON) and its translation into the IR.

use std::collections::HashMap;

use serde::Deserialize;

use super::{INTERNAL_PREFIX, Node, Op, StoreSpec, Topology, TopologyError};
use crate::plugin::FunctionKind;
use crate::serdes::Serde;
use crate::store::StoreKind;

/// A name or a list of names.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One name.
    One(String),
    /// Several names.
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// One branch of a `split` in a document.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BranchDoc {
    /// The branch's name: later nodes read it with `from`.
    pub branch: String,
    /// The predicate; none on the last branch means "everything else".
    pub predicate: Option<String>,
}

/// One node as written in a topology document: a name, an optional `from`,
/// exactly one operator key and the operator's options.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NodeDoc {
    /// Unique name; `<operator>-<position>` when left out.
    pub name: Option<String>,
    /// The node or nodes this one reads; the previous node when left out.
    pub from: Option<OneOrMany>,
    /// Source: the topics to read.
    pub source: Option<OneOrMany>,
    /// Filter: a predicate; keeps records for which it holds.
    pub filter: Option<String>,
    /// Filter-not: a predicate; drops records for which it holds.
    pub filter_not: Option<String>,
    /// Map: a map function.
    pub map: Option<String>,
    /// Map-values: a map-values function.
    pub map_values: Option<String>,
    /// Flat-map: a flat-map function.
    pub flat_map: Option<String>,
    /// Flat-map-values: a flat-map-values function.
    pub flat_map_values: Option<String>,
    /// Select-key: a select-key function.
    pub select_key: Option<String>,
    /// Peek: a peek function.
    pub peek: Option<String>,
    /// Split: the branches, in order.
    pub split: Option<Vec<BranchDoc>>,
    /// Merge: the nodes to merge.
    pub merge: Option<Vec<String>>,
    /// To: the topic to write.
    pub to: Option<String>,
    /// Table: a topic read as a table (an upsert log), materialized in a store.
    pub table: Option<String>,
    /// Count: the name of the store that holds the counts per key.
    pub count: Option<String>,
    /// Aggregate: an aggregator function.
    pub aggregate: Option<String>,
    /// Reduce: a reducer function.
    pub reduce: Option<String>,
    /// Count, aggregate and reduce option: a select-key function that re-keys
    /// records first; they then go through the repartition topic
    /// `<application-id>-<name>-repartition` so equal keys meet in one task.
    pub group_by: Option<String>,
    /// Table, aggregate and reduce option: the store's name (default: the node's name).
    pub store: Option<String>,
    /// Table, count, aggregate and reduce option: `persistent` (RocksDB, the
    /// default) or `in-memory`.
    pub store_kind: Option<StoreKind>,
    /// Source and sink option: format of keys (bytes, string, json, i64).
    pub key_serde: Option<Serde>,
    /// Source and sink option: format of values.
    pub value_serde: Option<Serde>,
}

/// The operator of a document node, before names are resolved.
enum DocOp {
    Source(Vec<String>),
    Filter(String, bool),
    Transform(FunctionKind, String),
    Split(Vec<BranchDoc>),
    Merge(Vec<String>),
    Sink(String),
    Table(String),
    Count(String),
    Aggregate(FunctionKind, String),
}

impl NodeDoc {
    fn op(&mut self, label: &str) -> Result<DocOp, TopologyError> {
        let mut ops = Vec::new();
        let mut take = |key: &'static str, op: Option<DocOp>| {
            if let Some(op) = op {
                ops.push((key, op));
            }
        };
        take("source", self.source.take().map(|s| DocOp::Source(s.into_vec())));
        take("filter", self.filter.take().map(|f| DocOp::Filter(f, false)));
        take("filter-not", self.filter_not.take().map(|f| DocOp::Filter(f, true)));
        take("map", self.map.take().map(|f| DocOp::Transform(FunctionKind::Map, f)));
        take("map-values", self.map_values.take().map(|f| DocOp::Transform(FunctionKind::MapValues, f)));
        take("flat-map", self.flat_map.take().map(|f| DocOp::Transform(FunctionKind::FlatMap, f)));
        take("flat-map-values", self.flat_map_values.take().map(|f| DocOp::Transform(FunctionKind::FlatMapValues, f)));
        take("select-key", self.select_key.take().map(|f| DocOp::Transform(FunctionKind::SelectKey, f)));
        take("peek", self.peek.take().map(|f| DocOp::Transform(FunctionKind::Peek, f)));
        take("split", self.split.take().map(DocOp::Split));
        take("merge", self.merge.take().map(DocOp::Merge));
        take("to", self.to.take().map(DocOp::Sink));
        take("table", self.table.take().map(DocOp::Table));
        take("count", self.count.take().map(DocOp::Count));
        take("aggregate", self.aggregate.take().map(|f| DocOp::Aggregate(FunctionKind::Aggregator, f)));
        take("reduce", self.reduce.take().map(|f| DocOp::Aggregate(FunctionKind::Reducer, f)));
        let bad = |problem: String| TopologyError::BadNode { node: label.to_owned(), problem };
        match ops.len() {
            1 => Ok(ops.pop().expect("one op").1),
            0 => Err(bad(
                "no operator: add one of source, table, filter, filter-not, map, map-values, flat-map, flat-map-values, select-key, peek, split, merge, count, aggregate, reduce, to".into(),
            )),
            _ => {
                let keys: Vec<_> = ops.iter().map(|(k, _)| *k).collect();
                Err(bad(format!("has {} operators ({}): a node has exactly one; make one node each", keys.len(), keys.join(", "))))
            }
        }
    }
}

pub(super) fn build(docs: Vec<NodeDoc>) -> Result<Topology, TopologyError> {
    let mut nodes: Vec<Node> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    // The node a following node reads by default, or why there is none.
    let mut previous: Result<usize, String> = Err("is the first node".into());

    let add = |nodes: &mut Vec<Node>, by_name: &mut HashMap<String, usize>, node: Node| {
        if by_name.insert(node.name.clone(), nodes.len()).is_some() {
            return Err(TopologyError::DuplicateName(node.name));
        }
        nodes.push(node);
        Ok(nodes.len() - 1)
    };

    let mut internal_topics = Vec::new();
    for (position, mut doc) in docs.into_iter().enumerate() {
        let label = doc.name.clone().unwrap_or_else(|| format!("#{} (unnamed)", position + 1));
        let bad = |problem: String| TopologyError::BadNode { node: label.clone(), problem };
        let op = doc.op(&label)?;
        let name = match doc.name.take() {
            Some(n) if n.trim().is_empty() => return Err(bad("the name is empty".into())),
            Some(n) => n,
            None => format!("{}-{}", op_keyword(&op), position + 1),
        };
        let resolve = |from: &str| {
            by_name.get(from).copied().ok_or_else(|| TopologyError::UnknownInput {
                node: name.clone(),
                from: from.to_owned(),
                why: "is not defined before it: define nodes before the nodes that read them".into(),
            })
        };
        let is_sink_or_source = matches!(op, DocOp::Source(_) | DocOp::Sink(_) | DocOp::Table(_));
        if doc.store.is_some() && !matches!(op, DocOp::Table(_) | DocOp::Aggregate(..)) {
            return Err(bad(
                "`store` names the store of a table, aggregate or reduce; a count names its store itself (`count: NAME`)"
                    .into(),
            ));
        }
        if doc.store_kind.is_some() && !matches!(op, DocOp::Table(_) | DocOp::Count(_) | DocOp::Aggregate(..)) {
            return Err(bad("`store-kind` belongs on a table, count, aggregate or reduce".into()));
        }
        let store_kind = doc.store_kind.unwrap_or_default();
        if doc.group_by.is_some() && !matches!(op, DocOp::Count(_) | DocOp::Aggregate(..)) {
            return Err(bad("`group-by` belongs on a count, aggregate or reduce".into()));
        }
        if !is_sink_or_source && (doc.key_serde.is_some() || doc.value_serde.is_some()) {
            return Err(bad("key-serde and value-serde belong on a source or a `to` node".into()));
        }
        let inputs = match (&op, doc.from.take()) {
            (DocOp::Source(_) | DocOp::Table(_), Some(_)) => {
                return Err(bad("a source or table reads topics, not nodes: remove `from`".into()));
            }
            (DocOp::Source(_) | DocOp::Table(_), None) => Vec::new(),
            (DocOp::Merge(_), Some(_)) => {
                return Err(bad("a merge lists its inputs itself: remove `from`".into()));
            }
            (DocOp::Merge(names), None) => {
                if names.len() < 2 {
                    return Err(bad("a merge needs at least two inputs".into()));
                }
                names.iter().map(|n| resolve(n)).collect::<Result<_, _>>()?
            }
            (_, Some(from)) => from.into_vec().iter().map(|n| resolve(n)).collect::<Result<_, _>>()?,
            (_, None) => match &previous {
                Ok(p) => vec![*p],
                Err(why) => {
                    return Err(TopologyError::UnknownInput {
                        node: name.clone(),
                        from: "(the previous node)".into(),
                        why: format!("{why}: say what it reads with `from:`"),
                    });
                }
            },
        };
        let (op, branches) = match op {
            DocOp::Source(topics) => {
                if topics.is_empty() {
                    return Err(bad("a source needs at least one topic".into()));
                }
                let op = Op::Source {
                    topics,
                    key_serde: doc.key_serde.unwrap_or_default(),
                    value_serde: doc.value_serde.unwrap_or_default(),
                    table: None,
                };
                (op, Vec::new())
            }
            DocOp::Table(topic) => {
                let store = StoreSpec { name: doc.store.take().unwrap_or_else(|| name.clone()), kind: store_kind };
                let op = Op::Source {
                    topics: vec![topic],
                    key_serde: doc.key_serde.unwrap_or_default(),
                    value_serde: doc.value_serde.unwrap_or_default(),
                    table: Some(store),
                };
                (op, Vec::new())
            }
            DocOp::Count(store) => (Op::Count { store: StoreSpec { name: store, kind: store_kind } }, Vec::new()),
            DocOp::Aggregate(kind, function) => {
                let store = StoreSpec { name: doc.store.take().unwrap_or_else(|| name.clone()), kind: store_kind };
                (Op::Aggregate { kind, function, store }, Vec::new())
            }
            DocOp::Filter(function, negate) => (Op::Filter { function, negate }, Vec::new()),
            DocOp::Transform(kind, function) => (Op::Transform { kind, function }, Vec::new()),
            DocOp::Sink(topic) => {
                let op = Op::Sink {
                    topic,
                    key_serde: doc.key_serde.unwrap_or_default(),
                    value_serde: doc.value_serde.unwrap_or_default(),
                };
                (op, Vec::new())
            }
            DocOp::Merge(_) => (Op::Merge, Vec::new()),
            DocOp::Split(branches) => {
                if branches.is_empty() {
                    return Err(bad("a split needs at least one branch".into()));
                }
                if let Some(i) = branches.iter().take(branches.len() - 1).position(|b| b.predicate.is_none()) {
                    let b = &branches[i].branch;
                    return Err(bad(format!(
                        "branch '{b}' has no predicate, so it takes every record and the branches after it get none; give it a predicate or make it the last branch"
                    )));
                }
                (Op::Split { branches: Vec::new() }, branches)
            }
        };
        let is_sink = matches!(op, Op::Sink { .. });
        let is_split = matches!(op, Op::Split { .. });
        // group-by: select-key, then through a repartition topic.
        let inputs = match doc.group_by.take() {
            None => inputs,
            Some(function) => {
                let key_op = Op::Transform { kind: FunctionKind::SelectKey, function };
                let keyed =
                    add(&mut nodes, &mut by_name, Node { name: format!("{name}-group-by"), inputs, op: key_op })?;
                let topic = format!("{INTERNAL_PREFIX}{name}-repartition");
                let sink = Op::Sink { topic: topic.clone(), key_serde: Serde::Bytes, value_serde: Serde::Bytes };
                let sink_name = format!("{name}-repartition-sink");
                add(&mut nodes, &mut by_name, Node { name: sink_name, inputs: vec![keyed], op: sink })?;
                let source = Op::Source {
                    topics: vec![topic.clone()],
                    key_serde: Serde::Bytes,
                    value_serde: Serde::Bytes,
                    table: None,
                };
                let source_name = format!("{name}-repartition-source");
                internal_topics.push(topic);
                vec![add(&mut nodes, &mut by_name, Node { name: source_name, inputs: Vec::new(), op: source })?]
            }
        };
        let index = add(&mut nodes, &mut by_name, Node { name: name.clone(), inputs, op })?;
        let mut resolved = Vec::new();
        for b in branches {
            let branch = add(&mut nodes, &mut by_name, Node { name: b.branch, inputs: vec![index], op: Op::Branch })?;
            resolved.push((branch, b.predicate));
        }
        if let Op::Split { branches } = &mut nodes[index].op {
            *branches = resolved;
        }
        for &input in &nodes[index].inputs {
            if let Op::Sink { topic, .. } = &nodes[input].op {
                return Err(TopologyError::UnknownInput {
                    node: name.clone(),
                    from: nodes[input].name.clone(),
                    why: format!("writes to topic '{topic}' and passes nothing on: read a node before it"),
                });
            }
        }
        previous = if is_sink {
            Err(format!("follows '{name}', which writes to a topic"))
        } else if is_split {
            Err(format!("follows split '{name}': read one of its branches"))
        } else {
            Ok(index)
        };
    }
    if !nodes.iter().any(|n| matches!(n.op, Op::Source { .. })) {
        return Err(TopologyError::NoSource);
    }
    let mut store_names = std::collections::HashSet::new();
    for n in &nodes {
        if let Op::Source { table: Some(store), .. } | Op::Count { store } | Op::Aggregate { store, .. } = &n.op {
            if !store_names.insert(store.name.clone()) {
                return Err(TopologyError::BadNode {
                    node: n.name.clone(),
                    problem: format!("store '{}' is used by another node: give each store its own name", store.name),
                });
            }
            crate::log::check_topic_name(&store.name).map_err(|_| TopologyError::BadNode {
                node: n.name.clone(),
                problem: format!("store name '{}': use only ASCII letters, digits, '.', '_' and '-'", store.name),
            })?;
        }
    }
    Ok(Topology { nodes, internal_topics })
}

fn op_keyword(op: &DocOp) -> &'static str {
    match op {
        DocOp::Source(_) => "source",
        DocOp::Filter(_, false) => "filter",
        DocOp::Filter(_, true) => "filter-not",
        DocOp::Transform(kind, _) => kind.as_str(),
        DocOp::Split(_) => "split",
        DocOp::Merge(_) => "merge",
        DocOp::Sink(_) => "to",
        DocOp::Table(_) => "table",
        DocOp::Count(_) => "count",
        DocOp::Aggregate(FunctionKind::Reducer, _) => "reduce",
        DocOp::Aggregate(..) => "aggregate",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Topology, TopologyError> {
        let docs: Vec<NodeDoc> = serde_yaml::from_str(yaml).map_err(|e| TopologyError::Syntax(e.to_string()))?;
        Topology::parse(docs)
    }

    #[test]
    fn chains_nodes_and_resolves_branches() {
        let t = parse(
            r#"
- { name: in, source: [a, b], value-serde: json }
- { name: ok, filter: valid }
- name: route
  split:
    - { branch: hot, predicate: is_hot }
    - { branch: rest }
- { name: hot-out, from: hot, to: hot-topic }
- { from: rest, map-values: shout }
- { to: cold-topic, key-serde: string }
"#,
        )
        .unwrap();
        let names: Vec<_> = t.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["in", "ok", "route", "hot", "rest", "hot-out", "map-values-5", "to-6"]);
        assert_eq!(t.nodes[1].inputs, [0]);
        assert_eq!(t.nodes[5].inputs, [3]);
        assert_eq!(t.nodes[7].inputs, [6]);
        assert_eq!(t.nodes[2].op, Op::Split { branches: vec![(3, Some("is_hot".into())), (4, None)] });
        assert_eq!(t.source_topics(), ["a", "b"]);
    }

    #[test]
    fn stateful_nodes_name_their_stores() {
        let t = parse(
            r#"
- { name: orders, source: [orders] }
- { name: totals, aggregate: add_order, store: customer-totals }
- { name: biggest, from: orders, reduce: largest_order, store-kind: in-memory }
- { name: n, from: orders, count: order-counts }
- { name: people, table: customers }
"#,
        )
        .unwrap();
        let stores: Vec<(&str, &str, StoreKind)> =
            t.stores().into_iter().map(|(i, s)| (t.nodes[i].name.as_str(), s.name.as_str(), s.kind)).collect();
        assert_eq!(
            stores,
            [
                ("totals", "customer-totals", StoreKind::Persistent),
                ("biggest", "biggest", StoreKind::InMemory),
                ("n", "order-counts", StoreKind::Persistent),
                ("people", "people", StoreKind::Persistent),
            ]
        );
        assert_eq!(t.source_topics(), ["orders", "customers"]);
        let uses: Vec<_> = t.function_uses().into_iter().map(|(_, f, k)| (f, k)).collect();
        assert_eq!(uses, [("add_order", FunctionKind::Aggregator), ("largest_order", FunctionKind::Reducer)]);
        let mut g = parse(
            "- { name: s, source: [a] }\n- { name: totals, aggregate: add, group-by: by_customer }\n- { to: out }",
        )
        .unwrap();
        g.qualify_internal_topics("crm");
        let names: Vec<_> = g.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(
            names,
            ["s", "totals-group-by", "totals-repartition-sink", "totals-repartition-source", "totals", "to-3"]
        );
        assert_eq!(g.internal_topics, ["crm-totals-repartition"]);
        assert_eq!(g.source_topics(), ["a", "crm-totals-repartition"]);
        assert_eq!(g.nodes[4].inputs, [3]);
        let err = parse("- { name: s, source: [a] }\n- { name: f, filter: p, group-by: k }").unwrap_err().to_string();
        assert!(err.contains("`group-by` belongs on a count, aggregate or reduce"), "{err}");
        let err = parse("- { name: s, source: [a] }\n- { name: f, filter: p, store: x }").unwrap_err().to_string();
        assert!(err.contains("`store` names the store of a table, aggregate or reduce"), "{err}");
        let err = parse("- { name: s, source: [a] }\n- { name: a, count: x }\n- { name: b, from: s, count: x }")
            .unwrap_err()
            .to_string();
        assert!(err.contains("store 'x' is used by another node"), "{err}");
    }

    #[test]
    fn structural_errors_name_the_node_and_the_fix() {
        let cases = [
            ("- { name: x, source: [a] }\n- { name: x, filter: f }", "node name 'x' is used twice"),
            (
                "- { name: s, source: [a] }\n- { name: f, from: nope, filter: f }",
                "node 'f' reads from 'nope', which is not defined",
            ),
            ("- { name: s, source: [a] }\n- { name: f, filter: f, map: g }", "node f: has 2 operators (filter, map)"),
            ("- { name: s, source: [a] }\n- { name: f }", "node f: no operator"),
            ("- { name: f, filter: f }", "node 'f' reads from '(the previous node)', which is the first node"),
            (
                "- { name: s, source: [a] }\n- { to: out }\n- { name: m, map: g }",
                "which writes to a topic: say what it reads",
            ),
            ("- { name: m, merge: [a, b] }", "reads from 'a'"),
            ("- { name: s, source: [a] }\n- { name: f, filter: p, value-serde: json }", "belong on a source"),
            (
                "- { name: s, source: [a] }\n- { name: x, split: [{ branch: a2 }, { branch: b, predicate: p }] }",
                "make it the last branch",
            ),
            (
                "- { name: s, source: [a] }\n- { name: x, split: [{ branch: s, predicate: p }] }",
                "node name 's' is used twice",
            ),
            ("- { name: s, sorce: [a] }", "unknown field `sorce`"),
        ];
        for (yaml, want) in cases {
            let err = parse(yaml).unwrap_err().to_string();
            assert!(err.contains(want), "for {yaml:?}\n got: {err}\nwant: {want}");
        }
    }
}
