//! The conformance suite: cases recorded from Kafka Streams itself
//! (`tests/conformance/`, each file naming the Kafka test or documentation
//! table it comes from), run through the test driver with the `kstreams`
//! plugin, which holds the same helper functions Kafka's tests use. Outputs
//! must match Kafka Streams' record for record, in order: key, window,
//! value and timestamp.
//!
//! Cases Eddy does not run are listed with the reason (`not_yet`); every
//! other case must pass.

use std::path::{Path, PathBuf};

use eddy_host::testing::TestDriver;
use serde_json::{Value, json};
use serde_yaml::Value as Yaml;

use crate::{Env, app_file};

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance")
}

/// Why a case does not run, if it does not.
fn not_yet(case: &Yaml) -> Option<&'static str> {
    let buffer = case["suppress"]["buffer"].as_str().unwrap_or_default();
    buffer.contains("maxBytes").then_some(
        "a byte bound: Eddy counts a held key as its key, value and 8 bytes, Kafka by its JVM footprint estimate (topic name, headers, old values), so 200 bytes overflow at different keys",
    )
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
        Some("windowed-count" | "sliding-count" | "session-count") => ("count", "agg"),
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
    let kind = w["type"].as_str().unwrap();
    let mut window = format!("{{ type: {kind}");
    for field in ["size-ms", "advance-ms", "time-difference-ms", "gap-ms"] {
        if let Some(ms) = w[field].as_i64() {
            window += &format!(", {field}: {ms}");
        }
    }
    window += &format!(", grace-ms: {}", w["grace-ms"].as_i64().unwrap_or(0));
    if let Some(r) = w["retention-ms"].as_i64() {
        window += &format!(", retention-ms: {r}");
    }
    window += " }";
    let (op, function) = aggregator(case);
    let (node, value_serde) = match op {
        "count" => ("count: agg".to_owned(), "i64"),
        "aggregate" if kind == "session" => {
            (format!("aggregate: {function}, merger: {function}_merger, store: agg"), "string")
        }
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

/// The app of a suppression-until-a-time-limit case: Kafka's
/// `SuppressScenarioTest` table, grouped by value and counted, written raw
/// and suppressed.
fn time_limit_app(env: &Env, case: &Yaml) -> PathBuf {
    let sup = &case["suppress"];
    let mut suppress = format!("{{ until: time-limit, time-limit-ms: {}", sup["limit-ms"].as_i64().unwrap());
    let buffer = sup["buffer"].as_str().unwrap();
    if let Some(n) = buffer.strip_prefix("maxRecords(").and_then(|b| b.split(')').next()) {
        suppress += &format!(", max-records: {n}");
    }
    if buffer.contains("emitEarlyWhenFull") {
        suppress += ", when-full: emit-early";
    }
    suppress += " }";
    let body = format!(
        "application-id: conformance\ncache-max-bytes: 0\ntopology:
  - {{ name: input, table: input, key-serde: string, value-serde: string }}
  - {{ name: counts, count: counts, group-by: value_as_key }}
  - {{ name: raw, from: counts, to: output-raw, key-serde: string, value-serde: i64 }}
  - {{ name: held, from: counts, suppress: {suppress} }}
  - {{ name: out, to: output-suppressed, key-serde: string, value-serde: i64 }}
"
    );
    app_file(env, "case.yaml", eddy_tests::KSTREAMS, &body)
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
    let (mut ran, mut skipped, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for family in ["windowed-count", "windowed-aggregate", "windowed-sliding", "windowed-session", "suppress"] {
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(suite_dir().join(family)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for path in files {
            let case: Yaml = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if let Some(why) = not_yet(&case) {
                skipped.push(format!("{name} ({why})"));
                continue;
            }
            let time_limit = case["suppress"]["type"].as_str() == Some("until-time-limit");
            let run = || if time_limit { run_time_limit(&path, &case) } else { run_windowed(&path, &case) };
            if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
                failed.push(format!("{name}: {}", panic_text(&*e)));
            }
            ran.push(name);
        }
    }
    eprintln!("ran {} case(s): {}\nnot run: {}", ran.len(), ran.join(", "), skipped.join(", "));
    assert!(failed.is_empty(), "{} case(s) differ from Kafka Streams:\n{}", failed.len(), failed.join("\n\n"));
    assert!(ran.len() >= 30, "every window and suppression case but the byte-bounded one runs: {ran:?}");
}

/// A panic's message.
fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
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
    let mut files: Vec<PathBuf> = families
        .iter()
        .flat_map(|family| std::fs::read_dir(suite_dir().join(family)).unwrap().map(|e| e.unwrap().path()))
        .collect();
    files.extend(docs.iter().map(|f| suite_dir().join("doc-join-semantics").join(f)));
    files.sort();
    let (mut ran, mut skipped, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for path in files {
        let case: Yaml = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(why) = not_yet(&name) {
            skipped.push(format!("{name} ({why})"));
            continue;
        }
        if let Err(e) = std::panic::catch_unwind(|| run_join(&path, &case)) {
            failed.push(format!("{name}: {}", panic_text(&*e)));
        }
        ran.push(name);
    }
    eprintln!("ran {} case(s): {}\nnot run: {}", ran.len(), ran.join(", "), skipped.join(", "));
    assert!(failed.is_empty(), "{} case(s) differ from Kafka Streams:\n{}", failed.len(), failed.join("\n\n"));
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
