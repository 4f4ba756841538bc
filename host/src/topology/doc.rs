//! The topology document (YAML or JSON) and its translation into the IR.

use serde::Deserialize;

use super::checks;
use super::foreign_key;
use super::graph::Graph;
use super::joins::{JoinDoc, join};
use super::windows::{SuppressDoc, WindowDoc};
use super::{
    Node, Op, Punctuate, PunctuationTime, RepartitionReason, StoreSpec, Timestamps, Topology, TopologyError, Until,
};
use crate::plugin::FunctionKind;
use crate::serdes::Serde;
use crate::store::StoreKind;
use crate::window::Windows;

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

/// One input of a `cogroup` in a document: a node and its aggregator.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CogroupDoc {
    /// The input node, keyed by the aggregation key.
    pub from: String,
    /// The aggregator that folds this input's records into the aggregate.
    pub aggregate: String,
}

/// A processor's punctuation schedule in a document.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PunctuateDoc {
    /// The punctuator function.
    pub function: String,
    /// How often, in milliseconds.
    pub every_ms: u64,
    /// `stream` (the default) or `wall`.
    pub time: Option<PunctuationTime>,
}

/// A versioned table in a document: `versioned: { history-retention-ms: N }`
/// on a `table` node.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct VersionedDoc {
    /// How long, in ms of stream time, the store keeps the versions a key
    /// had before its latest (Kafka Streams' history retention).
    pub history_retention_ms: i64,
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
    /// Table option: make the table versioned
    /// (`versioned: { history-retention-ms: 3600000 }`, Kafka Streams'
    /// versioned key-value store): its store keeps each key's value at every
    /// point in time for the history retention, a stream-table join looks a
    /// record up as of its timestamp (and may wait for late table updates
    /// with `grace-ms`), and an update older than the key's latest goes into
    /// the history without being passed on.
    pub versioned: Option<VersionedDoc>,
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
    /// Count, aggregate and reduce option: aggregate per time window
    /// (`{ type: tumbling, size-ms: 60000, grace-ms: 10000 }`); keys become
    /// windowed keys.
    pub window: Option<WindowDoc>,
    /// Aggregate and reduce option on a grouped table: the function that
    /// takes an old value back out of its group's aggregate.
    pub subtractor: Option<String>,
    /// Aggregate option with session windows: the function that merges two
    /// sessions' aggregates when a record bridges them.
    pub merger: Option<String>,
    /// Cogroup: several keyed inputs folded into one aggregate per key, each
    /// with its own aggregator.
    pub cogroup: Option<Vec<CogroupDoc>>,
    /// Process: a processor function.
    pub process: Option<String>,
    /// Process option: the stores the processor uses, its own or global
    /// tables' (read-only).
    pub stores: Option<OneOrMany>,
    /// Process option: a punctuator and its schedule.
    pub punctuate: Option<PunctuateDoc>,
    /// Global-table: a topic copied in full into every instance.
    pub global_table: Option<String>,
    /// Suppress: `until-window-closes` holds a windowed table's updates back
    /// until each window closes, then passes on its final value once; or
    /// `{ until: time-limit, time-limit-ms: N }` holds each key's updates for
    /// N ms of stream time. Either takes `max-records`, `max-bytes` and
    /// `when-full: shut-down | emit-early`.
    pub suppress: Option<SuppressDoc>,
    /// Join: the node's stream joins a table
    /// (`join: { table: NODE, joiner: F, type: inner|left }`; with a
    /// versioned table, `grace-ms: G` holds stream records back until stream
    /// time passes their timestamp + G and joins them with the table as of
    /// their timestamp, in a buffer store that `store:` may name), a global
    /// table, or another stream within a window
    /// (`join: { stream: NODE, joiner: F, window: { time-difference-ms: N } }`),
    /// or another table on a foreign key
    /// (`join: { table: NODE, foreign-key: F, joiner: G, type: inner|left }`).
    pub join: Option<JoinDoc>,
    /// To-stream: turns a table's updates into a stream (`to-stream: true`).
    pub to_stream: Option<bool>,
    /// Repartition (`repartition: true`): writes records to the topic
    /// `<application-id>-<name>-repartition`, partitioned by key, and reads
    /// them back, as Kafka Streams' `KStream#repartition`. Aggregations of
    /// re-keyed streams do this by themselves.
    pub repartition: Option<bool>,
    /// Repartition option: the topic's partition count (default: the
    /// largest source topic's).
    pub partitions: Option<u32>,
    /// Table, global-table, aggregate and reduce option, and on a filter or
    /// map-values of a table (which it materializes): the store's name
    /// (default: the node's name).
    pub store: Option<String>,
    /// Option of every node with stores: `persistent` (RocksDB, the default)
    /// or `in-memory`.
    pub store_kind: Option<StoreKind>,
    /// Source and table option: where records' event time comes from:
    /// `record` (the record's timestamp, the default) or `wall-clock`.
    pub timestamp: Option<String>,
    /// Source and table option: a plugin `timestamp-extractor` function
    /// that reads each record's event time from its contents.
    pub timestamp_extractor: Option<String>,
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
    Process(String),
    GlobalTable(String),
    ToStream,
    Cogroup(Vec<CogroupDoc>),
    Repartition,
    Suppress(SuppressDoc),
    Join(JoinDoc),
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
        take("cogroup", self.cogroup.take().map(DocOp::Cogroup));
        take("process", self.process.take().map(DocOp::Process));
        take("global-table", self.global_table.take().map(DocOp::GlobalTable));
        take("to-stream", self.to_stream.take().map(|_| DocOp::ToStream));
        take("repartition", self.repartition.take().map(|_| DocOp::Repartition));
        take("suppress", self.suppress.take().map(DocOp::Suppress));
        take("join", self.join.take().map(DocOp::Join));
        let bad = |problem: String| TopologyError::BadNode { node: label.to_owned(), problem };
        match ops.len() {
            1 => Ok(ops.pop().expect("one op").1),
            0 => Err(bad(
                "no operator: add one of source, table, global-table, filter, filter-not, map, map-values, flat-map, flat-map-values, select-key, peek, split, merge, repartition, count, aggregate, reduce, cogroup, suppress, join, process, to-stream, to".into(),
            )),
            _ => {
                let keys: Vec<_> = ops.iter().map(|(k, _)| *k).collect();
                Err(bad(format!("has {} operators ({}): a node has exactly one; make one node each", keys.len(), keys.join(", "))))
            }
        }
    }
}

