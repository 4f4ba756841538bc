//! Joins in a topology document: `join:` on a node that reads a stream or a
//! table, checked into a stream-table, table-table or global-table join.

use serde::Deserialize;

use super::graph::Graph;
use super::{JoinGrace, JoinKind, Node, Op, StoreSpec};
use crate::store::{KeyTime, Segments};
use crate::window::JoinWindows;

/// A join in a document: what the node's stream (`from`) joins with.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JoinDoc {
    /// A table node: a stream-table join.
    pub table: Option<String>,
    /// A stream node: a windowed stream-stream join.
    pub stream: Option<String>,
    /// The window of a stream-stream join.
    pub window: Option<JoinWindowDoc>,
    /// A global table node: a stream-global-table join.
    pub global_table: Option<String>,
    /// For a global table: a select-key function that maps a record to the
    /// global table's key (default: the record's key).
    pub key_mapper: Option<String>,
    /// For a foreign-key table-table join: a select-key function that gives
    /// a left row's foreign key (the right table's key), or none.
    pub foreign_key: Option<String>,
    /// The joiner function: left and right values to the joined value.
    pub joiner: String,
    /// `inner` (the default), `left`, or (two tables or two streams)
    /// `outer`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// For a stream joining a versioned table: how long, in ms of stream
    /// time, stream records wait for late table updates before they are
    /// joined with the table as of their timestamp (Kafka Streams'
    /// `Joined#withGracePeriod`). At most the table's history retention.
    pub grace_ms: Option<i64>,
}

/// The window of a stream-stream join in a document, as Kafka Streams'
/// `JoinWindows`: `time-difference-ms` both ways, or `before-ms` and
/// `after-ms` apart (either overrides the difference on its side).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JoinWindowDoc {
    /// How far apart two records' timestamps may be, either way, in ms.
    pub time_difference_ms: Option<i64>,
    /// How far a right record may come before the left one, in ms.
    pub before_ms: Option<i64>,
    /// How far a right record may come after the left one, in ms.
    pub after_ms: Option<i64>,
    /// How long after its window a record still joins late partners, in ms
    /// (default 0).
    pub grace_ms: Option<i64>,
}

impl JoinWindowDoc {
    fn windows(&self) -> Result<JoinWindows, String> {
        let side = |ms: Option<i64>, what: &str| match ms.or(self.time_difference_ms) {
            Some(ms) if ms >= 0 => Ok(ms),
            Some(ms) => Err(format!("the join window's {what} is {ms} ms: use 0 or more")),
            None => Err("the join window needs `time-difference-ms` (or `before-ms` and `after-ms`)".to_owned()),
        };
        let (before, after) = (side(self.before_ms, "before")?, side(self.after_ms, "after")?);
        let grace = self.grace_ms.unwrap_or(0);
        if grace < 0 {
            return Err(format!("the join window's grace-ms is {grace}: use 0 or more"));
        }
        Ok(JoinWindows { before, after, grace })
    }
}

/// Adds the join node `name` reading `inputs` (one node: a stream, or the
/// left table of a table-table join); a stream whose key changed is
/// repartitioned first. Errors say what is wrong with the join.
pub(super) fn join(
    graph: &mut Graph,
    name: &str,
    inputs: Vec<usize>,
    join: &JoinDoc,
    store: StoreSpec,
) -> Result<usize, String> {
    let kind = match join.kind.as_deref() {
        None | Some("inner") => JoinKind::Inner,
        Some("left") => JoinKind::Left,
        Some("outer") => JoinKind::Outer,
        Some(other) => return Err(format!("join type '{other}': use inner, left or outer")),
    };
    let left = kind == JoinKind::Left;
    let [stream] = inputs[..] else {
        return Err("a join reads one stream or table (`from`) and the table it names".into());
    };
    if let Some(other) = &join.stream {
        if join.grace_ms.is_some() {
            return Err("a stream-stream join's grace goes in its window: `window: { ..., grace-ms: G }`".into());
        }
        return stream_stream(graph, name, stream, other, join, kind, store);
    }
    if join.grace_ms.is_some() && (join.global_table.is_some() || graph.nodes[stream].table) {
        return Err("`grace-ms` is for a stream joining a versioned table".into());
    }
    if join.window.is_some() {
        return Err("`window` is for a stream-stream join (`stream: NODE`); a table join has none".into());
    }
    let reads_table = graph.nodes[stream].table;
    if kind == JoinKind::Outer && !reads_table {
        return Err("a stream-table join is `inner` or `left`; an outer join joins two tables or two streams".into());
    }
    if let Some(global) = &join.global_table {
        if join.table.is_some() {
            return Err("join one table: `table` or `global-table`".into());
        }
        let store = match graph.by_name.get(global.as_str()).map(|&i| &graph.nodes[i].op) {
            Some(Op::GlobalTable { store, .. }) => store.name.clone(),
            _ => {
                return Err(format!(
                    "joins global table '{global}', which is not a `global-table` node defined before it"
                ));
            }
        };
        if graph.nodes[stream].table {
            return Err(format!("'{}' is a table: a global-table join reads a stream", graph.nodes[stream].name));
        }
        let op = Op::GlobalTableJoin { store, key_mapper: join.key_mapper.clone(), joiner: join.joiner.clone(), left };
        return graph.add(name.to_owned(), vec![stream], op, false).map_err(|e| e.to_string());
    }
    if join.key_mapper.is_some() {
        return Err("`key-mapper` is for a global-table join; a table join looks the record's own key up".into());
    }
    let Some(table_name) = &join.table else {
        return Err("say what to join: `join: { table: NODE, joiner: FUNCTION }` (or `global-table: NODE`)".into());
    };
    let Some(&table) = graph.by_name.get(table_name.as_str()) else {
        return Err(format!("joins table '{table_name}', which is not defined before it"));
    };
    if !stored(&graph.nodes[table]) {
        return Err(format!(
            "joins '{table_name}', which is not a table with a store: join a `table`, an aggregation, or a table filter/map-values materialized with `store:`"
        ));
    }
    if reads_table {
        for side in [stream, table] {
            if versioned(&graph.nodes[side]).is_some() {
                return Err(format!(
                    "'{}' is a versioned table: only a stream joins a versioned table (a table-table join with one is not supported yet)",
                    graph.nodes[side].name
                ));
            }
        }
        if !stored(&graph.nodes[stream]) {
            return Err(format!(
                "'{}' is a table without a store: materialize it with `store:` to join it",
                graph.nodes[stream].name
            ));
        }
        let op = Op::TableTableJoin { left: stream, right: table, joiner: join.joiner.clone(), kind, store };
        return graph.add(name.to_owned(), vec![stream, table], op, true).map_err(|e| e.to_string());
    }
    let inputs = graph.repartition_if_rekeyed(name, name, vec![stream]).map_err(|e| e.to_string())?;
    let grace = match (join.grace_ms, versioned(&graph.nodes[table])) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(format!(
                "`grace-ms` needs a versioned table, to join late records as of their time: declare `versioned: {{ history-retention-ms: N }}` on table '{table_name}'"
            ));
        }
        (Some(grace), _) if grace < 0 => return Err(format!("grace-ms is {grace}: use 0 or more")),
        (Some(grace), Some(history)) if grace > history => {
            return Err(format!(
                "grace-ms is {grace}, more than the history retention of table '{table_name}' ({history} ms): the table must keep history at least as long as records wait"
            ));
        }
        (Some(grace_ms), Some(_)) => Some(JoinGrace { grace_ms, buffer: store }),
    };
    let op = Op::StreamTableJoin { table, joiner: join.joiner.clone(), left, grace };
    graph.add(name.to_owned(), vec![inputs[0], table], op, false).map_err(|e| e.to_string())
}

