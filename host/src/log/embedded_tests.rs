//! Tests of the embedded log: appends, commits and offsets, readers,
//! compaction (with and without a retention or a lag), and reopening.

use super::*;

fn rec(v: &str) -> Record {
    Record::new(Some("k"), Some(v.to_owned()), 1)
}

fn read_all(log: &EmbeddedLog, tp: &TopicPartition, from: u64) -> Vec<(u64, String)> {
    let value = |r: &LogRecord| String::from_utf8(r.record.value.clone().unwrap().to_vec()).unwrap();
    read_records(log, tp, from).iter().map(|r| (r.offset, value(r))).collect()
}

/// Every record of `tp` from offset `from`, whole, read a few at a time.
fn read_records(log: &EmbeddedLog, tp: &TopicPartition, from: u64) -> Vec<LogRecord> {
    let mut c = log.consumer().unwrap();
    c.assign(&[(tp.clone(), from)]).unwrap();
    let mut out = Vec::new();
    loop {
        let batch = c.poll(3, Duration::from_millis(1)).unwrap();
        if batch.is_empty() {
            return out;
        }
        out.extend(batch.into_iter().flat_map(|f| f.records));
    }
}

#[test]
fn records_and_offsets_appear_only_at_commit() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), false).unwrap();
    log.create_topic("t", 2).unwrap();
    let tp = TopicPartition::new("t", 1);
    let mut p = log.producer().unwrap();
    p.send(&tp, rec("a")).unwrap();
    p.send(&tp, rec("b")).unwrap();
    assert_eq!(log.end_offset(&tp).unwrap(), 0);
    p.commit(Some(&FixedMember::new("app", &[])), &[(TopicPartition::new("in", 0), 7)]).unwrap();
    assert_eq!(log.end_offset(&tp).unwrap(), 2);
    assert_eq!(log.committed("app", &TopicPartition::new("in", 0)).unwrap(), Some(7));
    p.send(&tp, rec("c")).unwrap();
    p.abort();
    p.send(&tp, rec("d")).unwrap();
    p.commit(None, &[]).unwrap();
    assert_eq!(read_all(&log, &tp, 0), [(0, "a".into()), (1, "b".into()), (2, "d".into())]);
    assert_eq!(read_all(&log, &tp, 1), [(1, "b".into()), (2, "d".into())]);
    // Another handle on the same directory sees the same state.
    let again = EmbeddedLog::open(dir.path(), false).unwrap();
    assert_eq!(read_all(&again, &tp, 2), [(2, "d".into())]);
    assert_eq!(again.topics().unwrap(), [TopicInfo { name: "t".into(), partitions: 2 }]);
}

#[test]
fn compaction_with_a_retention_drops_old_records_too() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), false).unwrap();
    log.create_topic("w", 1).unwrap();
    let tp = TopicPartition::new("w", 0);
    let mut p = log.producer().unwrap();
    for (k, ts) in [("a", 0), ("b", 100), ("a", 150), ("c", 200)] {
        p.send(&tp, Record::new(Some(k.to_owned()), Some(format!("{k}@{ts}")), ts)).unwrap();
    }
    p.commit(None, &[]).unwrap();
    // The latest record is at 200: with 90 ms of retention, b@100 is too
    // old, a@0 is superseded.
    assert_eq!(log.compact(&tp, 0.0, Cleanup { retention_ms: Some(90), ..Cleanup::default() }).unwrap(), 2);
    let kept: Vec<String> = read_all(&log, &tp, 0).into_iter().map(|(_, v)| v).collect();
    assert_eq!(kept, ["a@150", "c@200"]);
}

#[test]
fn compaction_with_a_lag_keeps_young_superseded_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), false).unwrap();
    log.create_topic("v", 1).unwrap();
    let tp = TopicPartition::new("v", 0);
    let mut p = log.producer().unwrap();
    for (k, ts) in [("a", 0), ("a", 100), ("b", 120), ("a", 150), ("b", 200)] {
        p.send(&tp, Record::new(Some(k.to_owned()), Some(format!("{k}@{ts}")), ts)).unwrap();
    }
    p.commit(None, &[]).unwrap();
    // The latest record is at 200: with a 100 ms lag, a@0 is old enough to
    // go; a@100 and b@120 stay though later records have their keys.
    let cleanup = Cleanup { min_compaction_lag_ms: Some(100), ..Cleanup::default() };
    assert_eq!(log.compact(&tp, 0.0, cleanup).unwrap(), 1);
    let kept: Vec<String> = read_all(&log, &tp, 0).into_iter().map(|(_, v)| v).collect();
    assert_eq!(kept, ["a@100", "b@120", "a@150", "b@200"]);
}