pub(super) fn build(docs: Vec<NodeDoc>) -> Result<Topology, TopologyError> {
    let mut graph = Graph::default();
    // The node a following node reads by default, or why there is none.
    let mut previous: Result<usize, String> = Err("is the first node".into());
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
            let Some(&i) = graph.by_name.get(from) else {
                return Err(TopologyError::UnknownInput {
                    node: name.clone(),
                    from: from.to_owned(),
                    why: "is not defined before it: define nodes before the nodes that read them".into(),
                });
            };
            if let Op::GlobalTable { .. } = graph.nodes[i].op {
                return Err(TopologyError::UnknownInput {
                    node: name.clone(),
                    from: from.to_owned(),
                    why: "is a global table, which passes nothing on: processors read it by naming its store in `stores:`"
                        .into(),
                });
            }
            Ok(i)
        };
        let reads_topics = matches!(op, DocOp::Source(_) | DocOp::Table(_) | DocOp::GlobalTable(_));
        let versioned = match doc.versioned.take() {
            None => None,
            Some(_) if !matches!(op, DocOp::Table(_)) => {
                return Err(bad("`versioned` belongs on a `table` node".into()));
            }
            Some(v) if v.history_retention_ms < 0 => {
                return Err(bad(format!(
                    "versioned: history-retention-ms is {}: use 0 or more",
                    v.history_retention_ms
                )));
            }
            Some(v) => Some(v.history_retention_ms),
        };
        if !matches!(op, DocOp::Process(_)) && (doc.stores.is_some() || doc.punctuate.is_some()) {
            return Err(bad("`stores` and `punctuate` belong on a `process` node".into()));
        }
        if doc.merger.is_some() && !matches!(op, DocOp::Aggregate(FunctionKind::Aggregator, _)) {
            return Err(bad("`merger` belongs on an aggregate with session windows".into()));
        }
        if doc.subtractor.is_some() && !matches!(op, DocOp::Aggregate(..)) {
            return Err(bad("`subtractor` belongs on an aggregate or reduce of a grouped table".into()));
        }
        let store_kind = doc.store_kind.unwrap_or_default();
        if doc.group_by.is_some() && !matches!(op, DocOp::Count(_) | DocOp::Aggregate(..)) {
            return Err(bad("`group-by` belongs on a count, aggregate or reduce".into()));
        }
        if doc.partitions.is_some() && !matches!(op, DocOp::Repartition) {
            return Err(bad("`partitions` belongs on a `repartition` node".into()));
        }
        let window = match doc.window.take() {
            None => None,
            Some(_) if !matches!(op, DocOp::Count(_) | DocOp::Aggregate(..)) => {
                return Err(bad("`window` belongs on a count, aggregate or reduce".into()));
            }
            Some(w) => Some(w.windows().map_err(bad)?),
        };
        match (&op, &window, &doc.merger) {
            (DocOp::Aggregate(FunctionKind::Aggregator, _), Some(Windows::Session(_)), None) => {
                return Err(bad("an aggregate over session windows needs a `merger` that merges two sessions' aggregates when a record bridges them".into()));
            }
            (_, Some(Windows::Session(_)), _) | (_, _, None) => {}
            (_, _, Some(_)) => return Err(bad("`merger` is for session windows: it merges sessions".into())),
        }
        if !matches!(op, DocOp::Source(_) | DocOp::Table(_))
            && (doc.timestamp.is_some() || doc.timestamp_extractor.is_some())
        {
            return Err(bad("`timestamp` and `timestamp-extractor` belong on a source or table".into()));
        }
        if !reads_topics && !matches!(op, DocOp::Sink(_)) && (doc.key_serde.is_some() || doc.value_serde.is_some()) {
            return Err(bad("key-serde and value-serde belong on a source, table or `to` node".into()));
        }
        let inputs: Vec<usize> = match (&op, doc.from.take()) {
            (_, Some(_)) if reads_topics => {
                return Err(bad("a source or table reads topics, not nodes: remove `from`".into()));
            }
            _ if reads_topics => Vec::new(),
            (DocOp::Merge(_) | DocOp::Cogroup(_), Some(_)) => {
                return Err(bad("a merge or cogroup lists its inputs itself: remove `from`".into()));
            }
            (DocOp::Cogroup(items), None) => {
                if items.is_empty() {
                    return Err(bad(
                        "a cogroup needs at least one input: `cogroup: [{ from: NODE, aggregate: FUNCTION }]`".into(),
                    ));
                }
                let inputs: Vec<usize> = items.iter().map(|i| resolve(&i.from)).collect::<Result<_, _>>()?;
                if let Some(twice) =
                    items.iter().enumerate().find(|(k, i)| items[..*k].iter().any(|j| j.from == i.from))
                {
                    return Err(bad(format!("cogroup lists '{}' twice: give each input one aggregator", twice.1.from)));
                }
                inputs
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
        for &input in &inputs {
            if let Op::Sink { topic, .. } = &graph.nodes[input].op {
                return Err(TopologyError::UnknownInput {
                    node: name.clone(),
                    from: graph.nodes[input].name.clone(),
                    why: format!("writes to topic '{topic}' and passes nothing on: read a node before it"),
                });
            }
        }
        if let DocOp::Join(join_doc) = &op
            && join_doc.foreign_key.is_some()
        {
            let (store, kind) = (doc.store.take(), doc.store_kind.unwrap_or_default());
            previous = Ok(foreign_key::join(&mut graph, &name, inputs, join_doc, store, kind).map_err(bad)?);
            continue;
        }
        if let DocOp::Join(join_doc) = &op {
            let reads_table = inputs.first().is_some_and(|&i| graph.nodes[i].table);
            let buffered = join_doc.grace_ms.is_some();
            if !reads_table
                && join_doc.stream.is_none()
                && !buffered
                && (doc.store.is_some() || doc.store_kind.is_some())
            {
                return Err(bad(
                    "a stream-table join keeps no store of its own: the table's store is what it reads (with `grace-ms`, `store:` names the buffer)".into()
                ));
            }
            let default_store = if buffered { format!("{name}-buffer") } else { name.clone() };
            let store = StoreSpec::new(doc.store.take().unwrap_or(default_store), doc.store_kind.unwrap_or_default());
            let index = join(&mut graph, &name, inputs, join_doc, store).map_err(bad)?;
            previous = Ok(index);
            continue;
        }
        let tables = inputs.iter().filter(|&&i| graph.nodes[i].table).count();
        let reads_table = tables > 0;
        if reads_table && tables < inputs.len() {
            return Err(bad(
                "it reads both tables and streams: turn the tables into streams with `to-stream` first".into()
            ));
        }
        if reads_table {
            let grouped = matches!(op, DocOp::Count(_) | DocOp::Aggregate(..)) && doc.group_by.is_some();
            let ok = matches!(
                op,
                DocOp::Filter(..)
                    | DocOp::Transform(FunctionKind::MapValues, _)
                    | DocOp::Sink(_)
                    | DocOp::ToStream
                    | DocOp::Suppress(_)
            );
            if !ok && !grouped {
                let hint = if matches!(op, DocOp::Count(_) | DocOp::Aggregate(..)) {
                    "to aggregate a table, re-key it with `group-by: <select-key function>`"
                } else {
                    "a table supports filter, filter-not, map-values, to-stream, to and grouped count/aggregate/reduce; use `to-stream` first to treat its updates as records"
                };
                return Err(bad(format!("{} reads a table: {hint}", op_keyword(&op))));
            }
            if window.is_some() {
                return Err(bad(
                    "a table's aggregation has no windows: window the stream of its updates (`to-stream` first)".into(),
                ));
            }
            if let DocOp::Aggregate(..) = op
                && doc.subtractor.is_none()
            {
                return Err(bad("aggregating a grouped table needs a `subtractor` (of the same kind) that takes a key's old value back out of its group".into()));
            }
        } else {
            if let DocOp::ToStream = op {
                return Err(bad("to-stream reads a table, but its input is a stream already".into()));
            }
            if doc.subtractor.is_some() {
                return Err(bad("`subtractor` is for aggregating a grouped table; this node reads a stream".into()));
            }
        }
        let table_function = reads_table && matches!(op, DocOp::Filter(..) | DocOp::Transform(..));
        let materializes = table_function && doc.store.is_some();
        let takes_store = table_function
            || matches!(
                op,
                DocOp::Table(_) | DocOp::Aggregate(..) | DocOp::GlobalTable(_) | DocOp::Cogroup(_) | DocOp::Suppress(_)
            );
        if doc.store.is_some() && !takes_store {
            return Err(bad(
                "`store` names the store of a table, global table, aggregate or reduce, or materializes a table's filter or map-values; a count names its store itself (`count: NAME`) and a processor lists `stores`"
                    .into(),
            ));
        }
        let stateful = takes_store || matches!(op, DocOp::Count(_) | DocOp::Process(_)) || doc.group_by.is_some();
        if doc.store_kind.is_some() && !stateful {
            return Err(bad("`store-kind` belongs on a node with a store".into()));
        }
        let spec = |name: String| StoreSpec::new(name, store_kind);
        if let DocOp::Repartition = op {
            if doc.partitions == Some(0) {
                return Err(bad("`partitions` must be at least 1".into()));
            }
            let reason = RepartitionReason::Explicit;
            previous = Ok(graph.repartition(&name, name.clone(), inputs, doc.partitions, &name, reason)?);
            continue;
        }
        // An aggregation of records whose keys were changed reads them back
        // from a repartition topic first, as in Kafka Streams (`group-by`
        // does this itself, below).
        let inputs = match &op {
            DocOp::Count(_) | DocOp::Aggregate(..) if doc.group_by.is_none() => {
                graph.repartition_if_rekeyed(&name, &name, inputs)?
            }
            DocOp::Cogroup(items) => {
                let mut repartitioned = Vec::with_capacity(inputs.len());
                for (input, item) in inputs.into_iter().zip(items) {
                    let prefix = format!("{name}-{}", item.from);
                    repartitioned.extend(graph.repartition_if_rekeyed(&prefix, &name, vec![input])?);
                }
                repartitioned
            }
            _ => inputs,
        };
        let timestamps = match (doc.timestamp.take(), doc.timestamp_extractor.take()) {
            (None, None) => Timestamps::Record,
            (Some(_), Some(_)) => {
                return Err(bad("give either `timestamp` or `timestamp-extractor`, not both".into()));
            }
            (None, Some(f)) => Timestamps::Extractor(f),
            (Some(t), None) => match t.as_str() {
                "record" => Timestamps::Record,
                "wall-clock" => Timestamps::WallClock,
                other => {
                    return Err(bad(format!(
                        "timestamp: '{other}': use `record` (the default), `wall-clock`, or a plugin function with `timestamp-extractor: F`"
                    )));
                }
            },
        };
        let mut table_out = false;
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
                    timestamps,
                    versioned: None,
                };
                (op, Vec::new())
            }
            DocOp::Table(topic) => {
                table_out = true;
                let op = Op::Source {
                    topics: vec![topic],
                    key_serde: doc.key_serde.unwrap_or_default(),
                    value_serde: doc.value_serde.unwrap_or_default(),
                    table: Some(StoreSpec { versioned, ..spec(doc.store.take().unwrap_or_else(|| name.clone())) }),
                    timestamps,
                    versioned,
                };
                (op, Vec::new())
            }
            DocOp::GlobalTable(topic) => {
                if doc.key_serde.is_some() || doc.value_serde.is_some() {
                    return Err(bad("a global table keeps its topic's bytes: remove key-serde and value-serde".into()));
                }
                (Op::GlobalTable { topic, store: spec(doc.store.take().unwrap_or_else(|| name.clone())) }, Vec::new())
            }
            DocOp::Count(store) => {
                table_out = true;
                let store = StoreSpec { segments: window.map(|w| w.segments()), ..spec(store) };
                (Op::Count { store, subtract: reads_table, window }, Vec::new())
            }
            DocOp::Aggregate(kind, function) => {
                table_out = true;
                let store = spec(doc.store.take().unwrap_or_else(|| name.clone()));
                let store = StoreSpec { segments: window.map(|w| w.segments()), ..store };
                (
                    Op::Aggregate {
                        kind,
                        function,
                        subtractor: doc.subtractor.take(),
                        cogroup: Vec::new(),
                        store,
                        window,
                        merger: doc.merger.take(),
                    },
                    Vec::new(),
                )
            }
            DocOp::Cogroup(items) => {
                table_out = true;
                let store = spec(doc.store.take().unwrap_or_else(|| name.clone()));
                let function = items[0].aggregate.clone();
                let cogroup = inputs.iter().copied().zip(items.into_iter().map(|i| i.aggregate)).collect();
                (
                    Op::Aggregate {
                        kind: FunctionKind::Aggregator,
                        function,
                        subtractor: None,
                        cogroup,
                        store,
                        window: None,
                        merger: None,
                    },
                    Vec::new(),
                )
            }
            DocOp::Process(function) => {
                let stores: Vec<StoreSpec> =
                    doc.stores.take().map(OneOrMany::into_vec).unwrap_or_default().into_iter().map(spec).collect();
                if let Some((_, twice)) = stores.iter().enumerate().find(|(i, s)| stores[..*i].contains(s)) {
                    return Err(bad(format!("`stores` lists '{}' twice", twice.name)));
                }
                let punctuate = match doc.punctuate.take() {
                    None => None,
                    Some(p) if p.every_ms == 0 => {
                        return Err(bad("punctuate: `every-ms` must be at least 1".into()));
                    }
                    Some(p) => {
                        Some(Punctuate { function: p.function, every_ms: p.every_ms, time: p.time.unwrap_or_default() })
                    }
                };
                (Op::Process { function, stores, punctuate }, Vec::new())
            }
            DocOp::ToStream => (Op::ToStream, Vec::new()),
            DocOp::Suppress(suppress) => {
                if !reads_table {
                    return Err(bad("suppress reads a table (an aggregation's updates): put it after one".into()));
                }
                let (until, bound) = suppress.check(upstream_windows(&graph.nodes, &inputs)).map_err(bad)?;
                table_out = true;
                let store = spec(doc.store.take().unwrap_or_else(|| name.clone()));
                (Op::Suppress { store, until, bound }, Vec::new())
            }
            DocOp::Filter(function, negate) => {
                table_out = reads_table;
                (Op::Filter { function, negate }, Vec::new())
            }
            DocOp::Transform(kind, function) => {
                table_out = reads_table;
                (Op::Transform { kind, function }, Vec::new())
            }
            DocOp::Sink(topic) => {
                let op = Op::Sink {
                    topic,
                    key_serde: doc.key_serde.unwrap_or_default(),
                    value_serde: doc.value_serde.unwrap_or_default(),
                };
                (op, Vec::new())
            }
            DocOp::Merge(_) => {
                table_out = reads_table;
                if reads_table {
                    return Err(bad(
                        "a merge reads streams: turn the tables into streams with `to-stream` first".into()
                    ));
                }
                (Op::Merge, Vec::new())
            }
            DocOp::Repartition => unreachable!("repartition nodes are added above"),
            DocOp::Join(_) => unreachable!("join nodes are added above"),
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
        let is_global = matches!(op, Op::GlobalTable { .. });
        // group-by: re-key, then through a repartition topic.
        let inputs = match doc.group_by.take() {
            None => inputs,
            Some(function) => {
                let key_name = format!("{name}-group-by");
                let key_op = if reads_table {
                    Op::TableGroupBy { function, store: spec(key_name.clone()) }
                } else {
                    Op::Transform { kind: FunctionKind::SelectKey, function }
                };
                let keyed = graph.add(key_name, inputs, key_op, false)?;
                let source_name = format!("{name}-repartition-source");
                vec![graph.repartition(&name, source_name, vec![keyed], None, &name, RepartitionReason::GroupBy)?]
            }
        };
        let index = if materializes {
            // The function runs in its own node; the node's name is the
            // materialized table, so readers see the coalesced updates.
            let store = spec(doc.store.take().unwrap_or_else(|| name.clone()));
            let function_name = format!("{name}-{}", op.keyword());
            let f = graph.add(function_name, inputs, op, true)?;
            graph.add(name.clone(), vec![f], Op::Materialize { store }, true)?
        } else {
            graph.add(name.clone(), inputs, op, table_out)?
        };
        let mut resolved = Vec::new();
        for b in branches {
            let branch = graph.add(b.branch, vec![index], Op::Branch, false)?;
            resolved.push((branch, b.predicate));
        }
        if let Op::Split { branches } = &mut graph.nodes[index].op {
            *branches = resolved;
        }
        previous = if is_sink {
            Err(format!("follows '{name}', which writes to a topic"))
        } else if is_split {
            Err(format!("follows split '{name}': read one of its branches"))
        } else if is_global {
            Err(format!("follows global table '{name}', which passes nothing on"))
        } else {
            Ok(index)
        };
    }
    let Graph { nodes, internal_topics, .. } = graph;
    if !nodes.iter().any(|n| matches!(n.op, Op::Source { .. })) {
        return Err(TopologyError::NoSource);
    }
    checks::check_store_names(&nodes)?;
    checks::check_topics_read_once(&nodes)?;
    Ok(Topology { nodes, internal_topics })
}

/// The windows of the windowed aggregation `inputs` pass on, if they do.
fn upstream_windows(nodes: &[Node], inputs: &[usize]) -> Option<Windows> {
    let mut at = *inputs.first()?;
    loop {
        let node = &nodes[at];
        node.windowed?;
        match &node.op {
            Op::Count { window: Some(w), .. } | Op::Aggregate { window: Some(w), .. } => return Some(*w),
            Op::Suppress { until: Until::WindowCloses(windows), .. } => return Some(*windows),
            _ => at = *node.inputs.first()?,
        }
    }
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
        DocOp::Process(_) => "process",
        DocOp::GlobalTable(_) => "global-table",
        DocOp::ToStream => "to-stream",
        DocOp::Cogroup(_) => "cogroup",
        DocOp::Repartition => "repartition",
        DocOp::Suppress(_) => "suppress",
        DocOp::Join(_) => "join",
    }
}

#[cfg(test)]
#[path = "doc_tests.rs"]
mod tests;
