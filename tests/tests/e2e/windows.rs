//! Windowed aggregations through `eddy run`: the seed's 5-minute
//! blood-pressure average, where a reading within the grace period still
//! counts in its window and a very late one is dropped and counted, never
//! put into a newer window. (Kafka Streams' own window cases run in
//! `conformance`.)

use std::collections::BTreeMap;

use eddy_host::log::{EmbeddedLog, Log, TopicPartition};
use serde_json::{Value, json};

use crate::Env;

const MIN: i64 = 60_000;

/// `examples/vitals/pressure.yaml` in `env`, with the built vitals plugin
/// and its topics (one partition each).
pub(crate) fn pressure_example(env: &Env) -> std::path::PathBuf {
    env.eddy(&["topic", "create", "vitals", "--partitions", "1"]);
    env.eddy(&["topic", "create", "vitals-pressure", "--partitions", "1"]);
    let app = env.path("pressure.yaml");
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/vitals/pressure.yaml"))
        .unwrap()
        .replace("plugin: vitals.wasm ", &format!("plugin: {} ", eddy_tests::VITALS));
    std::fs::write(&app, example).unwrap();
    app
}

#[test]
fn blood_pressure_averages_per_five_minutes_drop_very_late_readings() {
    let env = Env::new();
    // One partition and one thread: the order of the readings is the order
    // the aggregation sees, so which readings are late is fixed.
    let app = pressure_example(&env);
    let reading = |patient: &str, t: i64, sys: i64, dia: i64| {
        json!({"key": format!("bed-{patient}"), "timestamp": t,
            "value": {"patient": patient, "heart_rate": 70, "systolic": sys, "diastolic": dia}})
        .to_string()
    };
    let lines = [
        reading("p1", 10_000, 120, 80),
        reading("p2", 10_000, 140, 90),
        reading("p1", 200_000, 130, 85),
        reading("p2", 200_000, 150, 95),
        reading("p1", 5 * MIN + 30_000, 110, 70),
        reading("p2", 5 * MIN + 30_000, 110, 70),
        // Late for [0, 5 min), but within the minute of grace: it counts.
        reading("p1", 290_000, 140, 100),
        // Stream time 11 min closes [0, 5 min) and [5, 10 min).
        reading("p1", 11 * MIN, 120, 80),
        reading("p2", 11 * MIN, 120, 80),
        // Too late for their windows: dropped, not counted anywhere.
        reading("p2", 100_000, 200, 120),
        reading("p1", 7 * MIN, 200, 120),
    ];
    env.produce("vitals", &(lines.join("\n") + "\n"), &["--key-serde", "string", "--value-serde", "json"]);
    let run = env.eddy_output(&["run", app.to_str().unwrap(), "--until-idle"]);
    let summary = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{summary}");
    assert!(summary.contains(", 2 dropped late;"), "{summary}");

    let out = env.consume_all("vitals-pressure", &["--key-serde", "string", "--value-serde", "json", "--windowed"]);
    let mut last: BTreeMap<(String, i64), Value> = BTreeMap::new();
    for r in &out {
        let key = (r["key"].as_str().unwrap().to_owned(), r["window-start"].as_i64().unwrap());
        last.insert(key, r["value"].clone());
    }
    let avg = |readings: u32, sys: f64, dia: f64| json!({"readings": readings, "systolic": sys, "diastolic": dia});
    let want: BTreeMap<(String, i64), Value> = [
        (("p1".to_owned(), 0), avg(3, 130.0, (80.0 + 85.0 + 100.0) / 3.0)),
        (("p1".to_owned(), 5 * MIN), avg(1, 110.0, 70.0)),
        (("p1".to_owned(), 10 * MIN), avg(1, 120.0, 80.0)),
        (("p2".to_owned(), 0), avg(2, 145.0, 92.5)),
        (("p2".to_owned(), 5 * MIN), avg(1, 110.0, 70.0)),
        (("p2".to_owned(), 10 * MIN), avg(1, 120.0, 80.0)),
    ]
    .into_iter()
    .collect();
    assert_eq!(last, want);
    // Each window's record carries the latest reading folded into it.
    let p1_first = out.iter().rfind(|r| r["key"] == "p1" && r["window-start"] == 0).unwrap();
    assert_eq!(p1_first["timestamp"], 290_000);
}

