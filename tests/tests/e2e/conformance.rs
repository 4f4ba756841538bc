//! The conformance suite: cases recorded from Kafka Streams itself
//! (`tests/conformance/`, each file naming the Kafka test or documentation
//! table it comes from), run through the test driver with the `kstreams`
//! plugin, which holds the same helper functions Kafka's tests use. Outputs
//! must match Kafka Streams' record for record, in order: key, window,
//! value and timestamp.
//!
//! Kinds of window and suppression Eddy does not have yet are listed as
//! such (`not_yet`); every other case must pass.

use std::path::{Path, PathBuf};

use eddy_host::testing::TestDriver;
use serde_json::{Value, json};
use serde_yaml::Value as Yaml;

use crate::{Env, app_file};

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance")
}

/// Why a case cannot run yet, if it cannot.
fn not_yet(case: &Yaml) -> Option<&'static str> {
    match case["suppress"]["type"].as_str() {
        None | Some("until-window-closes") => {}
        Some(_) => return Some("suppression until a time limit"),
    }
    match case["window"]["type"].as_str() {
        Some("tumbling" | "hopping") => None,
        _ => Some("sliding and session windows"),
    }
}

/// True if the case wants only final results: Kafka Streams'
/// `emitStrategy(onWindowClose())` or `suppress(untilWindowCloses(...))`,
/// both `suppress: until-window-closes` in Eddy.
fn finals_only(case: &Yaml) -> bool {
    case["emit-strategy"].as_str() == Some("on-window-close") || !case["suppress"].is_null()
}

/// The function of the `kstreams` plugin that does what the case's
/// aggregator does.
fn aggregator(case: &Yaml) -> (&'static str, &'static str) {
    let text = case["aggregator"].as_str().unwrap_or_default();
    match case["operation"].as_str() {
        Some("windowed-count") => ("count", "agg"),
        _ if text.starts_with("reducer") => ("reduce", "plus"),
        Some("suppress") => ("count", "agg"),
        _ if text.contains("STRING_INIT") => ("aggregate", "zero_then_plus"),
        _ if text.contains("() -> \"\"") => ("aggregate", "empty_then_plus"),
        _ => panic!("no plugin function for aggregator {text:?}"),
    }
}

/// The app file of a windowed aggregation case.
fn windowed_app(env: &Env, case: &Yaml, topic: &str) -> PathBuf {
    let w = &case["window"];
    let size = w["size-ms"].as_i64().unwrap();
    let mut window = format!("{{ type: {}, size-ms: {size}", w["type"].as_str().unwrap());
    if w["type"].as_str() == Some("hopping") {
        window += &format!(", advance-ms: {}", w["advance-ms"].as_i64().unwrap());
    }
    window += &format!(", grace-ms: {}", w["grace-ms"].as_i64().unwrap_or(0));
    if let Some(r) = w["retention-ms"].as_i64() {
        window += &format!(", retention-ms: {r}");
    }
    window += " }";
    let (op, function) = aggregator(case);
    let (node, value_serde) = match op {
        "count" => ("count: agg".to_owned(), "i64"),
        op => (format!("{op}: {function}, store: agg"), "string"),
    };
    // A suppression case reads the raw updates too.
    let outputs = if case["operation"].as_str() == Some("suppress") {
        format!(
            "  - {{ name: raw, from: agg, to: output-raw, key-serde: string, value-serde: {value_serde} }}
  - {{ name: finals, from: agg, suppress: until-window-closes }}
  - {{ name: out, to: output-suppressed, key-serde: string, value-serde: {value_serde} }}
"
        )
    } else if finals_only(case) {
        format!(
            "  - {{ name: finals, suppress: until-window-closes }}
  - {{ name: out, to: output, key-serde: string, value-serde: {value_serde} }}
"
        )
    } else {
        format!("  - {{ name: out, to: output, key-serde: string, value-serde: {value_serde} }}\n")
    };
    // Kafka's TopologyTestDriver commits after every record: no cache.
    let body = format!(
        "application-id: conformance\ncache-max-bytes: 0\ntopology:
  - {{ name: input, source: [{topic}], key-serde: string, value-serde: string }}
  - {{ name: agg, {node}, window: {window} }}
{outputs}"
    );
    app_file(env, "case.yaml", eddy_tests::KSTREAMS, &body)
}

