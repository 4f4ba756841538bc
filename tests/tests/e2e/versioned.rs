//! Versioned tables through `eddy run`: orders join the price valid at
//! their own time. With a grace period an order waits, so a price update
//! that comes after it, timestamped before it, is the one it joins; an
//! out-of-order update of the table goes into its history (and changes a
//! waiting order's result) without being passed on; and the buffer and the
//! history come back from their changelogs after the state directory is
//! lost.

use serde_json::{Value, json};

use crate::{Env, app_file};

const APP: &str = "application-id: shop
topology:
  - { name: prices, table: prices, value-serde: string, versioned: { history-retention-ms: 3600000 } }
  - { name: price-changes, from: prices, to-stream: true }
  - { name: changes-out, to: price-changes, value-serde: string }
  - { name: orders, source: [orders], value-serde: string }
  - { name: priced, from: orders, join: { table: prices, joiner: plus_joiner, type: left, grace-ms: 60000 } }
  - { name: priced-out, to: priced-orders, value-serde: string }
  - { name: priced-now, from: orders, join: { table: prices, joiner: plus_joiner, type: left } }
  - { name: priced-now-out, to: priced-orders-now, value-serde: string }
";

/// Produces `(key, value, timestamp)` records to `topic` as strings.
fn produce(env: &Env, topic: &str, records: &[(&str, &str, i64)]) {
    let lines: String =
        records.iter().map(|(k, v, ts)| format!("{}\n", json!({"key": k, "value": v, "timestamp": ts}))).collect();
    env.produce(topic, &lines, &["--value-serde", "string"]);
}

/// A topic's records as `[key, value, timestamp]`.
fn read(env: &Env, topic: &str) -> Vec<Value> {
    let records = env.consume_all(topic, &["--value-serde", "string"]);
    records.into_iter().map(|r| json!([r["key"], r["value"], r["timestamp"]])).collect()
}

/// Records of several partitions in timestamp order, then by key.
fn sorted(mut records: Vec<Value>) -> Vec<Value> {
    records.sort_by_key(|r| (r[2].as_i64(), r[0].as_str().map(str::to_owned)));
    records
}

#[test]
fn a_late_price_update_changes_what_an_earlier_order_joins_with() {
    let env = Env::new();
    for topic in ["prices", "orders", "price-changes", "priced-orders", "priced-orders-now"] {
        env.eddy(&["topic", "create", topic, "--partitions", "2"]);
    }
    let app = app_file(&env, "shop.yaml", eddy_tests::KSTREAMS, APP);
    let run = || _ = env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);

    produce(&env, "prices", &[("apple", "100", 0), ("pear", "7", 0)]);
    run();
    // An order at 10 s waits a minute of stream time for late prices; the
    // join without grace prices it at once.
    produce(&env, "orders", &[("apple", "o1", 10_000)]);
    run();
    assert!(read(&env, "priced-orders").is_empty(), "the order waits for its grace period");
    assert_eq!(read(&env, "priced-orders-now"), [json!(["apple", "o1+100", 10_000])]);
    // Late prices: one from before the order, a new latest, and one older
    // than the latest (history only: not passed on, but valid at 10 s).
    produce(&env, "prices", &[("apple", "90", 5_000), ("apple", "120", 20_000), ("apple", "95", 8_000)]);
    run();
    assert_eq!(
        sorted(read(&env, "price-changes")),
        [
            json!(["apple", "100", 0]),
            json!(["pear", "7", 0]),
            json!(["apple", "90", 5_000]),
            json!(["apple", "120", 20_000])
        ],
        "the out-of-order update at 8 s is not passed on"
    );
    // Stream time 80 s: the order from 10 s is due, priced as of 10 s.
    produce(&env, "orders", &[("apple", "o2", 80_000), ("pear", "p1", 80_000)]);
    run();
    assert_eq!(read(&env, "priced-orders"), [json!(["apple", "o1+95", 10_000])]);
    // The state is lost: the versioned store's history, the waiting orders
    // and the join's stream time come back from the changelogs. An order
    // from 6 s, far behind stream time, is joined at once, as of its time.
    std::fs::remove_dir_all(env.data_dir().join("state")).unwrap();
    produce(&env, "orders", &[("apple", "o3", 200_000), ("pear", "p2", 200_000), ("apple", "late", 6_000)]);
    run();
    assert_eq!(
        sorted(read(&env, "priced-orders")),
        [
            json!(["apple", "late+90", 6_000]),
            json!(["apple", "o1+95", 10_000]),
            json!(["apple", "o2+120", 80_000]),
            json!(["pear", "p1+7", 80_000]),
        ]
    );
    assert_eq!(
        sorted(read(&env, "priced-orders-now")),
        [
            json!(["apple", "late+90", 6_000]),
            json!(["apple", "o1+100", 10_000]),
            json!(["apple", "o2+120", 80_000]),
            json!(["pear", "p1+7", 80_000]),
            json!(["apple", "o3+120", 200_000]),
            json!(["pear", "p2+7", 200_000]),
        ],
        "without grace each order is priced when it comes, as of its time (the late one not at the latest price)"
    );
    // The versioned store's changelog reads as Kafka Streams writes one:
    // each version under its plain key, timestamped with the time it became
    // valid, the out-of-order one too (clock records aside).
    let changelog: Vec<Value> = read(&env, "shop-prices-changelog").into_iter().filter(|r| r[0] != "").collect();
    assert_eq!(
        sorted(changelog),
        [
            json!(["apple", "100", 0]),
            json!(["pear", "7", 0]),
            json!(["apple", "90", 5_000]),
            json!(["apple", "95", 8_000]),
            json!(["apple", "120", 20_000])
        ]
    );
}
