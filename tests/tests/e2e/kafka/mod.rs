//! The same applications on a real Apache Kafka broker: results equal to
//! the embedded log's, and topics that standard Kafka clients read and
//! write (kcat, Kafka's console tools).
//!
//! The broker is the one `scripts/kafka.sh start` runs (as `scripts/test.sh`
//! does), named by `EDDY_TEST_KAFKA`; tests that stop brokers use the
//! three-broker cluster of `scripts/kafka.sh start --brokers 3`, named by
//! `EDDY_TEST_KAFKA_CLUSTER`. Without them these tests fail: a missing
//! broker must not pass as a skipped test.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::{Env, app_file};

mod failover;
mod queries;
mod server;

/// The test cluster's bootstrap servers.
pub fn bootstrap() -> String {
    std::env::var("EDDY_TEST_KAFKA").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| {
        panic!(
            "EDDY_TEST_KAFKA is not set: the Kafka tests need a broker. scripts/test.sh starts one; by hand: \
             `scripts/kafka.sh start` and `export EDDY_TEST_KAFKA=127.0.0.1:9092`"
        )
    })
}

/// The three-broker test cluster's bootstrap servers.
pub fn cluster_bootstrap() -> String {
    std::env::var("EDDY_TEST_KAFKA_CLUSTER").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| {
        panic!(
            "EDDY_TEST_KAFKA_CLUSTER is not set: this test needs the three-broker cluster. scripts/test.sh starts \
             it; by hand: `scripts/kafka.sh start --brokers 3` and \
             `export EDDY_TEST_KAFKA_CLUSTER=127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094`"
        )
    })
}

/// Word count over `lines`, with the topic and application names of `env`:
/// the words go through the repartition topic `<app>-counts-repartition`.
fn wordcount_app(env: &Env, extra: &str) -> std::path::PathBuf {
    let (id, lines, out) = (env.topic("wordcount"), env.topic("lines"), env.topic("word-counts-out"));
    let body = format!(
        "application-id: {id}\nthreads: 2\ncommit-interval-ms: 50\n{extra}topology:
  - {{ name: lines, source: [{lines}], value-serde: string }}
  - {{ name: split, flat-map: split_words }}
  - {{ name: counts, count: word-counts }}
  - {{ name: out, to: {out}, key-serde: string, value-serde: i64 }}
"
    );
    app_file(env, "wordcount.yaml", eddy_tests::WORDS, &body)
}

const VOCABULARY: [&str; 9] = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"];

/// Deterministic lines and the word counts they give.
fn lines(n: usize) -> (String, BTreeMap<String, i64>) {
    let mut counts = BTreeMap::new();
    let mut text = String::new();
    for i in 0..n {
        let words: Vec<&str> = (0..1 + i % 5).map(|j| VOCABULARY[(i * 7 + j * 5) % VOCABULARY.len()]).collect();
        for w in &words {
            *counts.entry((*w).to_owned()).or_insert(0) += 1;
        }
        text.push_str(&words.join(" "));
        text.push('\n');
    }
    (text, counts)
}

/// The counts in store `store` of application `app` (named in `env`),
/// string keys and i64 values, as `eddy store scan` reads them.
pub(crate) fn store_counts(env: &Env, app: &str, store: &str) -> BTreeMap<String, i64> {
    env.eddy(&["store", "scan", &env.topic(app), store, "--key-serde", "string", "--value-serde", "i64"])
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["key"].as_str().unwrap().to_owned(), v["value"].as_i64().unwrap())
        })
        .collect()
}

/// What a word count run left: the store's counts, the last count per word
/// in the output topic, and how many records the output topic has.
struct WordCounts {
    store: BTreeMap<String, i64>,
    last_out: BTreeMap<String, i64>,
}

/// Runs word count on `env` over `text` until idle.
fn run_word_count(env: &Env, text: &str, extra: &str) -> WordCounts {
    for t in ["lines", "word-counts-out"] {
        env.eddy(&["topic", "create", &env.topic(t), "--partitions", "3"]);
    }
    let file = env.write("lines.txt", text);
    env.eddy(&["produce", &env.topic("lines"), "--value-only", "--file", file.to_str().unwrap()]);
    let app = wordcount_app(env, extra);
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    let store = store_counts(env, "wordcount", "word-counts");
    let mut last_out = BTreeMap::new();
    for r in env.consume_all(&env.topic("word-counts-out"), &["--key-serde", "string", "--value-serde", "i64"]) {
        last_out.insert(r["key"].as_str().unwrap().to_owned(), r["value"].as_i64().unwrap());
    }
    WordCounts { store, last_out }
}

