//! Table semantics: a table's filter and map-values keep tombstones and turn
//! filtered-out updates into tombstones, materialized under a name; a grouped
//! table is aggregated with adders and subtractors as rows join, move and
//! leave groups.

use std::collections::BTreeMap;

use eddy_host::testing::TestDriver;
use serde_json::{Value, json};

use crate::{Env, app_file};

fn user(key: &str, user: Option<(&str, u32, &str)>) -> String {
    match user {
        Some((name, age, region)) => format!(
            "{{\"key\": \"{key}\", \"value\": {{\"name\": \"{name}\", \"age\": {age}, \"region\": \"{region}\"}}}}\n"
        ),
        None => format!("{{\"key\": \"{key}\", \"value\": null}}\n"),
    }
}

fn strings(store: BTreeMap<Vec<u8>, Vec<u8>>) -> BTreeMap<String, String> {
    store.into_iter().map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap())).collect()
}

#[test]
fn table_filters_and_map_values_keep_tombstone_semantics() {
    for extra in ["", "cache-max-bytes: 0\n"] {
        let env = Env::new();
        let body = format!(
            "application-id: people\n{extra}topology:
  - {{ name: users, table: users, key-serde: string, value-serde: json }}
  - {{ name: adults, filter: is_adult, store: adult-users }}
  - {{ name: names, map-values: user_name }}
  - {{ name: out, to: adult-names, key-serde: string, value-serde: string }}
  - {{ name: changes, from: users, to-stream: true }}
  - {{ name: changes-out, to: user-changes, key-serde: string, value-serde: json }}
"
        );
        let app = app_file(&env, "people.yaml", eddy_tests::CUSTOMERS, &body);
        let mut driver = TestDriver::from_file(&app).unwrap();
        driver.create_topic("users", 2).unwrap();
        let input = [
            user("u1", Some(("Ada", 36, "eu"))),
            user("u2", Some(("Bob", 12, "us"))),
            user("u3", Some(("Cy", 40, "us"))),
            user("u2", Some(("Bob", 18, "us"))),
            user("u3", Some(("Cy", 15, "us"))),
            user("u1", None),
            user("u5", Some(("Eve", 9, "eu"))),
        ]
        .concat();
        driver.pipe_json_lines("users", &input).unwrap();
        let adults = strings(driver.store("adult-users").unwrap());
        let keys: Vec<&str> = adults.keys().map(String::as_str).collect();
        assert_eq!(keys, ["u2"], "{extra:?}: deleted u1, minor u3 and u5 are not adults");
        let mut last: BTreeMap<String, Value> = BTreeMap::new();
        for r in driver.read_output_json("adult-names").unwrap() {
            last.insert(r["key"].as_str().unwrap().to_owned(), r["value"].clone());
        }
        // u1 and u3 were adults once: their keys end in tombstones. u5 never
        // was; a tombstone for it is harmless but its value never passes.
        assert_eq!(last.get("u2"), Some(&json!("Bob")), "{extra:?}");
        assert_eq!(last.get("u1"), Some(&Value::Null), "{extra:?}");
        assert_eq!(last.get("u3"), Some(&Value::Null), "{extra:?}");
        assert!(last.get("u5").is_none_or(Value::is_null), "{extra:?}");
        let changes = driver.read_output_json("user-changes").unwrap();
        let deleted: Vec<&Value> = changes.iter().filter(|r| r["value"].is_null()).map(|r| &r["key"]).collect();
        assert_eq!(deleted, [&json!("u1")], "to-stream passes the table's tombstones on as records");
    }
}

