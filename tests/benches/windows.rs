//! The time benchmark: windowed counts, suppression, sessions and a
//! stream-stream join over the same input (10M records of 100 B JSON over
//! 100K keys, 1 ms apart in event time, 4 partitions, one worker thread,
//! RocksDB stores with a 10 MiB cache), each as records per CPU-second and
//! as a ratio to the stateless WASM pipeline (filter, map-values) measured
//! in the same run.
//!
//! Run with `scripts/bench.sh windows` (or `cargo bench -p eddy-tests --bench
//! windows`). `EDDY_BENCH_RECORDS` sets the input size; `EDDY_BENCH_ONLY`
//! runs one row (tumbling, suppressed, hopping, tumbling-memory, session,
//! join, join-memory);
//! `EDDY_BENCH_COMMIT_MS` sets the commit interval (default: the app's,
//! 100 ms).

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{PARTITIONS, cpu_seconds, measure, produce};
use eddy_host::app::{App, ErrorPolicy};
use eddy_host::log::{EmbeddedLog, Log, TopicPartition};
use eddy_host::plugin::wasm::Limits;
use eddy_host::plugin::{Plugin, WasmPlugin};
use eddy_host::runtime::{RunOptions, run};
use eddy_host::topology::Topology;

/// One measured pipeline.
struct Row {
    label: &'static str,
    per_cpu: f64,
    per_wall: f64,
    records_out: u64,
    /// Changelog records written per input record.
    changelog: f64,
}

