//! What the benchmarks share: the input (100-byte JSON values over 100K
//! keys, timestamps 1 ms apart), CPU time, and the stateless pipeline every
//! other figure is a ratio to.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use eddy_host::app::{App, ErrorPolicy};
use eddy_host::log::{EmbeddedLog, Log, TopicPartition};
use eddy_host::partition::partition_for_key;
use eddy_host::plugin::{FunctionKind, NativePlugin, Outcome, Plugin};
use eddy_host::record::Record;
use eddy_host::runtime::{RunOptions, run};
use eddy_host::topology::Topology;

pub const PARTITIONS: u32 = 4;
/// Distinct keys in the input.
pub const KEYS: u64 = 100_000;

pub fn topology(input: &str, output: &str, logic: bool) -> Topology {
    let middle =
        if logic { r#"{"name": "ok", "filter": "is_ok"}, {"name": "up", "map-values": "shout"},"# } else { "" };
    Topology::from_json(&format!(
        r#"[{{"name": "in", "source": ["{input}"]}}, {middle} {{"name": "out", "to": "{output}"}}]"#
    ))
    .unwrap()
}

pub fn value(i: u64) -> Vec<u8> {
    let status = if i.is_multiple_of(10) { "error" } else { "ok" };
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

/// A pseudo-random function of `i` (splitmix64), to pick keys uniformly at random.
pub fn spread(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Writes `n` input records to `topic`, record `i` at time `i + shift` ms.
pub fn produce(log: &EmbeddedLog, topic: &str, n: u64, shift: i64) {
    log.create_topic(topic, PARTITIONS).unwrap();
    let mut p = log.producer().unwrap();
    for i in 0..n {
        let key = format!("sensor-{}", spread(i) % KEYS);
        let part = partition_for_key(key.as_bytes(), PARTITIONS);
        let record = Record::new(Some(key), Some(value(i)), i as i64 + shift);
        p.send(&TopicPartition::new(topic, part), record).unwrap();
        if p.pending() >= 100_000 {
            p.commit(None, &[]).unwrap();
        }
    }
    p.commit(None, &[]).unwrap();
}

/// CPU time (user + system) this process has used, in seconds.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Runs `plugin` over the input with one worker thread; returns input records
/// per CPU-second of the process (records/s per core, robust to a busy
/// machine) and per wall-clock second.
pub fn measure(log: &EmbeddedLog, name: &str, plugin: Arc<dyn Plugin>, logic: bool, n: u64) -> (f64, f64) {
    let output = format!("out-{name}");
    log.create_topic(&output, PARTITIONS).unwrap();
    let app = App::from_parts(name, plugin, topology("in", &output, logic), ErrorPolicy::Fail).unwrap();
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let report =
        run(&app, Arc::new(log.clone()), RunOptions { threads: Some(1), until_idle: true, ..Default::default() })
            .unwrap();
    let (secs, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    assert_eq!(report.records_in, n);
    let expected_out = if logic { n - n.div_ceil(10) } else { n };
    assert_eq!(report.records_out, expected_out, "{name}");
    (n as f64 / cpu, n as f64 / secs)
}

/// The stateless pipeline's logic as native closures (and a stand-in
/// plugin for pipelines that call none).
pub fn native_plugin() -> Arc<dyn Plugin> {
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
