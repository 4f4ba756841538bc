//! The conformance cases through the test driver, piped in the tests'
//! order. Outputs must match Kafka Streams' record for record, in order:
//! key, window, value and timestamp.
//!
//! Cases Eddy does not run are listed with the reason (`not_yet`); every
//! other case must pass.

use std::path::{Path, PathBuf};

use eddy_host::testing::TestDriver;
use serde_json::{Value, json};
use serde_yaml::Value as Yaml;

use super::*;
use crate::{Env, app_file};

/// Why a case does not run, if it does not.
fn not_yet(case: &Yaml) -> Option<&'static str> {
    let buffer = case["suppress"]["buffer"].as_str().unwrap_or_default();
    buffer.contains("maxBytes").then_some(
        "a byte bound: Eddy counts a held key as its key, value and 8 bytes, Kafka by its JVM footprint estimate (topic name, headers, old values), so 200 bytes overflow at different keys",
    )
}

fn run_windowed(path: &Path, case: &Yaml) {
    let env = Env::new();
    let inputs = case["inputs"].as_sequence().unwrap();
    let topic = inputs.iter().find_map(|i| i["topic"].as_str()).unwrap();
    let mut driver = TestDriver::from_file(&windowed_app(&env, case, topic)).unwrap();
    driver.create_topic(topic, 1).unwrap();
    for input in inputs {
        let Some(t) = input["topic"].as_str() else { continue };
        let line = json!({"key": input["key"].as_str(), "value": input["value"].as_str(), "timestamp": input["timestamp"].as_i64()});
        driver.pipe_json_lines(t, &format!("{line}\n")).unwrap();
    }
    let w = &case["window"];
    // A time window's end is exclusive, a sliding window's inclusive; a
    // session's comes with its key.
    let size = w["size-ms"].as_i64().or(w["time-difference-ms"].as_i64());
    // Each output topic in its own order: Kafka's tests read them apart.
    let topics: &[&str] =
        if case["operation"].as_str() == Some("suppress") { &["output-raw", "output-suppressed"] } else { &["output"] };
    for topic in topics {
        let got: Vec<Value> = driver
            .read_output_json(topic)
            .unwrap()
            .into_iter()
            .map(|r| {
                let start = r["window-start"].as_i64().unwrap();
                let end = r["window-end"].as_i64().unwrap_or_else(|| start + size.unwrap());
                json!([r["key"], start, end, r["value"], r["timestamp"]])
            })
            .collect();
        let want: Vec<Value> = case["expected"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter(|e| e["topic"].as_str().is_none_or(|t| t == *topic))
            .map(expected)
            .collect();
        assert_eq!(
            got,
            want,
            "{} ({topic}): {}\n(source: {})",
            path.display(),
            case["description"].as_str().unwrap_or_default(),
            case["source"].as_str().unwrap_or_default()
        );
    }
    // Where Kafka's test checks the dropped-records metric, so do we.
    let notes = case["notes"].as_str().unwrap_or_default();
    if let Some(at) = notes.find("dropped-records-total ") {
        let total: f64 = notes[at + 22..].split_whitespace().next().unwrap().trim_end_matches(',').parse().unwrap();
        assert_eq!(driver.last_report().dropped_late, total as u64, "{}: records dropped late", path.display());
    }
}

/// The records of an output topic as `[key, value, timestamp]`.
fn key_value_time(driver: &mut TestDriver, topic: &str) -> Vec<Value> {
    let records = driver.read_output_json(topic).unwrap();
    records.into_iter().map(|r| json!([r["key"], r["value"], r["timestamp"]])).collect()
}

fn run_time_limit(path: &Path, case: &Yaml) {
    let env = Env::new();
    let mut driver = TestDriver::from_file(&time_limit_app(&env, case)).unwrap();
    for input in case["inputs"].as_sequence().unwrap() {
        let Some(t) = input["topic"].as_str() else { continue };
        let line = json!({"key": input["key"].as_str(), "value": input["value"].as_str(), "timestamp": input["timestamp"].as_i64()});
        driver.pipe_json_lines(t, &format!("{line}\n")).unwrap();
        driver.process().unwrap();
    }
    for topic in ["output-raw", "output-suppressed"] {
        let got = key_value_time(&mut driver, topic);
        let want: Vec<Value> = case["expected"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter(|e| e["topic"].as_str() == Some(topic))
            .map(|e| json!([e["key"].as_str(), e["value"].as_i64(), e["timestamp"].as_i64()]))
            .collect();
        assert_eq!(got, want, "{} ({topic}): {}", path.display(), case["description"].as_str().unwrap_or_default());
    }
}

#[test]
fn windowed_aggregations_and_suppression_match_kafka_streams() {
    let families = ["windowed-count", "windowed-aggregate", "windowed-sliding", "windowed-session", "suppress"];
    let ran = run_cases(
        case_files(&families),
        |_, case| not_yet(case),
        |path, case| {
            if case["suppress"]["type"].as_str() == Some("until-time-limit") {
                run_time_limit(path, case)
            } else {
                run_windowed(path, case)
            }
        },
    );
    assert!(ran >= 30, "every window and suppression case but the byte-bounded one runs: {ran}");
}

/// The case files of `families`, each family's in name order.
fn case_files(families: &[&str]) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for family in families {
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(suite_dir().join(family)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        all.extend(files);
    }
    all
}

/// Runs every case of `files` with `run`, except those `not_yet` (given the
/// file name and the case) names a reason for; every failure is collected
/// before the test fails, naming each case. Returns how many ran.
fn run_cases(
    files: Vec<PathBuf>,
    not_yet: impl Fn(&str, &Yaml) -> Option<&'static str>,
    run: impl Fn(&Path, &Yaml),
) -> usize {
    let (mut ran, mut skipped, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for path in files {
        let case: Yaml = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(why) = not_yet(&name, &case) {
            skipped.push(format!("{name} ({why})"));
            continue;
        }
        if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&path, &case))) {
            failed.push(format!("{name}: {}", panic_text(&*e)));
        }
        ran.push(name);
    }
    eprintln!("ran {} case(s): {}\nnot run: {}", ran.len(), ran.join(", "), skipped.join(", "));
    assert!(failed.is_empty(), "{} case(s) differ from Kafka Streams:\n{}", failed.len(), failed.join("\n\n"));
    ran.len()
}

