//! Several instances of one application on Kafka: they share its tasks
//! through the consumer group, and when one dies its tasks move to the
//! others, whose stores restore from the changelogs; exactly-once, a
//! `read_committed` reader sees each result once whatever happened.

use std::collections::BTreeMap;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Env, app_file, wait_bounded};

const KEYS: usize = 500;

/// Counts per key, with no record cache: each input record gives one
/// output, the key's new count, so the output of key `k` must read exactly
/// `1, 2, ..., n_k`.
fn counting_app(env: &Env) -> std::path::PathBuf {
    let (id, input, out) = (env.topic("counting"), env.topic("events"), env.topic("counts"));
    let body = format!(
        "application-id: {id}\nthreads: 2\ncommit-interval-ms: 100\ncache-max-bytes: 0\nprocessing-guarantee: exactly-once
topology:
  - {{ name: events, source: [{input}], key-serde: string, value-serde: string }}
  - {{ name: count, count: counts }}
  - {{ name: out, to: {out}, key-serde: string, value-serde: i64 }}
"
    );
    app_file(env, "counting.yaml", eddy_tests::WORDS, &body)
}

/// Records consumed from the output so far (its end offsets, transaction
/// markers included: enough to tell progress).
fn output_progress(env: &Env) -> u64 {
    let topic = env.topic("counts");
    env.eddy(&["topic", "list"])
        .lines()
        .find(|l| l.split('\t').next() == Some(topic.as_str()))
        .and_then(|l| l.rsplit("records=").next()?.trim().parse().ok())
        .unwrap_or(0)
}

fn wait_for(child: Child, what: &str) -> std::process::Output {
    let out = wait_bounded(child, what, Duration::from_secs(240));
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn exactly_once_when_an_instance_is_killed_and_comes_back() {
    let a = Env::kafka();
    let b = a.sibling();
    let records = 1_000_000usize;
    a.eddy(&["topic", "create", &a.topic("events"), "--partitions", "6"]);
    a.eddy(&["topic", "create", &a.topic("counts"), "--partitions", "6"]);
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    let mut input = String::with_capacity(records * 32);
    for i in 0..records {
        let key = format!("k{}", (i * 7919) % KEYS);
        *expected.entry(key.clone()).or_insert(0) += 1;
        input.push_str(&format!("{{\"key\": \"{key}\", \"value\": \"e{i}\"}}\n"));
    }
    a.produce(&a.topic("events"), &input, &["--key-serde", "string", "--value-serde", "string"]);
    let app = counting_app(&a);
    let app = app.to_str().unwrap();

    let first = a.spawn(&["-v", "run", app, "--until-idle"]);
    let other = b.spawn(&["-v", "run", app, "--until-idle"]);
    // Kill one instance once the output is a third written: its uncommitted
    // transaction is aborted, its tasks move to the other instance.
    let deadline = Instant::now() + Duration::from_secs(120);
    while output_progress(&a) < records as u64 / 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut first = first;
    first.kill().unwrap();
    wait_bounded(first, "the killed instance", Duration::from_secs(30));
    let killed_at = output_progress(&a);
    assert!(killed_at < records as u64, "the run ended before the kill: use more records");
    // It comes back (with its state directory and transactional ids).
    let again = a.spawn(&["-v", "run", app, "--until-idle"]);
    wait_for(other, "the other instance");
    wait_for(again, "the restarted instance");

    // A read_committed reader sees every count of every key exactly once.
    let mut seen: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in a.consume_all(&a.topic("counts"), &["--key-serde", "string", "--value-serde", "i64"]) {
        let key = r["key"].as_str().unwrap().to_owned();
        seen.entry(key).or_default().push(r["value"].as_i64().unwrap());
    }
    assert_eq!(seen.len(), expected.len());
    for (key, n) in &expected {
        let counts = &seen[key];
        let want: Vec<i64> = (1..=*n).collect();
        assert!(counts == &want, "key {key}: {} outputs, expected 1..={n}", counts.len());
    }
    // The final state equals a run without failures.
    let store: BTreeMap<String, i64> = a
        .eddy(&["store", "scan", &a.topic("counting"), "counts", "--key-serde", "string", "--value-serde", "i64"])
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["key"].as_str().unwrap().to_owned(), v["value"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(store, expected);
    // Both instances worked: each log shows tasks taken.
    for env in [&a, &b] {
        let log = std::fs::read_to_string(env.path("eddy-run.log")).unwrap_or_default();
        assert!(log.contains("took tasks"), "an instance took no task:\n{log}");
    }
}