/// The history retention of `t` if it is a versioned table.
pub(super) fn versioned(t: &Node) -> Option<i64> {
    match t.op {
        Op::Source { versioned, .. } => versioned,
        _ => None,
    }
}

/// True if `t` is a table with a store a join can read.
pub(super) fn stored(t: &Node) -> bool {
    t.table
        && matches!(
            t.op,
            Op::Source { table: Some(_), .. }
                | Op::Count { window: None, .. }
                | Op::Aggregate { window: None, .. }
                | Op::Materialize { .. }
        )
}

/// Adds the stream-stream join `name` of `left` with the stream node named
/// `right`, each side repartitioned first if its key changed. Its stores are
/// named as Kafka Streams' `StreamJoined.withStoreName(store)` names them.
fn stream_stream(
    graph: &mut Graph,
    name: &str,
    left: usize,
    right: &str,
    join: &JoinDoc,
    kind: JoinKind,
    store: StoreSpec,
) -> Result<usize, String> {
    if join.table.is_some() || join.global_table.is_some() || join.key_mapper.is_some() {
        return Err("a stream-stream join names one `stream` (no `table`, `global-table` or `key-mapper`)".into());
    }
    let Some(window) = &join.window else {
        return Err("a stream-stream join needs a `window: { time-difference-ms: N, grace-ms: G }`".into());
    };
    let windows = window.windows()?;
    let Some(&right) = graph.by_name.get(right) else {
        return Err(format!("joins stream '{right}', which is not defined before it"));
    };
    for side in [left, right] {
        if graph.nodes[side].table {
            return Err(format!(
                "'{}' is a table: a stream-stream join reads two streams (use `to-stream`, or join the table with `table:`)",
                graph.nodes[side].name
            ));
        }
    }
    if left == right {
        return Err("a stream joins itself: give the second side its own node (a `filter` or `peek` of it)".into());
    }
    let [left] =
        graph.repartition_if_rekeyed(&format!("{name}-left"), name, vec![left]).map_err(|e| e.to_string())?[..]
    else {
        unreachable!("one input in, one out")
    };
    let [right] =
        graph.repartition_if_rekeyed(&format!("{name}-right"), name, vec![right]).map_err(|e| e.to_string())?[..]
    else {
        unreachable!("one input in, one out")
    };
    let mut parts = vec!["this-join-store", "other-join-store"];
    if kind != JoinKind::Inner {
        parts.push("outer-shared-join-store");
    }
    // The window stores keep a record as long as it may still join.
    let segments = Segments { time: KeyTime::JoinRecord, retention: windows.retention() };
    let stores = parts
        .into_iter()
        .map(|part| StoreSpec {
            name: format!("{}-{part}", store.name),
            kind: store.kind,
            segments: (part != "outer-shared-join-store").then_some(segments),
            versioned: None,
        })
        .collect();
    let op = Op::StreamStreamJoin { joiner: join.joiner.clone(), kind, windows, stores };
    graph.add(name.to_owned(), vec![left, right], op, false).map_err(|e| e.to_string())
}
