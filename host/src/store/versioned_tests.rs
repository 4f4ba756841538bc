//! Tests of the versioned store: out-of-order puts, lookups as of a time,
//! tombstones, history expiry, and restore from the changelog.

use bytes::Bytes;

use super::*;
use crate::log::{EmbeddedLog, Log};
use crate::store::{StoreKind, StoreSpec};
use crate::task::TaskId;

const TASK: TaskId = TaskId { subtopology: 0, partition: 0 };

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn open(state: &std::path::Path, log: &dyn Log, kind: StoreKind) -> TaskStore {
    let spec = StoreSpec { versioned: Some(1000), ..StoreSpec::new("v", kind) };
    TaskStore::open(state, "app", &spec, TASK, 1 << 20, log).unwrap()
}

/// The changelog's records but the clocks: key, value and timestamp.
fn changelog(log: &dyn Log) -> Vec<(Bytes, Option<Bytes>, i64)> {
    let mut out = Vec::new();
    let from = [(crate::log::TopicPartition::new("app-v-changelog", 0), 0)];
    crate::log::read_to_end(log, &from, |fetched| {
        for r in fetched.into_iter().flat_map(|f| f.records) {
            if r.record.header(crate::store::CLOCK_HEADER).is_none() {
                out.push((r.record.key.unwrap(), r.record.value, r.record.timestamp));
            }
        }
        Ok::<_, StoreError>(())
    })
    .unwrap();
    out
}

#[test]
fn the_changelog_has_kafka_streams_layout_and_no_expiries() {
    let (dir, log) = setup();
    let mut out = log.producer().unwrap();
    let mut store = open(&dir.path().join("state"), &log, StoreKind::Persistent);
    let mut v = VersionedStore::open(&mut store, 100).unwrap();
    v.put(b"k", Some(b("a")), 0, &mut *out).unwrap();
    v.put(b"k", None, 60, &mut *out).unwrap();
    v.put(b"k", Some(b("b")), 50, &mut *out).unwrap();
    store.flush(&mut *out).unwrap();
    out.commit(None, &[]).unwrap();
    // Kafka Streams' versioned changelog: the plain key, the value (null
    // for a tombstone), the time the version became valid.
    let logged = [(b("k"), Some(b("a")), 0), (b("k"), None, 60), (b("k"), Some(b("b")), 50)];
    assert_eq!(changelog(&log), logged);
    // Far enough on, a sweep deletes k's expired versions from the store:
    // not from the changelog, where a delete would read as a tombstone.
    let mut v = VersionedStore::open(&mut store, 100).unwrap();
    v.put(b"other", Some(b("x")), 100_000, &mut *out).unwrap();
    assert_eq!(v.all().unwrap().len(), 1, "k's history and its tombstone expired");
    store.flush(&mut *out).unwrap();
    out.commit(None, &[]).unwrap();
    assert_eq!(changelog(&log)[3..], [(b("other"), Some(b("x")), 100_000)]);
}

fn setup() -> (tempfile::TempDir, EmbeddedLog) {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path().join("log"), false).unwrap();
    log.create_topic("app-v-changelog", 1).unwrap();
    (dir, log)
}

