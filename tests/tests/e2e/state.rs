//! State: counts and tables in RocksDB stores with changelogs, through the
//! test driver and through `eddy run`, crashes and lost state directories.

use std::collections::BTreeMap;

use eddy_host::log::{EmbeddedLog, Log, TopicPartition};
use eddy_host::testing::TestDriver;
use serde_json::{Value, json};

use crate::{Env, app_file};

/// Word count: lines are split into words (the `words` plugin), written to
/// `words` keyed by word (so each word lives in one partition) and counted.
fn wordcount_app(env: &Env, extra: &str) -> std::path::PathBuf {
    let body = format!(
        "application-id: wordcount\nthreads: 2\n{extra}topology:
  - {{ name: lines, source: [lines], value-serde: string }}
  - {{ name: split, flat-map: split_words }}
  - {{ name: to-words, to: words, key-serde: string, value-serde: string }}
  - {{ name: words, source: [words], key-serde: string, value-serde: string }}
  - {{ name: counts, count: word-counts }}
  - {{ name: out, to: word-counts-out, key-serde: string, value-serde: i64 }}
"
    );
    app_file(env, "wordcount.yaml", eddy_tests::WORDS, &body)
}

const VOCABULARY: [&str; 7] = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"];

/// Deterministic lines and the word counts they give.
fn lines(n: usize, seed: usize) -> (Vec<String>, BTreeMap<String, i64>) {
    let mut counts = BTreeMap::new();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let words: Vec<&str> = (0..1 + (i + seed) % 4).map(|j| VOCABULARY[(i * 7 + j * 3 + seed) % 7]).collect();
        for w in &words {
            *counts.entry((*w).to_owned()).or_insert(0) += 1;
        }
        out.push(words.join(" "));
    }
    (out, counts)
}

fn merge(a: &mut BTreeMap<String, i64>, b: BTreeMap<String, i64>) {
    for (k, v) in b {
        *a.entry(k).or_insert(0) += v;
    }
}

fn driver_counts(driver: &mut TestDriver) -> BTreeMap<String, i64> {
    driver
        .store("word-counts")
        .unwrap()
        .into_iter()
        .map(|(k, v)| (String::from_utf8(k).unwrap(), i64::from_be_bytes(v.try_into().unwrap())))
        .collect()
}

fn changelog_records(log: &EmbeddedLog) -> u64 {
    let topic = "wordcount-word-counts-changelog";
    let partitions = log.partitions(topic).unwrap().unwrap();
    (0..partitions).map(|p| log.end_offset(&TopicPartition::new(topic, p)).unwrap()).sum()
}

#[test]
fn word_count_is_exact_with_the_cache_on_and_off() {
    let (input, expected) = lines(2000, 0);
    let text: String = input.iter().map(|l| format!("{{\"value\": \"{l}\"}}\n")).collect();
    let mut results = Vec::new();
    for extra in ["", "cache-max-bytes: 0\n"] {
        let env = Env::new();
        let mut driver = TestDriver::from_file(&wordcount_app(&env, extra)).unwrap();
        for t in ["lines", "words", "word-counts-out"] {
            driver.create_topic(t, 3).unwrap();
        }
        driver.pipe_json_lines("lines", &text).unwrap();
        let counts = driver_counts(&mut driver);
        assert_eq!(counts, expected, "cache: {extra:?}");
        // The output topic's last value per key is the final count.
        let mut last = BTreeMap::new();
        for r in driver.read_output_json("word-counts-out").unwrap() {
            last.insert(r["key"].as_str().unwrap().to_owned(), r["value"].as_i64().unwrap());
        }
        assert_eq!(last, expected);
        results.push((counts, changelog_records(driver.log())));
    }
    let (cached, uncached) = (&results[0], &results[1]);
    assert_eq!(cached.0, uncached.0);
    let words: i64 = expected.values().sum();
    assert_eq!(uncached.1, words as u64, "without the cache every update is written");
    assert!(cached.1 < uncached.1 / 10, "the cache coalesces: {} vs {} changelog records", cached.1, uncached.1);
}