/// An expected record as (key, window start, window end, value, timestamp);
/// keys written as Kafka's `Windowed.toString()` (`[k@start/end]`) are split.
fn expected(e: &Yaml) -> Value {
    let (key, start, end) = match (e["key"].as_str(), e["window-start"].as_i64()) {
        (Some(k), Some(start)) => (k.to_owned(), start, e["window-end"].as_i64().unwrap()),
        (Some(k), None) => {
            let inner = k.strip_prefix('[').and_then(|k| k.strip_suffix(']')).expect("[key@start/end]");
            let (key, window) = inner.rsplit_once('@').unwrap();
            let (start, end) = window.split_once('/').unwrap();
            (key.to_owned(), start.parse().unwrap(), end.parse().unwrap())
        }
        _ => panic!("expected record without a key: {e:?}"),
    };
    let value = match &e["value"] {
        Yaml::Number(n) => json!(n.as_i64()),
        Yaml::String(s) => json!(s),
        Yaml::Null => Value::Null,
        other => panic!("unexpected value {other:?}"),
    };
    json!([key, start, end, value, e["timestamp"].as_i64()])
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
    let size = case["window"]["size-ms"].as_i64().unwrap();
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
                json!([r["key"], start, start + size, r["value"], r["timestamp"]])
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

#[test]
fn windowed_aggregations_and_suppression_match_kafka_streams() {
    let mut ran = Vec::new();
    let mut skipped = Vec::new();
    for family in ["windowed-count", "windowed-aggregate", "suppress"] {
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(suite_dir().join(family)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for path in files {
            let case: Yaml = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            match not_yet(&case) {
                Some(why) => skipped.push(format!("{name} ({why})")),
                None => {
                    run_windowed(&path, &case);
                    ran.push(name);
                }
            }
        }
    }
    eprintln!("ran {} case(s): {}\nnot yet: {}", ran.len(), ran.join(", "), skipped.join(", "));
    assert!(ran.len() >= 13, "the tumbling and hopping cases, with and without suppression, run: {ran:?}");
}

/// The `kstreams` joiner that does what the case's joiner does (Kafka's
/// `TOSTRING_JOINER`, or the developer guide's `[left, right]`), and the
/// join type.
fn joiner_and_kind(case: &Yaml) -> (&'static str, &str) {
    let joiner = if case["joiner"].as_str().unwrap_or_default().contains("TOSTRING_JOINER") {
        "plus_joiner"
    } else {
        "pair_joiner"
    };
    (joiner, case["join"].as_str().unwrap())
}

/// The app file of a stream-table join case: the stream topic joins the
/// table topic with the joiner Kafka's test uses.
fn stream_table_app(env: &Env, case: &Yaml, stream: &str, table: &str) -> PathBuf {
    let (joiner, kind) = joiner_and_kind(case);
    let body = format!(
        "application-id: conformance\ncache-max-bytes: 0\ntopology:
  - {{ name: table, table: {table}, store: table-store, value-serde: string }}
  - {{ name: stream, source: [{stream}], value-serde: string }}
  - {{ name: joined, from: stream, join: {{ table: table, joiner: {joiner}, type: {kind} }} }}
  - {{ name: out, to: output, value-serde: string }}
"
    );
    app_file(env, "case.yaml", eddy_tests::KSTREAMS, &body)
}

/// A key (or value) as text: Kafka's Integers, Longs and Strings alike.
fn key_text(v: &Yaml) -> Value {
    match v {
        Yaml::Number(n) => json!(n.to_string()),
        Yaml::String(s) => json!(s),
        _ => Value::Null,
    }
}

/// The app file of a stream-global-table join case, with the key mapper
/// Kafka's test uses.
fn global_table_app(env: &Env, case: &Yaml) -> PathBuf {
    assert!(case["key-mapper"].as_str().unwrap_or_default().contains("tokens[1]"), "an unknown key mapper");
    let kind = case["join"].as_str().unwrap();
    let body = format!(
        "application-id: conformance\ncache-max-bytes: 0\ntopology:
  - {{ name: globaltable, global-table: globaltable }}
  - {{ name: stream, source: [stream], value-serde: string }}
  - {{ name: joined, join: {{ global-table: globaltable, key-mapper: second_token, joiner: plus_joiner, type: {kind} }} }}
  - {{ name: out, to: output, value-serde: string }}
"
    );
    app_file(env, "case.yaml", eddy_tests::KSTREAMS, &body)
}

/// The app file of a table-table join case.
fn table_table_app(env: &Env, case: &Yaml) -> PathBuf {
    let (joiner, kind) = joiner_and_kind(case);
    let body = format!(
        "application-id: conformance\ncache-max-bytes: 0\ntopology:
  - {{ name: left, table: left, value-serde: string }}
  - {{ name: right, table: right, value-serde: string }}
  - {{ name: joined, from: left, join: {{ table: right, joiner: {joiner}, type: {kind} }} }}
  - {{ name: out, to: output, value-serde: string }}
"
    );
    app_file(env, "case.yaml", eddy_tests::KSTREAMS, &body)
}

/// The app file of a stream-stream join case, with the case's window.
fn stream_stream_app(env: &Env, case: &Yaml) -> PathBuf {
    let (joiner, kind) = joiner_and_kind(case);
    let w = &case["window"];
    let ms = |field: &str| w[field].as_i64().unwrap();
    let body = format!(
        "application-id: conformance\ncache-max-bytes: 0\ntopology:
  - {{ name: left, source: [left], value-serde: string }}
  - {{ name: right, source: [right], value-serde: string }}
  - {{ name: joined, from: left, join: {{ stream: right, joiner: {joiner}, type: {kind},
      window: {{ before-ms: {}, after-ms: {}, grace-ms: {} }} }} }}
  - {{ name: out, to: output, value-serde: string }}
",
        ms("before-ms"),
        ms("after-ms"),
        ms("grace-ms")
    );
    app_file(env, "case.yaml", eddy_tests::KSTREAMS, &body)
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
    let got: Vec<Value> = driver
        .read_output_json("output")
        .unwrap()
        .into_iter()
        .map(|r| json!([r["key"], r["value"], r["timestamp"]]))
        .collect();
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
    let mut files: Vec<PathBuf> = families
        .iter()
        .flat_map(|family| std::fs::read_dir(suite_dir().join(family)).unwrap().map(|e| e.unwrap().path()))
        .collect();
    files.extend(docs.iter().map(|f| suite_dir().join("doc-join-semantics").join(f)));
    files.sort();
    let (mut ran, mut skipped) = (Vec::new(), Vec::new());
    for path in files {
        let case: Yaml = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(why) = not_yet(&name) {
            skipped.push(format!("{name} ({why})"));
            continue;
        }
        run_join(&path, &case);
        ran.push(name);
    }
    eprintln!("ran {} case(s): {}\nnot yet: {}", ran.len(), ran.join(", "), skipped.join(", "));
    ran.len()
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
    let ran = run_join_cases(&families, &docs, |name| name.contains("versioned").then_some("versioned tables"));
    assert!(ran >= 22, "the stream-table and stream-global-table join cases run: {ran}");
}