fn run_join(path: &Path, case: &Yaml) {
    let env = Env::new();
    let inputs = case["inputs"].as_sequence().unwrap();
    let operation = case["operation"].as_str().unwrap_or_default();
    let (stream, table) = match operation {
        "stream-globaltable-join" => ("stream", "globaltable"),
        "table-table-join" | "stream-stream-join" => ("left", "right"),
        _ if path.to_string_lossy().contains("doc-") => ("left", "right"),
        _ => ("stream", "table"),
    };
    let app = match operation {
        "stream-globaltable-join" => global_table_app(&env, case),
        "table-table-join" => table_table_app(&env, case),
        "stream-stream-join" => stream_stream_app(&env, case),
        _ => stream_table_app(&env, case, stream, table),
    };
    let mut driver = TestDriver::from_file(&app).unwrap();
    driver.create_topic(stream, 1).unwrap();
    driver.create_topic(table, 1).unwrap();
    let mut lines = String::new();
    for input in inputs {
        let Some(topic) = input["topic"].as_str() else { continue };
        // Long values (Kafka's tests join Strings with Longs) go in as text.
        let line = json!({"topic": topic, "key": key_text(&input["key"]), "value": key_text(&input["value"]),
            "timestamp": input["timestamp"].as_i64()});
        lines.push_str(&format!("{line}\n"));
    }
    driver.pipe_interleaved(&lines).unwrap();
    let got = key_value_time(&mut driver, "output");
    let want: Vec<Value> = case["expected"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| json!([key_text(&e["key"]), e["value"].as_str(), e["timestamp"].as_i64()]))
        .collect();
    assert_eq!(
        got,
        want,
        "{}: {}\n(source: {})",
        path.display(),
        case["description"].as_str().unwrap_or_default(),
        case["source"].as_str().unwrap_or_default()
    );
}

/// Runs the join cases of `families` and of the developer guide's `docs`
/// tables, except those `not_yet` names a reason for; returns how many ran.
fn run_join_cases(families: &[&str], docs: &[&str], not_yet: impl Fn(&str) -> Option<&'static str>) -> usize {
    let mut files = case_files(families);
    files.extend(docs.iter().map(|f| suite_dir().join("doc-join-semantics").join(f)));
    files.sort();
    run_cases(files, |name, _| not_yet(name), run_join)
}

#[test]
fn table_table_joins_match_kafka_streams() {
    let docs = ["doc-table-table-inner.yaml", "doc-table-table-left.yaml", "doc-table-table-outer.yaml"];
    let ran = run_join_cases(&["table-table-join"], &docs, |name| {
        name.contains("-changes-").then_some("raw changes with old values")
    });
    assert!(ran >= 7, "the table-table join cases run: {ran}");
}

#[test]
fn stream_stream_joins_match_kafka_streams() {
    let docs = ["doc-stream-stream-inner.yaml", "doc-stream-stream-left.yaml", "doc-stream-stream-outer.yaml"];
    let ran = run_join_cases(&["stream-stream-join"], &docs, |name| {
        name.contains("old-api-eager").then_some(
            "the deprecated JoinWindows.of() API's eager unmatched results, which Eddy does not offer: it emits them once the window closes",
        )
    });
    assert!(ran >= 31, "the stream-stream join cases run: {ran}");
}

#[test]
fn stream_table_joins_match_kafka_streams() {
    let families = ["stream-table-join", "stream-globaltable-join"];
    let docs = ["doc-stream-table-inner.yaml", "doc-stream-table-left.yaml"];
    let ran = run_join_cases(&families, &docs, |_| None);
    assert!(ran >= 24, "the stream-table and stream-global-table join cases run, versioned tables too: {ran}");
}

