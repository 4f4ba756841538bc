//! Tests of the topology document's translation: structure, stores,
//! tables, processors and the errors that name a node and its fix.

use super::*;
use crate::topology::{JoinKind, PunctuationTime};

fn parse(yaml: &str) -> Result<Topology, TopologyError> {
    Topology::from_yaml(yaml)
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
    let mut g =
        parse("- { name: s, source: [a] }\n- { name: totals, aggregate: add, group-by: by_customer }\n- { to: out }")
            .unwrap();
    g.qualify_internal_topics("crm");
    let names: Vec<_> = g.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        ["s", "totals-group-by", "totals-repartition-sink", "totals-repartition-source", "totals", "to-3"]
    );
    assert_eq!(g.internal_topics.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["crm-totals-repartition"]);
    assert_eq!(g.source_topics(), ["a", "crm-totals-repartition"]);
    assert_eq!(g.nodes[4].inputs, [3]);
    let err = parse("- { name: s, source: [a] }\n- { name: f, filter: p, group-by: k }").unwrap_err().to_string();
    assert!(err.contains("`group-by` belongs on a count, aggregate or reduce"), "{err}");
    let err = parse("- { name: s, source: [a] }\n- { name: f, filter: p, store: x }").unwrap_err().to_string();
    assert!(err.contains("`store` names the store of a table, global table"), "{err}");
    let err = parse("- { name: s, source: [a] }\n- { name: a, count: x }\n- { name: b, from: s, count: x }")
        .unwrap_err()
        .to_string();
    assert!(err.contains("store 'x' is used by node 'a' too"), "{err}");
}

#[test]
fn processors_global_tables_and_table_operators() {
    let t = parse(
        r#"
- { name: names, global-table: customer-names, store-kind: in-memory }
- { name: orders, source: [orders] }
- name: enrich
  process: add_name
  stores: [names, seen]
  punctuate: { function: tick, every-ms: 1000, time: wall }
- { name: out, to: enriched }
- { name: shared, from: orders, process: other, stores: seen }
- { name: users, table: users }
- { name: adults, filter: is_adult, store: adult-users }
- { name: shouted, map-values: shout }
- { name: changes, to-stream: true }
- { name: by-region, from: users, count: region-counts, group-by: region_of }
"#,
    )
    .unwrap();
    let stores: Vec<(&str, &str)> =
        t.stores().into_iter().map(|(i, s)| (t.nodes[i].name.as_str(), s.name.as_str())).collect();
    assert_eq!(
        stores,
        [
            ("enrich", "seen"),
            ("users", "users"),
            ("adults", "adult-users"),
            ("by-region-group-by", "by-region-group-by"),
            ("by-region", "region-counts")
        ]
    );
    let globals: Vec<_> = t.global_tables().into_iter().map(|(_, topic, s)| (topic, s.name.as_str())).collect();
    assert_eq!(globals, [("customer-names", "names")]);
    let node = |name: &str| t.nodes.iter().find(|n| n.name == name).unwrap();
    assert_eq!(node("adults-filter").inputs, [t.nodes.iter().position(|n| n.name == "users").unwrap()]);
    assert!(node("adults").table && node("adults-filter").table && node("shouted").table);
    assert!(!node("changes").table && !node("enrich").table);
    assert!(matches!(node("by-region-group-by").op, Op::TableGroupBy { .. }));
    assert!(matches!(node("by-region").op, Op::Count { subtract: true, .. }));
    let Op::Process { punctuate: Some(p), .. } = &node("enrich").op else { panic!("a processor") };
    assert_eq!((p.every_ms, p.time), (1000, PunctuationTime::Wall));
    let uses: Vec<_> = t.function_uses().into_iter().map(|(_, f, k)| (f, k)).collect();
    assert!(
        uses.contains(&("tick", FunctionKind::Punctuator)) && uses.contains(&("add_name", FunctionKind::Processor))
    );

    let cases = [
        (
            "- { name: t, table: a }
- { name: m, map: f }",
            "map reads a table",
        ),
        (
            "- { name: t, table: a }
- { name: c, count: n }",
            "re-key it with `group-by",
        ),
        (
            "- { name: t, table: a }
- { name: c, aggregate: add, group-by: k }",
            "needs a `subtractor`",
        ),
        (
            "- { name: s, source: [a] }
- { name: c, aggregate: add, subtractor: sub }",
            "this node reads a stream",
        ),
        (
            "- { name: s, source: [a] }
- { name: c, to-stream: true }",
            "its input is a stream already",
        ),
        (
            "- { name: s, source: [a] }
- { name: f, filter: p, store: x }",
            "`store` names the store",
        ),
        (
            "- { name: g, global-table: a }
- { name: f, filter: p }",
            "follows global table 'g'",
        ),
        (
            "- { name: g, global-table: a }
- { name: s, source: [b] }
- { name: f, from: g, filter: p }",
            "is a global table",
        ),
        (
            "- { name: s, source: [a] }
- { name: n, count: c }
- { name: p, from: s, process: f, stores: c }",
            "store 'c' belongs to node 'n'",
        ),
        (
            "- { name: s, source: [a] }
- { name: p, process: f, punctuate: { function: t, every-ms: 0 } }",
            "at least 1",
        ),
        (
            "- { name: s, source: [a] }
- { name: f, filter: p, stores: x }",
            "belong on a `process` node",
        ),
        (
            "- { name: t, table: a }
- { name: s, source: [b] }
- { name: m, merge: [t, s] }",
            "both tables and streams",
        ),
        ("- { name: s, source: [a] }\n- { name: c, cogroup: [] }", "at least one input"),
        ("- { name: s, source: [a] }\n- { name: p, process: f, stores: [x, x] }", "lists 'x' twice"),
        (
            "- { name: s, source: [a] }\n- { name: c, cogroup: [{ from: s, aggregate: f }, { from: s, aggregate: g }] }",
            "lists 's' twice",
        ),
        (
            "- { name: s, source: [a] }\n- { name: c, from: s, cogroup: [{ from: s, aggregate: f }] }",
            "lists its inputs itself",
        ),
    ];
    for (yaml, want) in cases {
        let err = parse(yaml).unwrap_err().to_string();
        assert!(err.contains(want), "for {yaml:?}\n got: {err}\nwant: {want}");
    }
}

