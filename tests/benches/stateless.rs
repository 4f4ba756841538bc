//! The stateless pipeline benchmark: read, filter, map-values, write on the
//! embedded log (100-byte JSON values, 4 partitions, one worker thread), with
//! the logic as a WASM plugin and as native Rust closures in the same host,
//! in one run. Also the cost of a WASM call and of an instantiation.
//!
//! Run with `scripts/bench.sh` (or `cargo bench -p eddy-tests --bench stateless`).
//! `EDDY_BENCH_RECORDS` sets the input size (default 2,000,000).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use eddy_host::app::{App, ErrorPolicy};
use eddy_host::log::{EmbeddedLog, Log, TopicPartition};
use eddy_host::partition::partition_for_key;
use eddy_host::plugin::wasm::Limits;
use eddy_host::plugin::{FunctionKind, NativePlugin, Outcome, Plugin, WasmPlugin};
use eddy_host::record::Record;
use eddy_host::runtime::{RunOptions, run};
use eddy_host::topology::Topology;

const PARTITIONS: u32 = 4;

fn topology(input: &str, output: &str, logic: bool) -> Topology {
    let middle =
        if logic { r#"{"name": "ok", "filter": "is_ok"}, {"name": "up", "map-values": "shout"},"# } else { "" };
    Topology::from_json(&format!(
        r#"[{{"name": "in", "source": ["{input}"]}}, {middle} {{"name": "out", "to": "{output}"}}]"#
    ))
    .unwrap()
}

fn value(i: u64) -> Vec<u8> {
    let status = if i % 10 == 0 { "error" } else { "ok" };
    let mut v = format!(
        r#"{{"id":{i},"sensor":"s-{:04}","temp":{:.2},"status":"{status}","pad":""#,
        i % 10_000,
        20.0 + (i % 97) as f64 / 10.0
    )
    .into_bytes();
    while v.len() < 98 {
        v.push(b'x');
    }
    v.extend_from_slice(b"\"}");
    v
}

fn produce(log: &EmbeddedLog, topic: &str, n: u64) {
    log.create_topic(topic, PARTITIONS).unwrap();
    let mut p = log.producer().unwrap();
    for i in 0..n {
        let key = format!("sensor-{}", i % 10_000);
        let part = partition_for_key(key.as_bytes(), PARTITIONS);
        p.send(&TopicPartition::new(topic, part), Record::new(Some(key), Some(value(i)), i as i64)).unwrap();
        if p.pending() >= 100_000 {
            p.commit(None, &[]).unwrap();
        }
    }
    p.commit(None, &[]).unwrap();
}

/// Runs `plugin` over the input with one thread; returns input records per second.
fn measure(log: &EmbeddedLog, name: &str, plugin: Arc<dyn Plugin>, logic: bool, n: u64) -> f64 {
    let output = format!("out-{name}");
    log.create_topic(&output, PARTITIONS).unwrap();
    let app = App::from_parts(name, plugin, topology("in", &output, logic), ErrorPolicy::Fail).unwrap();
    let started = Instant::now();
    let report =
        run(&app, Arc::new(log.clone()), RunOptions { threads: Some(1), until_idle: true, ..Default::default() })
            .unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(report.records_in, n);
    let expected_out = if logic { n - n.div_ceil(10) } else { n };
    assert_eq!(report.records_out, expected_out, "{name}");
    n as f64 / secs
}

fn native_plugin() -> Arc<dyn Plugin> {
    Arc::new(
        NativePlugin::new("bench-native")
            .function("is_ok", FunctionKind::Predicate, |r| {
                Outcome::Keep(bench::is_ok(r.value.as_deref().unwrap_or_default()))
            })
            .function("shout", FunctionKind::MapValues, |r| {
                Outcome::Value(Some(Bytes::from(bench::shout(r.value.as_deref().unwrap_or_default()))))
            }),
    )
}

fn per_call_costs(plugin: &WasmPlugin) -> (f64, f64, f64) {
    let records: Vec<Record> =
        (0..4096).map(|i| Record::new(Some(format!("k{i}")), Some(value(i)), i as i64)).collect();
    let mut inst = plugin.instantiate().unwrap();
    let shout = plugin.manifest().index_of("shout").unwrap();
    let mut out = Vec::new();
    // Fixed cost: one record per call.
    let one = &records[..1];
    let calls = 20_000;
    let t = Instant::now();
    for _ in 0..calls {
        out.clear();
        inst.call(shout, FunctionKind::MapValues, one, &mut out).unwrap();
    }
    let per_call = t.elapsed().as_nanos() as f64 / calls as f64;
    // Per record in big batches.
    let rounds = 200;
    let t = Instant::now();
    for _ in 0..rounds {
        out.clear();
        inst.call(shout, FunctionKind::MapValues, &records, &mut out).unwrap();
    }
    let per_record = t.elapsed().as_nanos() as f64 / (rounds * records.len()) as f64;
    // Instantiation (pooling allocator, InstancePre).
    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        drop(plugin.instantiate().unwrap());
    }
    let instantiate = t.elapsed().as_nanos() as f64 / n as f64;
    (per_call, per_record, instantiate)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: u64 = std::env::var("EDDY_BENCH_RECORDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2_000_000);
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), true).unwrap();
    let t = Instant::now();
    produce(&log, "in", n);
    eprintln!("produced {n} records ({} bytes each) in {:.1}s", value(1).len(), t.elapsed().as_secs_f64());

    let wasm = Arc::new(WasmPlugin::load(eddy_tests::BENCH.as_ref(), Limits::default()).unwrap());
    let native = native_plugin();
    let (mut best_native, mut best_wasm, mut best_copy) = (0f64, 0f64, 0f64);
    for round in 0..2 {
        best_copy = best_copy.max(measure(&log, &format!("copy-{round}"), native.clone(), false, n));
        best_native = best_native.max(measure(&log, &format!("native-{round}"), native.clone(), true, n));
        best_wasm = best_wasm.max(measure(&log, &format!("wasm-{round}"), wasm.clone(), true, n));
    }
    let (per_call, per_record, instantiate) = per_call_costs(&wasm);

    println!();
    println!("stateless pipeline, embedded log, {n} records of 100 B JSON, {PARTITIONS} partitions, 1 worker thread");
    println!("{:<44} {:>14} {:>8}", "pipeline", "records/s/core", "ratio");
    println!("{:<44} {:>14.0} {:>8.2}", "read -> write (no plugin calls)", best_copy, best_copy / best_native);
    println!("{:<44} {:>14.0} {:>8.2}", "read -> filter -> map-values -> write, native", best_native, 1.0);
    println!(
        "{:<44} {:>14.0} {:>8.2}",
        "read -> filter -> map-values -> write, WASM",
        best_wasm,
        best_wasm / best_native
    );
    println!();
    println!("WASM call, 1 record (fixed cost)      {per_call:>8.0} ns");
    println!("WASM call, per record in 4096 batches  {per_record:>8.1} ns");
    println!("instantiation (pooling, InstancePre)   {:>8.1} us", instantiate / 1000.0);
}
