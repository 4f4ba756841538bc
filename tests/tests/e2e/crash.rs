//! Crash safety: `eddy run` killed with SIGKILL mid-run and restarted leaves
//! every expected output record exactly once.

use std::collections::HashSet;

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
