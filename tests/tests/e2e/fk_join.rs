//! Foreign-key table-table joins through the `eddy` binary: orders (keyed by
//! order) join products (keyed by product) on the product an order names,
//! with the two tables on topics with different partition counts and two
//! worker threads, over two runs (the second restores the join's state).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{Env, app_file};

/// The last value per key of a table's changelog topic, keys whose last
/// value is a tombstone left out.
fn final_table(records: Vec<Value>) -> BTreeMap<String, String> {
    let mut table = BTreeMap::new();
    for r in records {
        let key = r["key"].as_str().expect("string keys").to_owned();
        match r["value"].as_str() {
            Some(v) => table.insert(key, v.to_owned()),
            None => table.remove(&key),
        };
    }
    table
}

fn table(rows: &[(&str, &str)]) -> BTreeMap<String, String> {
    rows.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

const STRINGS: [&str; 4] = ["--key-serde", "string", "--value-serde", "string"];

#[test]
fn foreign_key_joins_follow_both_tables_across_partitions_and_threads() {
    let env = Env::new();
    // Orders are "description|product"; `after_bar` gives the product.
    let app = app_file(
        &env,
        "shop.yaml",
        eddy_tests::KSTREAMS,
        "application-id: shop\nthreads: 2\ncommit-interval-ms: 50\ntopology:
  - { name: orders, table: orders, key-serde: string, value-serde: string }
  - { name: products, table: products, key-serde: string, value-serde: string }
  - { name: with-product, from: orders, join: { table: products, foreign-key: after_bar, joiner: paren_joiner } }
  - { name: out, to: orders-with-product, key-serde: string, value-serde: string }
  - name: with-maybe-product
    from: orders
    join: { table: products, foreign-key: after_bar, joiner: paren_joiner, type: left }
    store: orders-with-maybe-product
  - { name: maybe-out, to: orders-with-maybe-product, key-serde: string, value-serde: string }
",
    );
    env.eddy(&["topic", "create", "orders", "--partitions", "4"]);
    env.eddy(&["topic", "create", "products", "--partitions", "3"]);
    env.eddy(&["topic", "create", "orders-with-product", "--partitions", "2"]);
    env.eddy(&["topic", "create", "orders-with-maybe-product", "--partitions", "2"]);
    let described = env.eddy(&["describe", app.to_str().unwrap()]);
    for want in [
        "Sub-topology: 1",
        "Processor: with-product-subscribe (foreign-key join, subscribe by foreign key: after_bar, stores: [with-product-foreign-keys])",
        "Processor: with-product-subscriptions (foreign-key join, answer subscriptions and right-table updates, stores: [with-product-subscriptions])",
        "Processor: with-product (inner foreign-key join: paren_joiner, stores: [with-product-answered])",
        "shop-with-product-subscription-registration-topic (read by 'with-product-subscriptions', partitions as 'products'): foreign-key join: left rows subscribe, by foreign key, to the rows of table 'products' (co-partitioned with it)",
        "shop-with-product-subscription-response-topic (read by 'with-product', partitions as 'orders'): foreign-key join: answers go back to the partitions of the rows of table 'orders' that subscribed",
    ] {
        assert!(described.contains(want), "describe lacks\n{want}\n--- it printed\n{described}");
    }

    let line = |k: &str, v: Option<&str>| match v {
        Some(v) => format!("{{\"key\": \"{k}\", \"value\": \"{v}\"}}\n"),
        None => format!("{{\"key\": \"{k}\", \"value\": null}}\n"),
    };
    let products = [("p1", Some("pen")), ("p2", Some("ink")), ("p3", Some("pad"))];
    env.produce("products", &products.map(|(k, v)| line(k, v)).concat(), &STRINGS);
    let mut orders: Vec<String> =
        (0..12).map(|i| line(&format!("o{i:02}"), Some(&format!("order {i}|p{}", i % 4 + 1)))).collect();
    orders.push(line("o99", None)); // deleting an order that never was: nothing
    env.produce("orders", &orders.concat(), &STRINGS);
    let run = || env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    run();

    let joined = |i: u32, product: &str| (format!("o{i:02}"), format!("(order {i}|p{},{product})", i % 4 + 1));
    let names = ["pen", "ink", "pad"];
    // p4 does not exist: its orders have no inner result, and (order, null) in the left join.
    let inner: BTreeMap<String, String> =
        (0..12).filter(|i| i % 4 < 3).map(|i| joined(i, names[(i % 4) as usize])).collect();
    let left: BTreeMap<String, String> =
        (0..12).map(|i| joined(i, names.get((i % 4) as usize).copied().unwrap_or("null"))).collect();
    assert_eq!(final_table(env.consume_all("orders-with-product", &STRINGS)), inner);
    assert_eq!(final_table(env.consume_all("orders-with-maybe-product", &STRINGS)), left);

    // A product update fans out to every order of it; an order moves to
    // another product; an order and a product go away; p4 appears.
    env.produce(
        "products",
        &[line("p1", Some("blue pen")), line("p2", None), line("p4", Some("cup"))].concat(),
        &STRINGS,
    );
    env.produce(
        "orders",
        &[line("o00", Some("order 0|p3")), line("o02", None), line("o05", Some("order 5 again|p1"))].concat(),
        &STRINGS,
    );
    run();
    let mut inner = table(&[
        ("o00", "(order 0|p3,pad)"),
        ("o04", "(order 4|p1,blue pen)"),
        ("o08", "(order 8|p1,blue pen)"),
        ("o05", "(order 5 again|p1,blue pen)"),
        ("o06", "(order 6|p3,pad)"),
        ("o10", "(order 10|p3,pad)"),
        ("o03", "(order 3|p4,cup)"),
        ("o07", "(order 7|p4,cup)"),
        ("o11", "(order 11|p4,cup)"),
    ]);
    assert_eq!(final_table(env.consume_all("orders-with-product", &STRINGS)), inner);
    // The left join keeps o01 and o09, whose product p2 went away.
    inner.insert("o01".into(), "(order 1|p2,null)".into());
    inner.insert("o09".into(), "(order 9|p2,null)".into());
    assert_eq!(final_table(env.consume_all("orders-with-maybe-product", &STRINGS)), inner);
    // The materialized result is the same table.
    let stored: BTreeMap<String, String> = env
        .eddy(&[
            "store",
            "scan",
            "shop",
            "orders-with-maybe-product",
            "--key-serde",
            "string",
            "--value-serde",
            "string",
        ])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|r| (r["key"].as_str().unwrap().to_owned(), r["value"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(stored, inner);
}

#[test]
fn bad_foreign_key_joins_are_named() {
    let env = Env::new();
    for (node, want) in [
        (
            "{ name: j, from: s, join: { table: t, foreign-key: after_bar, joiner: paren_joiner } }",
            "node j: 's' is a stream: a foreign-key join joins two tables",
        ),
        (
            "{ name: j, from: t, join: { table: g, foreign-key: after_bar, joiner: paren_joiner } }",
            "node j: 'g' is a global table: a foreign-key join's right side is a `table`",
        ),
        (
            "{ name: j, from: t, join: { global-table: g, foreign-key: after_bar, joiner: paren_joiner } }",
            "node j: `foreign-key` joins two tables, and 'g' is given as a global table",
        ),
        (
            "{ name: j, from: t, join: { table: u, foreign-key: after_bar, joiner: paren_joiner, type: outer } }",
            "node j: a foreign-key join is `inner` or `left`: Kafka Streams has no outer foreign-key join",
        ),
        (
            "{ name: j, from: t, join: { table: u, foreign-key: paren_joiner, joiner: paren_joiner } }",
            "node 'j-subscribe' (foreign-key-subscribe) needs a select-key function, but 'paren_joiner' is a joiner function",
        ),
    ] {
        let app = app_file(
            &env,
            "bad.yaml",
            eddy_tests::KSTREAMS,
            &format!(
                "application-id: bad\ntopology:
  - {{ name: s, source: [s] }}
  - {{ name: t, table: t, value-serde: string }}
  - {{ name: u, table: u, value-serde: string }}
  - {{ name: g, global-table: g }}
  - {node}
"
            ),
        );
        let err = env.eddy_fails(&["describe", app.to_str().unwrap()]);
        assert!(err.contains(want), "for {node}\n got: {err}\nwant: {want}");
    }
}
