//! Repartitioning: which operators change a record's key, and the internal
//! topics that bring records with equal keys back into one partition.
//!
//! As in Kafka Streams, `map`, `select-key`, `flat-map` and processors may
//! change the key (`map-values`, `flat-map-values`, `filter` and `peek` do
//! not). An aggregation that reads such a stream, directly or through
//! filters, branches and merges, would count each key once per partition it
//! landed in; the topology builder puts a repartition topic in front of it
//! instead (see `graph.rs`), as `group-by` does.

use crate::plugin::FunctionKind;

use super::Op;

/// A topic the topology writes and reads itself: records go out through a
/// sink partitioned by their (new) key and come back through a source, so
/// equal keys meet in one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalTopic {
    /// `@<node>-repartition` until [`super::Topology::qualify_internal_topics`]
    /// names it `<application-id>-<node>-repartition`.
    pub name: String,
    /// Partitions it is created with; `None`: as many as the largest source
    /// topic, so it does not change the task count (unless `copartition`
    /// says otherwise).
    pub partitions: Option<u32>,
    /// A node whose source topics the topic is co-partitioned with: it gets
    /// as many partitions as the largest of them (a foreign-key join's
    /// subscriptions go to the right table's partitions, its answers to the
    /// left table's).
    pub copartition: Option<String>,
    /// The node that reads it.
    pub node: String,
    /// Why it is there.
    pub reason: RepartitionReason,
}

/// Why a topology repartitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepartitionReason {
    /// A `group-by` re-keys records before an aggregation.
    GroupBy,
    /// An aggregation reads records whose key the named node changed.
    KeyChanged {
        /// The node that changed the key.
        by: String,
        /// Its operator.
        op: &'static str,
    },
    /// The user asked for it with a `repartition` node.
    Explicit,
    /// A foreign-key join sends left rows' subscriptions, keyed by foreign
    /// key, to the right table's partitions.
    ForeignKeySubscription {
        /// The right table node.
        right: String,
    },
    /// A foreign-key join sends the right table's answers back to the
    /// partitions of the left rows that subscribed.
    ForeignKeyResponse {
        /// The left table node.
        left: String,
    },
}

impl std::fmt::Display for RepartitionReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RepartitionReason::GroupBy => f.write_str("group-by re-keys the records"),
            RepartitionReason::KeyChanged { by, op } => write!(f, "'{by}' ({op}) changes the key"),
            RepartitionReason::Explicit => f.write_str("a repartition node asks for it"),
            RepartitionReason::ForeignKeySubscription { right } => write!(
                f,
                "foreign-key join: left rows subscribe, by foreign key, to the rows of table '{right}' (co-partitioned with it)"
            ),
            RepartitionReason::ForeignKeyResponse { left } => write!(
                f,
                "foreign-key join: answers go back to the partitions of the rows of table '{left}' that subscribed"
            ),
        }
    }
}

/// True if `op` may give its records keys other than the ones they came
/// with, so that they no longer sit in the partition their key hashes to.
pub(super) fn changes_key(op: &Op) -> bool {
    match op {
        Op::Transform { kind, .. } => {
            matches!(kind, FunctionKind::Map | FunctionKind::FlatMap | FunctionKind::SelectKey)
        }
        Op::Process { .. }
        | Op::TableGroupBy { .. }
        | Op::ForeignKeySubscribe { .. }
        | Op::ForeignKeyRespond { .. } => true,
        _ => false,
    }
}

