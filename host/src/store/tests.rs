//! Tests of task stores: changelogs, checkpoints, restores, the record
//! cache in front of the local store, and merged range reads.

use super::*;

pub(super) fn exercise(store: &mut dyn KeyValueStore) {
    let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
    // A reader taken before the writes sees them, from another thread.
    let reader = store.reader();
    store.write(&[(b("b"), Some(b("2"))), (b("a"), Some(b("1"))), (b("c"), Some(b("3")))]).unwrap();
    store.write(&[(b("c"), None), (b("a"), Some(b("one")))]).unwrap();
    assert_eq!(store.get(b"a").unwrap(), Some(b"one".to_vec()));
    assert_eq!(store.get(b"c").unwrap(), None);
    let all = store.range(None, None, usize::MAX).unwrap();
    assert_eq!(all, [(b"a".to_vec(), b"one".to_vec()), (b"b".to_vec(), b"2".to_vec())]);
    assert_eq!(store.range(None, None, 1).unwrap(), [(b"a".to_vec(), b"one".to_vec())]);
    assert_eq!(store.range(Some(b"b"), None, usize::MAX).unwrap().len(), 1);
    assert_eq!(store.range(None, Some(b"b"), usize::MAX).unwrap().len(), 1);
    let (got, scanned) = std::thread::scope(|s| {
        s.spawn(|| (reader.get(b"a").unwrap(), reader.range(Some(b"a"), Some(b"c"), 10).unwrap())).join().unwrap()
    });
    assert_eq!(got, Some(b"one".to_vec()));
    assert_eq!(scanned, all);
    assert_eq!(reader.range(None, None, 1).unwrap().len(), 1);
    assert!(reader.range(Some(b"b"), Some(b"a"), 10).unwrap().is_empty(), "an empty range");
    store.clear().unwrap();
    assert!(store.range(None, None, usize::MAX).unwrap().is_empty());
    assert_eq!(reader.get(b"a").unwrap(), None, "the reader sees the clear");
}

#[test]
fn memory_store_behaves() {
    exercise(&mut MemoryStore::default());
}

#[test]
fn entries_keep_their_timestamps_through_flush_sync_and_restore() {
    use crate::log::EmbeddedLog;
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path().join("log"), false).unwrap();
    log.create_topic("app-s-changelog", 1).unwrap();
    let task = TaskId { subtopology: 0, partition: 0 };
    let state = dir.path().join("state");
    let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
    let mut store =
        TaskStore::open(&state, "app", &StoreSpec::new("s", StoreKind::Persistent), task, 1 << 20, &log).unwrap();
    let mut out = log.producer().unwrap();
    store.put(b("a"), Some(b("1")), 100, &mut *out).unwrap();
    store.put(b("b"), Some(b("2")), 200, &mut *out).unwrap();
    store.put(b("a"), Some(b("3")), 150, &mut *out).unwrap();
    store.put(b("b"), None, 250, &mut *out).unwrap();
    assert_eq!(store.get_timestamped(b"a").unwrap(), Some((b("3"), 150)));
    assert_eq!(store.get(b"b").unwrap(), None, "a delete reads as absent");
    let flushed: Vec<(Option<Bytes>, i64)> =
        store.flush(&mut *out).unwrap().into_iter().map(|r| (r.value, r.timestamp)).collect();
    assert_eq!(flushed, [(Some(b("3")), 150), (None, 250)], "downstream records carry the update's time");
    out.commit(None, &[]).unwrap();
    store.checkpoint(&log).unwrap();
    assert_eq!(store.range(None, None, 10).unwrap(), [(b"a".to_vec(), b"3".to_vec())]);
    // Without a checkpoint the store is rebuilt from the changelog, whose
    // records carry the timestamps.
    drop(store);
    std::fs::remove_file(state.join("app").join("0_0").join("s").join(CHECKPOINT)).unwrap();
    let mut store =
        TaskStore::open(&state, "app", &StoreSpec::new("s", StoreKind::Persistent), task, 1 << 20, &log).unwrap();
    assert_eq!(store.get_timestamped(b"a").unwrap(), Some((b("3"), 150)));
    assert_eq!(store.get(b"b").unwrap(), None);
}

