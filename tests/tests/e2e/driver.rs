//! The test driver as a library, as a plugin author uses it in `cargo test`.

use std::time::Duration;

use eddy_host::record::Record;
use eddy_host::testing::TestDriver;
use serde_json::json;

use crate::pipeline::{READINGS, expected_alerts, expected_clean, vitals_app};
use crate::{Env, app_file, key_value};

#[test]
fn vitals_through_the_driver() {
    let env = Env::new();
    let mut driver = TestDriver::from_file(&vitals_app(&env, "dead-letter")).unwrap();
    assert_eq!(driver.pipe_json_lines("vitals", READINGS).unwrap(), 8);
    let mut alerts: Vec<_> = driver.read_output_json("alerts").unwrap().iter().map(key_value).collect();
    alerts.sort_by_key(|(k, v)| format!("{k}{v}"));
    assert_eq!(alerts, expected_alerts());
    assert_eq!(driver.last_report().dead_lettered, 1);
    let mut clean: Vec<_> = driver.read_output_json("vitals-clean").unwrap().iter().map(key_value).collect();
    clean.sort_by_key(|(k, v)| format!("{k}{v}"));
    assert_eq!(clean, expected_clean());

    // Reads return only what is new.
    assert!(driver.read_output("alerts").unwrap().is_empty());
    driver
        .pipe_json(
            "vitals",
            r#"{"key": "bed-9", "value": {"patient": "p9", "heart_rate": 190, "systolic": 120, "diastolic": 80}}"#,
        )
        .unwrap();
    let more = driver.read_output_json("alerts").unwrap();
    assert_eq!(more.len(), 1);
    assert_eq!(more[0]["key"], json!("p9"));
}

#[test]
fn driver_clock_stamps_records_without_a_timestamp() {
    let env = Env::new();
    let app = app_file(&env, "words.yaml", eddy_tests::WORDS, "application-id: words\n");
    let mut driver = TestDriver::from_file(&app).unwrap();
    driver.advance_time(Duration::from_secs(5));
    driver.pipe("lines", Record::new(None::<&str>, Some("one two"), 0), None).unwrap();
    driver.advance_time(Duration::from_millis(250));
    driver.pipe("lines", Record::new(None::<&str>, Some("three"), 0), None).unwrap();
    driver.pipe("lines", Record::new(None::<&str>, Some("four"), 0), Some(42)).unwrap();
    let out = driver.read_output("words").unwrap();
    let got: Vec<(String, i64)> =
        out.iter().map(|r| (String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap(), r.timestamp)).collect();
    assert_eq!(got, [("one".into(), 5000), ("two".into(), 5000), ("three".into(), 5250), ("four".into(), 42)]);
}

#[test]
fn driver_with_several_partitions_keeps_per_key_order() {
    let env = Env::new();
    let body = "application-id: shout\nthreads: 3\ntopology:\n  - { name: in, source: [in], value-serde: string }\n  - { name: up, map-values: checked_upper }\n  - { to: out, value-serde: string }\n";
    let app = app_file(&env, "shout.yaml", eddy_tests::FAULTY, body);
    let mut driver = TestDriver::from_file(&app).unwrap();
    driver.create_topic("in", 4).unwrap();
    driver.create_topic("out", 4).unwrap();
    let records: Vec<Record> =
        (0..500).map(|i| Record::new(Some(format!("k{}", i % 7)), Some(format!("v{i}")), i)).collect();
    driver.pipe_records("in", records).unwrap();
    let out = driver.read_output("out").unwrap();
    assert_eq!(out.len(), 500);
    for k in 0..7 {
        let key = format!("k{k}");
        let seen: Vec<i64> =
            out.iter().filter(|r| r.key.as_deref() == Some(key.as_bytes())).map(|r| r.timestamp).collect();
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "order of {key}: {seen:?}");
        assert!(
            out.iter().filter(|r| r.key.as_deref() == Some(key.as_bytes())).all(|r| r
                .value
                .as_ref()
                .unwrap()
                .starts_with(b"V"))
        );
    }
    assert_eq!(driver.last_report().tasks, 4);
    assert_eq!(driver.last_report().threads, 3);
}
