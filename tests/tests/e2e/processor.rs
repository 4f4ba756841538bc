//! The Processor API: plugin processors with host-owned stores, forwarding to
//! named children, punctuation by stream time and wall-clock time, and
//! global tables read from processors.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use eddy_host::testing::TestDriver;
use serde_json::{Value, json};

use crate::{Env, app_file};

/// A multiple of a minute, so stream-time punctuation falls on readings.
const T0: i64 = 1_699_999_980_000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

#[test]
fn vitals_medians_over_the_last_minute_per_patient() {
    let env = Env::new();
    let body = "application-id: vitals-medians
topology:
  - { name: readings, source: [vitals], key-serde: string, value-serde: json }
  - name: medians
    process: remember_reading
    stores: [patients, readings]
    punctuate: { function: emit_medians, every-ms: 60000 }
  - { name: out, to: vitals-medians, key-serde: string, value-serde: json }
";
    let app = app_file(&env, "medians.yaml", eddy_tests::VITALS, body);
    let mut driver = TestDriver::from_file(&app).unwrap();
    // One partition, so one task's stream time orders both patients' readings.
    driver.create_topic("vitals", 1).unwrap();
    // Two patients, a reading every 5 s for 3 minutes, keyed by patient; p2's
    // comes a second before p1's, so each punctuation (set off by a p1
    // reading) has seen p2's reading of that minute too.
    let mut lines = String::new();
    let mut readings: BTreeMap<&str, Vec<(i64, [f64; 3])>> = BTreeMap::new();
    for i in 0..36i64 {
        for (p, patient) in [(1, "p2"), (0, "p1")] {
            let t = T0 + i * 5_000 - p as i64 * 1_000;
            let v = [60.0 + ((i * 7 + p as i64) % 30) as f64, 110.0 + ((i * 3) % 20) as f64, 70.0 + (i % 10) as f64];
            readings.entry(patient).or_default().push((t, v));
            lines.push_str(&format!(
                "{{\"key\": \"{patient}\", \"timestamp\": {t}, \"value\": {{\"patient\": \"{patient}\", \"heart_rate\": {}, \"systolic\": {}, \"diastolic\": {}}}}}\n",
                v[0], v[1], v[2]
            ));
        }
    }
    driver.pipe_json_lines("vitals", &lines).unwrap();
    // Stream time crosses T0 (p2's first reading is at T0-1s), T0+60s and
    // T0+120s, not T0+180s: each punctuation sees exactly the readings of the
    // minute up to its time.
    let mut want = Vec::new();
    for end in [T0, T0 + 60_000, T0 + 120_000] {
        for (patient, rs) in &readings {
            let window: Vec<&[f64; 3]> =
                rs.iter().filter(|(t, _)| *t > end - 60_000 && *t <= end).map(|(_, v)| v).collect();
            let m = |i: usize| median(window.iter().map(|v| v[i]).collect());
            want.push(json!({"key": patient, "value": {"patient": patient, "until": end, "readings": window.len(),
                "heart_rate": m(0), "systolic": m(1), "diastolic": m(2)}}));
        }
    }
    let mut got: Vec<Value> = driver
        .read_output_json("vitals-medians")
        .unwrap()
        .into_iter()
        .map(|r| json!({"key": r["key"], "value": r["value"]}))
        .collect();
    got.sort_by_key(|r| (r["value"]["until"].as_i64(), r["key"].as_str().map(str::to_owned)));
    assert_eq!(got, want);
    let counts: Vec<&Value> = want.iter().map(|w| &w["value"]["readings"]).collect();
    assert_eq!(counts, [1, 1, 12, 12, 12, 12]);
    // Readings older than the last punctuation's minute are gone; the rest
    // (after T0+60s) wait for the next one.
    assert_eq!(driver.store("readings").unwrap().len(), 2 * 23);
    assert_eq!(driver.store("patients").unwrap().len(), 2);
}

fn tally_app(env: &Env, policy: &str) -> std::path::PathBuf {
    let body = format!(
        "application-id: tally\nerror-policy: {policy}\ntopology:
  - {{ name: in, source: [in], key-serde: string, value-serde: string }}
  - {{ name: tally, process: fragile_tally, stores: tally }}
  - {{ name: counts, to: tally-counts, key-serde: string, value-serde: string }}
  - {{ name: echo, from: tally, to: tally-echo, key-serde: string, value-serde: string }}
"
    );
    app_file(env, "tally.yaml", eddy_tests::FAULTY, &body)
}