/// True if `op` starts a stream partitioned by its key (whatever its inputs
/// did): sources, including repartition topics, and every table.
pub(super) fn keyed_afresh(op: &Op) -> bool {
    matches!(
        op,
        Op::Source { .. } | Op::Count { .. } | Op::Aggregate { .. } | Op::Materialize { .. } | Op::GlobalTable { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{Topology, TopologyError};

    fn parse(yaml: &str) -> Result<Topology, TopologyError> {
        let mut t = Topology::from_yaml(yaml)?;
        t.qualify_internal_topics("app");
        Ok(t)
    }

    fn topics(t: &Topology) -> Vec<(&str, &str, String)> {
        t.internal_topics.iter().map(|i| (i.name.as_str(), i.node.as_str(), i.reason.to_string())).collect()
    }

    #[test]
    fn key_changing_operators_make_aggregations_repartition() {
        for (op, changes) in [
            ("map: f", true),
            ("select-key: f", true),
            ("flat-map: f", true),
            ("process: f", true),
            ("map-values: f", false),
            ("flat-map-values: f", false),
            ("filter: f", false),
            ("filter-not: f", false),
            ("peek: f", false),
        ] {
            let t = parse(&format!(
                "- {{ name: s, source: [a] }}\n- {{ name: x, {op} }}\n- {{ name: y, filter: p }}\n- {{ name: c, count: n }}"
            ))
            .unwrap();
            let want = if changes {
                vec![("app-c-repartition", "c", format!("'x' ({}) changes the key", &op[..op.find(':').unwrap()]))]
            } else {
                vec![]
            };
            assert_eq!(topics(&t), want, "{op}");
            let c = t.nodes.iter().find(|n| n.name == "c").unwrap();
            let reads = &t.nodes[c.inputs[0]].name;
            assert_eq!(reads, if changes { "c-repartition-source" } else { "y" }, "{op}");
            assert_eq!(c.rekeyed_by, None);
            assert_eq!(t.subtopologies().len(), if changes { 2 } else { 1 }, "{op}");
        }
    }

    #[test]
    fn key_changes_flow_through_branches_and_merges_until_a_repartition() {
        let t = parse(
            "
- { name: s, source: [a] }
- { name: k, select-key: f }
- { name: route, split: [{ branch: hot, predicate: p }, { branch: rest }] }
- { name: other, source: [b] }
- { name: both, merge: [hot, other] }
- { name: sum, aggregate: add }
- { name: again, from: rest, repartition: true, partitions: 6 }
- { name: n, count: rest-counts }
- { name: m, from: other, map-values: g }
- { name: plain, count: plain-counts }
",
        )
        .unwrap();
        assert_eq!(
            topics(&t),
            [
                ("app-sum-repartition", "sum", "'k' (select-key) changes the key".to_owned()),
                ("app-again-repartition", "again", "a repartition node asks for it".to_owned()),
            ]
        );
        assert_eq!(t.internal_topics[1].partitions, Some(6));
        let node = |name: &str| t.nodes.iter().find(|n| n.name == name).unwrap();
        assert!(matches!(node("again").op, Op::Source { .. }), "the repartition node reads the topic back");
        assert_eq!(node("n").inputs, [t.nodes.iter().position(|n| n.name == "again").unwrap()]);
        let names = |sub: &crate::topology::SubTopology| -> Vec<&str> {
            sub.nodes.iter().map(|&i| t.nodes[i].name.as_str()).collect()
        };
        let subs = t.subtopologies();
        assert_eq!(
            names(&subs[0]),
            [
                "s",
                "k",
                "route",
                "hot",
                "rest",
                "other",
                "both",
                "sum-repartition-sink",
                "again-repartition-sink",
                "m",
                "plain"
            ]
        );
        assert_eq!(names(&subs[1]), ["sum-repartition-source", "sum"]);
        assert_eq!(names(&subs[2]), ["again", "n"]);
    }

    #[test]
    fn group_by_and_cogroup_inputs_repartition_once_each() {
        let t = parse(
            "
- { name: orders, source: [orders] }
- { name: keyed, select-key: by_customer }
- { name: refunds, source: [refunds] }
- { name: totals, cogroup: [{ from: keyed, aggregate: add }, { from: refunds, aggregate: take }] }
- { name: grouped, from: keyed, count: g, group-by: other_key }
",
        )
        .unwrap();
        assert_eq!(
            topics(&t),
            [
                ("app-totals-keyed-repartition", "totals", "'keyed' (select-key) changes the key".to_owned()),
                ("app-grouped-repartition", "grouped", "group-by re-keys the records".to_owned()),
            ]
        );
        let Op::Aggregate { cogroup, .. } = &t.nodes.iter().find(|n| n.name == "totals").unwrap().op else {
            panic!("an aggregate")
        };
        let inputs: Vec<&str> = cogroup.iter().map(|(i, _)| t.nodes[*i].name.as_str()).collect();
        assert_eq!(inputs, ["totals-keyed-repartition-source", "refunds"]);
    }

    #[test]
    fn repartition_options_are_checked() {
        for (yaml, want) in [
            ("- { name: s, source: [a] }\n- { name: r, repartition: true, partitions: 0 }", "at least 1"),
            ("- { name: s, source: [a] }\n- { name: f, filter: p, partitions: 3 }", "belongs on a `repartition` node"),
            ("- { name: t, table: a }\n- { name: r, repartition: true }", "repartition reads a table"),
        ] {
            let err = parse(yaml).unwrap_err().to_string();
            assert!(err.contains(want), "for {yaml:?}\n got: {err}\nwant: {want}");
        }
    }
}
