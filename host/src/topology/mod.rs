//! The topology IR: one validated graph of operators, whether it was written
//! as YAML in an application file or built in code by a plugin.
//!
//! A topology document is a list of nodes. Each node has a `name`, an optional
//! `from` (the node or nodes it reads; by default the node before it) and one
//! operator key:
//!
//! ```yaml
//! - name: readings
//!   source: [vitals]            # topics
//!   value-serde: json
//! - name: valid
//!   filter: valid_reading       # a predicate function of the plugin
//! - name: route
//!   split:
//!     - { branch: critical, predicate: is_critical }
//!     - { branch: normal }      # no predicate: everything else
//! - name: alerts
//!   from: critical
//!   to: alerts                  # topic
//! ```
//!
//! [`Topology::parse`] checks the structure; [`Topology::check_functions`]
//! checks it against a plugin's manifest and [`Topology::check_topics`]
//! against a log, before anything runs.

mod checks;
mod describe;
mod doc;
mod foreign_key;
mod graph;
mod joins;
mod repartition;
mod subtopology;
mod windows;

use std::collections::HashMap;

use crate::log::{Log, LogError};
use crate::plugin::{FunctionKind, Manifest};
use crate::serdes::Serde;
pub use crate::store::StoreSpec;
use crate::window::{JoinWindows, WindowedKeys, Windows};

pub use doc::NodeDoc;
pub use repartition::{InternalTopic, RepartitionReason};
pub use subtopology::SubTopology;

/// A validated topology: nodes in an order where every node comes after the
/// nodes it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// The nodes; [`Node::inputs`] index into this list.
    pub nodes: Vec<Node>,
    /// Repartition topics the topology writes and reads itself, named
    /// `<application-id>-<node>-repartition` once the application id is known
    /// ([`Topology::qualify_internal_topics`]); the runtime creates them.
    pub internal_topics: Vec<InternalTopic>,
}

/// Marks an internal topic name until the application id replaces it.
const INTERNAL_PREFIX: &str = "@";

/// One operator of a topology.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Unique name, used in errors, metrics and (later) internal topic names.
    pub name: String,
    /// Indexes of the nodes this one reads.
    pub inputs: Vec<usize>,
    /// What the node does.
    pub op: Op,
    /// True if the node's output is a table's changelog: updates per key,
    /// where a record without a value deletes the key. Downstream filters and
    /// map-values then keep table semantics.
    pub table: bool,
    /// The node that last changed the key of this node's records (a map,
    /// select-key, flat-map or processor) with no repartition since: such
    /// records may sit in a partition their key does not hash to, so an
    /// aggregation reading them repartitions first. `None` for tables and
    /// for streams still partitioned by their key.
    pub rekeyed_by: Option<usize>,
    /// How the node's records' keys carry a window, if they do (see
    /// [`crate::window`]): the output of a windowed aggregation and the
    /// nodes that pass it on unchanged.
    pub windowed: Option<WindowedKeys>,
}

/// When a processor's punctuator runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Punctuate {
    /// The punctuator function.
    pub function: String,
    /// How often, in milliseconds of the chosen clock.
    pub every_ms: u64,
    /// Which clock.
    pub time: PunctuationTime,
}

/// The clock a punctuator follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PunctuationTime {
    /// A task's stream time: the largest record timestamp it has seen. Runs
    /// when stream time crosses a multiple of the interval, between records.
    #[default]
    Stream,
    /// The wall clock: runs every interval whether records arrive or not.
    Wall,
}

impl PunctuationTime {
    /// The clock's name, as the `eddy.punctuation` header carries it.
    pub fn as_str(self) -> &'static str {
        match self {
            PunctuationTime::Stream => "stream",
            PunctuationTime::Wall => "wall",
        }
    }
}

/// How long a suppression holds a key's updates back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Until the update's window has closed (the windows of the aggregation
    /// upstream say when): only final results pass.
    WindowCloses(Windows),
    /// Until stream time is this many ms past the key's first held update;
    /// then the key's latest value passes.
    TimeLimit(i64),
}