#[test]
fn out_of_order_puts_go_into_history_and_leave_the_latest() {
    let (dir, log) = setup();
    let mut out = log.producer().unwrap();
    let mut store = open(&dir.path().join("state"), &log, StoreKind::InMemory);
    let mut v = VersionedStore::open(&mut store, 1000).unwrap();
    assert_eq!(v.put(b"k", Some(b("v10")), 10, &mut *out).unwrap(), PutOutcome::Latest);
    assert_eq!(v.put(b"k", Some(b("v20")), 20, &mut *out).unwrap(), PutOutcome::Latest);
    assert_eq!(v.put(b"k", Some(b("v15")), 15, &mut *out).unwrap(), PutOutcome::History, "older than the latest");
    assert_eq!(v.get(b"k").unwrap(), Some((b("v20"), 20)), "the latest is unchanged");
    assert_eq!(v.get_as_of(b"k", 9).unwrap(), None, "nothing valid before the first version");
    assert_eq!(v.get_as_of(b"k", 10).unwrap(), Some((b("v10"), 10)));
    assert_eq!(v.get_as_of(b"k", 14).unwrap(), Some((b("v10"), 10)));
    assert_eq!(v.get_as_of(b"k", 15).unwrap(), Some((b("v15"), 15)), "the late version splits the interval");
    assert_eq!(v.get_as_of(b"k", 19).unwrap(), Some((b("v15"), 15)));
    assert_eq!(v.get_as_of(b"k", 99).unwrap(), Some((b("v20"), 20)));
    // Same timestamp: replaced, and still the latest.
    assert_eq!(v.put(b"k", Some(b("v20b")), 20, &mut *out).unwrap(), PutOutcome::Latest);
    assert_eq!(v.get(b"k").unwrap(), Some((b("v20b"), 20)));
    assert_eq!(v.put(b"k", Some(b("v15b")), 15, &mut *out).unwrap(), PutOutcome::History);
    assert_eq!(v.get_as_of(b"k", 16).unwrap(), Some((b("v15b"), 15)));
    // Keys that are prefixes of each other stay apart.
    v.put(b"", Some(b("empty")), 5, &mut *out).unwrap();
    v.put(b"kk", Some(b("kk")), 5, &mut *out).unwrap();
    assert_eq!(v.get(b"k").unwrap(), Some((b("v20b"), 20)));
    assert_eq!(v.get(b"").unwrap(), Some((b("empty"), 5)));
    assert_eq!(v.get_as_of(b"kk", 30).unwrap(), Some((b("kk"), 5)));
    assert_eq!(v.stream_time(), 20);
}

#[test]
fn a_tombstone_is_a_version() {
    let (dir, log) = setup();
    let mut out = log.producer().unwrap();
    let mut store = open(&dir.path().join("state"), &log, StoreKind::Persistent);
    let mut v = VersionedStore::open(&mut store, 1000).unwrap();
    v.put(b"k", Some(b("a")), 10, &mut *out).unwrap();
    assert_eq!(v.put(b"k", None, 20, &mut *out).unwrap(), PutOutcome::Latest);
    v.put(b"k", Some(b("c")), 30, &mut *out).unwrap();
    assert_eq!(v.get_as_of(b"k", 15).unwrap(), Some((b("a"), 10)));
    assert_eq!(v.get_as_of(b"k", 25).unwrap(), None, "deleted from 20 to 30");
    assert_eq!(v.get_as_of(b"k", 30).unwrap(), Some((b("c"), 30)));
    // A late tombstone ends the version before it early.
    assert_eq!(v.put(b"k", None, 12, &mut *out).unwrap(), PutOutcome::History);
    assert_eq!(v.get_as_of(b"k", 11).unwrap(), Some((b("a"), 10)));
    assert_eq!(v.get_as_of(b"k", 12).unwrap(), None);
    // A latest tombstone: no latest value.
    v.put(b"k", None, 40, &mut *out).unwrap();
    assert_eq!(v.get(b"k").unwrap(), None);
    assert_eq!(v.get_as_of(b"k", 35).unwrap(), Some((b("c"), 30)));
}