#[test]
fn word_count_on_kafka_equals_the_embedded_log() {
    let (text, expected) = lines(20_000);
    let embedded = run_word_count(&Env::new(), &text, "");
    assert_eq!(embedded.store, expected);
    assert_eq!(embedded.last_out, expected);
    for guarantee in ["at-least-once", "exactly-once"] {
        let env = Env::kafka();
        let on_kafka = run_word_count(&env, &text, &format!("processing-guarantee: {guarantee}\n"));
        assert_eq!(on_kafka.store, expected, "{guarantee}: the store's counts");
        assert_eq!(on_kafka.last_out, expected, "{guarantee}: the last count per word in the output");
        // The changelog is a compacted topic, as Kafka Streams makes it.
        let changelog = format!("{}-word-counts-changelog", env.topic("wordcount"));
        let described = kafka_tool(&["topics", "--describe", "--topic", &changelog]);
        assert!(described.contains("cleanup.policy=compact"), "{changelog}: {described}");
        // What the group committed past in the repartition topic is deleted,
        // as Kafka Streams purges it: nothing is left to read.
        let repartition = format!("{}-counts-repartition", env.topic("wordcount"));
        let listed = env.eddy(&["topic", "list", &repartition]);
        assert!(!listed.contains("records=0"), "{listed}");
        let left = kcat(&["-C", "-t", &repartition, "-o", "beginning", "-e", "-q", "-f", "%o\n"], "");
        assert!(left.trim().is_empty(), "{guarantee}: {repartition} still holds records at offsets {left}");
    }
}

#[test]
fn a_versioned_tables_changelog_is_kafka_streams_and_keeps_its_history() {
    let env = Env::kafka();
    let (id, prices, out) = (env.topic("versioned"), env.topic("prices"), env.topic("price-changes"));
    for t in [&prices, &out] {
        env.eddy(&["topic", "create", t, "--partitions", "2"]);
    }
    let body = format!(
        "application-id: {id}\ntopology:
  - {{ name: prices, table: {prices}, value-serde: string, versioned: {{ history-retention-ms: 3600000 }} }}
  - {{ name: changes, from: prices, to-stream: true }}
  - {{ name: out, to: {out}, value-serde: string }}
"
    );
    let app = app_file(&env, "versioned.yaml", eddy_tests::KSTREAMS, &body);
    let updates = [("apple", "100", 1_000), ("apple", "120", 20_000), ("apple", "95", 8_000), ("pear", "7", 2_000)];
    let lines: String =
        updates.iter().map(|(k, v, ts)| format!("{}\n", json!({"key": k, "value": v, "timestamp": ts}))).collect();
    env.produce(&prices, &lines, &["--value-serde", "string"]);
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    // Kafka Streams' versioned changelog: compacted, but only past the
    // history retention plus a day, so every version survives the cleaner.
    let changelog = format!("{id}-prices-changelog");
    let described = kafka_tool(&["topics", "--describe", "--topic", &changelog]);
    assert!(described.contains("cleanup.policy=compact"), "{changelog}: {described}");
    assert!(described.contains("min.compaction.lag.ms=90000000"), "{changelog}: {described}");
    // Each version under its plain key, timestamped with the time it
    // became valid (the out-of-order one too); clock records aside.
    let mut logged: Vec<Value> = env
        .consume_all(&changelog, &["--value-serde", "string"])
        .into_iter()
        .filter(|r| r["key"] != "")
        .map(|r| json!([r["key"], r["value"], r["timestamp"]]))
        .collect();
    logged.sort_by_key(|r| r[2].as_i64());
    assert_eq!(
        logged,
        [
            json!(["apple", "100", 1_000]),
            json!(["pear", "7", 2_000]),
            json!(["apple", "95", 8_000]),
            json!(["apple", "120", 20_000])
        ]
    );
}