#[test]
fn compaction_keeps_each_keys_last_record_and_every_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), false).unwrap();
    log.create_topic("c", 1).unwrap();
    let tp = TopicPartition::new("c", 0);
    let kv = |k: &str, v: &str| Record::new(Some(k.to_owned()), Some(v.to_owned()), 1);
    let mut p = log.producer().unwrap();
    // 0 a1, 1 b1, 2 a2 | 3 c1, 4 (no key), 5 b2 | 6 a3
    for batch in [vec![kv("a", "a1"), kv("b", "b1"), kv("a", "a2")], vec![kv("c", "c1")]] {
        batch.into_iter().for_each(|r| p.send(&tp, r).unwrap());
        p.commit(None, &[]).unwrap();
    }
    p.send(&tp, Record::new(None::<String>, Some("x".to_owned()), 1)).unwrap();
    p.send(&tp, kv("b", "b2")).unwrap();
    p.commit(None, &[]).unwrap();
    p.send(&tp, kv("a", "a3")).unwrap();
    p.commit(Some(&FixedMember::new("g", &[])), &[(tp.clone(), 4)]).unwrap();
    // A consumer reading before the compaction follows it.
    let mut early = log.consumer().unwrap();
    early.assign(&[(tp.clone(), 0)]).unwrap();
    assert_eq!(early.poll(2, Duration::from_millis(1)).unwrap()[0].records.len(), 2);
    let size = |g: &str| fs::metadata(dir.path().join("topics/c").join(g)).map(|m| m.len()).ok();
    let before = size("0.log").unwrap();

    assert_eq!(log.compact(&tp, 0.0, Cleanup::default()).unwrap(), 4, "a1, b1, a2 and the keyless record go");
    let want: Vec<(u64, String)> = vec![(3, "c1".into()), (5, "b2".into()), (6, "a3".into())];
    assert_eq!(read_all(&log, &tp, 0), want);
    assert_eq!(read_all(&log, &tp, 4), want[1..]);
    assert_eq!(read_all(&log, &tp, 6), want[2..]);
    // The reader notices the new file on a poll: poll until it returns
    // records (a 1 ms poll could come back empty on a busy machine).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut rest: Vec<u64> = Vec::new();
    while rest.is_empty() && std::time::Instant::now() < deadline {
        rest = early
            .poll(10, Duration::from_millis(50))
            .unwrap()
            .iter()
            .flat_map(|f| f.records.iter().map(|r| r.offset))
            .collect();
    }
    assert_eq!(rest, [3, 5, 6], "the early reader goes on from offset 2 in the new file");
    assert_eq!(log.end_offset(&tp).unwrap(), 7);
    assert_eq!(log.committed("g", &tp).unwrap(), Some(4));
    assert!(size("0.log").is_none() && size("0.1.log").unwrap() < before, "the old file is gone");
    assert_eq!(log.compact(&tp, 0.0, Cleanup::default()).unwrap(), 0, "nothing new to compact");

    // Appends continue the offsets; a reopened log replays the compaction.
    p.send(&tp, kv("c", "c2")).unwrap();
    p.commit(None, &[]).unwrap();
    let again = EmbeddedLog::open(dir.path(), false).unwrap();
    let mut all = want.clone();
    all.push((7, "c2".into()));
    assert_eq!(read_all(&again, &tp, 0), all);
    assert_eq!(again.compact(&tp, 0.0, Cleanup::default()).unwrap(), 1, "c1 goes now");
    assert_eq!(read_all(&log, &tp, 0), [(5, "b2".into()), (6, "a3".into()), (7, "c2".into())]);
}