/// A suppression buffer's bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BufferBound {
    /// At most this many keys wait.
    pub max_records: Option<u64>,
    /// At most this many bytes wait (each key's key, value and 8 bytes).
    pub max_bytes: Option<u64>,
    /// What happens when the buffer would go over its bound.
    pub when_full: WhenFull,
}

/// What a full suppression buffer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Stops the application with an error (the only choice for final
    /// results, which must never go out early).
    #[default]
    ShutDown,
    /// Passes on the oldest held updates early until the buffer fits.
    EmitEarly,
}

/// Which records a join keeps when a side has no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// Only keys with values on both sides.
    Inner,
    /// Every key of the left side.
    Left,
    /// Every key of either side.
    Outer,
}

/// The grace period of a stream-table join (Kafka Streams'
/// `Joined#withGracePeriod`, KIP-923): stream records wait in a buffer
/// until stream time has passed their timestamp plus the grace, and are then
/// joined, in timestamp order, with the versioned table's value as of their
/// timestamp; a record older than that when it comes is joined at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGrace {
    /// The grace period in ms (at most the table's history retention).
    pub grace_ms: i64,
    /// The buffer of waiting stream records.
    pub buffer: StoreSpec,
}

/// Where a source's records get their event time, as Kafka Streams'
/// `TimestampExtractor`. A negative event time meets the error policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Timestamps {
    /// The record's own timestamp (the default).
    #[default]
    Record,
    /// The wall clock when the record is read (processing time).
    WallClock,
    /// A plugin `timestamp-extractor` function over the record.
    Extractor(String),
}