#[test]
fn the_owners_clock_survives_a_clean_stop_and_a_crash() {
    use crate::log::EmbeddedLog;
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path().join("log"), false).unwrap();
    let task = TaskId { subtopology: 0, partition: 0 };
    let state = dir.path().join("state");
    for (name, kind) in [("p", StoreKind::Persistent), ("m", StoreKind::InMemory)] {
        log.create_topic(&changelog_topic("app", name), 1).unwrap();
        let open = || TaskStore::open(&state, "app", &StoreSpec::new(name, kind), task, 1 << 20, &log).unwrap();
        let mut store = open();
        assert!(store.clock().is_empty());
        store.set_clock(&[7, -1, i64::MAX]);
        store.checkpoint(&log).unwrap();
        drop(store);
        let store = open();
        assert_eq!(store.clock(), [7, -1, i64::MAX], "{kind:?}: back after a clean stop");
        // No checkpoint this time: a crash. The clock that went to the
        // changelog with the last commit comes back.
        let mut store = store;
        let mut out = log.producer().unwrap();
        store.set_clock(&[9, 1]);
        store.flush(&mut *out).unwrap();
        out.commit(None, &[]).unwrap();
        store.set_clock(&[10, 1]);
        drop(store);
        assert_eq!(open().clock(), [9, 1], "{kind:?}: as of the last commit after a crash");
        assert!(
            committed_contents(&log, "app", name, ChangelogLayout::Plain).unwrap().is_empty(),
            "a clock is no entry"
        );
    }
}

#[test]
fn window_changelog_keys_carry_kafka_streams_sequence_number() {
    use crate::log::EmbeddedLog;
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path().join("log"), false).unwrap();
    let task = TaskId { subtopology: 0, partition: 0 };
    let state = dir.path().join("state");
    log.create_topic(&changelog_topic("app", "w"), 1).unwrap();
    let spec = StoreSpec {
        segments: Some(Segments { time: KeyTime::WindowStart, retention: 60_000 }),
        ..StoreSpec::new("w", StoreKind::Persistent)
    };
    assert_eq!(spec.changelog_layout(), ChangelogLayout::WindowSequence);
    // Key "k", window start 1000: the store's key is key ++ start.
    let key = Bytes::from([&b"k"[..], &1000i64.to_be_bytes()].concat());
    let mut store = TaskStore::open(&state, "app", &spec, task, 1 << 20, &log).unwrap();
    let mut out = log.producer().unwrap();
    store.put(key.clone(), Some(Bytes::from_static(b"v")), 1000, &mut *out).unwrap();
    store.flush(&mut *out).unwrap();
    out.commit(None, &[]).unwrap();
    drop(store);
    // The changelog's key is key ++ start ++ sequence number 0, as
    // Kafka Streams' WindowKeySchema writes it.
    let mut logged = Vec::new();
    read_to_end(&log, &[(TopicPartition::new(&changelog_topic("app", "w"), 0), 0)], |fetched| {
        logged.extend(fetched.into_iter().flat_map(|f| f.records).filter_map(|r| r.record.key));
        Ok::<_, LogError>(())
    })
    .unwrap();
    assert_eq!(logged, [Bytes::from([&key[..], &[0, 0, 0, 0]].concat())]);
    // A restore and the committed contents give the store's key back.
    let mut store = TaskStore::open(&state, "app", &spec, task, 1 << 20, &log).unwrap();
    assert_eq!(store.get(&key).unwrap(), Some(Bytes::from_static(b"v")));
    assert_eq!(
        committed_contents(&log, "app", "w", ChangelogLayout::WindowSequence).unwrap().into_keys().collect::<Vec<_>>(),
        [key.to_vec()]
    );
}