#[test]
fn compaction_runs_while_commits_land() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), false).unwrap();
    log.create_topic("c", 1).unwrap();
    let tp = TopicPartition::new("c", 0);
    let n = 3000u64;
    let writer = {
        let (log, tp) = (log.clone(), tp.clone());
        std::thread::spawn(move || {
            let mut p = log.producer().unwrap();
            for i in 0..n {
                // Record i has key i % 10 and value i.
                p.send(&tp, Record::new(Some(format!("k{}", i % 10)), Some(i.to_string()), 1)).unwrap();
                if i % 7 == 6 {
                    p.commit(None, &[]).unwrap();
                }
            }
            p.commit(None, &[]).unwrap();
        })
    };
    let mut dropped = 0;
    while !writer.is_finished() {
        dropped += log.compact(&tp, 0.0, Cleanup::default()).unwrap();
    }
    writer.join().unwrap();
    dropped += log.compact(&tp, 0.0, Cleanup::default()).unwrap();
    assert!(dropped > 0);
    // Every record left is the one written at its offset, and each key's
    // last record is there: nothing was lost or renumbered.
    let left = read_all(&log, &tp, 0);
    assert_eq!(left.len(), 10);
    assert!(left.iter().all(|(o, v)| *v == o.to_string()), "{left:?}");
    assert_eq!(left.iter().map(|(o, _)| *o).collect::<Vec<_>>(), (n - 10..n).collect::<Vec<_>>());
    assert_eq!(log.end_offset(&tp).unwrap(), n);
    // A high threshold leaves a freshly compacted partition alone.
    let mut p = log.producer().unwrap();
    p.send(&tp, Record::new(Some("k0"), Some("again".to_owned()), 1)).unwrap();
    p.commit(None, &[]).unwrap();
    assert_eq!(log.compact(&tp, 0.5, Cleanup::default()).unwrap(), 0, "1 dirty record of 11 is below half");
    assert_eq!(log.compact(&tp, 0.0, Cleanup::default()).unwrap(), 1);
}

#[test]
fn uncommitted_bytes_and_torn_journal_lines_are_ignored_then_cut() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), false).unwrap();
    log.create_topic("t", 1).unwrap();
    let tp = TopicPartition::new("t", 0);
    let mut p = log.producer().unwrap();
    p.send(&tp, rec("a")).unwrap();
    p.commit(None, &[]).unwrap();
    // A process died mid-commit: garbage after the committed end, half a journal line.
    let part = log.partition_path("t", 0, 0);
    OpenOptions::new().append(true).open(&part).unwrap().write_all(b"garbage").unwrap();
    OpenOptions::new().append(true).open(log.journal_path()).unwrap().write_all(b"0000 {\"comm").unwrap();
    let reopened = EmbeddedLog::open(dir.path(), false).unwrap();
    assert_eq!(read_all(&reopened, &tp, 0), [(0, "a".into())]);
    let mut p = reopened.producer().unwrap();
    p.send(&tp, rec("b")).unwrap();
    p.commit(None, &[]).unwrap();
    let third = EmbeddedLog::open(dir.path(), false).unwrap();
    assert_eq!(read_all(&third, &tp, 0), [(0, "a".into()), (1, "b".into())]);
}

#[test]
fn rejects_bad_topics() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), false).unwrap();
    assert!(matches!(log.create_topic("a/b", 1), Err(LogError::InvalidTopic { .. })));
    assert!(matches!(log.create_topic("a", 0), Err(LogError::InvalidTopic { .. })));
    log.create_topic("a", 3).unwrap();
    assert_eq!(log.create_topic("a", 1).unwrap_err().to_string(), "topic 'a' already exists with 3 partition(s)");
    let mut p = log.producer().unwrap();
    assert!(matches!(p.send(&TopicPartition::new("a", 3), rec("x")), Err(LogError::UnknownPartition { .. })));
    assert!(matches!(p.send(&TopicPartition::new("nope", 0), rec("x")), Err(LogError::UnknownTopic(_))));
}

#[test]
fn large_records_cross_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), false).unwrap();
    log.create_topic("big", 1).unwrap();
    let tp = TopicPartition::new("big", 0);
    let mut p = log.producer().unwrap();
    let big = "x".repeat(READ_CHUNK + 10);
    p.send(&tp, rec("small")).unwrap();
    p.send(&tp, rec(&big)).unwrap();
    p.send(&tp, rec("tail")).unwrap();
    p.commit(None, &[]).unwrap();
    let got = read_all(&log, &tp, 0);
    assert_eq!(got.len(), 3);
    assert_eq!(got[1].1.len(), big.len());
    assert_eq!(got[2], (2, "tail".into()));
}