#[test]
fn stream_stream_joins_keep_three_stores_and_repartition_each_rekeyed_side() {
    let t = parse(
        "
- { name: clicks, source: [clicks] }
- { name: views, source: [views] }
- { name: by-user, from: views, select-key: user_of }
- { name: both, from: clicks, join: { stream: by-user, joiner: pair, type: outer, window: { time-difference-ms: 10, after-ms: 20, grace-ms: 5 } }, store: cv, store-kind: in-memory }
- { name: inner, from: clicks, join: { stream: views, joiner: pair, window: { time-difference-ms: 10 } } }
",
    )
    .unwrap();
    let stores: Vec<(&str, &str, StoreKind)> =
        t.stores().into_iter().map(|(i, s)| (t.nodes[i].name.as_str(), s.name.as_str(), s.kind)).collect();
    assert_eq!(
        stores,
        [
            ("both", "cv-this-join-store", StoreKind::InMemory),
            ("both", "cv-other-join-store", StoreKind::InMemory),
            ("both", "cv-outer-shared-join-store", StoreKind::InMemory),
            ("inner", "inner-this-join-store", StoreKind::Persistent),
            ("inner", "inner-other-join-store", StoreKind::Persistent),
        ],
        "an inner join keeps no unmatched records"
    );
    let node = |name: &str| t.nodes.iter().position(|n| n.name == name).unwrap();
    let Op::StreamStreamJoin { windows, kind, .. } = &t.nodes[node("both")].op else { panic!("a stream-stream join") };
    assert_eq!((windows.before, windows.after, windows.grace, *kind), (10, 20, 5, JoinKind::Outer));
    assert_eq!(windows.retention(), 35);
    let inputs: Vec<&str> = t.nodes[node("both")].inputs.iter().map(|&i| t.nodes[i].name.as_str()).collect();
    assert_eq!(inputs, ["clicks", "both-right-repartition-source"], "only the re-keyed side is repartitioned");
    assert_eq!(t.internal_topics.len(), 1);
}

