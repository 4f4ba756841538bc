//! A builder for topologies defined in code.
//!
//! It produces the same document as the `topology:` section of an application
//! YAML file (a list of nodes), so both routes end in the host's one validated
//! topology IR. Each node reads from the node added before it unless
//! [`Topology::from`] says otherwise.

use serde_json::{Map, Value, json};

/// A topology under construction.
///
/// ```
/// use eddy_sdk::{Branch, Topology};
/// let t = Topology::new()
///     .source("lines", &["text"])
///     .value_serde("string")
///     .flat_map_values("words", "split_words")
///     .split("route", &[Branch::when("long", "is_long"), Branch::otherwise("short")])
///     .to("long-out", "long-words")
///     .from("long");
/// assert!(t.to_json().contains("\"split_words\""));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Topology {
    nodes: Vec<Map<String, Value>>,
}

/// One branch of a [`Topology::split`].
#[derive(Debug, Clone)]
pub struct Branch {
    name: String,
    predicate: Option<String>,
}

impl Branch {
    /// Records for which `predicate` holds (and no earlier branch took).
    pub fn when(name: &str, predicate: &str) -> Self {
        Branch { name: name.to_owned(), predicate: Some(predicate.to_owned()) }
    }

    /// Every record no earlier branch took.
    pub fn otherwise(name: &str) -> Self {
        Branch { name: name.to_owned(), predicate: None }
    }
}

impl Topology {
    /// An empty topology.
    pub fn new() -> Self {
        Topology::default()
    }

    fn node(mut self, name: &str, op: &str, arg: Value) -> Self {
        let mut node = Map::new();
        node.insert("name".into(), json!(name));
        node.insert(op.into(), arg);
        self.nodes.push(node);
        self
    }

    fn set_on_last(mut self, field: &str, value: Value) -> Self {
        if let Some(node) = self.nodes.last_mut() {
            node.insert(field.into(), value);
        }
        self
    }

    /// Reads the given topics.
    pub fn source(self, name: &str, topics: &[&str]) -> Self {
        self.node(name, "source", json!(topics))
    }

    /// Sets the key serde (`bytes`, `string`, `json`, `i64`) of the last
    /// source or sink.
    pub fn key_serde(self, serde: &str) -> Self {
        self.set_on_last("key-serde", json!(serde))
    }

    /// Sets the value serde of the last source or sink.
    pub fn value_serde(self, serde: &str) -> Self {
        self.set_on_last("value-serde", json!(serde))
    }

    /// Makes the last node read from `input` instead of the node before it.
    pub fn from(self, input: &str) -> Self {
        self.set_on_last("from", json!(input))
    }

    /// Reads `topic` as a table (an upsert log), materialized in a store
    /// named after the node.
    pub fn table(self, name: &str, topic: &str) -> Self {
        self.node(name, "table", json!(topic))
    }

    /// Copies `topic` in full into every instance, as a store named after
    /// the node that processors can read.
    pub fn global_table(self, name: &str, topic: &str) -> Self {
        self.node(name, "global-table", json!(topic))
    }

    /// Counts records per key in the store `store`.
    pub fn count(self, name: &str, store: &str) -> Self {
        self.node(name, "count", json!(store))
    }

    /// Folds records per key with an aggregator `function`.
    pub fn aggregate(self, name: &str, function: &str) -> Self {
        self.node(name, "aggregate", json!(function))
    }

    /// Folds records per key with a reducer `function`.
    pub fn reduce(self, name: &str, function: &str) -> Self {
        self.node(name, "reduce", json!(function))
    }

    /// Folds several inputs, each keyed by the aggregation key, into one
    /// aggregate per key: each `(input node, aggregator)` folds its records.
    pub fn cogroup(self, name: &str, inputs: &[(&str, &str)]) -> Self {
        let items: Vec<Value> = inputs.iter().map(|(from, f)| json!({ "from": from, "aggregate": f })).collect();
        self.node(name, "cogroup", json!(items))
    }

    /// Re-keys the records of the last count, aggregate or reduce with a
    /// select-key `function` first (through a repartition topic).
    pub fn group_by(self, function: &str) -> Self {
        self.set_on_last("group-by", json!(function))
    }

