//! The example plugins run through `eddy run --until-idle` and `eddy test`.

use serde_json::{Value, json};

use crate::{Env, app_file, key_value};

const VITALS_TOPOLOGY: &str = r#"
topology:
  - { name: readings, source: [vitals], key-serde: string, value-serde: json }
  - { name: valid, filter: valid_reading }
  - { name: by-patient, select-key: patient_key }
  - name: route
    split:
      - { branch: critical, predicate: is_critical }
      - { branch: normal }
  - { name: alert, from: critical, map-values: to_alert }
  - { name: alerts-out, to: alerts, key-serde: string, value-serde: json }
  - { name: clean-out, from: normal, to: vitals-clean, key-serde: string, value-serde: json }
"#;

pub const READINGS: &str = r#"{"key": "bed-1", "value": {"patient": "p1", "heart_rate": 72, "systolic": 118, "diastolic": 76}, "timestamp": 1000}
{"key": "bed-2", "value": {"patient": "p2", "heart_rate": 142, "systolic": 130, "diastolic": 85}, "timestamp": 2000}
{"key": "bed-3", "value": {"patient": "p3", "heart_rate": 400, "systolic": 120, "diastolic": 80}, "timestamp": 3000}
{"key": "bed-1", "value": {"patient": "p1", "heart_rate": 75, "systolic": 185, "diastolic": 122}, "timestamp": 4000}
{"key": "bed-4", "value": {"patient": "p4", "heart_rate": 64, "systolic": 80, "diastolic": 95}, "timestamp": 5000}
{"key": "bed-2", "value": {"patient": "p2", "heart_rate": 88, "systolic": 122, "diastolic": 79}, "timestamp": 6000}
{"key": "bed-5", "value": {"patient": "p5", "heart_rate": 35, "systolic": 85, "diastolic": 50}, "timestamp": 7000}
{"key": "bed-6", "value": {"heart_rate": 70}, "timestamp": 8000}
"#;

pub fn vitals_app(env: &Env, policy: &str) -> std::path::PathBuf {
    let body = format!("application-id: vitals\nthreads: 2\nerror-policy: {policy}\n{VITALS_TOPOLOGY}");
    app_file(env, "vitals.yaml", eddy_tests::VITALS, &body)
}

pub fn expected_alerts() -> Vec<(Value, Value)> {
    vec![
        (json!("p1"), json!({"patient": "p1", "reasons": ["hypertensive crisis (185/122)"], "at": 4000})),
        (json!("p2"), json!({"patient": "p2", "reasons": ["tachycardia (142 bpm)"], "at": 2000})),
        (json!("p5"), json!({"patient": "p5", "reasons": ["bradycardia (35 bpm)", "hypotension (85/50)"], "at": 7000})),
    ]
}

pub fn expected_clean() -> Vec<(Value, Value)> {
    vec![
        (json!("p1"), json!({"patient": "p1", "heart_rate": 72, "systolic": 118, "diastolic": 76})),
        (json!("p2"), json!({"patient": "p2", "heart_rate": 88, "systolic": 122, "diastolic": 79})),
    ]
}

fn sorted(mut v: Vec<(Value, Value)>) -> Vec<(Value, Value)> {
    v.sort_by_key(|(k, v)| format!("{k}{v}"));
    v
}

#[test]
fn vitals_runs_on_the_embedded_log() {
    let env = Env::new();
    env.eddy(&["topic", "create", "vitals", "--partitions", "4"]);
    env.eddy(&["topic", "create", "alerts", "--partitions", "2"]);
    env.eddy(&["topic", "create", "vitals-clean", "--partitions", "2"]);
    let input = env.write("readings.jsonl", READINGS);
    env.eddy(&[
        "produce",
        "vitals",
        "--file",
        input.to_str().unwrap(),
        "--key-serde",
        "string",
        "--value-serde",
        "json",
    ]);
    let app = vitals_app(&env, "dead-letter");
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);

    let serdes = ["--key-serde", "string", "--value-serde", "json"];
    let alerts = env.consume_all("alerts", &serdes);
    assert_eq!(sorted(alerts.iter().map(key_value).collect()), expected_alerts());
    let clean = env.consume_all("vitals-clean", &serdes);
    assert_eq!(sorted(clean.iter().map(key_value).collect()), expected_clean());
    // Alerts are keyed by patient, so each lands where Kafka would put it.
    for a in &alerts {
        let key = a["key"].as_str().unwrap();
        assert_eq!(a["partition"], json!(eddy_host::partition::partition_for_key(key.as_bytes(), 2)));
    }
    let dlq = env.consume_all("vitals-dlq", &serdes);
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0]["key"], json!("bed-6"));
    assert_eq!(dlq[0]["headers"]["eddy.error.node"], json!("valid"));
    assert!(dlq[0]["headers"]["eddy.error"].as_str().unwrap().contains("missing field `patient`"));

    // A second run finds nothing new: offsets were committed with the outputs.
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    assert_eq!(env.consume_all("alerts", &serdes).len(), 3);
}