/// Runs `scripts/kafka.sh ARGS...` against the test cluster; returns stdout.
fn kafka_tool(args: &[&str]) -> String {
    kafka_tool_with_input(args, "")
}

/// Runs `scripts/kafka.sh ARGS...` against the test cluster with `stdin` as
/// its input; returns stdout.
fn kafka_tool_with_input(args: &[&str], stdin: &str) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka.sh");
    let mut command = Command::new("bash");
    command.arg(&script).args(&args[..1]).arg("--bootstrap-server").arg(bootstrap()).args(&args[1..]);
    run_tool(command, stdin, &format!("kafka.sh {args:?}"))
}

/// Stops (`stop-broker`) or starts (`start-broker`, which waits until it
/// answers) node `node` of the three-broker cluster, keeping its data.
fn cluster_node(action: &str, node: u32) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka.sh");
    let mut command = Command::new("bash");
    command.arg(&script).arg(action).arg(node.to_string()).args(["--brokers", "3"]);
    run_tool(command, "", &format!("kafka.sh {action} {node}"));
}

/// Runs kcat against the test cluster with `stdin` as its input; returns stdout.
fn kcat(args: &[&str], stdin: &str) -> String {
    let mut command = Command::new("kcat");
    command.arg("-b").arg(bootstrap()).args(args);
    run_tool(command, stdin, &format!("kcat {args:?} (scripts/setup.sh installs kcat)"))
}

/// Runs a client tool with `stdin` as its input, within 90 s; fails the
/// test (naming it `what`, with its output) unless it succeeds. Returns stdout.
fn run_tool(mut command: Command, stdin: &str, what: &str) -> String {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = crate::wait_bounded(child, what, std::time::Duration::from_secs(90));
    assert!(
        out.status.success(),
        "{what} failed\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn kcat_reads_what_eddy_writes_and_the_other_way_round() {
    let env = Env::kafka();
    let (from_eddy, from_kcat) = (env.topic("from-eddy"), env.topic("from-kcat"));
    for t in [&from_eddy, &from_kcat] {
        env.eddy(&["topic", "create", t, "--partitions", "4"]);
    }
    let keys = ["bed-1", "bed-2", "bed-3", "bed-4", "bed-5", "bed-6"];
    let input: String = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            json!({"key": k, "value": {"n": i}, "timestamp": 1_000 + i as i64, "headers": {"source": "eddy"}})
                .to_string()
                + "\n"
        })
        .collect();
    env.produce(&from_eddy, &input, &["--key-serde", "string", "--value-serde", "json"]);

    // kcat sees each record in the partition Java's partitioner would pick,
    // with its key, value, timestamp and headers.
    let seen: Vec<Value> = kcat(&["-C", "-t", &from_eddy, "-e", "-J", "-q"], "")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(seen.len(), keys.len());
    for r in &seen {
        let key = r["key"].as_str().unwrap();
        let i = keys.iter().position(|k| *k == key).unwrap();
        assert_eq!(r["payload"], json!({"n": i}).to_string());
        assert_eq!(r["ts"], json!(1_000 + i as i64));
        assert_eq!(r["partition"], json!(eddy_host::partition::partition_for_key(key.as_bytes(), 4)));
        assert_eq!(r["headers"], json!(["source", "eddy"]));
    }

    // Records kcat writes (partitioned as Java's clients do) read back with
    // their keys, values, headers and partitions.
    let lines: String = keys.iter().map(|k| format!("{k}:hello {k}\n")).collect();
    kcat(&["-P", "-t", &from_kcat, "-K:", "-X", "partitioner=murmur2_random", "-H", "source=kcat"], &lines);
    let read = env.consume_all(&from_kcat, &["--key-serde", "string", "--value-serde", "string"]);
    assert_eq!(read.len(), keys.len());
    for r in &read {
        let key = r["key"].as_str().unwrap();
        assert_eq!(r["value"], json!(format!("hello {key}")));
        assert_eq!(r["partition"], json!(eddy_host::partition::partition_for_key(key.as_bytes(), 4)));
        assert_eq!(r["headers"], json!({"source": "kcat"}));
    }
}

