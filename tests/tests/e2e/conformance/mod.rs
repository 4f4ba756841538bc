//! The conformance suite: cases recorded from Kafka Streams itself
//! (`tests/conformance/`, each file naming the Kafka test or documentation
//! table it comes from), run through the test driver (`driver`) and through
//! `eddy run` on the embedded log (`run`), with the `kstreams` plugin, which
//! holds the same helper functions Kafka's tests use. Here: what both share,
//! the app each case runs and how expected records read.

mod driver;
mod run;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use serde_yaml::Value as Yaml;

use crate::{Env, app_file};

pub(super) fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance")
}

/// True if the case wants only final results: Kafka Streams'
/// `emitStrategy(onWindowClose())` or `suppress(untilWindowCloses(...))`,
/// both `suppress: until-window-closes` in Eddy.
pub(super) fn finals_only(case: &Yaml) -> bool {
    case["emit-strategy"].as_str() == Some("on-window-close") || !case["suppress"].is_null()
}

/// The function of the `kstreams` plugin that does what the case's
/// aggregator does.
pub(super) fn aggregator(case: &Yaml) -> (&'static str, &'static str) {
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
pub(super) fn windowed_app(env: &Env, case: &Yaml, topic: &str) -> PathBuf {
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
pub(super) fn expected(e: &Yaml) -> Value {
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

/// The app of a suppression-until-a-time-limit case: Kafka's
/// `SuppressScenarioTest` table, grouped by value and counted, written raw
/// and suppressed.
pub(super) fn time_limit_app(env: &Env, case: &Yaml) -> PathBuf {
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

/// A panic's message.
pub(super) fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

/// The `kstreams` joiner that does what the case's joiner does (Kafka's
/// `TOSTRING_JOINER`, or the developer guide's `[left, right]`), and the
/// join type.
pub(super) fn joiner_and_kind(case: &Yaml) -> (&'static str, &str) {
    let joiner = if case["joiner"].as_str().unwrap_or_default().contains("TOSTRING_JOINER") {
        "plus_joiner"
    } else {
        "pair_joiner"
    };
    (joiner, case["join"].as_str().unwrap())
}

/// A `java.time.Duration` factory call in Kafka's code (`Duration.ofMinutes(5)`)
/// in milliseconds.
fn duration_ms(call: &str) -> i64 {
    let (unit, rest) = call.strip_prefix("Duration.of").and_then(|c| c.split_once('(')).expect("Duration.ofX(n)");
    let n: i64 = rest.split(')').next().unwrap().trim().parse().unwrap();
    n * match unit {
        "Millis" => 1,
        "Seconds" => 1000,
        "Minutes" => 60_000,
        "Hours" => 3_600_000,
        other => panic!("a Duration in {other}"),
    }
}

/// For a case whose table is versioned, as its notes give Kafka's topology
/// (`Stores.persistentVersionedKeyValueStore(name, HISTORY)` and
/// `makeJoin(GRACE)`): the history retention and the join's grace, in ms.
pub(super) fn versioned_join(case: &Yaml) -> Option<(i64, Option<i64>)> {
    let notes = case["notes"].as_str().unwrap_or_default();
    let at = notes.find("persistentVersionedKeyValueStore(")?;
    let args = &notes[at..];
    let history = duration_ms(args[args.find("Duration.of")?..].trim_start());
    let grace = notes.find("makeJoin(").map(|at| duration_ms(&notes[at + "makeJoin(".len()..]));
    Some((history, grace))
}

/// The app file of a stream-table join case: the stream topic joins the
/// table topic with the joiner Kafka's test uses; a versioned table and the
/// join's grace as the case's topology has them.
pub(super) fn stream_table_app(env: &Env, case: &Yaml, stream: &str, table: &str) -> PathBuf {
    let (joiner, kind) = joiner_and_kind(case);
    let (versioned, grace) = match versioned_join(case) {
        None => (String::new(), String::new()),
        Some((history, grace)) => (
            format!(", versioned: {{ history-retention-ms: {history} }}"),
            grace.map(|g| format!(", grace-ms: {g}")).unwrap_or_default(),
        ),
    };
    let body = format!(
        "application-id: conformance\ncache-max-bytes: 0\ntopology:
  - {{ name: table, table: {table}, store: table-store, value-serde: string{versioned} }}
  - {{ name: stream, source: [{stream}], value-serde: string }}
  - {{ name: joined, from: stream, join: {{ table: table, joiner: {joiner}, type: {kind}{grace} }} }}
  - {{ name: out, to: output, value-serde: string }}
"
    );
    app_file(env, "case.yaml", eddy_tests::KSTREAMS, &body)
}

/// A key (or value) as text: Kafka's Integers, Longs and Strings alike.
pub(super) fn key_text(v: &Yaml) -> Value {
    match v {
        Yaml::Number(n) => json!(n.to_string()),
        Yaml::String(s) => json!(s),
        _ => Value::Null,
    }
}

/// The app file of a stream-global-table join case, with the key mapper
/// Kafka's test uses.
pub(super) fn global_table_app(env: &Env, case: &Yaml) -> PathBuf {
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
pub(super) fn table_table_app(env: &Env, case: &Yaml) -> PathBuf {
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
pub(super) fn stream_stream_app(env: &Env, case: &Yaml) -> PathBuf {
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