/// Runs the topology `nodes` (a JSON list) over `inputs` input records and
/// measures it.
fn measure_topology(
    log: &EmbeddedLog,
    state: &std::path::Path,
    name: &str,
    plugin: Arc<dyn Plugin>,
    nodes: &str,
    inputs: u64,
) -> (f64, f64, u64, f64) {
    let topology = Topology::from_json(nodes).unwrap();
    let changelogs: Vec<String> =
        topology.stores().iter().map(|(_, s)| eddy_host::store::changelog_topic(name, &s.name)).collect();
    let mut app = App::from_parts(name, plugin, topology, ErrorPolicy::Fail).unwrap();
    app.cache_max_bytes = 10 << 20;
    if let Some(ms) = std::env::var("EDDY_BENCH_COMMIT_MS").ok().and_then(|s| s.parse().ok()) {
        app.commit_interval = std::time::Duration::from_millis(ms);
    }
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let options =
        RunOptions { threads: Some(1), until_idle: true, state_dir: Some(state.to_owned()), ..Default::default() };
    let report = run(&app, Arc::new(log.clone()), options).unwrap();
    let (secs, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    assert_eq!(report.records_in, inputs, "{name}");
    let mut writes = 0;
    for topic in &changelogs {
        for p in 0..log.partitions(topic).unwrap().unwrap_or(0) {
            writes += log.end_offset(&TopicPartition::new(topic, p)).unwrap();
        }
    }
    // Each row's state goes once measured: ten million records leave
    // gigabytes of changelogs per row.
    log.delete_topics(&changelogs).unwrap();
    std::fs::remove_dir_all(state.join(name)).unwrap();
    (inputs as f64 / cpu, inputs as f64 / secs, report.records_out, writes as f64 / inputs as f64)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: u64 = std::env::var("EDDY_BENCH_RECORDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000_000);
    let only = std::env::var("EDDY_BENCH_ONLY").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only == name;
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), true).unwrap();
    let t = Instant::now();
    produce(&log, "in", n, 0);
    if wanted("join") || wanted("join-memory") {
        // The right side: the same keys, each a second after its left record.
        produce(&log, "in-right", n, 1_000);
    }
    eprintln!("produced the input in {:.1}s", t.elapsed().as_secs_f64());
    let wasm: Arc<dyn Plugin> = Arc::new(WasmPlugin::load(eddy_tests::BENCH.as_ref(), Limits::default()).unwrap());
    let mut stateless = (0f64, 0f64);
    for round in 0..2 {
        let (cpu, wall) = measure(&log, &format!("wasm-{round}"), wasm.clone(), true, n);
        stateless = (stateless.0.max(cpu), stateless.1.max(wall));
    }
    let state = dir.path().join("state");
    let sink = |output: &str| format!(r#"{{"name": "out", "to": "{output}", "value-serde": "bytes"}}"#);
    let count = |window: &str, suppress: bool| {
        let suppress = if suppress { r#"{"name": "finals", "suppress": "until-window-closes"},"# } else { "" };
        format!(r#"{{"name": "counts", "count": "counts", "window": {window}}}, {suppress}"#)
    };
    let join = |kind: &str| {
        format!(
            r#"{{"name": "right", "source": ["in-right"]}},
               {{"name": "joined", "from": "in", "join": {{"stream": "right", "joiner": "pair", "window": {{"time-difference-ms": 10000}}}}, "store-kind": "{kind}"}},"#
        )
    };
    let cases: [(&str, &str, String, u64); 7] = [
        ("tumbling", "count per 1-min window (tumbling)", count(r#"{"type": "tumbling", "size-ms": 60000}"#, false), n),
        ("suppressed", "the same, until-window-closes", count(r#"{"type": "tumbling", "size-ms": 60000}"#, true), n),
        (
            "hopping",
            "count per 5-min window every 1 min",
            count(r#"{"type": "hopping", "size-ms": 300000, "advance-ms": 60000}"#, false),
            n,
        ),
        (
            "tumbling-memory",
            "the tumbling count, in-memory store",
            count(r#"{"type": "tumbling", "size-ms": 60000}"#, false)
                .replace(r#""count": "counts","#, r#""count": "counts", "store-kind": "in-memory","#),
            n,
        ),
        ("session", "count per session (1-min gap)", count(r#"{"type": "session", "gap-ms": 60000}"#, false), n),
        ("join", "stream-stream inner join, 10-s window", join("persistent"), 2 * n),
        ("join-memory", "the join, in-memory stores", join("in-memory"), 2 * n),
    ];
    let mut rows = Vec::new();
    for (i, (key, label, middle, inputs)) in cases.into_iter().enumerate() {
        if !wanted(key) {
            continue;
        }
        let name = format!("w{i}-{key}");
        let output = format!("out-{name}");
        log.create_topic(&output, PARTITIONS).unwrap();
        let nodes = format!(r#"[{{"name": "in", "source": ["in"]}}, {middle} {}]"#, sink(&output));
        eprintln!("running {label} over {inputs} records");
        let (per_cpu, per_wall, records_out, changelog) =
            measure_topology(&log, &state, &name, wasm.clone(), &nodes, inputs);
        log.delete_topics(std::slice::from_ref(&output)).unwrap();
        // Each row as soon as it is measured: a long run's early rows are not
        // lost if it is stopped.
        eprintln!("  {label}: {per_cpu:.0} records/cpu-s, ratio {:.2}", per_cpu / stateless.0);
        rows.push(Row { label, per_cpu, per_wall, records_out, changelog });
    }
    println!();
    println!(
        "windows and joins, embedded log, {n} records of 100 B JSON over 100K keys 1 ms apart, {PARTITIONS} partitions, 1 worker thread, RocksDB, 10 MiB cache"
    );
    println!("records/cpu-s: input records per CPU-second of the process; ratio: to the WASM stateless pipeline");
    println!(
        "{:<42} {:>14} {:>12} {:>7} {:>12} {:>17}",
        "pipeline", "records/cpu-s", "records/s", "ratio", "records out", "changelog/record"
    );
    println!(
        "{:<42} {:>14.0} {:>12.0} {:>7.2} {:>12} {:>17}",
        "filter -> map-values (WASM), baseline", stateless.0, stateless.1, 1.0, "", ""
    );
    for r in rows {
        println!(
            "{:<42} {:>14.0} {:>12.0} {:>7.2} {:>12} {:>17.3}",
            r.label,
            r.per_cpu,
            r.per_wall,
            r.per_cpu / stateless.0,
            r.records_out,
            r.changelog
        );
    }
}