/// Final results of a suppressed windowed count survive `kill -9`: after
/// two kills mid-run and a restart, each closed window's final count is in
/// the output exactly once, and correct.
#[test]
fn suppressed_final_results_are_exact_across_crashes() {
    const RECORDS: i64 = 300_000;
    const KEYS: i64 = 100;
    let env = Env::new();
    env.eddy(&["topic", "create", "clicks", "--partitions", "2"]);
    env.eddy(&["topic", "create", "finals", "--partitions", "2"]);
    let lines: String = (0..RECORDS)
        .map(|i| format!("{{\"key\": \"k{}\", \"value\": \"x\", \"timestamp\": {i}}}\n", i % KEYS))
        .collect();
    let file = env.write("clicks.jsonl", &lines);
    env.eddy(&["produce", "clicks", "--file", file.to_str().unwrap(), "--key-serde", "string"]);
    let body = "application-id: finals\nthreads: 2\ncommit-interval-ms: 20\ntopology:
  - { name: clicks, source: [clicks], key-serde: string, value-serde: string }
  - { name: per-second, count: per-second, window: { type: tumbling, size-ms: 1000 } }
  - { name: closed, suppress: until-window-closes }
  - { name: out, to: finals, key-serde: string, value-serde: i64 }
";
    let app = crate::app_file(&env, "finals.yaml", eddy_tests::FAULTY, body);
    let finals = || {
        let log = EmbeddedLog::open(env.data_dir(), false).unwrap();
        (0..2).map(|p| log.end_offset(&TopicPartition::new("finals", p)).unwrap_or(0)).sum::<u64>()
    };
    // Windows 0..=298 close (stream time reaches 299,9xx); window 299 stays open.
    let closed = 299 * KEYS as u64;
    let mut killed = 0;
    for round in 1..=2u64 {
        env.run_then_kill(&app, finals, closed * round / 3);
        if finals() < closed {
            killed += 1;
        }
    }
    assert!(killed >= 1, "every run finished before it was killed: raise RECORDS");
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    let out = env.consume_all("finals", &["--key-serde", "string", "--value-serde", "i64", "--windowed"]);
    let mut seen: BTreeMap<(String, i64), i64> = BTreeMap::new();
    for r in &out {
        let key = (r["key"].as_str().unwrap().to_owned(), r["window-start"].as_i64().unwrap());
        assert!(seen.insert(key.clone(), r["value"].as_i64().unwrap()).is_none(), "{key:?} emitted twice");
    }
    assert_eq!(seen.len() as u64, closed, "one final result per closed window and key");
    assert!(seen.values().all(|&c| c == RECORDS / 300 / KEYS), "each window holds 10 records per key");
}

/// A clean stop in the middle of a window, and a restart: the window's
/// count goes on from the checkpointed store. (The store reopens its newest
/// time segment, which spans half a day by default; a window that started
/// after that segment began was once not found after a restart, and its
/// count started over.)
#[test]
fn windowed_counts_go_on_after_a_clean_restart_mid_window() {
    let env = Env::new();
    env.eddy(&["topic", "create", "taps", "--partitions", "1"]);
    env.eddy(&["topic", "create", "taps-per-minute", "--partitions", "1"]);
    let body = "application-id: taps\ntopology:
  - { name: taps, source: [taps], key-serde: string, value-serde: string }
  - { name: per-minute, count: per-minute, window: { type: tumbling, size-ms: 60000 } }
  - { name: out, to: taps-per-minute, key-serde: string, value-serde: i64 }
";
    let app = crate::app_file(&env, "taps.yaml", eddy_tests::WORDS, body);
    let taps = |times: &[i64]| {
        let lines: String =
            times.iter().map(|t| format!("{{\"key\": \"door\", \"value\": \"tap\", \"timestamp\": {t}}}\n")).collect();
        env.produce("taps", &lines, &["--key-serde", "string"]);
        env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    };
    // Minute 3 of the day: not the start of the store's newest segment.
    taps(&[3 * MIN + 1_000, 3 * MIN + 2_000, 3 * MIN + 3_000]);
    taps(&[3 * MIN + 4_000, 3 * MIN + 5_000]);
    let out = env.consume_all("taps-per-minute", &["--key-serde", "string", "--value-serde", "i64", "--windowed"]);
    let last = out.iter().rev().find(|r| r["window-start"] == json!(3 * MIN)).expect("a count for minute 3");
    assert_eq!(last["value"], json!(5), "the count went on after the restart: {out:?}");
}

