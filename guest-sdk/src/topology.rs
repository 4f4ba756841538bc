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

/// The windows of a windowed count, aggregate or reduce
/// ([`Topology::window`]): the document's `window:` object.
///
/// ```
/// use eddy_sdk::{Topology, Window};
/// let t = Topology::new()
///     .source("clicks", &["clicks"])
///     .count("per-minute", "clicks-per-minute")
///     .window(Window::tumbling(60_000).grace(10_000));
/// assert!(t.to_json().contains(r#""window":{"type":"tumbling","size-ms":60000,"grace-ms":10000}"#));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Window(Map<String, Value>);

impl Window {
    fn of(kind: &str, lengths: &[(&str, u64)]) -> Self {
        let mut doc = Map::new();
        doc.insert("type".into(), json!(kind));
        for (field, ms) in lengths {
            doc.insert((*field).into(), json!(ms));
        }
        Window(doc)
    }

    /// Windows of `size_ms` that do not overlap: each record falls in one.
    pub fn tumbling(size_ms: u64) -> Self {
        Window::of("tumbling", &[("size-ms", size_ms)])
    }

    /// Windows of `size_ms` starting every `advance_ms` (at most `size_ms`),
    /// so a record falls in each window that covers its timestamp.
    pub fn hopping(size_ms: u64, advance_ms: u64) -> Self {
        Window::of("hopping", &[("size-ms", size_ms), ("advance-ms", advance_ms)])
    }

    /// Windows of records at most `difference_ms` apart, one for each
    /// distinct set of records (Kafka Streams' `SlidingWindows`).
    pub fn sliding(difference_ms: u64) -> Self {
        Window::of("sliding", &[("time-difference-ms", difference_ms)])
    }

    /// Sessions per key that end after `gap_ms` without a record; a session
    /// aggregate also needs a [`Topology::merger`].
    pub fn session(gap_ms: u64) -> Self {
        Window::of("session", &[("gap-ms", gap_ms)])
    }

    /// How long after its end a window still takes late records (default 0).
    pub fn grace(mut self, ms: u64) -> Self {
        self.0.insert("grace-ms".into(), json!(ms));
        self
    }

    /// How long the store keeps a window (default: until it closes, and at
    /// least a day); at least the window's size (or gap) plus its grace.
    pub fn retention(mut self, ms: u64) -> Self {
        self.0.insert("retention-ms".into(), json!(ms));
        self
    }
}

/// The window of a stream-stream join ([`Topology::join_stream`]): how far
/// apart two records' timestamps may be to join, as Kafka Streams'
/// `JoinWindows`.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinWindow(Map<String, Value>);

impl JoinWindow {
    /// Records join when their timestamps are at most `time_difference_ms`
    /// apart, either way.
    pub fn of(time_difference_ms: u64) -> Self {
        let mut doc = Map::new();
        doc.insert("time-difference-ms".into(), json!(time_difference_ms));
        JoinWindow(doc)
    }

    /// How far the other stream's record may come before this stream's one,
    /// in place of the time difference on that side.
    pub fn before(mut self, ms: u64) -> Self {
        self.0.insert("before-ms".into(), json!(ms));
        self
    }

    /// How far the other stream's record may come after this stream's one,
    /// in place of the time difference on that side.
    pub fn after(mut self, ms: u64) -> Self {
        self.0.insert("after-ms".into(), json!(ms));
        self
    }