#[test]
fn grouped_tables_add_and_subtract_as_rows_move() {
    let mut results = Vec::new();
    for extra in ["", "cache-max-bytes: 0\n"] {
        let env = Env::new();
        let body = format!(
            "application-id: regions\nthreads: 2\n{extra}topology:
  - {{ name: users, table: users, key-serde: string, value-serde: json }}
  - {{ name: region-counts, count: region-counts, group-by: region_of }}
  - {{ name: counts-out, to: region-counts-out, key-serde: string, value-serde: i64 }}
  - {{ name: region-ages, from: users, aggregate: add_age, subtractor: subtract_age, group-by: region_of }}
"
        );
        let app = app_file(&env, "regions.yaml", eddy_tests::CUSTOMERS, &body);
        let mut driver = TestDriver::from_file(&app).unwrap();
        driver.create_topic("users", 3).unwrap();
        let first = [
            user("u1", Some(("Ada", 36, "eu"))),
            user("u2", Some(("Bob", 20, "us"))),
            user("u3", Some(("Cy", 40, "us"))),
            user("u4", Some(("Di", 30, "asia"))),
        ]
        .concat();
        driver.pipe_json_lines("users", &first).unwrap();
        let counts = |driver: &mut TestDriver| -> BTreeMap<String, i64> {
            driver
                .store("region-counts")
                .unwrap()
                .into_iter()
                .map(|(k, v)| (String::from_utf8(k).unwrap(), i64::from_be_bytes(v.try_into().unwrap())))
                .collect()
        };
        let want = |pairs: &[(&str, i64)]| -> BTreeMap<String, i64> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
        };
        assert_eq!(counts(&mut driver), want(&[("asia", 1), ("eu", 1), ("us", 2)]), "{extra:?}");
        // Bob moves to eu, Cy leaves, Ada has a birthday, Di moves twice.
        let second = [
            user("u2", Some(("Bob", 20, "eu"))),
            user("u3", None),
            user("u1", Some(("Ada", 37, "eu"))),
            user("u4", Some(("Di", 30, "us"))),
            user("u4", Some(("Di", 30, "eu"))),
        ]
        .concat();
        driver.pipe_json_lines("users", &second).unwrap();
        let final_counts = counts(&mut driver);
        assert_eq!(final_counts, want(&[("asia", 0), ("eu", 3), ("us", 0)]), "{extra:?}");
        let ages = strings(driver.store("region-ages").unwrap());
        let want_ages: BTreeMap<String, String> = [("asia", "0"), ("eu", "87"), ("us", "0")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(ages, want_ages, "{extra:?}");
        let mut last = BTreeMap::new();
        for r in driver.read_output_json("region-counts-out").unwrap() {
            last.insert(r["key"].as_str().unwrap().to_owned(), r["value"].as_i64().unwrap());
        }
        assert_eq!(last, final_counts, "{extra:?}: the output's last count per region is the table's");
        results.push((final_counts, ages));
    }
    assert_eq!(results[0], results[1], "the same tables with the cache on and off");
}

/// Orders (keyed by order id, so re-keyed by customer first: Eddy
/// repartitions before the join by itself) joined with the customers table
/// through `eddy run`: a left join names the customer where the table has
/// one. Topics with different partition counts are refused before anything
/// runs.
#[test]
fn orders_join_the_customers_table() {
    let env = Env::new();
    for (topic, partitions) in [("orders", "3"), ("customer-names", "2"), ("named-orders", "2")] {
        env.eddy(&["topic", "create", topic, "--partitions", partitions]);
    }
    let body = "application-id: named\ntopology:
  - { name: names, table: customer-names, key-serde: string, value-serde: string }
  - { name: orders, source: [orders], key-serde: string, value-serde: json }
  - { name: by-customer, select-key: customer_key }
  - { name: named, join: { table: names, joiner: name_order, type: left } }
  - { name: out, to: named-orders, key-serde: string, value-serde: json }
";
    let app = app_file(&env, "named.yaml", eddy_tests::CUSTOMERS, body);
    let described = env.eddy(&["describe", app.to_str().unwrap()]);
    assert!(
        described.contains("named-repartition (read by 'named'): 'by-customer' (select-key) changes the key"),
        "{described}"
    );
    let names = "{\"key\": \"c1\", \"value\": \"Ada\"}\n{\"key\": \"c2\", \"value\": \"Grace\"}\n";
    env.produce("customer-names", names, &["--key-serde", "string", "--value-serde", "string"]);
    let orders: String = [("o1", "c1", 10.0), ("o2", "c2", 20.0), ("o3", "c3", 30.0), ("o4", "c1", 40.0)]
        .iter()
        .map(|(id, c, amount)| {
            format!("{{\"key\": \"{id}\", \"value\": {{\"customer\": \"{c}\", \"amount\": {amount}}}}}\n")
        })
        .collect();
    env.produce("orders", &orders, &["--key-serde", "string", "--value-serde", "json"]);
    // The stream side reads `orders` (3 partitions) and the table 2: refused.
    let err = env.eddy_fails(&["run", app.to_str().unwrap(), "--until-idle"]);
    assert!(err.contains("join 'named' is not co-partitioned"), "{err}");
    assert!(err.contains("'customer-names' (2 partitions)"), "{err}");
    // Repartitioned into as many partitions as the table has, it runs.
    let body = body
        .replace("  - { name: named,", "  - { name: to-two, repartition: true, partitions: 2 }\n  - { name: named,");
    let app = app_file(&env, "named.yaml", eddy_tests::CUSTOMERS, &body);
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    let mut got: Vec<(String, Value)> = env
        .consume_all("named-orders", &["--key-serde", "string", "--value-serde", "json"])
        .into_iter()
        .map(|r| (r["key"].as_str().unwrap().to_owned(), r["value"].clone()))
        .collect();
    got.sort_by_key(|(k, v)| format!("{k}{v}"));
    let order = |c: &str, name: Option<&str>, amount: f64| {
        (c.to_owned(), json!({"customer": c, "name": name, "amount": amount}))
    };
    assert_eq!(
        got,
        [
            order("c1", Some("Ada"), 10.0),
            order("c1", Some("Ada"), 40.0),
            order("c2", Some("Grace"), 20.0),
            order("c3", None, 30.0)
        ]
    );
}