/// Event time from the record's contents: a `timestamp-extractor` reads each
/// reading's `at` field, so readings that reached the log at the same moment
/// fall into the windows of when they were taken; one without `at`, or with
/// a negative time, meets the error policy. `timestamp: wall-clock` uses
/// the time of processing instead (the test driver's clock here).
#[test]
fn event_time_comes_from_an_extractor_or_the_wall_clock() {
    let env = Env::new();
    let body = |timestamp: &str| {
        format!(
            "application-id: taken\nerror-policy: skip\ncache-max-bytes: 0\ntopology:
  - {{ name: readings, source: [vitals], key-serde: string, value-serde: json, {timestamp} }}
  - {{ name: per-minute, count: per-minute, window: {{ type: tumbling, size-ms: 60000, grace-ms: 60000 }} }}
  - {{ name: out, to: counts, key-serde: string, value-serde: i64 }}
"
        )
    };
    let app = crate::app_file(&env, "taken.yaml", eddy_tests::VITALS, &body("timestamp-extractor: measured_at"));
    let mut driver = eddy_host::testing::TestDriver::from_file(&app).unwrap();
    let lines = [
        json!({"key": "p1", "timestamp": 5, "value": {"at": 10_000}}),
        json!({"key": "p1", "timestamp": 5, "value": {"at": 70_000}}),
        json!({"key": "p1", "timestamp": 5, "value": {"at": 20_000}}),
        json!({"key": "p1", "timestamp": 5, "value": {"heart_rate": 80}}),
        json!({"key": "p1", "timestamp": 5, "value": {"at": -3}}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    driver.pipe_json_lines("vitals", &text).unwrap();
    let got: Vec<(i64, i64, i64)> = driver
        .read_output_json("counts")
        .unwrap()
        .iter()
        .map(|r| (r["window-start"].as_i64().unwrap(), r["value"].as_i64().unwrap(), r["timestamp"].as_i64().unwrap()))
        .collect();
    assert_eq!(got, [(0, 1, 10_000), (60_000, 1, 70_000), (0, 2, 20_000)]);
    assert_eq!(driver.last_report().skipped, 2, "no `at`, and a negative `at`");

    let app = crate::app_file(&env, "wall.yaml", eddy_tests::VITALS, &body("timestamp: wall-clock"));
    let mut driver = eddy_host::testing::TestDriver::from_file(&app).unwrap();
    // The test driver's clock is the wall clock of the run.
    driver.advance_time(std::time::Duration::from_millis(125_000));
    driver.pipe_json_lines("vitals", &text).unwrap();
    let out = driver.read_output_json("counts").unwrap();
    let got: Vec<(i64, i64, i64)> = out
        .iter()
        .map(|r| (r["window-start"].as_i64().unwrap(), r["value"].as_i64().unwrap(), r["timestamp"].as_i64().unwrap()))
        .collect();
    let want: Vec<(i64, i64, i64)> = (1..=5).map(|n| (120_000, n, 125_000)).collect();
    assert_eq!(got, want, "every reading counts at the time it is processed");
}

/// The medians of `values` (the mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

/// `examples/vitals/window-medians.yaml` (a tumbling window, suppressed
/// until each minute closes) beside `medians.yaml` (a processor punctuating
/// every minute of stream time) on `examples/vitals/minute-readings.jsonl`,
/// both through `eddy run`. They report the same patient-minutes, but not
/// always over the same readings: a window is [start, start + 1 min), while
/// a punctuation, set off by the first reading at or past a minute, covers
/// (time - 1 min, time] of what its task has seen by then. So the reading
/// that sets it off counts in the minute it ends, and the other patients'
/// readings of that same moment (the three patients share one task) come
/// after it and are never counted. Where both count the same readings, the
/// medians are the same.
#[test]
fn window_medians_per_minute_beside_the_processor_medians() {
    let env = Env::new();
    for (topic, partitions) in
        [("vitals", "4"), ("vitals-by-patient", "4"), ("vitals-medians", "2"), ("vitals-window-medians", "2")]
    {
        env.eddy(&["topic", "create", topic, "--partitions", partitions]);
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/vitals/");
    let app = |name: &str| {
        let yaml = std::fs::read_to_string(format!("{dir}{name}")).unwrap();
        assert!(yaml.contains("plugin: vitals.wasm "), "{name} names its plugin");
        let path = env.write(name, &yaml.replace("plugin: vitals.wasm ", &format!("plugin: {} ", eddy_tests::VITALS)));
        path.to_str().unwrap().to_owned()
    };
    let text = std::fs::read_to_string(format!("{dir}minute-readings.jsonl")).unwrap();
    env.produce("vitals", &text, &["--key-serde", "string", "--value-serde", "json"]);
    env.eddy(&["run", &app("medians.yaml"), "--until-idle"]);
    env.eddy(&["run", &app("window-medians.yaml"), "--until-idle"]);

    // The readings in file order: patient, time, vitals.
    let readings: Vec<(String, i64, [f64; 3])> = text
        .lines()
        .map(|l| {
            let r: Value = serde_json::from_str(l).unwrap();
            let v = &r["value"];
            let vital = |name: &str| v[name].as_f64().unwrap();
            let vitals = [vital("heart_rate"), vital("systolic"), vital("diastolic")];
            (v["patient"].as_str().unwrap().to_owned(), r["timestamp"].as_i64().unwrap(), vitals)
        })
        .collect();
    let medians = |patient: &str, counts: &dyn Fn(i64) -> bool| {
        let vitals: Vec<&[f64; 3]> =
            readings.iter().filter(|(p, t, _)| p == patient && counts(*t)).map(|(_, _, v)| v).collect();
        let m = |i: usize| median(vitals.iter().map(|v| v[i]).collect());
        json!({"patient": patient, "readings": vitals.len(), "heart_rate": m(0), "systolic": m(1), "diastolic": m(2)})
    };
    let last = readings.iter().map(|(_, t, _)| *t).max().unwrap();
    let mut want_windows: BTreeMap<(String, i64), Value> = BTreeMap::new();
    for (patient, t, _) in &readings {
        let end = t - t.rem_euclid(MIN) + MIN;
        if end <= last {
            want_windows.insert((patient.clone(), end), medians(patient, &|u| u >= end - MIN && u < end));
        }
    }
    assert_eq!(want_windows.len(), 9, "three closed minutes of three patients");

    let serdes = ["--key-serde", "string", "--value-serde", "json"];
    let mut windows: BTreeMap<(String, i64), Value> = BTreeMap::new();
    for r in env.consume_all("vitals-window-medians", &[&serdes[..], &["--windowed"]].concat()) {
        let key = (r["key"].as_str().unwrap().to_owned(), r["window-start"].as_i64().unwrap() + MIN);
        assert!(windows.insert(key.clone(), r["value"].clone()).is_none(), "{key:?} came out twice");
    }
    assert_eq!(windows, want_windows, "each closed minute's medians, once");

    let mut punctuated: BTreeMap<(String, i64), Value> = BTreeMap::new();
    for r in env.consume_all("vitals-medians", &serdes) {
        let mut value = r["value"].clone();
        let until = value.as_object_mut().unwrap().remove("until").unwrap().as_i64().unwrap();
        assert!(punctuated.insert((r["key"].as_str().unwrap().to_owned(), until), value).is_none());
    }
    assert!(punctuated.keys().eq(windows.keys()), "the same patient-minutes: {:?}", punctuated.keys());

    let partitions: std::collections::BTreeSet<i64> =
        env.consume_all("vitals-by-patient", &serdes).iter().map(|r| r["partition"].as_i64().unwrap()).collect();
    assert_eq!(partitions.len(), 1, "the patients share one task");
    let first_at = |time: i64| readings.iter().find(|(_, t, _)| *t == time).map(|(p, _, _)| p.as_str());
    let want_punctuated: BTreeMap<(String, i64), Value> = punctuated
        .keys()
        .map(|(patient, until)| {
            let sets_off = first_at(*until) == Some(patient.as_str());
            let value = medians(patient, &|t| t > until - MIN && (t < *until || sets_off && t == *until));
            ((patient.clone(), *until), value)
        })
        .collect();
    assert_eq!(punctuated, want_punctuated, "each punctuation's medians");
    let same: Vec<&(String, i64)> = windows.keys().filter(|k| windows[*k] == punctuated[*k]).collect();
    let first_minute = 1_700_000_040_000;
    assert_eq!(same, [&("p2".to_owned(), first_minute), &("p3".to_owned(), first_minute)]);
}