#[test]
fn versioned_tables_and_joins_with_grace() {
    let t = parse(
        r#"
- { name: prices, table: prices, versioned: { history-retention-ms: 3600000 } }
- { name: orders, source: [orders] }
- { name: priced, join: { table: prices, joiner: f, grace-ms: 60000 } }
- { name: named, from: orders, join: { table: prices, joiner: f, grace-ms: 0 }, store: waiting, store-kind: in-memory }
- { name: now, from: orders, join: { table: prices, joiner: f, type: left } }
"#,
    )
    .unwrap();
    let node = |name: &str| t.nodes.iter().find(|n| n.name == name).unwrap();
    assert!(matches!(node("prices").op, Op::Source { versioned: Some(3_600_000), .. }));
    match &node("priced").op {
        Op::StreamTableJoin { grace: Some(g), left: false, .. } => {
            assert_eq!((g.grace_ms, g.buffer.name.as_str()), (60_000, "priced-buffer"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(node("now").op, Op::StreamTableJoin { grace: None, left: true, .. }));
    let stores: Vec<(&str, &str, StoreKind)> =
        t.stores().into_iter().map(|(i, s)| (t.nodes[i].name.as_str(), s.name.as_str(), s.kind)).collect();
    assert_eq!(
        stores,
        [
            ("prices", "prices", StoreKind::Persistent),
            ("priced", "priced-buffer", StoreKind::Persistent),
            ("named", "waiting", StoreKind::InMemory),
        ]
    );
    assert!(t.describe().contains("inner join with a table: f, grace 60000 ms, stores: [priced-buffer]"));
    let cases = [
        (
            "- { name: t, table: a }\n- { name: s, source: [b] }\n- { name: j, join: { table: t, joiner: f, grace-ms: 5 } }",
            "`grace-ms` needs a versioned table",
        ),
        (
            "- { name: t, table: a, versioned: { history-retention-ms: 4 } }\n- { name: s, source: [b] }\n- { name: j, join: { table: t, joiner: f, grace-ms: 5 } }",
            "more than the history retention of table 't' (4 ms)",
        ),
        ("- { name: s, source: [a], versioned: { history-retention-ms: 4 } }", "`versioned` belongs on a `table`"),
        ("- { name: t, table: a, versioned: { history-retention-ms: -1 } }", "history-retention-ms is -1"),
        ("- { name: t, table: a, versioned: { retention: 1 } }", "unknown field `retention`"),
        (
            "- { name: t, table: a, versioned: { history-retention-ms: 4 } }\n- { name: u, table: b }\n- { name: j, from: u, join: { table: t, joiner: f } }",
            "'t' is a versioned table: only a stream joins a versioned table",
        ),
        (
            "- { name: t, table: a, versioned: { history-retention-ms: 4 } }\n- { name: u, table: b }\n- { name: j, from: u, join: { table: t, foreign-key: k, joiner: f } }",
            "'t' is a versioned table: a foreign-key join with one is not supported yet",
        ),
        (
            "- { name: t, table: a }\n- { name: s, source: [b] }\n- { name: j, join: { table: t, joiner: f }, store: x }",
            "with `grace-ms`, `store:` names the buffer",
        ),
    ];
    for (yaml, want) in cases {
        let err = parse(yaml).unwrap_err().to_string();
        assert!(err.contains(want), "for {yaml:?}\n got: {err}\nwant: {want}");
    }
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
        ("- { name: s, source: [a] }\n- { name: f, filter: p, timestamp: wall-clock }", "belong on a source or table"),
        ("- { name: s, source: [a], timestamp: event }", "use `record` (the default), `wall-clock`"),
        (
            "- { name: s, source: [a] }\n- { name: j, join: { table: t, joiner: f } }",
            "joins table 't', which is not defined",
        ),
        (
            "- { name: s, source: [a] }\n- { name: m, map-values: f }\n- { name: j, from: s, join: { table: m, joiner: f } }",
            "'m', which is not a table with a store",
        ),
        (
            "- { name: t, table: a }\n- { name: f, filter: p }\n- { name: u, table: b }\n- { name: j, from: f, join: { table: u, joiner: g } }",
            "'f' is a table without a store",
        ),
        (
            "- { name: t, table: a }\n- { name: s, source: [b] }\n- { name: j, join: { table: t, joiner: f, type: outer } }",
            "a stream-table join is `inner` or `left`",
        ),
        (
            "- { name: s, source: [a] }\n- { name: r, source: [b] }\n- { name: j, from: s, join: { stream: r, joiner: f } }",
            "a stream-stream join needs a `window: { time-difference-ms: N, grace-ms: G }`",
        ),
        (
            "- { name: s, source: [a] }\n- { name: j, join: { stream: s, joiner: f, window: { time-difference-ms: 5 } } }",
            "a stream joins itself",
        ),
        (
            "- { name: s, source: [a] }\n- { name: r, source: [b] }\n- { name: j, from: s, join: { stream: r, joiner: f, window: { before-ms: 5 } } }",
            "needs `time-difference-ms` (or `before-ms` and `after-ms`)",
        ),
        (
            "- { name: s, source: [a] }\n- { name: r, source: [b] }\n- { name: j, from: s, join: { stream: r, joiner: f, window: { time-difference-ms: -5 } } }",
            "the join window's before is -5 ms",
        ),
        (
            "- { name: s, source: [a] }\n- { name: r, table: b }\n- { name: j, from: s, join: { stream: r, joiner: f, window: { time-difference-ms: 5 } } }",
            "'r' is a table: a stream-stream join reads two streams",
        ),
        (
            "- { name: s, source: [a] }\n- { name: r, table: b }\n- { name: j, from: s, join: { table: r, joiner: f, window: { time-difference-ms: 5 } } }",
            "`window` is for a stream-stream join",
        ),
        (
            "- { name: s, source: [a] }\n- { name: j, join: { global-table: s, joiner: f } }",
            "is not a `global-table` node",
        ),
        (
            "- { name: t, table: a }\n- { name: s, source: [b] }\n- { name: j, join: { table: t, joiner: f, key-mapper: k } }",
            "`key-mapper` is for a global-table join",
        ),
        (
            "- { name: s, source: [a], timestamp: wall-clock, timestamp-extractor: f }",
            "either `timestamp` or `timestamp-extractor`",
        ),
        ("- { name: s, source: [a] }\n- { name: t, source: [b, a] }", "topic 'a' is read by node 's' too"),
    ];
    for (yaml, want) in cases {
        let err = parse(yaml).unwrap_err().to_string();
        assert!(err.contains(want), "for {yaml:?}\n got: {err}\nwant: {want}");
    }
}