/// The vitals pipeline (filter, re-key, split, dead letters) with `env`'s
/// topic names.
fn vitals_app(env: &Env) -> std::path::PathBuf {
    let (id, vitals, alerts, clean, dlq) = (
        env.topic("vitals"),
        env.topic("vitals"),
        env.topic("alerts"),
        env.topic("vitals-clean"),
        env.topic("vitals-dlq"),
    );
    let body = format!(
        "application-id: {id}\nthreads: 2\nerror-policy: dead-letter\ndead-letter-topic: {dlq}\ntopology:
  - {{ name: readings, source: [{vitals}], key-serde: string, value-serde: json }}
  - {{ name: valid, filter: valid_reading }}
  - {{ name: by-patient, select-key: patient_key }}
  - name: route
    split:
      - {{ branch: critical, predicate: is_critical }}
      - {{ branch: normal }}
  - {{ name: alert, from: critical, map-values: to_alert }}
  - {{ name: alerts-out, to: {alerts}, key-serde: string, value-serde: json }}
  - {{ name: clean-out, from: normal, to: {clean}, key-serde: string, value-serde: json }}
"
    );
    app_file(env, "vitals.yaml", eddy_tests::VITALS, &body)
}

/// What the vitals pipeline wrote: alerts, clean readings and dead letters
/// (keys and values, sorted), and each alert's partition.
fn run_vitals(env: &Env) -> Vec<Vec<String>> {
    env.eddy(&["topic", "create", &env.topic("vitals"), "--partitions", "4"]);
    for t in ["alerts", "vitals-clean"] {
        env.eddy(&["topic", "create", &env.topic(t), "--partitions", "2"]);
    }
    env.produce(&env.topic("vitals"), crate::pipeline::READINGS, &["--key-serde", "string", "--value-serde", "json"]);
    let app = vitals_app(env);
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    let serdes = ["--key-serde", "string", "--value-serde", "json"];
    ["alerts", "vitals-clean", "vitals-dlq"]
        .iter()
        .map(|t| {
            let mut seen: Vec<String> = env
                .consume_all(&env.topic(t), &serdes)
                .iter()
                .map(|r| format!("{} {} {}", r["partition"], r["key"], r["value"]))
                .collect();
            seen.sort();
            seen
        })
        .collect()
}

#[test]
fn vitals_on_kafka_equal_the_embedded_log() {
    let embedded = run_vitals(&Env::new());
    assert_eq!(embedded[0].len(), crate::pipeline::expected_alerts().len());
    assert_eq!(embedded[2].len(), 1, "one dead letter");
    assert_eq!(run_vitals(&Env::kafka()), embedded);
}

/// An outer stream-stream join (a one-second window, half a second of
/// grace) on Kafka with exactly-once gives record for record, key by key,
/// what it gives on the embedded log.
#[test]
fn a_windowed_join_on_kafka_equals_the_embedded_log() {
    let inputs = crate::crash::join_inputs();
    let run = |env: &Env, extra: &str| {
        let (id, left, right, joined) =
            (env.topic("joins"), env.topic("left"), env.topic("right"), env.topic("joined"));
        for topic in [&left, &right, &joined] {
            env.eddy(&["topic", "create", topic, "--partitions", "2"]);
        }
        env.produce(&left, &inputs.left, &["--key-serde", "string"]);
        env.produce(&right, &inputs.right, &["--key-serde", "string"]);
        let body = format!(
            "application-id: {id}\nthreads: 2\n{extra}topology:
  - {{ name: left, source: [{left}], key-serde: string, value-serde: string }}
  - {{ name: right, source: [{right}], key-serde: string, value-serde: string }}
  - {{ name: joined, from: left, join: {{ stream: right, joiner: plus_joiner, type: outer,
      window: {{ time-difference-ms: 1000, grace-ms: 500 }} }} }}
  - {{ name: out, to: {joined}, key-serde: string, value-serde: string }}
"
        );
        let app = app_file(env, "joins.yaml", eddy_tests::KSTREAMS, &body);
        env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
        crate::crash::by_key(env, &joined)
    };
    let embedded = run(&Env::new(), "");
    assert!(embedded.values().map(Vec::len).sum::<usize>() > 30_000);
    let on_kafka = run(&Env::kafka(), "processing-guarantee: exactly-once\n");
    assert_eq!(on_kafka.len(), embedded.len());
    for (key, records) in &embedded {
        let got = on_kafka.get(key).cloned().unwrap_or_default();
        let at = records.iter().zip(&got).position(|(a, b)| a != b).unwrap_or(records.len().min(got.len()));
        assert!(
            &got == records,
            "key {key}: the join's results differ from the embedded log's from result {at} of {} (Kafka: {}): embedded {:?}, Kafka {:?}",
            records.len(),
            got.len(),
            &records[at..(at + 4).min(records.len())],
            &got[at..(at + 4).min(got.len())]
        );
    }
}