/// What a node does.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Reads topics.
    Source {
        /// The topics.
        topics: Vec<String>,
        /// Format of keys, checked on read.
        key_serde: Serde,
        /// Format of values, checked on read.
        value_serde: Serde,
        /// For a table: the store it is materialized in. A table reads its
        /// topic as an upsert log (a record without a value deletes the key)
        /// and passes on its updates as they are flushed.
        table: Option<StoreSpec>,
        /// Where records' event time comes from.
        timestamps: Timestamps,
        /// For a versioned table (Kafka Streams' versioned key-value store,
        /// KIP-889): how long, in ms of stream time, its store keeps the
        /// versions a key had before its latest. Its store then holds every
        /// key's value at each point in time; an update older than the key's
        /// latest goes into the history and is not passed on.
        versioned: Option<i64>,
    },
    /// Counts records per key (or per key and window) in a store and passes
    /// on each new count (an `i64`) as it is flushed. Records without a key
    /// are dropped.
    Count {
        /// The store holding the counts.
        store: StoreSpec,
        /// True when counting a grouped table: records with the
        /// `eddy.subtract` header count -1.
        subtract: bool,
        /// Count per window instead: keys become windowed keys.
        window: Option<Windows>,
    },
    /// Folds records into one aggregate per key with a plugin aggregator or
    /// reducer, kept in a store, and passes on each key's new aggregate as it
    /// is flushed. Records without a key are dropped.
    Aggregate {
        /// `Aggregator` or `Reducer`.
        kind: FunctionKind,
        /// The plugin function (the adder, for a grouped table).
        function: String,
        /// For a grouped table: the function (of the same kind) that takes a
        /// record's old value back out of its group's aggregate.
        subtractor: Option<String>,
        /// For a cogroup: each input node with its own aggregator (`function`
        /// is the first's). Empty otherwise.
        cogroup: Vec<(usize, String)>,
        /// The store holding the aggregates.
        store: StoreSpec,
        /// Aggregate per window instead: keys become windowed keys.
        window: Option<Windows>,
        /// For session windows: the function (of the same kind) that merges
        /// two sessions' aggregates when a record bridges them. A reducer
        /// merges with itself.
        merger: Option<String>,
    },
    /// Re-keys a table's updates for aggregation (`group-by` on a table).
    /// It keeps each key's last value in a store, and for each update sends
    /// the old value, marked with the `eddy.subtract` header, under its old
    /// group key, then the new value under its new group key.
    TableGroupBy {
        /// The select-key function.
        function: String,
        /// The store of last values.
        store: StoreSpec,
    },
    /// Runs a plugin processor: records in, records forwarded to named
    /// children, with the node's stores and an optional punctuator.
    Process {
        /// The processor function.
        function: String,
        /// The stores it uses: its own, or a global table's (read-only).
        stores: Vec<StoreSpec>,
        /// Its punctuation schedule.
        punctuate: Option<Punctuate>,
    },
    /// A global table: a full copy of a topic in every instance, readable
    /// by every task through processors' `stores`. It passes nothing on.
    GlobalTable {
        /// The topic.
        topic: String,
        /// The store.
        store: StoreSpec,
    },
    /// Keeps a table's latest value per key in a store (a table filter or
    /// map-values materialized under a name) and passes on its updates as
    /// they are flushed.
    Materialize {
        /// The store.
        store: StoreSpec,
    },
    /// Holds back a table's updates (Kafka Streams' `suppress`): until each
    /// window of a windowed table closes, then its final value once; or for
    /// a time limit per key, then the key's latest value. The updates wait in
    /// a store, so a result survives a crash and is sent exactly once.
    Suppress {
        /// The buffer.
        store: StoreSpec,
        /// How long updates wait.
        until: Until,
        /// How much may wait, and what happens when more would.
        bound: BufferBound,
    },
    /// Joins a stream with a table (Kafka Streams' `KStream#join(KTable)`
    /// and `leftJoin`): each stream record meets the table's current value
    /// for its key (a versioned table's value as of the record's
    /// timestamp), and a plugin joiner makes the output value. Table
    /// updates produce nothing. Inputs: the stream, then the table.
    StreamTableJoin {
        /// The table node (one with a store).
        table: usize,
        /// The joiner function.
        joiner: String,
        /// True for a left join: a record with no table value joins with
        /// none instead of being dropped.
        left: bool,
        /// With a versioned table: how long stream records wait before they
        /// are joined (KIP-923), and the buffer they wait in.
        grace: Option<JoinGrace>,
    },
    /// Joins two tables (Kafka Streams' `KTable#join`, `leftJoin` and
    /// `outerJoin`): an update on either side joins the key's current values
    /// on both sides. The output is a table; a key whose join result goes
    /// away gets a tombstone. Inputs: the left table, then the right one.
    TableTableJoin {
        /// The left table node.
        left: usize,
        /// The right table node.
        right: usize,
        /// The joiner function.
        joiner: String,
        /// Inner, left or outer.
        kind: JoinKind,
        /// The keys that have a join result (so a tombstone goes out only
        /// for a result that existed).
        store: StoreSpec,
    },
    /// The left side of a foreign-key join (Kafka Streams' `KTable#join(other,
    /// foreignKeyExtractor, joiner)`, KIP-213): for each update of the left
    /// table, subscribes the row to the right row its foreign key names (and
    /// unsubscribes it from the one it named before). It sends subscriptions
    /// keyed by foreign key, to the right table's partitions. Input: the left
    /// table.
    ForeignKeySubscribe {
        /// The select-key function that gives a left row's foreign key (or
        /// none).
        extractor: String,
        /// True for a left join: a row with no foreign key still gets a
        /// result.
        left_join: bool,
        /// Each left key's current foreign key.
        store: StoreSpec,
    },
    /// The right side of a foreign-key join: keeps the subscriptions (by
    /// foreign key, then left key) and answers each one, and each update of
    /// the right table, with the right value, sent back keyed by left key to
    /// the partition the subscription came from. Inputs: the subscriptions'
    /// source, then the right table.
    ForeignKeyRespond {
        /// The right table node.
        right: usize,
        /// The subscriptions.
        store: StoreSpec,
    },
    /// The result side of a foreign-key join: joins each answer with the
    /// left row's current value, dropping answers about a value the row no
    /// longer has (a hash of the value travels with the subscription). The
    /// output is a table keyed by the left key. Inputs: the answers' source,
    /// then the left table.
    ForeignKeyJoin {
        /// The left table node.
        left: usize,
        /// The join's [`Op::ForeignKeySubscribe`] node, whose store says
        /// which foreign key a left row has now.
        subscribe: usize,
        /// The joiner function.
        joiner: String,
        /// Inner or left.
        kind: JoinKind,
        /// Per left key, the value (its hash) that its current foreign key
        /// has answered: a late answer from the key it had before is then
        /// stale, whichever right task sent it first.
        store: StoreSpec,
    },
    /// Joins two streams within a time window (Kafka Streams'
    /// `KStream#join(KStream, ValueJoiner, JoinWindows)`, `leftJoin` and
    /// `outerJoin`): a record joins every record of the other side with its
    /// key whose timestamp is within the window. A left (or outer) record
    /// that found no partner is joined with none once its window has closed,
    /// never earlier. Inputs: the left stream, then the right one.
    StreamStreamJoin {
        /// The joiner function.
        joiner: String,
        /// Inner, left or outer.
        kind: JoinKind,
        /// The join window and grace.
        windows: JoinWindows,
        /// The left side's records, the right side's, and (left and outer
        /// joins) the records still waiting for a partner.
        stores: Vec<StoreSpec>,
    },
    /// Joins a stream with a global table (Kafka Streams'
    /// `KStream#join(GlobalKTable, KeyValueMapper, ValueJoiner)`): a key
    /// mapper (or the record's key) gives the global table's key to look up.
    /// No co-partitioning is needed: every task has the whole table.
    GlobalTableJoin {
        /// The global table's store.
        store: String,
        /// The select-key function that maps a record to the table's key;
        /// `None`: the record's key.
        key_mapper: Option<String>,
        /// The joiner function.
        joiner: String,
        /// True for a left join.
        left: bool,
    },
    /// Turns a table's updates into a stream of records.
    ToStream,
    /// Keeps records for which a predicate holds (or, negated, does not).
    Filter {
        /// The predicate function.
        function: String,
        /// True for `filter-not`.
        negate: bool,
    },
    /// Calls a plugin function that transforms records; which output it gives
    /// depends on the kind.
    Transform {
        /// `Map`, `MapValues`, `FlatMap`, `FlatMapValues`, `SelectKey` or `Peek`.
        kind: FunctionKind,
        /// The plugin function.
        function: String,
    },
    /// Routes each record to the first branch whose predicate holds.
    Split {
        /// Branch node indexes with their predicate; `None` takes the rest.
        branches: Vec<(usize, Option<String>)>,
    },
    /// One branch of a split: the records the split sends here.
    Branch,
    /// Passes on the records of all its inputs.
    Merge,
    /// Writes records to a topic.
    Sink {
        /// The topic.
        topic: String,
        /// Format of keys, checked on write.
        key_serde: Serde,
        /// Format of values, checked on write.
        value_serde: Serde,
    },
}

