//! Crash safety: `eddy run` killed with SIGKILL mid-run and restarted leaves
//! every expected output record exactly once, and a stream-stream join gives
//! exactly what an uninterrupted run gives. (Suppressed window results
//! across kills: `windows`.)

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Instant;

use eddy_host::log::{EmbeddedLog, Log, TopicPartition};

use crate::{Env, app_file};

const RECORDS: usize = 400_000;

fn output_count(env: &Env) -> u64 {
    let log = EmbeddedLog::open(env.data_dir(), false).unwrap();
    (0..4).map(|p| log.end_offset(&TopicPartition::new("out", p)).unwrap()).sum()
}

#[test]
fn kill_9_mid_run_then_restart_gives_each_record_once() {
    let env = Env::new();
    env.eddy(&["topic", "create", "in", "--partitions", "4"]);
    env.eddy(&["topic", "create", "out", "--partitions", "4"]);
    let lines: String =
        (0..RECORDS).map(|i| format!("{{\"key\": \"k{}\", \"value\": \"v{i:07}\"}}\n", i % 1000)).collect();
    let input = env.write("in.jsonl", &lines);
    env.eddy(&["produce", "in", "--file", input.to_str().unwrap()]);
    let body = "application-id: crash\nthreads: 2\ncommit-interval-ms: 20\ntopology:\n  - { name: in, source: [in], value-serde: string }\n  - { name: up, map-values: checked_upper }\n  - { to: out, value-serde: string }\n";
    let app = app_file(&env, "crash.yaml", eddy_tests::FAULTY, body);

    let mut kills = 0;
    for round in 1..=3u64 {
        // Kill once this round has committed some output but not all of it.
        env.run_then_kill(&app, || output_count(&env), (RECORDS as u64 * round) / 4);
        let n = output_count(&env);
        if n < RECORDS as u64 {
            kills += 1;
        }
    }
    assert!(kills >= 1, "every run finished before it was killed: raise RECORDS so the test kills mid-run");

    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    let values: Vec<String> = env
        .consume_all("out", &["--value-serde", "string"])
        .iter()
        .map(|r| r["value"].as_str().unwrap().to_owned())
        .collect();
    let unique: HashSet<&String> = values.iter().collect();
    assert_eq!(unique.len(), values.len(), "some output record appears twice");
    assert_eq!(values.len(), RECORDS, "some output record is missing");
    assert!((0..RECORDS).all(|i| unique.contains(&format!("V{i:07}"))));
}

/// Steps of the join test's input: at step `i`, key `k{i % JOIN_KEYS}`
/// gets a left record at `1000 + 20 i` ms and right records 7 and (every
/// fifth step) 13 ms later, some left out on either side.
const JOIN_STEPS: i64 = 30_000;
const JOIN_KEYS: i64 = 300;

/// The join test's inputs: left and right JSON lines, and the join results
/// they must give: pairs joined, and the records that find no partner (a
/// key comes back every 300 steps, 6 s, so a record only ever joins those
/// of its own step, 7 or 13 ms apart).
pub(crate) struct JoinInputs {
    pub left: String,
    pub right: String,
    joined: BTreeSet<String>,
    /// Unmatched records' results (`L..+null`, `null+R..`) and their
    /// timestamps.
    unmatched: BTreeMap<String, i64>,
}

pub(crate) fn join_inputs() -> JoinInputs {
    let mut inputs =
        JoinInputs { left: String::new(), right: String::new(), joined: BTreeSet::new(), unmatched: BTreeMap::new() };
    let line = |key: &str, value: &str, ts: i64| {
        format!("{{\"key\": \"{key}\", \"value\": \"{value}\", \"timestamp\": {ts}}}\n")
    };
    for i in 0..JOIN_STEPS {
        // From 1 s on: on Kafka a timestamp of 0 would become the time the
        // record is sent (librdkafka's convention).
        let (key, t) = (format!("k{}", i % JOIN_KEYS), 1_000 + 20 * i);
        let left = (i % 11 != 5).then(|| format!("L{i}"));
        let mut rights = Vec::new();
        if i % 7 != 3 {
            rights.push((format!("R{i}"), t + 7));
        }
        if i % 5 == 0 {
            rights.push((format!("R{i}b"), t + 13));
        }
        if let Some(l) = &left {
            inputs.left += &line(&key, l, t);
            if rights.is_empty() {
                inputs.unmatched.insert(format!("{l}+null"), t);
            }
        }
        for (r, ts) in rights {
            inputs.right += &line(&key, &r, ts);
            match &left {
                Some(l) => _ = inputs.joined.insert(format!("{l}+{r}")),
                None => _ = inputs.unmatched.insert(format!("null+{r}"), ts),
            }
        }
    }
    inputs
}

/// Fails naming a few of the differences if `got` is not `want`.
fn assert_same(got: &BTreeSet<String>, want: &BTreeSet<String>, what: &str) {
    let missing: Vec<&String> = want.difference(got).collect();
    let extra: Vec<&String> = got.difference(want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} missing, e.g. {:?}; {} unexpected, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)],
        extra.len(),
        &extra[..extra.len().min(10)]
    );
}

