//! The conformance cases (`tests/conformance/`) through `eddy run` on the
//! embedded log instead of the test driver: topics created with one
//! partition, inputs produced with `eddy produce`, the app run with
//! `--until-idle`, outputs read with `eddy consume --until-end`. Outputs
//! must equal Kafka Streams' record for record, in order.
//!
//! `eddy run` takes a task's input partitions smallest timestamp first
//! (Kafka Streams' `PartitionGroup`, `host/src/interleave.rs`), not in the
//! order a test pipes them. So a case reading several topics runs only if
//! its inputs are already in timestamp order, without equal timestamps on
//! different topics (Kafka does not order those either); a global table is
//! loaded before processing starts, so a case with one runs only if all its
//! global-table records come first. Single-topic cases (windows,
//! suppression) always run. The rest are listed with the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::{Value, json};
use serde_yaml::Value as Yaml;

use super::*;
use crate::Env;

/// The families whose cases read one topic.
const WINDOW_FAMILIES: [&str; 5] =
    ["windowed-count", "windowed-aggregate", "windowed-sliding", "windowed-session", "suppress"];
/// The families of joins, whose cases read two topics.
const JOIN_FAMILIES: [&str; 5] =
    ["stream-stream-join", "stream-table-join", "stream-globaltable-join", "table-table-join", "doc-join-semantics"];

/// Cases run at once, each with its own `eddy` processes and data directory.
const PARALLEL: usize = 4;

/// One case file.
struct Case {
    name: String,
    case: Yaml,
}

impl Case {
    fn operation(&self) -> &str {
        self.case["operation"].as_str().unwrap_or_default()
    }

    fn is_join(&self) -> bool {
        self.operation().ends_with("-join")
    }

    /// The records piped in, in the test's order: (topic, case input).
    fn inputs(&self) -> impl Iterator<Item = (&str, &Yaml)> {
        self.case["inputs"].as_sequence().unwrap().iter().filter_map(|i| Some((i["topic"].as_str()?, i)))
    }

    /// Why the case does not run: the same cases as the driver test's.
    fn skipped(&self) -> Option<&'static str> {
        if self.case["suppress"]["buffer"].as_str().unwrap_or_default().contains("maxBytes") {
            return Some("a byte-bounded suppression buffer (not run by the driver either)");
        }
        if !self.is_join() {
            return None;
        }
        let name = &self.name;
        if name.contains("-changes-") {
            return Some("raw table-table changes with old values (not run by the driver either)");
        }
        if name.contains("old-api-eager") {
            return Some("the deprecated JoinWindows.of() eager results (not run by the driver either)");
        }
        None
    }

    /// The case's inputs in parts that `eddy run` takes in the test's
    /// order: a new part starts where a timestamp goes back or equals one
    /// of another topic (a run would take them smallest timestamp first,
    /// ties in no defined order), and where a global-table record follows
    /// a stream record (a run loads its global tables before it processes
    /// anything). Each part is produced and run on its own, after the
    /// ones before it. A case that reads one topic is one part.
    fn parts(&self) -> Vec<Vec<(&str, &Yaml)>> {
        let inputs: Vec<(&str, &Yaml)> = self.inputs().collect();
        let one_topic = inputs.iter().all(|(t, _)| *t == inputs[0].0);
        let global = self.operation() == "stream-globaltable-join";
        let mut parts: Vec<Vec<(&str, &Yaml)>> = Vec::new();
        for (topic, input) in inputs {
            let ts = input["timestamp"].as_i64().unwrap();
            let splits = |&(before, b): &(&str, &Yaml)| {
                let before_ts = b["timestamp"].as_i64().unwrap();
                if global {
                    before == "stream" && topic == "globaltable"
                } else {
                    !one_topic && (ts < before_ts || ts == before_ts && before != topic)
                }
            };
            match parts.last_mut() {
                Some(part) if !part.last().is_some_and(splits) => part.push((topic, input)),
                _ => parts.push(vec![(topic, input)]),
            }
        }
        parts
    }
}

/// Every case file of `families`, sorted by path.
fn cases(families: &[&str]) -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance");
    let mut paths: Vec<PathBuf> = families
        .iter()
        .flat_map(|family| std::fs::read_dir(dir.join(family)).unwrap().map(|e| e.unwrap().path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let case = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let name = path.strip_prefix(&dir).unwrap().to_string_lossy().into_owned();
            Case { name, case }
        })
        .collect()
}