    /// How long after its window a record still joins late partners
    /// (default 0).
    pub fn grace(mut self, ms: u64) -> Self {
        self.0.insert("grace-ms".into(), json!(ms));
        self
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

    /// Sets `field` in the options object of the last node's operator `op`.
    /// On a node without that operator it adds one, so the host rejects a
    /// misplaced option instead of the option vanishing.
    fn set_in_last(mut self, op: &str, field: &str, value: Value) -> Self {
        if let Some(node) = self.nodes.last_mut() {
            let options = node.entry(op).or_insert_with(|| Value::Object(Map::new()));
            if options.as_str() == Some("until-window-closes") {
                // The short form takes no options: spell it out.
                *options = json!({ "until": "window-closes" });
            }
            if let Value::Object(options) = options {
                options.insert(field.into(), value);
            }
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

    /// Makes the last table versioned: its store keeps each key's value at
    /// every point in time for `history_retention_ms` of stream time, and a
    /// stream joining it meets the value valid at each record's timestamp.
    pub fn versioned(self, history_retention_ms: u64) -> Self {
        self.set_on_last("versioned", json!({ "history-retention-ms": history_retention_ms }))
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

    /// Aggregates the last count, aggregate or reduce per window; its keys,
    /// and those of the nodes after it, become windowed keys.
    pub fn window(self, window: Window) -> Self {
        self.set_on_last("window", Value::Object(window.0))
    }

    /// Sets the merger of the last aggregate over session windows: the
    /// function that merges two sessions' aggregates when a record bridges
    /// them.
    pub fn merger(self, function: &str) -> Self {
        self.set_on_last("merger", json!(function))
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

    /// Holds a windowed table's updates back until each window closes, then
    /// passes on its final value once (Kafka Streams'
    /// `Suppressed.untilWindowCloses`).
    pub fn suppress_until_window_closes(self, name: &str) -> Self {
        self.node(name, "suppress", json!("until-window-closes"))
    }

    /// Holds each key's table updates back for `time_limit_ms` of stream
    /// time and passes on only the latest (Kafka Streams'
    /// `Suppressed.untilTimeLimit`).
    pub fn suppress_until_time_limit(self, name: &str, time_limit_ms: u64) -> Self {
        self.node(name, "suppress", json!({ "until": "time-limit", "time-limit-ms": time_limit_ms }))
    }

    /// Lets at most `max_records` keys wait in the last suppress node's
    /// buffer.
    pub fn max_records(self, max_records: u64) -> Self {
        self.set_in_last("suppress", "max-records", json!(max_records))
    }

    /// Lets at most `max_bytes` bytes wait in the last suppress node's
    /// buffer.
    pub fn max_bytes(self, max_bytes: u64) -> Self {
        self.set_in_last("suppress", "max-bytes", json!(max_bytes))
    }

    /// Makes the last suppress node pass on its oldest updates early when
    /// its buffer is full (not allowed until a window closes).
    pub fn emit_early_when_full(self) -> Self {
        self.set_in_last("suppress", "when-full", json!("emit-early"))
    }

    /// Makes the last suppress node stop the application when its buffer is
    /// full, the default, so no result ever goes out early.
    pub fn shut_down_when_full(self) -> Self {
        self.set_in_last("suppress", "when-full", json!("shut-down"))
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

    /// Joins each record of the stream (or table) read with the `table`
    /// node's value for its key, combining the two with `joiner`; an inner
    /// join unless [`Topology::left`] or [`Topology::outer`] says otherwise.
    pub fn join_table(self, name: &str, table: &str, joiner: &str) -> Self {
        self.node(name, "join", json!({ "table": table, "joiner": joiner }))
    }

    /// Joins each record of the stream read with the `global_table` node's
    /// value for its key, or for the key a [`Topology::key_mapper`] picks.
    pub fn join_global_table(self, name: &str, global_table: &str, joiner: &str) -> Self {
        self.node(name, "join", json!({ "global-table": global_table, "joiner": joiner }))
    }

    /// Sets the select-key function of the last global-table join, which
    /// maps a record to the global table's key (default: the record's key).
    pub fn key_mapper(self, function: &str) -> Self {
        self.set_in_last("join", "key-mapper", json!(function))
    }

    /// Joins the stream read with the `stream` node's records of the same
    /// key within `window`; [`Topology::store`] names the join's stores.
    pub fn join_stream(self, name: &str, stream: &str, joiner: &str, window: JoinWindow) -> Self {
        self.node(name, "join", json!({ "stream": stream, "joiner": joiner, "window": window.0 }))
    }

    /// Gives the last stream-table join (of a versioned table) a grace
    /// period: records wait until stream time passes their timestamp plus
    /// `ms`, then join the table as of their timestamp.
    pub fn join_grace(self, ms: u64) -> Self {
        self.set_in_last("join", "grace-ms", json!(ms))
    }

    /// Makes the last join a left join: records without a partner are
    /// joined with none.
    pub fn left(self) -> Self {
        self.set_in_last("join", "type", json!("left"))
    }

    /// Makes the last join an outer join (of two tables or two streams):
    /// either side without a partner is joined with none.
    pub fn outer(self) -> Self {
        self.set_in_last("join", "type", json!("outer"))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The nodes of the topology's document, parsed back to compare as JSON.
    fn nodes(t: &Topology) -> Vec<Value> {
        serde_json::from_str(&t.to_json()).unwrap()
    }

    #[test]
    fn windows_go_on_the_last_aggregation() {
        let t = Topology::new()
            .source("s", &["a"])
            .count("tumbling", "n")
            .window(Window::tumbling(10).retention(500))
            .count("hopping", "h")
            .from("s")
            .window(Window::hopping(300_000, 60_000).grace(10_000))
            .reduce("sliding", "sum")
            .from("s")
            .window(Window::sliding(10))
            .aggregate("sessions", "add")
            .from("s")
            .merger("merge")
            .window(Window::session(300_000).grace(1000).retention(86_400_000));
        assert_eq!(
            nodes(&t)[1..],
            [
                json!({
                    "name": "tumbling", "count": "n",
                    "window": { "type": "tumbling", "size-ms": 10, "retention-ms": 500 },
                }),
                json!({
                    "name": "hopping", "count": "h", "from": "s",
                    "window": { "type": "hopping", "size-ms": 300_000, "advance-ms": 60_000, "grace-ms": 10_000 },
                }),
                json!({
                    "name": "sliding", "reduce": "sum", "from": "s",
                    "window": { "type": "sliding", "time-difference-ms": 10 },
                }),
                json!({
                    "name": "sessions", "aggregate": "add", "from": "s", "merger": "merge",
                    "window": { "type": "session", "gap-ms": 300_000, "grace-ms": 1000, "retention-ms": 86_400_000 },
                }),
            ]
        );
    }

    #[test]
    fn suppression_bounds_turn_the_short_form_into_options() {
        let t = Topology::new()
            .source("s", &["a"])
            .count("c", "n")
            .window(Window::tumbling(5))
            .suppress_until_window_closes("finals")
            .suppress_until_window_closes("bounded")
            .from("c")
            .max_records(5)
            .shut_down_when_full()
            .table("t", "b")
            .suppress_until_time_limit("limited", 50)
            .max_records(10)
            .max_bytes(4096)
            .emit_early_when_full();
        assert_eq!(
            nodes(&t)[2..],
            [
                json!({ "name": "finals", "suppress": "until-window-closes" }),
                json!({
                    "name": "bounded", "from": "c",
                    "suppress": { "until": "window-closes", "max-records": 5, "when-full": "shut-down" },
                }),
                json!({ "name": "t", "table": "b" }),
                json!({
                    "name": "limited",
                    "suppress": {
                        "until": "time-limit", "time-limit-ms": 50, "max-records": 10, "max-bytes": 4096,
                        "when-full": "emit-early",
                    },
                }),
            ]
        );
    }

    #[test]
    fn joins_name_what_they_join_and_their_type() {
        let t = Topology::new()
            .table("prices", "prices")
            .global_table("products", "products")
            .source("orders", &["orders"])
            .join_table("priced", "prices", "price")
            .left()
            .join_global_table("described", "products", "describe")
            .from("orders")
            .key_mapper("product_id")
            .source("payments", &["payments"])
            .join_stream("paid", "orders", "pay", JoinWindow::of(60_000).grace(1000))
            .outer()
            .store("paid-store")
            .join_stream("late", "orders", "pay", JoinWindow::of(0).before(10).after(5))
            .from("payments")
            .table("stock", "stock")
            .join_table("stocked", "prices", "stock_price")
            .table("rates", "rates")
            .versioned(3_600_000)
            .join_table("converted", "rates", "convert")
            .from("orders")
            .join_grace(60_000);
        assert_eq!(
            nodes(&t)[3..],
            [
                json!({ "name": "priced", "join": { "table": "prices", "joiner": "price", "type": "left" } }),
                json!({
                    "name": "described", "from": "orders",
                    "join": { "global-table": "products", "joiner": "describe", "key-mapper": "product_id" },
                }),
                json!({ "name": "payments", "source": ["payments"] }),
                json!({
                    "name": "paid",
                    "join": {
                        "stream": "orders", "joiner": "pay", "type": "outer",
                        "window": { "time-difference-ms": 60_000, "grace-ms": 1000 },
                    },
                    "store": "paid-store",
                }),
                json!({
                    "name": "late", "from": "payments",
                    "join": {
                        "stream": "orders", "joiner": "pay",
                        "window": { "time-difference-ms": 0, "before-ms": 10, "after-ms": 5 },
                    },
                }),
                json!({ "name": "stock", "table": "stock" }),
                json!({ "name": "stocked", "join": { "table": "prices", "joiner": "stock_price" } }),
                json!({ "name": "rates", "table": "rates", "versioned": { "history-retention-ms": 3_600_000 } }),
                json!({
                    "name": "converted", "from": "orders",
                    "join": { "table": "rates", "joiner": "convert", "grace-ms": 60_000 },
                }),
            ]
        );
    }

    #[test]
    fn misplaced_options_reach_the_host() {
        // The host rejects these nodes (a join without a joiner, a suppress
        // without `until`); the builder does not drop the options silently.
        let t = Topology::new().source("s", &["a"]).filter("f", "p").left().max_records(3);
        assert_eq!(
            nodes(&t)[1],
            json!({ "name": "f", "filter": "p", "join": { "type": "left" }, "suppress": { "max-records": 3 } })
        );
        assert!(nodes(&Topology::new().outer().max_bytes(1)).is_empty());
    }
}