    /// Sets the subtractor of the last aggregate or reduce of a grouped table.
    pub fn subtractor(self, function: &str) -> Self {
        self.set_on_last("subtractor", json!(function))
    }

    /// Names the store of the last table, aggregate or reduce.
    pub fn store(self, store: &str) -> Self {
        self.set_on_last("store", json!(store))
    }

    /// Runs a processor `function` using the stores `stores` (its own, or
    /// global tables').
    pub fn process(self, name: &str, function: &str, stores: &[&str]) -> Self {
        self.node(name, "process", json!(function)).set_on_last("stores", json!(stores))
    }

    /// Runs the punctuator `function` of the last process node every
    /// `every_ms` milliseconds of stream time (`wall_clock` false) or of the
    /// wall clock.
    pub fn punctuate(self, function: &str, every_ms: u64, wall_clock: bool) -> Self {
        let time = if wall_clock { "wall" } else { "stream" };
        self.set_on_last("punctuate", json!({ "function": function, "every-ms": every_ms, "time": time }))
    }

    /// Writes records to the topic `<application-id>-<name>-repartition`,
    /// partitioned by key, and reads them back (Kafka Streams'
    /// `KStream#repartition`). Aggregations after a key change repartition
    /// by themselves; this makes it explicit.
    pub fn repartition(self, name: &str) -> Self {
        self.node(name, "repartition", json!(true))
    }

    /// Sets the partition count of the last repartition node's topic.
    pub fn partitions(self, partitions: u32) -> Self {
        self.set_on_last("partitions", json!(partitions))
    }

    /// Turns a table's updates into a stream of records.
    pub fn to_stream(self, name: &str) -> Self {
        self.node(name, "to-stream", json!(true))
    }

    /// Keeps records for which the predicate `function` holds.
    pub fn filter(self, name: &str, function: &str) -> Self {
        self.node(name, "filter", json!(function))
    }

    /// Drops records for which the predicate `function` holds.
    pub fn filter_not(self, name: &str, function: &str) -> Self {
        self.node(name, "filter-not", json!(function))
    }

    /// Replaces each record with the result of a `map` function.
    pub fn map(self, name: &str, function: &str) -> Self {
        self.node(name, "map", json!(function))
    }

    /// Replaces each value with the result of a `map-values` function.
    pub fn map_values(self, name: &str, function: &str) -> Self {
        self.node(name, "map-values", json!(function))
    }

    /// Replaces each record with the records of a `flat-map` function.
    pub fn flat_map(self, name: &str, function: &str) -> Self {
        self.node(name, "flat-map", json!(function))
    }

    /// Replaces each value with the values of a `flat-map-values` function.
    pub fn flat_map_values(self, name: &str, function: &str) -> Self {
        self.node(name, "flat-map-values", json!(function))
    }

    /// Replaces each key with the result of a `select-key` function.
    pub fn select_key(self, name: &str, function: &str) -> Self {
        self.node(name, "select-key", json!(function))
    }

    /// Calls a `peek` function on each record and passes it on.
    pub fn peek(self, name: &str, function: &str) -> Self {
        self.node(name, "peek", json!(function))
    }

    /// Routes each record to the first branch that takes it; each branch is a
    /// node later nodes can read `from`.
    pub fn split(self, name: &str, branches: &[Branch]) -> Self {
        let list: Vec<Value> = branches
            .iter()
            .map(|b| match &b.predicate {
                Some(p) => json!({ "branch": b.name, "predicate": p }),
                None => json!({ "branch": b.name }),
            })
            .collect();
        self.node(name, "split", Value::Array(list))
    }

    /// Merges the streams of the named nodes.
    pub fn merge(self, name: &str, inputs: &[&str]) -> Self {
        self.node(name, "merge", json!(inputs))
    }

    /// Writes records to `topic`.
    pub fn to(self, name: &str, topic: &str) -> Self {
        self.node(name, "to", json!(topic))
    }

    /// The topology as a JSON document (a list of nodes).
    pub fn to_json(&self) -> String {
        Value::Array(self.nodes.iter().cloned().map(Value::Object).collect()).to_string()
    }
}
