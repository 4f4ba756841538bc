//! The stateless pipeline benchmark: read, filter, map-values, write on the
//! embedded log (100-byte JSON values, 4 partitions, one worker thread), with
//! the logic as a WASM plugin and as native Rust closures in the same host,
//! in one run. Also the cost of a WASM call and of an instantiation, and
//! counts per key (plain, by a WASM processor, per tumbling and hopping
//! window) as ratios to the WASM stateless pipeline.
//!
//! Run with `scripts/bench.sh` (or `cargo bench -p eddy-tests --bench stateless`).
//! `EDDY_BENCH_RECORDS` sets the input size (default 2,000,000).

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{KEYS, PARTITIONS, cpu_seconds, measure, native_plugin, produce, value};
use eddy_host::app::{App, ErrorPolicy};
use eddy_host::log::{EmbeddedLog, Log, TopicPartition};
use eddy_host::plugin::wasm::Limits;
use eddy_host::plugin::{FunctionKind, Instance, Plugin, WasmPlugin};
use eddy_host::record::Record;
use eddy_host::runtime::{RunOptions, run};
use eddy_host::topology::Topology;

/// How a stateful benchmark counts.
enum Counting {
    /// The host's `count` per key.
    PerKey,
    /// The host's `count` per key and window (a `window` document).
    Windowed(&'static str),
    /// The plugin's `count_in_store` processor.
    Processor(Arc<dyn Plugin>),
}

/// Counts per key with a record cache of `cache_bytes`; returns records per
/// CPU-second, per second, changelog records per input record and RocksDB
/// writes per input record.
fn measure_count(
    log: &EmbeddedLog,
    state: &std::path::Path,
    name: &str,
    cache_bytes: usize,
    counting: Counting,
    n: u64,
) -> (f64, f64, f64, f64) {
    let output = format!("out-{name}");
    log.create_topic(&output, PARTITIONS).unwrap();
    let (op, processor) = match counting {
        Counting::PerKey => (r#""count": "counts""#.to_owned(), None),
        Counting::Windowed(window) => (format!(r#""count": "counts", "window": {window}"#), None),
        Counting::Processor(p) => (r#""process": "count_in_store", "stores": ["counts"]"#.to_owned(), Some(p)),
    };
    let topology = Topology::from_json(&format!(
        r#"[{{"name": "in", "source": ["in"]}}, {{"name": "counts", {op}}}, {{"name": "out", "to": "{output}", "value-serde": "i64"}}]"#
    ))
    .unwrap();
    let plugin = processor.unwrap_or_else(native_plugin);
    let mut app = App::from_parts(name, plugin, topology, ErrorPolicy::Fail).unwrap();
    app.cache_max_bytes = cache_bytes;
    if let Some(ms) = std::env::var("EDDY_BENCH_COMMIT_MS").ok().and_then(|s| s.parse().ok()) {
        app.commit_interval = std::time::Duration::from_millis(ms);
    }
    let (started, cpu, rocks) = (Instant::now(), cpu_seconds(), eddy_host::store::local_writes());
    let options =
        RunOptions { threads: Some(1), until_idle: true, state_dir: Some(state.to_owned()), ..Default::default() };
    let report = run(&app, Arc::new(log.clone()), options).unwrap();
    let (secs, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    assert_eq!(report.records_in, n);
    let changelog = format!("{name}-counts-changelog");
    let writes: u64 = (0..PARTITIONS).map(|p| log.end_offset(&TopicPartition::new(&changelog, p)).unwrap()).sum();
    let rocks = eddy_host::store::local_writes() - rocks;
    (n as f64 / cpu, n as f64 / secs, writes as f64 / n as f64, rocks as f64 / n as f64)
}

/// Nanoseconds per call of `function` over `records`, `calls` times.
fn time_calls(inst: &mut dyn Instance, function: u32, kind: FunctionKind, records: &[Record], calls: usize) -> f64 {
    let mut out = Vec::with_capacity(records.len());
    let t = Instant::now();
    for _ in 0..calls {
        out.clear();
        inst.call(function, kind, records, &mut out).unwrap();
    }
    t.elapsed().as_nanos() as f64 / calls as f64
}

/// WASM call costs: (fixed per call, per record of a trivial predicate, of
/// `is_ok`, of `shout`, instantiation), in nanoseconds.
fn per_call_costs(plugin: &WasmPlugin) -> (f64, f64, f64, f64, f64) {
    let records: Vec<Record> =
        (0..4096).map(|i| Record::new(Some(format!("k{i}")), Some(value(i)), i as i64)).collect();
    let mut inst = plugin.instantiate().unwrap();
    let is_ok = plugin.manifest().index_of("is_ok").unwrap();
    let shout = plugin.manifest().index_of("shout").unwrap();
    let keep_all = plugin.manifest().index_of("keep_all").unwrap();
    let fixed = time_calls(&mut *inst, keep_all, FunctionKind::Predicate, &records[..1], 20_000);
    let n = records.len() as f64;
    let boundary = time_calls(&mut *inst, keep_all, FunctionKind::Predicate, &records, 200) / n;
    let predicate = time_calls(&mut *inst, is_ok, FunctionKind::Predicate, &records, 200) / n;
    let map_values = time_calls(&mut *inst, shout, FunctionKind::MapValues, &records, 200) / n;
    let count = 2000;
    let t = Instant::now();
    for _ in 0..count {
        drop(plugin.instantiate().unwrap());
    }
    let instantiate = t.elapsed().as_nanos() as f64 / count as f64;
    (fixed, boundary, predicate, map_values, instantiate)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: u64 = std::env::var("EDDY_BENCH_RECORDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2_000_000);
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), true).unwrap();
    let t = Instant::now();
    produce(&log, "in", n, 0);
    eprintln!("produced {n} records ({} bytes each) in {:.1}s", value(1).len(), t.elapsed().as_secs_f64());

    let wasm = Arc::new(WasmPlugin::load(eddy_tests::BENCH.as_ref(), Limits::default()).unwrap());
    let native = native_plugin();
    let best = |a: (f64, f64), b: (f64, f64)| (a.0.max(b.0), a.1.max(b.1));
    let (mut best_native, mut best_wasm, mut best_copy) = ((0f64, 0f64), (0f64, 0f64), (0f64, 0f64));
    // EDDY_BENCH_ONLY=copy|native|wasm|count|count-cached|process|window runs one pipeline
    // (for profiling).
    let only = std::env::var("EDDY_BENCH_ONLY").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only == name;
    for round in 0..2 {
        if wanted("copy") {
            best_copy = best(best_copy, measure(&log, &format!("copy-{round}"), native.clone(), false, n));
        }
        if wanted("native") {
            best_native = best(best_native, measure(&log, &format!("native-{round}"), native.clone(), true, n));
        }
        if wanted("wasm") {
            best_wasm = best(best_wasm, measure(&log, &format!("wasm-{round}"), wasm.clone(), true, n));
        }
    }
    let (per_call, boundary, predicate, map_values, instantiate) = per_call_costs(&wasm);
    let state = dir.path().join("state");
    let mut counts = Vec::new();
    if wanted("count") || wanted("count-cached") {
        for (label, cache) in [("cache on (10 MiB)", 10usize << 20), ("cache off", 0)] {
            if cache == 0 && only == "count-cached" {
                continue;
            }
            let name = format!("count-{}", counts.len());
            let row = measure_count(&log, &state, &name, cache, Counting::PerKey, n);
            counts.push((format!("read -> count -> write, {label}"), row));
        }
    }
    if wanted("count") || wanted("process") {
        let name = format!("count-{}", counts.len());
        let row = measure_count(&log, &state, &name, 10 << 20, Counting::Processor(wasm.clone()), n);
        counts.push(("read -> WASM processor (get+put) -> write".to_owned(), row));
    }
    if wanted("count") || wanted("window") {
        // Input timestamps are 1 ms apart: 1,000 records per second of
        // event time, so a minute holds 60,000 records over 100K keys.
        for (label, window) in [
            ("read -> count per 1-min window -> write", r#"{"type": "tumbling", "size-ms": 60000}"#),
            (
                "read -> count per 5-min window every 1 min",
                r#"{"type": "hopping", "size-ms": 300000, "advance-ms": 60000}"#,
            ),
        ] {
            let name = format!("count-{}", counts.len());
            let row = measure_count(&log, &state, &name, 10 << 20, Counting::Windowed(window), n);
            counts.push((label.to_owned(), row));
        }
    }

    println!();
    println!("stateless pipeline, embedded log, {n} records of 100 B JSON, {PARTITIONS} partitions, 1 worker thread");
    println!("records/cpu-s: input records per CPU-second of the whole process (records/s per core); ratio: to native");
    println!("{:<44} {:>14} {:>12} {:>8}", "pipeline", "records/cpu-s", "records/s", "ratio");
    let rows = [
        ("read -> write (no plugin calls)", best_copy),
        ("read -> filter -> map-values -> write, native", best_native),
        ("read -> filter -> map-values -> write, WASM", best_wasm),
    ];
    for (name, (per_cpu, per_wall)) in rows {
        println!("{name:<44} {per_cpu:>14.0} {per_wall:>12.0} {:>8.2}", per_cpu / best_native.0);
    }
    if !counts.is_empty() {
        println!();
        println!("count per key, {KEYS} keys, RocksDB stores, 1 worker thread; ratio: to the WASM stateless pipeline");
        println!(
            "{:<44} {:>14} {:>12} {:>8} {:>18} {:>16}",
            "pipeline", "records/cpu-s", "records/s", "ratio", "changelog/record", "RocksDB/record"
        );
        for (name, (per_cpu, per_wall, writes, rocks)) in counts {
            println!(
                "{name:<44} {per_cpu:>14.0} {per_wall:>12.0} {:>8.2} {writes:>18.3} {rocks:>16.3}",
                per_cpu / best_wasm.0
            );
        }
    }
    println!();
    println!("WASM call, 1 record (fixed cost)             {per_call:>8.0} ns");
    println!("WASM keep_all (call cost), per record in 4096s {boundary:>6.1} ns");
    println!("WASM is_ok (predicate), per record in 4096s  {predicate:>8.1} ns");
    println!("WASM shout (map-values), per record in 4096s {map_values:>8.1} ns");
    println!("instantiation (pooling, InstancePre)         {:>8.1} us", instantiate / 1000.0);
}
