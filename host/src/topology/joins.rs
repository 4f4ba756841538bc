//! Joins in a topology document: `join:` on a node that reads a stream or a
//! table, checked into a stream-table, table-table or global-table join.

use serde::Deserialize;

use super::graph::Graph;
use super::{JoinKind, Node, Op, StoreSpec};

/// A join in a document: what the node's stream (`from`) joins with.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JoinDoc {
    /// A table node: a stream-table join.
    pub table: Option<String>,
    /// A stream node: a windowed stream-stream join (not supported yet).
    pub stream: Option<String>,
    /// A global table node: a stream-global-table join.
    pub global_table: Option<String>,
    /// For a global table: a select-key function that maps a record to the
    /// global table's key (default: the record's key).
    pub key_mapper: Option<String>,
    /// The joiner function: left and right values to the joined value.
    pub joiner: String,
    /// `inner` (the default) or `left`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
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
    if join.stream.is_some() {
        return Err("stream-stream joins are not supported yet: join a table (`join: { table: NODE, ... }`)".into());
    }
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
    let reads_table = graph.nodes[stream].table;
    if kind == JoinKind::Outer && !reads_table {
        return Err("a stream-table join is `inner` or `left`; an outer join joins two tables".into());
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
    let stored = |t: &Node| {
        t.table
            && matches!(
                t.op,
                Op::Source { table: Some(_), .. }
                    | Op::Count { window: None, .. }
                    | Op::Aggregate { window: None, .. }
                    | Op::Materialize { .. }
            )
    };
    if !stored(&graph.nodes[table]) {
        return Err(format!(
            "joins '{table_name}', which is not a table with a store: join a `table`, an aggregation, or a table filter/map-values materialized with `store:`"
        ));
    }
    if reads_table {
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
    let op = Op::StreamTableJoin { table, joiner: join.joiner.clone(), left };
    graph.add(name.to_owned(), vec![inputs[0], table], op, false).map_err(|e| e.to_string())
}
