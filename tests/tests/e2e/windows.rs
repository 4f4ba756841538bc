//! Windowed aggregations through `eddy run`: the seed's 5-minute
//! blood-pressure average, where a reading within the grace period still
//! counts in its window and a very late one is dropped and counted, never
//! put into a newer window. (Kafka Streams' own window cases run in
//! `conformance`.)

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::Env;

const MIN: i64 = 60_000;

#[test]
fn blood_pressure_averages_per_five_minutes_drop_very_late_readings() {
    let env = Env::new();
    // One partition and one thread: the order of the readings is the order
    // the aggregation sees, so which readings are late is fixed.
    env.eddy(&["topic", "create", "vitals", "--partitions", "1"]);
    env.eddy(&["topic", "create", "vitals-pressure", "--partitions", "1"]);
    let app = env.path("pressure.yaml");
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/vitals/pressure.yaml"))
        .unwrap()
        .replace("plugin: vitals.wasm ", &format!("plugin: {} ", eddy_tests::VITALS));
    std::fs::write(&app, example).unwrap();
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
    let file = env.write("vitals.jsonl", &(lines.join("\n") + "\n"));
    env.eddy(&[
        "produce",
        "vitals",
        "--file",
        file.to_str().unwrap(),
        "--key-serde",
        "string",
        "--value-serde",
        "json",
    ]);
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