fn store_counts(env: &Env) -> BTreeMap<String, i64> {
    env.eddy(&["store", "scan", "wordcount", "word-counts", "--key-serde", "string", "--value-serde", "i64"])
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["key"].as_str().unwrap().to_owned(), v["value"].as_i64().unwrap())
        })
        .collect()
}

fn setup_topics(env: &Env) {
    for t in ["lines", "words", "word-counts-out"] {
        env.eddy(&["topic", "create", t, "--partitions", "3"]);
    }
}

fn produce_lines(env: &Env, lines: &[String], name: &str) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let file = env.write(name, &text);
    env.eddy(&["produce", "lines", "--value-only", "--file", file.to_str().unwrap()]);
}

#[test]
fn stateful_run_killed_mid_way_ends_exactly_once() {
    let env = Env::new();
    setup_topics(&env);
    let (input, expected) = lines(150_000, 1);
    produce_lines(&env, &input, "lines.txt");
    let app = wordcount_app(&env, "commit-interval-ms: 20\n");
    let words_out = |env: &Env| -> u64 {
        let log = EmbeddedLog::open(env.data_dir(), false).unwrap();
        (0..3).map(|p| log.end_offset(&TopicPartition::new("words", p)).unwrap()).sum()
    };
    let total_words: i64 = expected.values().sum();
    let mut killed_mid_way = 0;
    for round in 1..=3u64 {
        env.run_then_kill(&app, || words_out(&env), total_words as u64 * round / 4);
        if words_out(&env) < total_words as u64 || store_counts(&env) != expected {
            killed_mid_way += 1;
        }
    }
    assert!(killed_mid_way >= 1, "every run finished before it was killed: raise the input size");
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    assert_eq!(words_out(&env), total_words as u64, "each word written once");
    assert_eq!(store_counts(&env), expected);
}

#[test]
fn state_is_restored_from_the_changelog_or_the_checkpoint() {
    let env = Env::new();
    setup_topics(&env);
    // Without a cache every update reaches the changelog, so compaction has
    // something to drop however fast the run is.
    let app = wordcount_app(&env, "cache-max-bytes: 0\n");
    let (first, mut expected) = lines(3000, 2);
    produce_lines(&env, &first, "first.txt");
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    assert_eq!(store_counts(&env), expected);
    // Compacted (as the run's compaction thread does once half of a
    // changelog is new), each word's last count is left.
    let log = EmbeddedLog::open(env.data_dir(), false).unwrap();
    let changelog = "wordcount-word-counts-changelog";
    let mut readable = 0;
    for p in 0..3 {
        log.compact(&TopicPartition::new(changelog, p), 0.5, eddy_host::log::Cleanup::default()).unwrap();
        let mut consumer = log.consumer().unwrap();
        consumer.assign(&[(TopicPartition::new(changelog, p), 0)]).unwrap();
        while let Ok(batch) = consumer.poll(1000, std::time::Duration::from_millis(50)) {
            if batch.is_empty() {
                break;
            }
            readable += batch.iter().map(|f| f.records.len()).sum::<usize>();
        }
    }
    assert_eq!(readable, expected.len(), "one record per word after compaction");
    assert!(changelog_records(&log) > readable as u64, "offsets are kept: the end offsets did not move");
    // A clean stop leaves a checkpoint per task store.
    let state = env.data_dir().join("state").join("wordcount");
    for task in 0..3 {
        // Word counting is sub-topology 1 (after the `words` topic).
        let checkpoint = state.join(format!("1_{task}")).join("word-counts").join(".checkpoint");
        assert!(checkpoint.exists(), "{} missing", checkpoint.display());
    }

    // Clean restart: the stores resume from their checkpoints.
    let (second, more) = lines(1000, 3);
    merge(&mut expected, more);
    produce_lines(&env, &second, "second.txt");
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    assert_eq!(store_counts(&env), expected);

    // Lost local state: rebuilt from the changelog, and counting goes on from there.
    std::fs::remove_dir_all(&state).unwrap();
    let (third, more) = lines(500, 4);
    merge(&mut expected, more);
    produce_lines(&env, &third, "third.txt");
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    assert_eq!(store_counts(&env), expected);
    let mut last = BTreeMap::new();
    for r in env.consume_all("word-counts-out", &["--key-serde", "string", "--value-serde", "i64"]) {
        last.insert(r["key"].as_str().unwrap().to_owned(), r["value"].as_i64().unwrap());
    }
    assert_eq!(last, expected, "counts sent on after the restore continue from the restored values");
}