#[test]
fn a_range_merges_pending_updates_over_the_local_entries() {
    let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
    let stamp = |v: Option<&str>, ts: i64| Some(stamped::encode(v.map(str::as_bytes), ts));
    let local: Vec<Entry> = ["a", "c", "e", "g"]
        .iter()
        .map(|k| (k.as_bytes().to_vec(), stamped::encode(Some(format!("old-{k}").as_bytes()), 1).to_vec()))
        .collect();
    // A new key, a replaced one, a stamped delete and a plain delete.
    let pending = vec![
        (b("b"), stamp(Some("new-b"), 2)),
        (b("c"), stamp(Some("new-c"), 3)),
        (b("e"), stamp(None, 4)),
        (b("g"), None),
    ];
    let read = |n: usize| Ok(local.iter().take(n).cloned().collect());
    let merged = merge_pending(pending.clone(), 10, read).unwrap();
    let show: Vec<(String, String, i64)> = merged
        .into_iter()
        .map(|(k, v, ts)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap(), ts))
        .collect();
    assert_eq!(
        show,
        [("a".into(), "old-a".into(), 1), ("b".into(), "new-b".into(), 2), ("c".into(), "new-c".into(), 3)]
    );
    // The limit counts what is left after deletes.
    let read = |n: usize| Ok(local.iter().take(n).cloned().collect());
    assert_eq!(merge_pending(pending, 2, read).unwrap().len(), 2);
}

#[test]
fn a_full_window_cache_forgets_what_is_past_the_retention_instead_of_writing_it() {
    use crate::log::EmbeddedLog;
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path().join("log"), false).unwrap();
    let task = TaskId { subtopology: 0, partition: 0 };
    let key = |i: i64| Bytes::from([&b"k"[..], &(i * 1000).to_be_bytes()].concat());
    let value = Bytes::from_static(&[7; 20]);
    // One window a second into a cache of about 40 entries, with a
    // retention of `windows` seconds: the local store's writes and the
    // windows a read finds.
    let run = |name: &str, windows: i64| {
        log.create_topic(&changelog_topic("app", name), 1).unwrap();
        let spec = StoreSpec {
            segments: Some(Segments { time: KeyTime::WindowStart, retention: windows * 1000 }),
            ..StoreSpec::new(name, StoreKind::Persistent)
        };
        let mut store = TaskStore::open(&dir.path().join("state"), "app", &spec, task, 4000, &log).unwrap();
        let mut out = log.producer().unwrap();
        for i in 0..400 {
            store.put(key(i), Some(value.clone()), i * 1000, &mut *out).unwrap();
            store.flush(&mut *out).unwrap();
        }
        out.commit(None, &[]).unwrap();
        let changelog = log.end_offset(&TopicPartition::new(&changelog_topic("app", name), 0)).unwrap();
        assert_eq!(changelog, 400, "{name}: every window is in the changelog");
        let found: Vec<bool> = (0..400).map(|i| store.get(&key(i)).unwrap().is_some()).collect();
        (store.local_writes, found)
    };
    // Ten windows' retention: the cache holds them all, and forgets the
    // older ones each time it is full.
    let (writes, found) = run("short", 10);
    assert_eq!(writes, 0, "entries past the retention were written");
    assert!(found.iter().enumerate().all(|(i, &f)| f == (i >= 390)), "only windows within the retention read");
    // A hundred windows' retention, more than the cache holds: it is
    // written out, and reads find what is within the retention there.
    let (writes, found) = run("long", 100);
    assert!(writes > 300, "the cache was written out ({writes})");
    assert!(found.iter().enumerate().all(|(i, &f)| f == (i >= 300)), "only windows within the retention read");
}

#[test]
fn entries_sort_in_the_byte_order_of_their_keys() {
    // Keys of every length around 16 bytes, sharing prefixes, with bytes
    // that differ in their high bit, and zeros that padding could confuse.
    let mut keys: Vec<Vec<u8>> = vec![Vec::new(), vec![0], vec![0; 16], vec![0; 17]];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for len in 0..=24 {
        for _ in 0..12 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            keys.push((0..len).map(|i| [0, b'a', 0x7f, 0x80, 0xff][((seed >> (i % 60)) % 5) as usize]).collect());
        }
    }
    let mut entries: Vec<(Bytes, Option<Bytes>)> =
        keys.iter().enumerate().map(|(i, k)| (Bytes::from(k.clone()), Some(Bytes::from(i.to_string())))).collect();
    let mut want = entries.clone();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    sort_by_key(&mut entries);
    let keys_of = |es: &[(Bytes, Option<Bytes>)]| es.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(keys_of(&entries), keys_of(&want));
    assert_eq!(entries.len(), keys.len(), "every entry once");
    for (k, v) in &entries {
        let i: usize = std::str::from_utf8(v.as_deref().unwrap()).unwrap().parse().unwrap();
        assert_eq!(&k[..], &keys[i][..], "each value stays with its key");
    }
}