/// A task reads its partitions smallest timestamp first, as Kafka Streams
/// does: a stream-table join through `eddy run` sees each table update that
/// came before a stream record in event time, whatever order the topics
/// were written in.
#[test]
fn a_join_reads_both_sides_in_timestamp_order() {
    let env = Env::new();
    for topic in ["clicks", "profiles", "joined"] {
        env.eddy(&["topic", "create", topic, "--partitions", "1"]);
    }
    let produce =
        |topic: &str, lines: &str| env.produce(topic, lines, &["--key-serde", "string", "--value-serde", "string"]);
    // The stream is written first, the table after, and their timestamps
    // interleave.
    produce(
        "clicks",
        "{\"key\": \"k\", \"value\": \"X\", \"timestamp\": 20}\n{\"key\": \"k\", \"value\": \"Y\", \"timestamp\": 40}\n",
    );
    produce(
        "profiles",
        "{\"key\": \"k\", \"value\": \"a\", \"timestamp\": 10}\n{\"key\": \"k\", \"value\": \"b\", \"timestamp\": 30}\n",
    );
    let body = "application-id: ordered\ncache-max-bytes: 0\ntopology:
  - { name: profiles, table: profiles, key-serde: string, value-serde: string }
  - { name: clicks, source: [clicks], key-serde: string, value-serde: string }
  - { name: joined, join: { table: profiles, joiner: plus_joiner } }
  - { to: joined, key-serde: string, value-serde: string }
";
    let app = app_file(&env, "ordered.yaml", eddy_tests::KSTREAMS, body);
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    let got: Vec<(Value, Value)> = env
        .consume_all("joined", &["--key-serde", "string", "--value-serde", "string"])
        .iter()
        .map(|r| (r["value"].clone(), r["timestamp"].clone()))
        .collect();
    assert_eq!(got, [(json!("X+a"), json!(20)), (json!("Y+b"), json!(40))]);
}

/// A joiner that fails for one key under the `skip` policy leaves that key
/// out; the keys after it keep their own results.
#[test]
fn a_failed_table_join_skips_its_key_alone() {
    let env = Env::new();
    let body = "application-id: tt\ncache-max-bytes: 0\nerror-policy: skip\ntopology:
  - { name: left, table: left, key-serde: string, value-serde: string }
  - { name: right, table: right, key-serde: string, value-serde: string }
  - { name: joined, from: left, join: { table: right, joiner: plus_joiner_but_boom } }
  - { to: joined, key-serde: string, value-serde: string }
";
    let mut driver = TestDriver::from_file(&app_file(&env, "tt.yaml", eddy_tests::KSTREAMS, body)).unwrap();
    driver.pipe_json_lines("right", "{\"key\": \"a\", \"value\": \"1\"}\n{\"key\": \"b\", \"value\": \"2\"}\n{\"key\": \"c\", \"value\": \"3\"}\n").unwrap();
    driver.process().unwrap();
    driver.pipe_json_lines("left", "{\"key\": \"a\", \"value\": \"x\"}\n{\"key\": \"b\", \"value\": \"boom\"}\n{\"key\": \"c\", \"value\": \"z\"}\n").unwrap();
    let got: Vec<(Value, Value)> = driver
        .read_output_json("joined")
        .unwrap()
        .into_iter()
        .map(|r| (r["key"].clone(), r["value"].clone()))
        .collect();
    assert_eq!(got, [(json!("a"), json!("x+1")), (json!("c"), json!("z+3"))]);
    assert_eq!(driver.totals().skipped, 1);
}