#[test]
fn history_older_than_the_retention_expires() {
    let (dir, log) = setup();
    let mut out = log.producer().unwrap();
    let mut store = open(&dir.path().join("state"), &log, StoreKind::InMemory);
    let mut v = VersionedStore::open(&mut store, 100).unwrap();
    v.put(b"k", Some(b("a")), 0, &mut *out).unwrap();
    v.put(b"k", Some(b("b")), 50, &mut *out).unwrap();
    v.put(b"j", Some(b("j")), 10, &mut *out).unwrap();
    v.put(b"t", Some(b("t")), 10, &mut *out).unwrap();
    v.put(b"t", None, 20, &mut *out).unwrap();
    // Stream time 200: history before 100 is gone.
    v.put(b"other", Some(b("x")), 200, &mut *out).unwrap();
    assert_eq!(v.get_as_of(b"k", 40).unwrap(), None, "older than stream time - retention");
    assert_eq!(v.get_as_of(b"k", 60).unwrap(), Some((b("b"), 50)), "the latest version never expires");
    assert_eq!(v.get_as_of(b"j", 10).unwrap(), Some((b("j"), 10)));
    assert_eq!(v.put(b"k", Some(b("late")), 99, &mut *out).unwrap(), PutOutcome::Expired, "too old to put");
    assert_eq!(v.get(b"k").unwrap(), Some((b("b"), 50)));
    assert_eq!(v.put(b"k", Some(b("c")), 150, &mut *out).unwrap(), PutOutcome::Latest);
    let k: Vec<Version> = v.all().unwrap().into_iter().find(|(key, _)| key == "k").unwrap().1;
    assert_eq!(k, [(50, Some(b("b"))), (150, Some(b("c")))], "the version before 50 is dropped when k is written");
    assert_eq!(v.get_as_of(b"k", 120).unwrap(), Some((b("b"), 50)), "still valid inside the retention");
    // Far enough on, a sweep drops every key's expired history, and the
    // tombstone that ends t's. Other's version from 200 stays: it is valid
    // until 100000, inside the retention.
    v.put(b"other", Some(b("y")), 100_000, &mut *out).unwrap();
    let all: Vec<(Bytes, Vec<i64>)> =
        v.all().unwrap().into_iter().map(|(k, vs)| (k, vs.into_iter().map(|(ts, _)| ts).collect())).collect();
    assert_eq!(all, [(b("j"), vec![10]), (b("k"), vec![150]), (b("other"), vec![200, 100_000])]);
    assert_eq!(v.get_as_of(b"other", 99_950).unwrap(), Some((b("x"), 200)));
}

#[test]
fn a_restore_from_the_changelog_brings_back_the_history_and_stream_time() {
    let (dir, log) = setup();
    let state = dir.path().join("state");
    let mut out = log.producer().unwrap();
    let mut store = open(&state, &log, StoreKind::Persistent);
    let mut v = VersionedStore::open(&mut store, 1000).unwrap();
    v.put(b"k", Some(b("a")), 10, &mut *out).unwrap();
    v.put(b"k", Some(b("c")), 30, &mut *out).unwrap();
    v.put(b"k", Some(b("b")), 20, &mut *out).unwrap();
    v.put(b"k", None, 40, &mut *out).unwrap();
    store.flush(&mut *out).unwrap();
    out.commit(None, &[]).unwrap();
    // A crash: no checkpoint. The store, and its clock, come back from the
    // changelog alone.
    drop(store);
    let mut store = open(&state, &log, StoreKind::Persistent);
    assert_eq!(store.clock().first(), Some(&40), "the clock as of the last commit");
    let mut v = VersionedStore::open(&mut store, 1000).unwrap();
    assert_eq!(v.stream_time(), 40, "stream time is the latest version's");
    assert_eq!(v.get(b"k").unwrap(), None);
    assert_eq!(v.get_as_of(b"k", 25).unwrap(), Some((b("b"), 20)));
    assert_eq!(v.get_as_of(b"k", 35).unwrap(), Some((b("c"), 30)));
    assert_eq!(v.put(b"k", Some(b("d")), 35, &mut *out).unwrap(), PutOutcome::History);
    store.flush(&mut *out).unwrap();
    out.commit(None, &[]).unwrap();
    // A clean stop keeps the clock; the changelog is compacted.
    store.checkpoint(&log).unwrap();
    drop(store);
    let mut store = open(&state, &log, StoreKind::InMemory);
    let mut v = VersionedStore::open(&mut store, 1000).unwrap();
    assert_eq!(v.stream_time(), 40);
    let k = v.all().unwrap().pop().unwrap().1;
    let times: Vec<i64> = k.iter().map(|(ts, _)| *ts).collect();
    assert_eq!(times, [10, 20, 30, 35, 40]);
    assert_eq!(v.get_as_of(b"k", 36).unwrap(), Some((b("d"), 35)));
}