#[test]
fn conformance_cases_through_eddy_run_match_kafka_streams() {
    let started = Instant::now();
    let all = cases(&[&WINDOW_FAMILIES[..], &JOIN_FAMILIES[..]].concat());
    let mut skipped: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut runnable = Vec::new();
    for c in &all {
        match c.skipped() {
            Some(why) => skipped.entry(why).or_default().push(&c.name),
            None => runnable.push(c),
        }
    }
    let (next, compared) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| {
                while let Some(c) = runnable.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let run = || if c.is_join() { run_join(c) } else { run_windowed(c) };
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
                        Ok(n) => _ = compared.fetch_add(n, Ordering::SeqCst),
                        Err(e) => failed.lock().unwrap().push(format!("{}: {}", c.name, panic_text(&*e))),
                    }
                }
            });
        }
    });
    let names: Vec<&str> = runnable.iter().map(|c| c.name.as_str()).collect();
    let secs = started.elapsed().as_secs_f64();
    let compared = compared.into_inner();
    eprintln!(
        "ran {} case(s) through eddy run in {secs:.1} s, {compared} output record(s) compared: {}",
        names.len(),
        names.join(", ")
    );
    let split: Vec<String> = runnable
        .iter()
        .filter(|c| c.is_join())
        .filter_map(|c| Some((c, c.parts().len())).filter(|(_, n)| *n > 1))
        .map(|(c, n)| format!("{} ({n})", c.name))
        .collect();
    eprintln!("of those, in several runs, one per part in timestamp order ({}): {}", split.len(), split.join(", "));
    for (why, names) in &skipped {
        eprintln!("not run, {why} ({}): {}", names.len(), names.join(", "));
    }
    let failed = failed.into_inner().unwrap();
    assert!(
        failed.is_empty(),
        "{} case(s) differ from Kafka Streams under eddy run:\n{}",
        failed.len(),
        failed.join("\n\n")
    );
    let windows = runnable.iter().filter(|c| !c.is_join()).count();
    assert!(windows >= 30, "every window and suppression case but the byte-bounded one runs: {windows}");
    let joins = names.len() - windows;
    assert!(joins >= 58, "every join case the driver runs runs: {joins}");
    assert!(compared >= 600, "the cases' outputs were compared: {compared} record(s)");
}

/// Creates `topics` with one partition each.
fn create_topics(env: &Env, topics: &[&str]) {
    for topic in topics {
        env.eddy(&["topic", "create", topic, "--partitions", "1"]);
    }
}

/// Produces the inputs of `topic`, as JSON lines, with `serdes`.
fn produce(env: &Env, inputs: &[(&str, &Yaml)], topic: &str, serdes: &[&str]) {
    let lines: String = inputs
        .iter()
        .filter(|(t, _)| *t == topic)
        .map(|(_, i)| {
            // Long values (Kafka's tests join Strings with Longs) go in as text.
            let line = json!({"key": key_text(&i["key"]), "value": key_text(&i["value"]), "timestamp": i["timestamp"].as_i64()});
            format!("{line}\n")
        })
        .collect();
    env.produce(topic, &lines, serdes);
}

/// `eddy run APP --until-idle`; returns its summary line.
fn run_until_idle(env: &Env, c: &Case, app: &Path) -> String {
    let out = env.eddy_output(&["run", app.to_str().unwrap(), "--until-idle"]);
    let summary = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{}: eddy run failed\n{summary}", c.name);
    summary
}