#[test]
fn a_failed_record_leaves_no_writes_and_forwards_reach_named_children() {
    for policy in ["skip", "dead-letter"] {
        let env = Env::new();
        let mut driver = TestDriver::from_file(&tally_app(&env, policy)).unwrap();
        let values = ["a1", "a2", "bad", "a3", "boom", "stray", "a4"];
        let lines: String = values.iter().map(|v| format!("{{\"key\": \"k\", \"value\": \"{v}\"}}\n")).collect();
        driver.pipe_json_lines("in", &lines).unwrap();
        let tally: BTreeMap<String, String> = driver
            .store("tally")
            .unwrap()
            .into_iter()
            .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
            .collect();
        let want: BTreeMap<String, String> =
            [("count:k", "4"), ("seen:a1", "1"), ("seen:a2", "1"), ("seen:a3", "1"), ("seen:a4", "1")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        assert_eq!(tally, want, "{policy}: the failed records' writes (seen:bad, seen:boom, seen:stray) are dropped");
        let values_of = |rs: Vec<Value>| rs.iter().map(|r| r["value"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
        // `counts` gets the counts sent to it by name and the values sent to every child.
        let counts = values_of(driver.read_output_json("tally-counts").unwrap());
        assert_eq!(counts, ["1", "a1", "2", "a2", "3", "a3", "4", "a4"]);
        assert_eq!(values_of(driver.read_output_json("tally-echo").unwrap()), ["a1", "a2", "a3", "a4"]);
        if policy == "dead-letter" {
            let dead = driver.read_output("tally-dlq").unwrap();
            let errors: Vec<String> = dead
                .iter()
                .map(|r| {
                    let h = r.headers.iter().find(|h| h.name == "eddy.error").unwrap();
                    String::from_utf8_lossy(h.value.as_deref().unwrap()).into_owned()
                })
                .collect();
            assert_eq!(errors.len(), 3);
            assert!(errors[0].contains("\"bad\" is bad"), "{errors:?}");
            assert!(errors[1].contains("boom"), "{errors:?}");
            assert!(errors[2].contains("forwarded to 'nowhere', which is not a child of node 'tally'"), "{errors:?}");
            assert!(errors[2].contains("its children are: counts, echo"), "{errors:?}");
        }
    }
}

#[test]
fn a_store_the_node_does_not_declare_cannot_be_opened() {
    let env = Env::new();
    let body = "application-id: tally\ntopology:
  - { name: in, source: [in], key-serde: string, value-serde: string }
  - { name: tally, process: fragile_tally, stores: other }
  - { name: counts, to: tally-counts }
";
    let app = app_file(&env, "tally.yaml", eddy_tests::FAULTY, body);
    let mut driver = TestDriver::from_file(&app).unwrap();
    driver.pipe_json_lines("in", "{\"key\": \"k\", \"value\": \"a\"}\n").unwrap();
    let err = driver.process().unwrap_err().to_string();
    assert!(err.contains("store 'tally' is not declared by this node; it declares: other"), "{err}");
    assert!(err.contains("node 'tally' failed"), "{err}");
}

#[test]
fn wall_clock_punctuation_runs_without_input() {
    let env = Env::new();
    env.eddy(&["topic", "create", "in", "--partitions", "2"]);
    env.eddy(&["topic", "create", "ticks", "--partitions", "1"]);
    let body = "application-id: ticker\ncommit-interval-ms: 20\ntopology:
  - { name: in, source: [in], key-serde: string, value-serde: string }
  - name: tick
    process: fragile_tally
    stores: tally
    punctuate: { function: tick, every-ms: 50, time: wall }
  - { name: out, to: ticks, key-serde: string, value-serde: string }
";
    let app = app_file(&env, "ticker.yaml", eddy_tests::FAULTY, body);
    let child = env.spawn_run(&app);
    let ticks = || env.consume_all("ticks", &["--key-serde", "string", "--value-serde", "string"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && ticks().len() < 10 {
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = env.terminate(child);
    assert!(out.status.success(), "eddy run exits 0 on SIGTERM: {}", String::from_utf8_lossy(&out.stderr));
    let got = ticks();
    // Two tasks, each ticking every 50 ms with no input at all.
    assert!(got.len() >= 10, "{} ticks", got.len());
    let times: Vec<i64> = got.iter().map(|r| r["value"].as_str().unwrap().parse().unwrap()).collect();
    let now = eddy_host::jsonl::now_ms();
    assert!(times.iter().all(|&t| t > now - 60_000 && t <= now), "wall-clock times: {times:?}");
}

#[test]
fn global_tables_enrich_every_task_and_survive_restarts() {
    let env = Env::new();
    for (topic, partitions) in [("customer-names", "2"), ("orders", "3"), ("named-orders", "2")] {
        env.eddy(&["topic", "create", topic, "--partitions", partitions]);
    }
    let body = "application-id: shop\nthreads: 2\ntopology:
  - { name: customer-names, global-table: customer-names }
  - { name: orders, source: [orders], key-serde: string, value-serde: json }
  - { name: enrich, process: enrich_order, stores: customer-names }
  - { name: out, to: named-orders, key-serde: string, value-serde: json }
";
    let app = app_file(&env, "shop.yaml", eddy_tests::CUSTOMERS, body);
    let produce = |topic: &str, name: &str, text: &str| {
        let file = env.write(name, text);
        let serdes = ["--key-serde", "string", "--value-serde", if topic == "orders" { "json" } else { "string" }];
        let mut args = vec!["produce", topic, "--file", file.to_str().unwrap()];
        args.extend(serdes);
        env.eddy(&args);
    };
    let names: String = (0..20).map(|i| format!("{{\"key\": \"c{i}\", \"value\": \"Name {i}\"}}\n")).collect();
    produce("customer-names", "names1.jsonl", &names);
    let orders = |from: usize, to: usize| -> String {
        (from..to)
            .map(|i| {
                format!("{{\"key\": \"c{}\", \"value\": {{\"customer\": \"c{}\", \"amount\": {i}}}}}\n", i % 25, i % 25)
            })
            .collect()
    };
    produce("orders", "orders1.jsonl", &orders(0, 50));
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    let named = || -> BTreeMap<i64, Option<String>> {
        env.consume_all("named-orders", &["--key-serde", "string", "--value-serde", "json"])
            .into_iter()
            .map(|r| (r["value"]["amount"].as_f64().unwrap() as i64, r["value"]["name"].as_str().map(str::to_owned)))
            .collect()
    };
    let first = named();
    assert_eq!(first.len(), 50);
    for (amount, name) in &first {
        let c = amount % 25;
        // Customers c20..c24 are not in the global table.
        assert_eq!(name.clone(), (c < 20).then(|| format!("Name {c}")), "order {amount}");
    }
    let global = env.data_dir().join("state").join("shop").join("global").join("customer-names");
    assert!(global.join(".checkpoint").exists(), "a clean stop checkpoints the global store");
    // A renamed customer, a deleted one and a new one; then more orders.
    produce(
        "customer-names",
        "names2.jsonl",
        "{\"key\": \"c1\", \"value\": \"Renamed\"}\n{\"key\": \"c2\", \"value\": null}\n{\"key\": \"c21\", \"value\": \"New\"}\n",
    );
    produce("orders", "orders2.jsonl", &orders(50, 75));
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    let second = named();
    assert_eq!(second[&51], Some("Renamed".to_owned()), "c1 after the rename");
    assert_eq!(second[&52], None, "c2 after its tombstone");
    assert_eq!(second[&71], Some("New".to_owned()), "c21 after it was added");
    assert_eq!(second[&53], Some("Name 3".to_owned()));
    // Without its directory the global store is rebuilt from the topic.
    std::fs::remove_dir_all(&global).unwrap();
    produce("orders", "orders3.jsonl", &orders(76, 78));
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    let third = named();
    assert_eq!((third[&76].clone(), third[&77].clone()), (Some("Renamed".to_owned()), None));
    let err = env.eddy_fails(&["store", "get", "shop", "customer-names", "c1"]);
    assert!(err.contains("no changelog topic 'shop-customer-names-changelog'"), "{err}");
    assert!(err.contains("a global table's store has none"), "{err}");
}

#[test]
fn the_medians_example_repartitions_by_patient() {
    // examples/vitals/medians.yaml as shipped (with the test's plugin):
    // readings keyed by ward are re-keyed by patient through a topic, and the
    // punctuator's stream time follows that topic, not the ward topic.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let yaml = std::fs::read_to_string(root.join("examples/vitals/medians.yaml")).unwrap();
    let body: String = yaml.lines().filter(|l| !l.starts_with("plugin:")).map(|l| format!("{l}\n")).collect();
    let env = Env::new();
    let app = app_file(&env, "medians.yaml", eddy_tests::VITALS, &body);
    let mut driver = TestDriver::from_file(&app).unwrap();
    driver.create_topic("vitals", 4).unwrap();
    driver.create_topic("vitals-by-patient", 4).unwrap();
    let readings = std::fs::read_to_string(root.join("examples/vitals/minute-readings.jsonl")).unwrap();
    driver.pipe_json_lines("vitals", &readings).unwrap();
    let medians = driver.read_output_json("vitals-medians").unwrap();
    let mut per_patient: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for m in &medians {
        per_patient
            .entry(m["key"].as_str().unwrap().to_owned())
            .or_default()
            .push(m["value"]["until"].as_i64().unwrap());
    }
    let minutes = vec![1_700_000_040_000, 1_700_000_100_000, 1_700_000_160_000];
    let want: BTreeMap<String, Vec<i64>> =
        ["p1", "p2", "p3"].iter().map(|p| ((*p).to_owned(), minutes.clone())).collect();
    assert_eq!(per_patient, want);
    assert!(medians.iter().all(|m| m["value"]["readings"].as_u64().unwrap() >= 8), "{medians:?}");
}

#[test]
fn the_test_driver_clock_drives_wall_clock_punctuation() {
    let env = Env::new();
    let body = "application-id: ticker\ntopology:
  - { name: in, source: [in], key-serde: string, value-serde: string }
  - name: tick
    process: fragile_tally
    stores: tally
    punctuate: { function: tick, every-ms: 1000, time: wall }
  - { name: out, to: ticks, key-serde: string, value-serde: string }
";
    let app = app_file(&env, "ticker.yaml", eddy_tests::FAULTY, body);
    let mut driver = TestDriver::from_file(&app).unwrap();
    let ticks = |driver: &mut TestDriver| -> Vec<String> {
        driver
            .read_output_json("ticks")
            .unwrap()
            .into_iter()
            .filter(|r| r["key"] == "tick")
            .map(|r| r["value"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(ticks(&mut driver).is_empty());
    driver.advance_time(Duration::from_millis(600));
    assert!(ticks(&mut driver).is_empty(), "600 ms: no second boundary crossed");
    driver.advance_time(Duration::from_millis(600));
    assert_eq!(ticks(&mut driver), ["1200"], "the clock crossed 1000 ms");
    driver.advance_time(Duration::from_millis(5000));
    assert_eq!(ticks(&mut driver), ["6200"], "once per advance, however far");
}

#[test]
fn a_processor_killed_mid_way_ends_exactly_once() {
    use eddy_host::log::{EmbeddedLog, Log, TopicPartition};
    let env = Env::new();
    env.eddy(&["topic", "create", "in", "--partitions", "3"]);
    env.eddy(&["topic", "create", "tally-counts", "--partitions", "2"]);
    env.eddy(&["topic", "create", "tally-echo", "--partitions", "2"]);
    let n = 60_000usize;
    let text: String = (0..n).map(|i| format!("{{\"key\": \"k{}\", \"value\": \"v{i}\"}}\n", i % 97)).collect();
    let file = env.write("in.jsonl", &text);
    env.eddy(&["produce", "in", "--file", file.to_str().unwrap(), "--key-serde", "string", "--value-serde", "string"]);
    let app = tally_app(&env, "fail");
    let app_text = std::fs::read_to_string(&app).unwrap().replace("error-policy: fail", "commit-interval-ms: 20");
    std::fs::write(&app, app_text).unwrap();
    let echoed = |env: &Env| -> u64 {
        let log = EmbeddedLog::open(env.data_dir(), false).unwrap();
        (0..2).map(|p| log.end_offset(&TopicPartition::new("tally-echo", p)).unwrap()).sum()
    };
    let mut killed_mid_way = 0;
    for round in 1..=2u64 {
        env.run_then_kill(&app, || echoed(&env), n as u64 * round / 3);
        if echoed(&env) < n as u64 {
            killed_mid_way += 1;
        }
    }
    assert!(killed_mid_way >= 1, "every run finished before it was killed: raise the input size");
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    assert_eq!(echoed(&env), n as u64, "each record forwarded once");
    // Per key, the counts forwarded are exactly 1..=records of the key, once each.
    let mut counts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in env.consume_all("tally-counts", &["--key-serde", "string", "--value-serde", "string"]) {
        if let Ok(c) = r["value"].as_str().unwrap().parse::<u64>() {
            counts.entry(r["key"].as_str().unwrap().to_owned()).or_default().push(c);
        }
    }
    assert_eq!(counts.len(), 97);
    for (key, mut got) in counts {
        let k: usize = key[1..].parse().unwrap();
        let records = (0..n).filter(|i| i % 97 == k).count() as u64;
        got.sort_unstable();
        assert_eq!(got, (1..=records).collect::<Vec<_>>(), "{key}");
        let stored = env.eddy(&["store", "get", "tally", "tally", &format!("count:{key}"), "--value-serde", "string"]);
        assert_eq!(stored.trim(), format!("\"{records}\""), "{key}");
    }
}