impl Op {
    /// The stores the operator names: its own, and for a processor the
    /// ones it uses (which may be shared, or global tables').
    pub fn stores(&self) -> Vec<&StoreSpec> {
        match self {
            Op::Source { table: Some(store), .. }
            | Op::Count { store, .. }
            | Op::Aggregate { store, .. }
            | Op::TableGroupBy { store, .. }
            | Op::Suppress { store, .. }
            | Op::TableTableJoin { store, .. }
            | Op::ForeignKeySubscribe { store, .. }
            | Op::ForeignKeyRespond { store, .. }
            | Op::ForeignKeyJoin { store, .. }
            | Op::Materialize { store }
            | Op::GlobalTable { store, .. }
            | Op::StreamTableJoin { grace: Some(JoinGrace { buffer: store, .. }), .. } => vec![store],
            Op::Process { stores, .. } | Op::StreamStreamJoin { stores, .. } => stores.iter().collect(),
            _ => Vec::new(),
        }
    }

    /// The operator's name as written in a topology document.
    pub fn keyword(&self) -> &'static str {
        match self {
            Op::Source { table: None, .. } => "source",
            Op::Source { table: Some(_), .. } => "table",
            Op::Count { .. } => "count",
            Op::Aggregate { cogroup, .. } if !cogroup.is_empty() => "cogroup",
            Op::Aggregate { kind: FunctionKind::Reducer, .. } => "reduce",
            Op::Aggregate { .. } => "aggregate",
            Op::TableGroupBy { .. } => "group-by",
            Op::Process { .. } => "process",
            Op::GlobalTable { .. } => "global-table",
            Op::Materialize { .. } => "materialize",
            Op::Suppress { .. } => "suppress",
            Op::StreamTableJoin { .. }
            | Op::GlobalTableJoin { .. }
            | Op::TableTableJoin { .. }
            | Op::ForeignKeyJoin { .. }
            | Op::StreamStreamJoin { .. } => "join",
            Op::ForeignKeySubscribe { .. } => "foreign-key-subscribe",
            Op::ForeignKeyRespond { .. } => "foreign-key-respond",
            Op::ToStream => "to-stream",
            Op::Filter { negate: false, .. } => "filter",
            Op::Filter { negate: true, .. } => "filter-not",
            Op::Transform { kind, .. } => kind.as_str(),
            Op::Split { .. } => "split",
            Op::Branch => "branch",
            Op::Merge => "merge",
            Op::Sink { .. } => "to",
        }
    }
}