#[test]
fn tables_upsert_and_tombstones_delete() {
    let env = Env::new();
    env.eddy(&["topic", "create", "customers", "--partitions", "2"]);
    let body = "application-id: crm\ntopology:\n  - { name: customers, table: customers, store: customer-store, store-kind: in-memory, key-serde: string, value-serde: json }\n";
    let app = app_file(&env, "crm.yaml", eddy_tests::WORDS, body);
    let input = env.write(
        "customers.jsonl",
        r#"{"key": "c1", "value": {"name": "Ada", "total": 10}}
{"key": "c2", "value": {"name": "Bob", "total": 5}}
{"key": "c1", "value": {"name": "Ada", "total": 25}}
{"key": "c3", "value": {"name": "Cy", "total": 1}}
{"key": "c2", "value": null}
"#,
    );
    env.eddy(&[
        "produce",
        "customers",
        "--file",
        input.to_str().unwrap(),
        "--key-serde",
        "string",
        "--value-serde",
        "json",
    ]);
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    let get = |key: &str| env.eddy_output(&["store", "get", "crm", "customer-store", key, "--value-serde", "json"]);
    let c1 = get("c1");
    assert!(c1.status.success());
    assert_eq!(serde_json::from_slice::<Value>(&c1.stdout).unwrap(), json!({"name": "Ada", "total": 25}));
    let c2 = get("c2");
    assert!(!c2.status.success(), "a tombstone removes the key");
    assert!(String::from_utf8_lossy(&c2.stderr).contains("key c2 is not in store customer-store"));
    let scan = env.eddy(&["store", "scan", "crm", "customer-store", "--prefix", "c", "--key-serde", "string"]);
    let keys: Vec<String> =
        scan.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["key"].as_str().unwrap().to_owned()).collect();
    assert_eq!(keys, ["c1", "c3"]);
}

#[test]
fn sigterm_stops_cleanly_with_checkpoints() {
    let env = Env::new();
    setup_topics(&env);
    let (input, expected) = lines(2000, 5);
    produce_lines(&env, &input, "lines.txt");
    let app = wordcount_app(&env, "");
    let child = env.spawn_run(&app);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let scan = ["store", "scan", "wordcount", "word-counts", "--key-serde", "string", "--value-serde", "i64"];
    // Until the run has created the changelog, scanning fails.
    while !(env.eddy_output(&scan).status.success() && store_counts(&env) == expected)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = env.terminate(child);
    assert!(out.status.success(), "eddy run exits 0 on SIGTERM: {}", String::from_utf8_lossy(&out.stderr));
    let state = env.data_dir().join("state").join("wordcount");
    for task in 0..3 {
        assert!(state.join(format!("1_{task}")).join("word-counts").join(".checkpoint").exists());
    }
    assert_eq!(store_counts(&env), expected);
}

