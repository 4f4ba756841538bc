//! Foreign-key joins in a topology document: `join: { table: RIGHT,
//! foreign-key: F, joiner: G, type: inner|left }` on a node that reads the
//! left table, built as Kafka Streams builds `KTable#join(other,
//! foreignKeyExtractor, joiner)` (KIP-213):
//!
//! ```text
//! left table ─► <join>-subscribe ─► <app>-<join>-subscription-registration-topic
//!   (keyed by foreign key, as many partitions as the right table's topic)
//!   ─► <join>-subscriptions (with the right table) ─► <app>-<join>-subscription-response-topic
//!   (keyed by left key, as many partitions as the left table's topic)
//!   ─► <join> (with the left table) ─► the result table, keyed by left key
//! ```
//!
//! So the two tables need not be co-partitioned: each side's work runs in
//! the tasks of its own table. With `store:` the result is materialized
//! under that name (the join itself then runs in `<join>-resolve`).

use super::graph::Graph;
use super::joins::{JoinDoc, stored, versioned};
use super::{INTERNAL_PREFIX, InternalTopic, JoinKind, Op, RepartitionReason, StoreSpec};
use crate::store::StoreKind;

/// Adds the foreign-key join `name` of the left table `inputs` (one node)
/// with the table `join.table` names; returns the node that passes on its
/// results. Errors say what is wrong with the join.
pub(super) fn join(
    graph: &mut Graph,
    name: &str,
    inputs: Vec<usize>,
    join: &JoinDoc,
    store: Option<String>,
    store_kind: StoreKind,
) -> Result<usize, String> {
    let Some(extractor) = join.foreign_key.clone() else {
        return Err(
            "a foreign-key join needs `foreign-key: F`, a select-key function giving a left row's foreign key".into()
        );
    };
    let kind = match join.kind.as_deref() {
        None | Some("inner") => JoinKind::Inner,
        Some("left") => JoinKind::Left,
        Some("outer") => {
            return Err("a foreign-key join is `inner` or `left`: Kafka Streams has no outer foreign-key join".into());
        }
        Some(other) => return Err(format!("join type '{other}': a foreign-key join is `inner` or `left`")),
    };
    let [left] = inputs[..] else {
        return Err("a foreign-key join reads one table (`from`) and the table it names".into());
    };
    if join.stream.is_some() || join.window.is_some() {
        return Err("`foreign-key` joins two tables: name the right one with `table:` (a stream-stream join has no foreign key and no window here)".into());
    }
    if let Some(global) = &join.global_table {
        return Err(format!(
            "`foreign-key` joins two tables, and '{global}' is given as a global table: name a `table` node with `table:` (a stream joins a global table with `key-mapper`)"
        ));
    }
    if join.key_mapper.is_some() {
        return Err(
            "`key-mapper` is for a stream-global-table join; a foreign-key join finds the right row with `foreign-key`"
                .into(),
        );
    }
    let Some(right_name) = &join.table else {
        return Err(
            "a foreign-key join names its right table: `join: { table: NODE, foreign-key: F, joiner: G }`".into()
        );
    };
    let Some(&right) = graph.by_name.get(right_name.as_str()) else {
        return Err(format!("joins table '{right_name}', which is not defined before it"));
    };
    if let Op::GlobalTable { .. } = graph.nodes[right].op {
        return Err(format!(
            "'{right_name}' is a global table: a foreign-key join's right side is a `table` (every instance has a global table whole, so join a stream with it through `key-mapper` instead)"
        ));
    }
    if join.grace_ms.is_some() {
        return Err("`grace-ms` is for a stream joining a versioned table, not a foreign-key join".into());
    }
    for side in [left, right] {
        if versioned(&graph.nodes[side]).is_some() {
            return Err(format!(
                "'{}' is a versioned table: a foreign-key join with one is not supported yet",
                graph.nodes[side].name
            ));
        }
    }
    let left_node = &graph.nodes[left];
    if !left_node.table {
        return Err(format!(
            "'{}' is a stream: a foreign-key join joins two tables (read the topic with `table:`, or aggregate the stream first)",
            left_node.name
        ));
    }
    if !stored(left_node) {
        return Err(format!(
            "'{}' is a table without a store: materialize it with `store:` to join it on a foreign key",
            left_node.name
        ));
    }
    if !stored(&graph.nodes[right]) {
        return Err(format!(
            "joins '{right_name}', which is not a table with a store: join a `table`, an aggregation, or a table filter/map-values materialized with `store:`"
        ));
    }
    let left_name = left_node.name.clone();
    let spec = |suffix: &str| StoreSpec::new(format!("{name}-{suffix}"), store_kind);
    let subscribe =
        Op::ForeignKeySubscribe { extractor, left_join: kind == JoinKind::Left, store: spec("foreign-keys") };
    let subscribe = graph.add(format!("{name}-subscribe"), vec![left], subscribe, false).map_err(|e| e.to_string())?;
    let respond_name = format!("{name}-subscriptions");
    let registrations = InternalTopic {
        name: format!("{INTERNAL_PREFIX}{name}-subscription-registration-topic"),
        partitions: None,
        copartition: Some(right_name.clone()),
        node: respond_name.clone(),
        reason: RepartitionReason::ForeignKeySubscription { right: right_name.clone() },
    };
    let registrations = graph
        .link(
            format!("{name}-subscription-registration-sink"),
            format!("{name}-subscription-registration-source"),
            vec![subscribe],
            registrations,
        )
        .map_err(|e| e.to_string())?;
    let respond = Op::ForeignKeyRespond { right, store: spec("subscriptions") };
    let respond = graph.add(respond_name, vec![registrations, right], respond, false).map_err(|e| e.to_string())?;
    let resolver = if store.is_some() { format!("{name}-resolve") } else { name.to_owned() };
    let responses = InternalTopic {
        name: format!("{INTERNAL_PREFIX}{name}-subscription-response-topic"),
        partitions: None,
        copartition: Some(left_name.clone()),
        node: resolver.clone(),
        reason: RepartitionReason::ForeignKeyResponse { left: left_name },
    };
    let responses = graph
        .link(
            format!("{name}-subscription-response-sink"),
            format!("{name}-subscription-response-source"),
            vec![respond],
            responses,
        )
        .map_err(|e| e.to_string())?;
    let op = Op::ForeignKeyJoin { left, subscribe, joiner: join.joiner.clone(), kind, store: spec("answered") };
    let joined = graph.add(resolver, vec![responses, left], op, true).map_err(|e| e.to_string())?;
    match store {
        None => Ok(joined),
        Some(store) => {
            let op = Op::Materialize { store: StoreSpec::new(store, store_kind) };
            graph.add(name.to_owned(), vec![joined], op, true).map_err(|e| e.to_string())
        }
    }
}