#[test]
fn words_runs_through_eddy_test_with_the_plugins_topology() {
    let env = Env::new();
    let app = app_file(&env, "words.yaml", eddy_tests::WORDS, "application-id: words\n");
    let input = env.write("lines.jsonl", "{\"value\": \"The cat's hat\"}\n\n{\"value\": \"the HAT!\"}\n");
    let out = env.eddy(&["test", app.to_str().unwrap(), "--input", &format!("lines={}", input.display())]);
    let got: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let want: Vec<Value> = ["the", "cat's", "hat", "the", "hat"]
        .iter()
        .map(|w| json!({"topic": "words", "key": w, "value": w, "timestamp": 0}))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn produce_and_consume_round_trip_every_field() {
    let env = Env::new();
    env.eddy(&["topic", "create", "t", "--partitions", "3"]);
    let lines = env.write(
        "in.jsonl",
        "{\"key\": 7, \"value\": -1, \"timestamp\": 5, \"headers\": {\"h\": \"x\"}}\n{\"key\": 8, \"value\": null, \"timestamp\": 6}\n",
    );
    env.eddy(&["produce", "t", "-f", lines.to_str().unwrap(), "--key-serde", "i64", "--value-serde", "i64"]);
    let mut got = env.consume_all("t", &["--key-serde", "i64", "--value-serde", "i64"]);
    got.sort_by_key(|v| v["timestamp"].as_i64());
    assert_eq!(got[0]["key"], json!(7));
    assert_eq!(got[0]["value"], json!(-1));
    assert_eq!(got[0]["headers"], json!({"h": "x"}));
    assert_eq!(got[1]["value"], Value::Null);
    let p7 = eddy_host::partition::partition_for_key(&7i64.to_be_bytes(), 3);
    assert_eq!(got[0]["partition"], json!(p7));
    let listing = env.eddy(&["topic", "list"]);
    assert_eq!(listing.trim(), "t\tpartitions=3\trecords=2");
    // --value-only takes whole lines, and --max stops early.
    let plain = env.write("plain.txt", "alpha\nbeta\ngamma\n");
    env.eddy(&["topic", "create", "p"]);
    env.eddy(&["produce", "p", "--value-only", "--file", plain.to_str().unwrap()]);
    let out = env.eddy(&["consume", "p", "--from-beginning", "--max", "2", "--value-serde", "string"]);
    let values: Vec<Value> = out.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["value"].clone()).collect();
    assert_eq!(values, [json!("alpha"), json!("beta")]);
}

#[test]
fn blank_lines_are_empty_values_and_consume_until_end_is_bounded() {
    let env = Env::new();
    env.eddy(&["topic", "create", "t", "--partitions", "2"]);
    let text = env.write("t.txt", "a\n\nb\n");
    let out = env.eddy_output(&["produce", "t", "--value-only", "--file", text.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "produced 3 record(s) to t");
    let json = env.write("t.jsonl", "{\"value\": \"c\"}\n\n  \n");
    let out = env.eddy_output(&["produce", "t", "--file", json.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "produced 1 record(s) to t (skipped 2 blank line(s))");
    let mut values: Vec<String> = env
        .consume_all("t", &["--value-serde", "string"])
        .iter()
        .map(|r| r["value"].as_str().unwrap().to_owned())
        .collect();
    values.sort();
    assert_eq!(values, ["", "a", "b", "c"]);
    // From the end, --until-end has nothing to read and returns at once.
    assert_eq!(env.eddy(&["consume", "t", "--until-end"]), "");
    assert_eq!(env.eddy(&["consume", "t", "--from-beginning", "--until-end", "--max", "1"]).lines().count(), 1);
}