#[test]
fn a_running_application_compacts_its_changelogs() {
    let env = Env::new();
    setup_topics(&env);
    let (input, expected) = lines(3000, 6);
    produce_lines(&env, &input, "lines.txt");
    // Without a cache every update reaches the changelog, so there is
    // something to compact however fast the run is.
    let child = env.spawn_run(&wordcount_app(&env, "cache-max-bytes: 0\n"));
    // The compactor looks every 10 s; a changelog written since is all dirty.
    let changelog_dir = env.data_dir().join("topics").join("wordcount-word-counts-changelog");
    let compacted = || {
        std::fs::read_dir(&changelog_dir)
            .is_ok_and(|d| d.flatten().any(|e| e.file_name().to_string_lossy().ends_with(".1.log")))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    while !compacted() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let was_compacted = compacted();
    let out = env.terminate(child);
    assert!(out.status.success(), "eddy run exits 0 on SIGTERM: {}", String::from_utf8_lossy(&out.stderr));
    assert!(was_compacted, "a changelog partition was compacted while the application ran");
    assert_eq!(store_counts(&env), expected);
}

fn customers_app(env: &Env, extra: &str) -> std::path::PathBuf {
    let body = format!(
        "application-id: crm\n{extra}topology:
  - {{ name: orders, source: [orders], key-serde: string, value-serde: json }}
  - {{ name: totals, aggregate: add_order, store: customer-totals }}
  - {{ name: totals-out, to: customer-totals, key-serde: string, value-serde: json }}
  - {{ name: by-customer, from: orders, reduce: largest_order, store: largest-orders }}
"
    );
    app_file(env, "crm.yaml", eddy_tests::CUSTOMERS, &body)
}

#[test]
fn per_customer_totals_aggregate_and_reduce() {
    let orders = [("c1", 10.0), ("c2", 5.0), ("c1", 2.5), ("c3", 7.0), ("c1", 30.0), ("c2", 1.0), ("c1", -4.0)];
    let text: String = orders
        .iter()
        .map(|(c, a)| format!("{{\"key\": \"{c}\", \"value\": {{\"customer\": \"{c}\", \"amount\": {a}}}}}\n"))
        .collect();
    for extra in ["error-policy: skip\n", "error-policy: skip\ncache-max-bytes: 0\n"] {
        let env = Env::new();
        let mut driver = TestDriver::from_file(&customers_app(&env, extra)).unwrap();
        driver.create_topic("orders", 2).unwrap();
        driver.pipe_json_lines("orders", &text).unwrap();
        let totals: BTreeMap<String, Value> = driver
            .store("customer-totals")
            .unwrap()
            .into_iter()
            .map(|(k, v)| (String::from_utf8(k).unwrap(), serde_json::from_slice(&v).unwrap()))
            .collect();
        let want: BTreeMap<String, Value> = [
            ("c1".to_owned(), json!({"orders": 3, "total": 42.5})),
            ("c2".to_owned(), json!({"orders": 2, "total": 6.0})),
            ("c3".to_owned(), json!({"orders": 1, "total": 7.0})),
        ]
        .into();
        assert_eq!(totals, want, "{extra}: the negative order is skipped, the rest add up");
        assert_eq!(driver.last_report().skipped, 1);
        let largest = driver.store("largest-orders").unwrap();
        let c1: Value = serde_json::from_slice(&largest[&b"c1".to_vec()]).unwrap();
        assert_eq!((c1["customer"].as_str(), c1["amount"].as_f64()), (Some("c1"), Some(30.0)));
        let mut last = BTreeMap::new();
        for r in driver.read_output_json("customer-totals").unwrap() {
            last.insert(r["key"].as_str().unwrap().to_owned(), r["value"].clone());
        }
        assert_eq!(last, want);
    }
}

#[test]
fn an_aggregator_that_fails_or_traps_leaves_the_aggregate_whole() {
    for policy in ["skip", "dead-letter"] {
        let env = Env::new();
        let body = format!(
            "application-id: sums\nerror-policy: {policy}\ntopology:\n  - {{ name: in, source: [in], key-serde: string, value-serde: string }}\n  - {{ name: sum, aggregate: fragile_sum }}\n"
        );
        let app = app_file(&env, "sums.yaml", eddy_tests::FAULTY, &body);
        let mut driver = TestDriver::from_file(&app).unwrap();
        let lines: String = ["1", "2", "boom", "3", "bad", "4"]
            .iter()
            .map(|v| format!("{{\"key\": \"k\", \"value\": \"{v}\"}}\n"))
            .collect();
        driver.pipe_json_lines("in", &lines).unwrap();
        let sums = driver.store("sum").unwrap();
        assert_eq!(sums.get(b"k".as_slice()).map(|v| v.as_slice()), Some(&b"10"[..]), "{policy}");
        if policy == "dead-letter" {
            let dead: Vec<Value> =
                driver.read_output_json("sums-dlq").unwrap().iter().map(|r| r["value"].clone()).collect();
            assert_eq!(dead, [json!("boom"), json!("bad")]);
        }
    }
}

#[test]
fn group_by_repartitions_so_equal_keys_meet() {
    // Orders arrive unkeyed, spread over 3 partitions; group-by re-keys them by
    // customer through <app>-totals-repartition before they are aggregated.
    let env = Env::new();
    let body = "application-id: crm\nthreads: 2\ntopology:
  - { name: orders, source: [orders], value-serde: json }
  - { name: totals, aggregate: add_order, group-by: customer_key, store: customer-totals }
  - { name: out, to: customer-totals, key-serde: string, value-serde: json }
";
    let app = app_file(&env, "crm.yaml", eddy_tests::CUSTOMERS, body);
    let mut driver = TestDriver::from_file(&app).unwrap();
    driver.create_topic("orders", 3).unwrap();
    let mut want: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    let mut lines = String::new();
    for i in 0..300u64 {
        let customer = format!("c{}", i % 7);
        let amount = (i % 5) as f64;
        let e = want.entry(customer.clone()).or_default();
        e.0 += 1;
        e.1 += amount;
        lines.push_str(&format!("{{\"value\": {{\"customer\": \"{customer}\", \"amount\": {amount}}}}}\n"));
    }
    driver.pipe_json_lines("orders", &lines).unwrap();
    let totals: BTreeMap<String, (u64, f64)> = driver
        .store("customer-totals")
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            let t: Value = serde_json::from_slice(&v).unwrap();
            (String::from_utf8(k).unwrap(), (t["orders"].as_u64().unwrap(), t["total"].as_f64().unwrap()))
        })
        .collect();
    assert_eq!(totals, want);
    let repartition = "crm-totals-repartition";
    assert_eq!(driver.log().partitions(repartition).unwrap(), Some(3), "sized like the sources");
    let repartitioned: u64 =
        (0..3).map(|p| driver.log().end_offset(&TopicPartition::new(repartition, p)).unwrap()).sum();
    assert_eq!(repartitioned, 300);
}