/// The `kstreams` select-key function that does what a foreign-key join
/// case's extractor does.
fn fk_extractor(case: &Yaml) -> &'static str {
    let text = case["foreign-key-extractor"].as_str().unwrap_or_default();
    if text.contains("returnNull") {
        "after_bar_unless_return_null"
    } else if text.starts_with("value -> null") {
        "no_foreign_key"
    } else if text.contains("split(\"-\")") {
        "before_dash"
    } else if text.contains("key.split(\":\")") {
        "key_before_colon"
    } else if text.contains("[0]") {
        "before_bar"
    } else if text.contains("[1]") {
        "after_bar"
    } else {
        panic!("no plugin function for the extractor {text:?}")
    }
}

/// The app file of a foreign-key join case and the output topics it
/// writes: the join's result, and the result joined again with the left
/// table where the case does that (Kafka's "rejoin").
fn fk_app(env: &Env, case: &Yaml) -> (PathBuf, Vec<&'static str>) {
    let kind = case["join"].as_str().unwrap();
    let scenario = case["source"].as_str().unwrap_or_default().contains("ScenarioTest");
    let rejoin = case["rejoin"].as_str();
    let store = if rejoin.is_some() { ", store: store" } else { "" };
    let extractor = fk_extractor(case);
    let mut body = format!(
        "application-id: conformance\ncache-max-bytes: 0\ntopology:
  - {{ name: left, table: left, value-serde: string }}
  - {{ name: right, table: right, value-serde: string }}
  - {{ name: joined, from: left, join: {{ table: right, foreign-key: {extractor}, joiner: paren_joiner, type: {kind} }}{store} }}
"
    );
    let topics = match (rejoin, scenario) {
        (None, _) => {
            let topic = if scenario { "output" } else { "output-topic" };
            body += &format!("  - {{ name: out, from: joined, to: {topic}, value-serde: string }}\n");
            vec![topic]
        }
        // aTable.join(fkJoinResult, (aVal, fkJoinVal) -> "(" + aVal + "," + fkJoinVal + ")")
        (Some(_), true) => {
            body += "  - { name: rejoined, from: left, join: { table: joined, joiner: paren_joiner } }
  - { name: out, to: output, value-serde: string }
";
            vec!["output"]
        }
        // fkJoin.join(left, rejoiner), or leftJoin for a left join
        (Some(_), false) => {
            body += &format!(
                "  - {{ name: out, from: joined, to: output-topic, value-serde: string }}
  - {{ name: rejoined, from: joined, join: {{ table: left, joiner: rejoin_joiner, type: {kind} }} }}
  - {{ name: rejoin-out, to: rejoin-output-topic, value-serde: string }}
"
            );
            vec!["output-topic", "rejoin-output-topic"]
        }
    };
    (app_file(env, "case.yaml", eddy_tests::KSTREAMS, &body), topics)
}

/// Why a foreign-key join case does not run, if it does not.
fn fk_not_yet(case: &Yaml) -> Option<&'static str> {
    let cached = case["caching"].as_str().unwrap_or_default().contains("cache 10 MB");
    let named = case["materialized"].as_str() == Some("store") && case["rejoin"].is_null();
    (cached && named && case["source"].as_str().unwrap_or_default().contains("Materialization")).then_some(
        "Kafka's record cache in front of a named result store drops a tombstone for a key that never had a result; Eddy's cache passes it on, as it does for every table",
    )
}

fn run_fk_join(path: &Path, case: &Yaml) {
    let env = Env::new();
    let (app, topics) = fk_app(&env, case);
    let mut driver = TestDriver::from_file(&app).unwrap();
    driver.create_topic("left", 1).unwrap();
    driver.create_topic("right", 1).unwrap();
    // TopologyTestDriver takes each record through the internal topics
    // before the next one: so does this, one record per run.
    for input in case["inputs"].as_sequence().unwrap() {
        let Some(topic) = input["topic"].as_str() else { continue };
        let line = json!({"topic": topic, "key": key_text(&input["key"]), "value": key_text(&input["value"]),
            "timestamp": input["timestamp"].as_i64()});
        driver.pipe_interleaved(&format!("{line}\n")).unwrap();
    }
    let expected = case["expected"].as_sequence().unwrap();
    // Where records name their topic, only the topics the test read.
    let read = |topic: &str| {
        expected.iter().all(|e| e["topic"].is_null()) || expected.iter().any(|e| e["topic"].as_str() == Some(topic))
    };
    for topic in topics.into_iter().filter(|t| read(t)) {
        let got = key_value_time(&mut driver, topic);
        let want: Vec<Value> = expected
            .iter()
            .filter(|e| e["topic"].as_str().is_none_or(|t| t == topic))
            .map(|e| json!([key_text(&e["key"]), e["value"].as_str(), e["timestamp"].as_i64()]))
            .collect();
        assert_eq!(
            got,
            want,
            "{} ({topic}): {}\n(source: {})",
            path.display(),
            case["description"].as_str().unwrap_or_default(),
            case["source"].as_str().unwrap_or_default()
        );
    }
}

#[test]
fn foreign_key_joins_match_kafka_streams() {
    let ran = run_cases(case_files(&["table-table-fk-join"]), |_, case| fk_not_yet(case), run_fk_join);
    assert!(ran >= 23, "the foreign-key join cases run: {ran}");
}
