//! Tests of a run's worker threads on the embedded log, in this process
//! (native plugin, RocksDB stores).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{RunOptions, RunStats, run_with_stats};
use crate::app::{App, ErrorPolicy};
use crate::log::{EmbeddedLog, Log, TopicPartition};
use crate::partition::partition_for_key;
use crate::plugin::NativePlugin;
use crate::record::Record;
use crate::store::{StoreKind, StoreSpec, TaskStore};
use crate::task::TaskId;
use crate::topology::Topology;

const TOPOLOGY: &str = "
- { name: words, source: [words], key-serde: string, value-serde: string }
- { name: counts, count: word-counts }
- { name: out, to: word-totals, key-serde: string, value-serde: i64 }
";

/// Waits up to 30 s for `done`.
fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not after 30 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A task given to a worker while another thread of the process still has
/// its store open (it has not learnt yet that the task moved) waits for it
/// without holding up the worker's other tasks, and starts once the store
/// is closed.
#[test]
fn a_task_whose_store_another_thread_has_open_waits_while_the_others_run() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path().join("log"), false).unwrap();
    log.create_topic("words", 2).unwrap();
    log.create_topic("word-totals", 2).unwrap();
    let mut out = log.producer().unwrap();
    let mut on_partition = [0u64; 2];
    for i in 0..40 {
        let key = format!("w{i}");
        let partition = partition_for_key(key.as_bytes(), 2);
        on_partition[partition as usize] += 1;
        out.send(&TopicPartition::new("words", partition), Record::new(Some(key.into_bytes()), Some(Vec::new()), i))
            .unwrap();
    }
    out.commit(None, &[]).unwrap();
    assert!(on_partition.iter().all(|&n| n > 0));

    let state = dir.path().join("state");
    let spec = StoreSpec::new("word-counts", StoreKind::Persistent);
    let elsewhere = std::thread::spawn({
        let state = state.clone();
        move || TaskStore::open_unrestored(&state, "held", &spec, TaskId { subtopology: 0, partition: 0 }, 0).unwrap()
    });
    let held = elsewhere.join().unwrap();

    let app = App::from_parts(
        "held",
        Arc::new(NativePlugin::new("held")),
        Topology::from_yaml(TOPOLOGY).unwrap(),
        ErrorPolicy::Fail,
    )
    .unwrap();
    let options = RunOptions { threads: Some(1), state_dir: Some(state), ..Default::default() };
    let stop = options.stop.clone();
    let stats = Arc::new(RunStats::default());
    let runner = {
        let (log, stats): (Arc<dyn Log>, _) = (Arc::new(log.clone()), stats.clone());
        std::thread::spawn(move || run_with_stats(&app, log, options, stats))
    };
    let records_in = || stats.records_in.load(Ordering::SeqCst);
    // Task 0_1 runs; 0_0 waits for its store.
    eventually("task 0_1 processed", || records_in() == on_partition[1]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(records_in(), on_partition[1], "task 0_0 ran while its store was open elsewhere");
    drop(held);
    eventually("task 0_0 processed", || records_in() == 40);
    stop.store(true, Ordering::SeqCst);
    runner.join().unwrap().unwrap();
    assert_eq!(log.end_offset(&TopicPartition::new("word-totals", 0)).unwrap(), on_partition[0]);
}