#[test]
fn cogroup_folds_several_inputs_into_one_aggregate() {
    let env = Env::new();
    let body = "application-id: crm\ntopology:
  - { name: orders, source: [orders], key-serde: string, value-serde: json }
  - { name: refunds, source: [refunds], key-serde: string, value-serde: json }
  - name: balances
    cogroup:
      - { from: orders, aggregate: add_order }
      - { from: refunds, aggregate: add_refund }
    store: customer-balances
  - { name: out, to: balances, key-serde: string, value-serde: json }
";
    let app = app_file(&env, "crm.yaml", eddy_tests::CUSTOMERS, body);
    let mut driver = TestDriver::from_file(&app).unwrap();
    driver.create_topic("orders", 2).unwrap();
    driver.create_topic("refunds", 2).unwrap();
    let line =
        |c: &str, a: f64| format!("{{\"key\": \"{c}\", \"value\": {{\"customer\": \"{c}\", \"amount\": {a}}}}}\n");
    let orders = [("c1", 10.0), ("c2", 5.0), ("c1", 20.0)].map(|(c, a)| line(c, a)).concat();
    let refunds = [("c1", 4.0), ("c3", 1.5)].map(|(c, a)| line(c, a)).concat();
    driver.pipe_json_lines("orders", &orders).unwrap();
    driver.pipe_json_lines("refunds", &refunds).unwrap();
    let balances: BTreeMap<String, Value> = driver
        .store("customer-balances")
        .unwrap()
        .into_iter()
        .map(|(k, v)| (String::from_utf8(k).unwrap(), serde_json::from_slice(&v).unwrap()))
        .collect();
    let want: BTreeMap<String, Value> = [
        ("c1".to_owned(), json!({"orders": 2, "total": 26.0})),
        ("c2".to_owned(), json!({"orders": 1, "total": 5.0})),
        ("c3".to_owned(), json!({"orders": 0, "total": -1.5})),
    ]
    .into();
    assert_eq!(balances, want);
    let mut last = BTreeMap::new();
    for r in driver.read_output_json("balances").unwrap() {
        last.insert(r["key"].as_str().unwrap().to_owned(), r["value"].clone());
    }
    assert_eq!(last, want);
}