/// Why a topology cannot run. Each error names the node and says what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TopologyError {
    /// The document could not be read.
    #[error("topology document: {0}")]
    Syntax(String),
    /// A node is malformed (no operator, two operators, a bad option).
    #[error("node {node}: {problem}")]
    BadNode {
        /// The node's name, or its position if it has none.
        node: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// Two nodes (or branches) share a name.
    #[error("node name '{0}' is used twice: give each node and branch its own name")]
    DuplicateName(String),
    /// A node reads a node that does not exist (or comes later).
    #[error("node '{node}' reads from '{from}', which {why}")]
    UnknownInput {
        /// The reading node.
        node: String,
        /// The name it reads.
        from: String,
        /// Why that fails, with what to do.
        why: String,
    },
    /// The topology has no source.
    #[error("the topology has no source: start it with a node like `- {{ name: input, source: [my-topic] }}`")]
    NoSource,
    /// A node names a function the plugin does not export.
    #[error("node '{node}' ({op}) calls '{function}', which the plugin does not export; it exports: {available}")]
    UnknownFunction {
        /// The node.
        node: String,
        /// Its operator.
        op: &'static str,
        /// The missing function.
        function: String,
        /// What the plugin has.
        available: String,
    },
    /// A node names a function of the wrong kind.
    #[error(
        "node '{node}' ({op}) needs a {expected} function, but '{function}' is a {found} function; use a {expected} function or the operator for a {found}"
    )]
    WrongKind {
        /// The node.
        node: String,
        /// Its operator.
        op: &'static str,
        /// The function.
        function: String,
        /// The kind the operator needs.
        expected: &'static str,
        /// The function's kind.
        found: String,
    },
    /// A source or sink topic does not exist.
    #[error(
        "node '{node}' {verb} topic '{topic}', which does not exist; create it with `eddy topic create {topic} --partitions N`"
    )]
    MissingTopic {
        /// The node.
        node: String,
        /// "reads" or "writes".
        verb: &'static str,
        /// The topic.
        topic: String,
    },
    /// The log could not be asked about topics.
    #[error("checking topics: {0}")]
    Log(String),
}

impl From<LogError> for TopologyError {
    fn from(e: LogError) -> Self {
        TopologyError::Log(e.to_string())
    }
}