#[test]
fn deleted_topics_and_groups_are_gone_and_names_can_be_used_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), false).unwrap();
    log.create_topic("changelog", 1).unwrap();
    log.create_topic("input", 1).unwrap();
    let (tp, input) = (TopicPartition::new("changelog", 0), TopicPartition::new("input", 0));
    let mut p = log.producer().unwrap();
    p.send(&tp, rec("old")).unwrap();
    p.commit(Some(&FixedMember::new("app", &[])), &[(input.clone(), 5), (tp.clone(), 1)]).unwrap();
    p.commit(Some(&FixedMember::new("other", &[])), &[(input.clone(), 3)]).unwrap();
    log.delete_topics(&["changelog".to_owned(), "never-was".to_owned()]).unwrap();
    log.delete_group("app").unwrap();
    assert_eq!(log.topics().unwrap(), [TopicInfo { name: "input".into(), partitions: 1 }]);
    assert_eq!(log.committed("app", &input).unwrap(), None, "the group's offsets are gone");
    assert_eq!(log.committed("other", &input).unwrap(), Some(3), "other groups keep theirs");
    assert!(!dir.path().join("topics").join("changelog").exists(), "its files are removed");
    // The name is free again, empty; a handle opened later agrees.
    log.create_topic("changelog", 1).unwrap();
    let mut p = log.producer().unwrap();
    p.send(&tp, rec("new")).unwrap();
    p.commit(None, &[]).unwrap();
    let again = EmbeddedLog::open(dir.path(), false).unwrap();
    assert_eq!(read_all(&again, &tp, 0), [(0, "new".into())]);
    assert_eq!(again.committed("app", &tp).unwrap(), None);
    assert_eq!(again.committed("other", &input).unwrap(), Some(3));
}

#[test]
fn a_compaction_that_drops_nothing_is_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), false).unwrap();
    log.create_topic("w", 1).unwrap();
    let tp = TopicPartition::new("w", 0);
    let mut p = log.producer().unwrap();
    for i in 0..10 {
        p.send(&tp, Record::new(Some(format!("k{i}")), Some(i.to_string()), 1)).unwrap();
    }
    p.commit(None, &[]).unwrap();
    let examined = |log: &EmbeddedLog| {
        let state = log.read_state();
        let p = state.partition(&tp).unwrap();
        (p.generation, p.compacted_at, p.kept)
    };
    // Every key is new: nothing goes, the file stays, and the log notes how
    // far it looked (a reopened log too).
    assert_eq!(log.compact(&tp, 0.5, Cleanup::default()).unwrap(), 0);
    assert_eq!(examined(&log), (0, 10, 10));
    assert_eq!(examined(&EmbeddedLog::open(dir.path(), false).unwrap()), (0, 10, 10));
    // So one more record is below half of the partition and waits...
    p.send(&tp, Record::new(Some("k0"), Some("again".to_owned()), 1)).unwrap();
    p.commit(None, &[]).unwrap();
    assert_eq!(log.compact(&tp, 0.5, Cleanup::default()).unwrap(), 0);
    assert_eq!(examined(&log), (0, 10, 10), "not looked at again");
    // ...until a full compaction, which drops k0's first record.
    assert_eq!(log.compact(&tp, 0.0, Cleanup::default()).unwrap(), 1);
    assert_eq!(read_all(&log, &tp, 0).len(), 10);
    // Ten more records, one of them a repeat: half the partition is dirty,
    // but a background pass would rewrite twenty records to drop one, and
    // waits; a full compaction drops it.
    for i in 10..20 {
        let key = if i == 19 { "k1".to_owned() } else { format!("k{i}") };
        p.send(&tp, Record::new(Some(key), Some(i.to_string()), 1)).unwrap();
    }
    p.commit(None, &[]).unwrap();
    assert_eq!(log.compact(&tp, 0.5, Cleanup::default()).unwrap(), 0, "one repeat in twenty does not pay");
    assert_eq!(examined(&log), (1, 21, 20));
    assert_eq!(log.compact(&tp, 0.0, Cleanup::default()).unwrap(), 1);
}