/// A topic's records by key, each key's (value, timestamp) in log order.
pub(crate) fn by_key(env: &Env, topic: &str) -> BTreeMap<String, Vec<(String, i64)>> {
    let mut keys: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    for r in env.consume_all(topic, &["--key-serde", "string", "--value-serde", "string"]) {
        let value = (r["value"].as_str().unwrap().to_owned(), r["timestamp"].as_i64().unwrap());
        keys.entry(r["key"].as_str().unwrap().to_owned()).or_default().push(value);
    }
    keys
}

/// An outer stream-stream join killed with SIGKILL three times mid-run and
/// restarted gives what an uninterrupted run gives: the same records, each
/// key's in the same order, none lost and none twice; among them the
/// delayed results of records that found no partner, emitted once their
/// window closed.
#[test]
fn outer_join_killed_mid_run_equals_an_uninterrupted_run() {
    let inputs = join_inputs();
    let body = "application-id: joins\nthreads: 2\ncommit-interval-ms: 20\ntopology:
  - { name: left, source: [left], key-serde: string, value-serde: string }
  - { name: right, source: [right], key-serde: string, value-serde: string }
  - { name: joined, from: left, join: { stream: right, joiner: plus_joiner, type: outer,
      window: { time-difference-ms: 1000, grace-ms: 500 } } }
  - { name: out, to: joined, key-serde: string, value-serde: string }
";
    let setup = || {
        let env = Env::new();
        for topic in ["left", "right", "joined"] {
            env.eddy(&["topic", "create", topic, "--partitions", "2"]);
        }
        env.produce("left", &inputs.left, &["--key-serde", "string"]);
        env.produce("right", &inputs.right, &["--key-serde", "string"]);
        let app = app_file(&env, "joins.yaml", eddy_tests::KSTREAMS, body);
        (env, app)
    };

    let (reference, app) = setup();
    let started = Instant::now();
    reference.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    let uninterrupted = started.elapsed();
    let want = by_key(&reference, "joined");
    let results: Vec<(&String, i64)> = want.values().flatten().map(|(v, t)| (v, *t)).collect();
    let total = results.len() as u64;

    // The reference is right: every pair joined, and every unmatched record
    // whose window closed well before the end emitted once, as (L, null) or
    // (null, R) at its own time.
    let joined: BTreeSet<String> =
        results.iter().filter(|(v, _)| !v.contains("null")).map(|(v, _)| v.to_string()).collect();
    // (Pairs come apart if the run takes one topic far ahead of the other:
    // the other's records then come after their partners left the window.)
    assert_same(&joined, &inputs.joined, "inner results of the uninterrupted run");
    let mut outer = BTreeMap::new();
    for (v, t) in results.iter().filter(|(v, _)| v.contains("null")) {
        assert!(outer.insert(v.to_string(), *t).is_none(), "{v} emitted twice");
    }
    let last = 1_000 + 20 * (JOIN_STEPS - 1);
    let closed: BTreeMap<String, i64> =
        inputs.unmatched.iter().filter(|(_, t)| **t + 1_500 < last - 3_000).map(|(v, t)| (v.clone(), *t)).collect();
    assert!(outer.iter().all(|(v, t)| inputs.unmatched.get(v) == Some(t)), "an outer result of a matched record");
    assert!(closed.iter().all(|(v, t)| outer.get(v) == Some(t)), "an unmatched record's result is missing");
    assert!(closed.keys().any(|v| v.starts_with("null+")) && closed.keys().any(|v| v.ends_with("+null")));

    // The same input in a fresh directory, killed three times at moments
    // that differ from run to run.
    let (env, app) = setup();
    let outputs = || {
        let log = EmbeddedLog::open(env.data_dir(), false).unwrap();
        (0..2).map(|p| log.end_offset(&TopicPartition::new("joined", p)).unwrap_or(0)).sum::<u64>()
    };
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    let (mut kills, mut points) = (0, Vec::new());
    for round in 1..=3u64 {
        // Somewhere in the round's quarter of the output, once this run has
        // committed some.
        let before = outputs();
        let target = (total * (4 * round + (seed >> (4 * round)) % 4) / 16).max(before + 1);
        env.run_then_kill(&app, outputs, target);
        let at = outputs();
        points.push(format!("{at}/{total}"));
        if before < at && at < total {
            kills += 1;
        }
    }
    assert!(kills >= 2, "the runs were not killed mid-way ({points:?} of the output): raise JOIN_STEPS");
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    let got = by_key(&env, "joined");
    let differ: BTreeSet<&String> = want.keys().chain(got.keys()).filter(|k| got.get(*k) != want.get(*k)).collect();
    if let Some(&key) = differ.first() {
        let (w, g) = (&want.get(key).cloned().unwrap_or_default(), &got.get(key).cloned().unwrap_or_default());
        let at = w.iter().zip(g).take_while(|(a, b)| a == b).count();
        panic!(
            "killed at {points:?} of the output, the join's output differs from an uninterrupted run's for {} key(s); {key} first differs at its record {at}:\n  want {:?}\n  got  {:?}",
            differ.len(),
            &w[at..w.len().min(at + 5)],
            &g[at..g.len().min(at + 5)]
        );
    }
    eprintln!("killed at {points:?} of the output; an uninterrupted run took {uninterrupted:?}");
}