/// On one broker, the production profile refuses to run exactly-once and
/// says why; the development profile warns and runs.
#[test]
fn the_production_profile_refuses_a_cluster_that_cannot_survive_a_broker_loss() {
    let env = Env::kafka();
    let (text, expected) = lines(50);
    let app = |profile: &str| wordcount_app(&env, &format!("processing-guarantee: exactly-once\nprofile: {profile}\n"));
    for t in ["lines", "word-counts-out"] {
        env.eddy(&["topic", "create", &env.topic(t), "--partitions", "3"]);
    }
    let file = env.write("lines.txt", &text);
    env.eddy(&["produce", &env.topic("lines"), "--value-only", "--file", file.to_str().unwrap()]);

    let refused = env.eddy_fails(&["run", app("production").to_str().unwrap(), "--until-idle"]);
    for needed in ["production profile", "the cluster has 1 broker(s)", "transaction.state.log.replication.factor is 1"]
    {
        assert!(refused.contains(needed), "missing {needed:?} in: {refused}");
    }
    // Nothing ran: no changelog was created.
    let topics = env.eddy(&["topic", "list", &env.topic("")]);
    assert!(!topics.contains("word-counts-changelog"), "{topics}");

    let out = env.eddy_output(&["run", app("development").to_str().unwrap(), "--until-idle"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warning") && stderr.contains("1 broker(s)"), "{stderr}");
    let counts = store_counts(&env, "wordcount", "word-counts");
    assert_eq!(counts, expected);
}

/// Kafka's own console tools read an exactly-once application's output
/// (`read_committed`, keys and values as Eddy wrote them) and write input
/// Eddy reads, keys partitioned as Eddy partitions them.
#[test]
fn kafkas_console_tools_read_and_write_eddys_topics() {
    let env = Env::kafka();
    let (input, output) = (env.topic("console-in"), env.topic("console-out"));
    env.eddy(&["topic", "create", &input, "--partitions", "3"]);
    env.eddy(&["topic", "create", &output, "--partitions", "3"]);
    let keys = ["alpha", "beta", "gamma", "delta"];
    let lines: String = keys.iter().map(|k| format!("{k}\t{k} rides\n")).collect();
    kafka_tool_with_input(
        &["produce", "--topic", &input, "--reader-property", "parse.key=true", "--reader-property", "key.separator=\t"],
        &lines,
    );
    let read = env.consume_all(&input, &["--key-serde", "string", "--value-serde", "string"]);
    assert_eq!(read.len(), keys.len());
    for r in &read {
        let key = r["key"].as_str().unwrap();
        assert_eq!(r["value"], json!(format!("{key} rides")));
        assert_eq!(r["partition"], json!(eddy_host::partition::partition_for_key(key.as_bytes(), 3)));
    }
    let body = format!(
        "application-id: {}\nprocessing-guarantee: exactly-once\ntopology:
  - {{ name: in, source: [{input}], key-serde: string, value-serde: string }}
  - {{ name: out, to: {output}, key-serde: string, value-serde: string }}
",
        env.topic("console")
    );
    let app = app_file(&env, "console.yaml", eddy_tests::WORDS, &body);
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    let printed = kafka_tool(&[
        "consume",
        "--topic",
        &output,
        "--from-beginning",
        "--isolation-level",
        "read_committed",
        "--formatter-property",
        "print.key=true",
        "--formatter-property",
        "key.separator=\t",
        "--max-messages",
        "4",
        "--timeout-ms",
        "30000",
    ]);
    let mut got: Vec<&str> = printed.lines().collect();
    got.sort();
    let mut want: Vec<String> = keys.iter().map(|k| format!("{k}\t{k} rides")).collect();
    want.sort();
    assert_eq!(got, want);
}