/// Runs a window or suppression case; returns how many records it compared.
fn run_windowed(c: &Case) -> usize {
    let env = Env::new();
    let case = &c.case;
    let time_limit = case["suppress"]["type"].as_str() == Some("until-time-limit");
    let topic = c.inputs().next().unwrap().0;
    let suppress = c.operation() == "suppress";
    let outputs: &[&str] = if suppress { &["output-raw", "output-suppressed"] } else { &["output"] };
    create_topics(&env, &[&[topic], outputs].concat());
    let inputs: Vec<(&str, &Yaml)> = c.inputs().collect();
    produce(&env, &inputs, topic, &["--key-serde", "string", "--value-serde", "string"]);
    let app = if time_limit { time_limit_app(&env, case) } else { windowed_app(&env, case, topic) };
    let summary = run_until_idle(&env, c, &app);

    let w = &case["window"];
    // A time window's end is exclusive, a sliding window's inclusive; a
    // session's comes with its key.
    let size = w["size-ms"].as_i64().or(w["time-difference-ms"].as_i64());
    let value_serde = if time_limit || aggregator(case).0 == "count" { "i64" } else { "string" };
    let windowed = if w["type"].as_str() == Some("session") { "session" } else { "time" };
    let mut compared = 0;
    for topic in outputs {
        let (got, want): (Vec<Value>, Vec<Value>) = if time_limit {
            let got = env.consume_all(topic, &["--key-serde", "string", "--value-serde", "i64"]);
            let got = got.iter().map(|r| json!([r["key"], r["value"], r["timestamp"]])).collect();
            let want = expected_of(c, topic)
                .map(|e| json!([e["key"].as_str(), e["value"].as_i64(), e["timestamp"].as_i64()]))
                .collect();
            (got, want)
        } else {
            let serdes = ["--key-serde", "string", "--value-serde", value_serde, "--windowed", windowed];
            let got = env
                .consume_all(topic, &serdes)
                .iter()
                .map(|r| {
                    let start = r["window-start"].as_i64().unwrap();
                    let end = r["window-end"].as_i64().unwrap_or_else(|| start + size.unwrap());
                    json!([r["key"], start, end, r["value"], r["timestamp"]])
                })
                .collect();
            (got, expected_of(c, topic).map(expected).collect())
        };
        assert_eq!(got, want, "{} ({topic}) through eddy run: {}", c.name, describe(case));
        compared += got.len();
    }
    // Where Kafka's test checks the dropped-records metric, so do we.
    let notes = case["notes"].as_str().unwrap_or_default();
    if let Some(at) = notes.find("dropped-records-total ") {
        let total: f64 = notes[at + 22..].split_whitespace().next().unwrap().trim_end_matches(',').parse().unwrap();
        let dropped = format!(", {} dropped late;", total as u64);
        assert!(summary.contains(&dropped), "{}: records dropped late, want {total}: {summary}", c.name);
    }
    compared
}

/// Runs a join case; returns how many records it compared.
fn run_join(c: &Case) -> usize {
    let env = Env::new();
    let case = &c.case;
    let (stream, table, app) = match c.operation() {
        "stream-globaltable-join" => ("stream", "globaltable", global_table_app(&env, case)),
        "table-table-join" => ("left", "right", table_table_app(&env, case)),
        "stream-stream-join" => ("left", "right", stream_stream_app(&env, case)),
        _ if c.name.contains("doc-") => ("left", "right", stream_table_app(&env, case, "left", "right")),
        _ => ("stream", "table", stream_table_app(&env, case, "stream", "table")),
    };
    create_topics(&env, &[stream, table, "output"]);
    for part in c.parts() {
        // The apps read keys as bytes, values as text (a global table's as
        // bytes: the same bytes for text).
        produce(&env, &part, stream, &["--value-serde", "string"]);
        produce(&env, &part, table, &["--value-serde", "string"]);
        run_until_idle(&env, c, &app);
    }
    let got: Vec<Value> = env
        .consume_all("output", &["--value-serde", "string"])
        .iter()
        .map(|r| json!([r["key"], r["value"], r["timestamp"]]))
        .collect();
    let want: Vec<Value> = expected_of(c, "output")
        .map(|e| json!([key_text(&e["key"]), e["value"].as_str(), e["timestamp"].as_i64()]))
        .collect();
    assert_eq!(got, want, "{} through eddy run: {}", c.name, describe(case));
    got.len()
}

/// The expected records of `topic` (records without a topic are the only
/// output's).
fn expected_of<'a>(c: &'a Case, topic: &'a str) -> impl Iterator<Item = &'a Yaml> {
    let expected = c.case["expected"].as_sequence().unwrap();
    expected.iter().filter(move |e| e["topic"].as_str().is_none_or(|t| t == topic))
}

fn describe(case: &Yaml) -> String {
    format!(
        "{}\n(source: {})",
        case["description"].as_str().unwrap_or_default(),
        case["source"].as_str().unwrap_or_default()
    )
}