#[test]
fn compaction_keeps_exactly_what_the_cleanup_policy_says() {
    // A small xorshift generator: the same cases on every run.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for case in 0..24 {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), false).unwrap();
        log.create_topic("c", 1).unwrap();
        let tp = TopicPartition::new("c", 0);
        // Few keys (each key's last record near the end), or many.
        let n = 1 + next(3000);
        let keys = 1 + next(if case % 2 == 0 { 60 } else { n });
        let mut written = Vec::new();
        let mut p = log.producer().unwrap();
        let mut time = 0i64;
        for i in 0..n {
            time += next(20) as i64 - 5; // now and then back in time
            let key = (next(20) > 0).then(|| Bytes::from(format!("key-{}", next(keys))));
            let value = (next(7) > 0).then(|| Bytes::from(format!("value {i}")));
            let headers = match next(4) {
                0 => vec![crate::record::Header { name: "h".into(), value: Some(Bytes::from(format!("{i}"))) }],
                _ => Vec::new(),
            };
            let record = Record { key, value, timestamp: time, headers };
            p.send(&tp, record.clone()).unwrap();
            written.push(record);
            if next(50) == 0 {
                p.commit(None, &[]).unwrap();
            }
        }
        p.commit(None, &[]).unwrap();
        let cleanup = match case % 3 {
            0 => Cleanup::default(),
            1 => Cleanup { min_compaction_lag_ms: Some(next(time.max(1) as u64) as i64), ..Cleanup::default() },
            _ => Cleanup { retention_ms: Some(next(time.max(1) as u64) as i64), ..Cleanup::default() },
        };
        // The model: each key's last record stays, and a superseded one
        // within the lag; with a retention, none older than it.
        let latest = written.iter().map(|r| r.timestamp).max().unwrap();
        let oldest = cleanup.retention_ms.map_or(i64::MIN, |r| latest - r);
        let young = cleanup.min_compaction_lag_ms.map_or(i64::MAX, |lag| latest - lag);
        let last: HashMap<&Bytes, usize> =
            written.iter().enumerate().filter_map(|(i, r)| Some((r.key.as_ref()?, i))).collect();
        let want: Vec<(u64, Record)> = written
            .iter()
            .enumerate()
            .filter(|(i, r)| {
                r.key.as_ref().is_some_and(|k| last[k] == *i || r.timestamp >= young) && r.timestamp >= oldest
            })
            .map(|(i, r)| (i as u64, r.clone()))
            .collect();
        let dropped = log.compact(&tp, 0.0, cleanup).unwrap();
        let got = |from: u64| -> Vec<(u64, Record)> {
            read_records(&log, &tp, from).into_iter().map(|r| (r.offset, r.record)).collect()
        };
        assert_eq!(got(0), want, "case {case}: {n} records, {keys} keys, {cleanup:?}");
        assert_eq!(dropped, n - want.len() as u64, "case {case}");
        // Reads from any offset start at the first record kept at or after it.
        let from = next(n);
        let rest: Vec<(u64, Record)> = want.iter().filter(|(o, _)| *o >= from).cloned().collect();
        assert_eq!(got(from), rest, "case {case}, from {from}");
        assert_eq!(log.end_offset(&tp).unwrap(), n);
    }
}

#[test]
fn a_tombstone_goes_once_a_rewrite_kept_it_the_delete_retention_ago() {
    for (keep, gone) in [(0, true), (3_600_000, false)] {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), false).unwrap();
        log.create_topic("c", 1).unwrap();
        let tp = TopicPartition::new("c", 0);
        let cleanup = Cleanup { delete_retention_ms: Some(keep), ..Cleanup::default() };
        let put = |k: &str, v: Option<&str>| Record::new(Some(k.to_owned()), v.map(str::to_owned), 1);
        let offsets = |log: &EmbeddedLog| read_records(log, &tp, 0).iter().map(|r| r.offset).collect::<Vec<_>>();
        let mut p = log.producer().unwrap();
        // 0 a1, 1 b1, 2 a deleted, 3 c1
        for r in [put("a", Some("a1")), put("b", Some("b1")), put("a", None), put("c", Some("c1"))] {
            p.send(&tp, r).unwrap();
        }
        p.commit(None, &[]).unwrap();
        // The first rewrite keeps the tombstone: a reader behind may need it.
        assert_eq!(log.compact(&tp, 0.0, cleanup).unwrap(), 1);
        assert_eq!(offsets(&log), [1, 2, 3]);
        p.send(&tp, put("d", Some("d1"))).unwrap();
        p.commit(None, &[]).unwrap();
        // Opened again: the journal remembers when the tombstone was kept.
        let again = EmbeddedLog::open(dir.path(), false).unwrap();
        let dropped = again.compact(&tp, 0.0, cleanup).unwrap();
        if gone {
            assert_eq!((dropped, offsets(&again)), (1, vec![1, 3, 4]), "the delete retention passed");
        } else {
            assert_eq!((dropped, offsets(&again)), (0, vec![1, 2, 3, 4]), "within the delete retention");
        }
    }
    // Without a delete retention, tombstones stay.
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), false).unwrap();
    log.create_topic("c", 1).unwrap();
    let tp = TopicPartition::new("c", 0);
    let mut p = log.producer().unwrap();
    p.send(&tp, Record::new(Some("a"), None::<String>, 1)).unwrap();
    p.commit(None, &[]).unwrap();
    for _ in 0..2 {
        assert_eq!(log.compact(&tp, 0.0, Cleanup::default()).unwrap(), 0);
    }
    assert_eq!(read_records(&log, &tp, 0).len(), 1);
}
