//! Stream-table and stream-global-table joins through `eddy run`: the seed's
//! orders case (`examples/orders/orders.yaml` on its samples). Orders,
//! re-keyed by customer and repartitioned, meet a versioned customers table
//! (a left join: each order gets the name its customer had at the order's
//! time, or none) and the products global table through a key mapper (an
//! inner join: an order of an unknown product is dropped).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::Env;

/// An example file's text.
fn example(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../examples/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The orders example in `env` with the test's plugin, its topics created
/// (customers and orders with 2 partitions each) and its samples produced.
fn orders_app(env: &Env) -> std::path::PathBuf {
    for (topic, partitions) in [("customers", "2"), ("orders", "2"), ("products", "1"), ("orders-enriched", "2")] {
        env.eddy(&["topic", "create", topic, "--partitions", partitions]);
    }
    for topic in ["customers", "products", "orders"] {
        let sample = example(&format!("orders/{topic}.jsonl"));
        env.produce(topic, &sample, &["--key-serde", "string", "--value-serde", "json"]);
    }
    let yaml = example("orders/orders.yaml");
    assert!(yaml.contains("plugin: customers.wasm "), "the example names its plugin:\n{yaml}");
    let yaml = yaml.replace("plugin: customers.wasm ", &format!("plugin: {} ", eddy_tests::CUSTOMERS));
    env.write("orders.yaml", &yaml)
}

/// An enriched order as `orders-enriched` should hold it.
fn enriched(
    order: &str,
    customer: &str,
    name: Option<&str>,
    product: &str,
    product_name: &str,
    quantity: u32,
    total: f64,
) -> (String, Value) {
    let value = json!({
        "order": order, "customer": customer, "customer_name": name, "product": product,
        "product_name": product_name, "quantity": quantity, "total": total,
    });
    (order.to_owned(), value)
}

#[test]
fn orders_get_their_customers_name_at_their_time_and_their_products_total() {
    let env = Env::new();
    let app = orders_app(&env);
    let run = env.eddy_output(&["run", app.to_str().unwrap(), "--until-idle"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains(", 0 skipped, 0 dead-lettered,"), "{stderr}");

    let records = env.consume_all("orders-enriched", &["--key-serde", "string", "--value-serde", "json"]);
    let mut got = BTreeMap::new();
    for r in &records {
        assert_eq!(r["key"], r["value"]["customer"], "keyed by customer: {r}");
        let order = r["value"]["order"].as_str().unwrap().to_owned();
        assert!(got.insert(order, r["value"].clone()).is_none(), "each order once: {records:#?}");
    }
    // c1 is Ada until she is renamed at 300 s: o1 (60 s) and o4 (180 s)
    // have her old name, o8 (360 s) and o12 (600 s) the new one, although
    // every customer update reaches the join before any order does. c9 is
    // no customer: o6 goes on without a name. p9 is no product: o7 is gone.
    let want: BTreeMap<String, Value> = [
        enriched("o1", "c1", Some("Ada"), "p1", "Widget", 4, 10.0),
        enriched("o2", "c2", Some("Grace"), "p2", "Gadget", 1, 19.99),
        enriched("o3", "c3", Some("Linus"), "p3", "Gizmo", 2, 14.5),
        enriched("o4", "c1", Some("Ada"), "p2", "Gadget", 3, 59.97),
        enriched("o5", "c4", Some("Barbara"), "p1", "Widget", 10, 25.0),
        enriched("o6", "c9", None, "p3", "Gizmo", 1, 7.25),
        enriched("o8", "c1", Some("Ada Lovelace"), "p3", "Gizmo", 1, 7.25),
        enriched("o9", "c3", Some("Linus"), "p1", "Widget", 2, 5.0),
        enriched("o10", "c4", Some("Barbara"), "p2", "Gadget", 2, 39.98),
        enriched("o11", "c2", Some("Grace"), "p3", "Gizmo", 3, 21.75),
        enriched("o12", "c1", Some("Ada Lovelace"), "p1", "Widget", 1, 2.5),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want, "enriched orders by id");
    let name = |order: &str| got[order]["customer_name"].clone();
    assert_eq!([name("o1"), name("o4")], [json!("Ada"), json!("Ada")], "before the rename");
    assert_eq!([name("o8"), name("o12")], [json!("Ada Lovelace"), json!("Ada Lovelace")], "after the rename");
    assert!(!got.contains_key("o7"), "the order of an unknown product is dropped");
    assert_eq!(name("o6"), Value::Null, "the order of an unknown customer is kept, unnamed");
    // Each result keeps its order's timestamp.
    let sample: Vec<Value> = example("orders/orders.jsonl").lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for r in &records {
        let order = r["value"]["order"].as_str().unwrap();
        let input = sample.iter().find(|s| s["key"] == order).unwrap();
        assert_eq!(r["timestamp"], input["timestamp"], "{r}");
    }
}

#[test]
fn describing_the_orders_app_shows_the_repartition_topic_and_both_joins() {
    let env = Env::new();
    let app = orders_app(&env);
    let text = env.eddy(&["describe", app.to_str().unwrap()]);
    for line in [
        "Source: customers (topics: [customers], stores: [customers], versioned: 86400000 ms of history)",
        "Processor: by-customer (select-key: line_customer)",
        "Sink: with-customer-repartition-sink (topic: orders-with-customer-repartition)",
        "Source: with-customer-repartition-source (topics: [orders-with-customer-repartition])",
        "Processor: with-customer (left join with a table: add_customer)",
        "Processor: priced (inner join with a global table: price_line, key-mapper: line_product)",
        "Sink: enriched-out (topic: orders-enriched)",
        "Sub-topology: 2 for global store (will not generate tasks)",
        "Source: products (topics: [products], stores: [products])",
        "orders-with-customer-repartition (read by 'with-customer'): 'by-customer' (select-key) changes the key",
    ] {
        assert!(text.contains(line), "no '{line}' in:\n{text}");
    }
}