impl Topology {
    /// Parses a topology document (the YAML or JSON list of nodes) and checks
    /// its structure.
    pub fn parse(docs: Vec<NodeDoc>) -> Result<Topology, TopologyError> {
        doc::build(docs)
    }

    /// Parses a YAML topology document (the `topology:` list of an
    /// application file).
    pub fn from_yaml(yaml: &str) -> Result<Topology, TopologyError> {
        let docs: Vec<NodeDoc> = serde_yaml::from_str(yaml).map_err(|e| TopologyError::Syntax(e.to_string()))?;
        Topology::parse(docs)
    }

    /// Parses a JSON topology document, as a plugin's builder produces.
    pub fn from_json(json: &str) -> Result<Topology, TopologyError> {
        let docs: Vec<NodeDoc> = serde_json::from_str(json).map_err(|e| TopologyError::Syntax(e.to_string()))?;
        Topology::parse(docs)
    }

    /// For each node, the nodes that read it.
    pub fn children(&self) -> Vec<Vec<usize>> {
        let mut children = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &input in &n.inputs {
                children[input].push(i);
            }
        }
        children
    }

    /// Every plugin function a node calls, with the kind it must have.
    pub fn function_uses(&self) -> Vec<(&Node, &str, FunctionKind)> {
        let mut uses = Vec::new();
        for n in &self.nodes {
            match &n.op {
                Op::Source { timestamps: Timestamps::Extractor(f), .. } => {
                    uses.push((n, f.as_str(), FunctionKind::TimestampExtractor))
                }
                Op::Filter { function, .. } => uses.push((n, function.as_str(), FunctionKind::Predicate)),
                Op::Transform { kind, function } => uses.push((n, function.as_str(), *kind)),
                Op::Aggregate { kind, function, subtractor, cogroup, merger, .. } => {
                    uses.push((n, function.as_str(), *kind));
                    if let Some(s) = subtractor {
                        uses.push((n, s.as_str(), *kind));
                    }
                    if let Some(m) = merger {
                        uses.push((n, m.as_str(), FunctionKind::Merger));
                    }
                    uses.extend(cogroup.iter().skip(1).map(|(_, f)| (n, f.as_str(), *kind)));
                }
                Op::TableGroupBy { function, .. } => uses.push((n, function.as_str(), FunctionKind::SelectKey)),
                Op::StreamTableJoin { joiner, .. }
                | Op::TableTableJoin { joiner, .. }
                | Op::ForeignKeyJoin { joiner, .. }
                | Op::StreamStreamJoin { joiner, .. } => uses.push((n, joiner.as_str(), FunctionKind::Joiner)),
                Op::ForeignKeySubscribe { extractor, .. } => {
                    uses.push((n, extractor.as_str(), FunctionKind::SelectKey))
                }
                Op::GlobalTableJoin { joiner, key_mapper, .. } => {
                    uses.push((n, joiner.as_str(), FunctionKind::Joiner));
                    if let Some(m) = key_mapper {
                        uses.push((n, m.as_str(), FunctionKind::SelectKey));
                    }
                }
                Op::Process { function, punctuate, .. } => {
                    uses.push((n, function.as_str(), FunctionKind::Processor));
                    if let Some(p) = punctuate {
                        uses.push((n, p.function.as_str(), FunctionKind::Punctuator));
                    }
                }
                Op::Split { branches } => uses
                    .extend(branches.iter().filter_map(|(_, p)| p.as_deref()).map(|p| (n, p, FunctionKind::Predicate))),
                _ => {}
            }
        }
        uses
    }

    /// Checks that every function a node calls exists with the right kind.
    pub fn check_functions(&self, manifest: &Manifest) -> Result<(), TopologyError> {
        let by_name: HashMap<&str, &str> =
            manifest.functions.iter().map(|f| (f.name.as_str(), f.kind.as_str())).collect();
        for (node, function, expected) in self.function_uses() {
            match by_name.get(function) {
                None => {
                    let mut names: Vec<_> =
                        manifest.functions.iter().map(|f| format!("{} ({})", f.name, f.kind)).collect();
                    names.sort();
                    return Err(TopologyError::UnknownFunction {
                        node: node.name.clone(),
                        op: node.op.keyword(),
                        function: function.to_owned(),
                        available: if names.is_empty() { "nothing".into() } else { names.join(", ") },
                    });
                }
                Some(found) if *found != expected.as_str() => {
                    return Err(TopologyError::WrongKind {
                        node: node.name.clone(),
                        op: node.op.keyword(),
                        function: function.to_owned(),
                        expected: expected.as_str(),
                        found: (*found).to_owned(),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Checks that every source and sink topic exists in `log`.
    pub fn check_topics(&self, log: &dyn Log) -> Result<(), TopologyError> {
        for n in &self.nodes {
            let (topics, verb) = match &n.op {
                Op::Source { topics, .. } => (topics.clone(), "reads"),
                Op::GlobalTable { topic, .. } => (vec![topic.clone()], "reads"),
                Op::Sink { topic, .. } => (vec![topic.clone()], "writes"),
                _ => continue,
            };
            for topic in topics {
                if log.partitions(&topic)?.is_none() {
                    return Err(TopologyError::MissingTopic { node: n.name.clone(), verb, topic });
                }
            }
        }
        Ok(())
    }

    /// Names internal topics after the application: `@x` becomes `<app>-x`.
    pub fn qualify_internal_topics(&mut self, app: &str) {
        let qualify = |t: &mut String| {
            if let Some(rest) = t.strip_prefix(INTERNAL_PREFIX) {
                *t = format!("{app}-{rest}");
            }
        };
        self.internal_topics.iter_mut().for_each(|t| qualify(&mut t.name));
        for n in &mut self.nodes {
            match &mut n.op {
                Op::Source { topics, .. } => topics.iter_mut().for_each(qualify),
                Op::Sink { topic, .. } => qualify(topic),
                _ => {}
            }
        }
    }

    /// Prefixes the name of every topic the topology reads or writes,
    /// internal ones included (see [`crate::app::App::namespace`]).
    pub fn prefix_topics(&mut self, prefix: &str) {
        let add = |t: &mut String| *t = format!("{prefix}{t}");
        self.internal_topics.iter_mut().for_each(|t| add(&mut t.name));
        for n in &mut self.nodes {
            match &mut n.op {
                Op::Source { topics, .. } => topics.iter_mut().for_each(add),
                Op::Sink { topic, .. } | Op::GlobalTable { topic, .. } => add(topic),
                _ => {}
            }
        }
    }

    /// Every task store of the topology (one instance per task, with a
    /// changelog), with the node that owns it: for a store several
    /// processors share, the first of them.
    pub fn stores(&self) -> Vec<(usize, &StoreSpec)> {
        let globals: Vec<&str> = self.global_tables().into_iter().map(|(_, _, s)| s.name.as_str()).collect();
        let mut stores: Vec<(usize, &StoreSpec)> = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if matches!(n.op, Op::GlobalTable { .. }) {
                continue;
            }
            for store in n.op.stores().into_iter().filter(|s| !globals.contains(&s.name.as_str())) {
                if !stores.iter().any(|(_, s)| s.name == store.name) {
                    stores.push((i, store));
                }
            }
        }
        stores
    }

    /// Every global table: its node, topic and store.
    pub fn global_tables(&self) -> Vec<(usize, &str, &StoreSpec)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match &n.op {
                Op::GlobalTable { topic, store } => Some((i, topic.as_str(), store)),
                _ => None,
            })
            .collect()
    }

    /// The topics the topology reads, in order of first appearance.
    pub fn source_topics(&self) -> Vec<&str> {
        let mut topics: Vec<&str> = Vec::new();
        for n in &self.nodes {
            if let Op::Source { topics: ts, .. } = &n.op {
                for t in ts {
                    if !topics.contains(&t.as_str()) {
                        topics.push(t);
                    }
                }
            }
        }
        topics
    }
}
