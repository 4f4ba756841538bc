//! Segmented local storage for window stores, as Kafka Streams' segmented
//! stores: entries are split by the time their key carries into segments of
//! a fixed interval (half the retention, at least a minute), each its own
//! RocksDB database or in-memory map. Once the store has seen a time more
//! than the retention past a segment, the whole segment is dropped at once
//! (a directory removed, not a delete per window), and writes for windows
//! that old are ignored. Reads see only entries within the retention (as
//! Kafka Streams' segmented stores, which read from the observed time less
//! the retention): an entry past it may still sit in a live segment, or may
//! never have been written ([`KeyValueStore::observe`]), and no read tells
//! the two apart.
//!
//! The changelog is not segmented: it holds the same keys, and a restore
//! writes them through here, so expired windows never come back.
//!
//! Readers on other threads see the segments through a shared view, which
//! the store updates as it opens and drops segments: a segment leaves the
//! view before it is closed and its directory removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use super::memory::MemoryStore;
use super::rocks::RocksStore;
use super::{Entry, KeyValueStore, StoreError, StoreKind, StoreReader};

/// Where a window store's keys carry the time that places them in a
/// segment (see [`crate::window`] for the layouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTime {
    /// The last 8 bytes: a time-windowed key's window start.
    WindowStart,
    /// The 8 bytes 16 from the end: a session key's end.
    SessionEnd,
    /// The 8 bytes 12 from the end: a stream-stream join record's timestamp
    /// (a sequence number follows it).
    JoinRecord,
}

impl KeyTime {
    /// The length of what follows the record key in a key: the time, and
    /// whatever comes after it.
    pub fn suffix(self) -> usize {
        match self {
            KeyTime::WindowStart => 8,
            KeyTime::SessionEnd => 16,
            KeyTime::JoinRecord => 12,
        }
    }

    /// The time `key` carries, if it is long enough to carry one.
    pub fn of(self, key: &[u8]) -> Option<i64> {
        let at = key.len().checked_sub(self.suffix())?;
        Some(i64::from_be_bytes(key[at..at + 8].try_into().ok()?))
    }
}

/// How a window store is segmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    /// Where keys carry their time.
    pub time: KeyTime,
    /// How long past the latest time the store has seen it keeps a window,
    /// in ms.
    pub retention: i64,
}

impl Segments {
    /// The time a segment spans: half the retention, at least a minute (as
    /// Kafka Streams).
    pub fn interval(&self) -> i64 {
        (self.retention / 2).max(60_000)
    }

    fn segment_of(&self, time: i64) -> i64 {
        time.max(0) / self.interval()
    }

    /// True if an entry of `time` is past the retention once the store
    /// has seen `observed`.
    pub fn is_expired(&self, time: i64, observed: i64) -> bool {
        time <= observed.saturating_sub(self.retention)
    }

    /// True if `key` is past the retention once the store has seen
    /// `observed`; keys too short to carry a time never are.
    pub fn key_expired(&self, key: &[u8], observed: i64) -> bool {
        self.time.of(key).is_some_and(|t| self.is_expired(t, observed))
    }
}

/// Window storage split into time segments.
pub struct SegmentedStore {
    segments: Segments,
    kind: StoreKind,
    dir: PathBuf,
    open: BTreeMap<i64, Box<dyn KeyValueStore>>,
    /// The latest time of a key written (at a start, the start of the
    /// newest segment: never later than what the store saw, so nothing live
    /// is dropped before new writes say so).
    observed: i64,
    /// No key stored carries a later time (at a start, the end of the newest
    /// segment): lookups of later keys need no search.
    newest: i64,
    /// Readers of the open segments, by id, as readers see them.
    view: Arc<SegmentView>,
}

/// What readers of a [`SegmentedStore`] see: how keys place entries in
/// segments, and a reader of each open segment.
struct SegmentView {
    segments: Segments,
    /// The store's observed time, for reads to leave out what is past the
    /// retention.
    observed: AtomicI64,
    readers: RwLock<BTreeMap<i64, Arc<dyn StoreReader>>>,
}

impl SegmentedStore {
    /// Opens the segments under `dir` (RocksDB databases named
    /// `segment-<id>`, for a persistent store).
    pub fn open(dir: &Path, kind: StoreKind, segments: Segments) -> Result<SegmentedStore, StoreError> {
        let view = Arc::new(SegmentView { segments, observed: AtomicI64::new(-1), readers: RwLock::default() });
        let mut store = SegmentedStore {
            segments,
            kind,
            dir: dir.to_owned(),
            open: BTreeMap::new(),
            observed: -1,
            newest: -1,
            view,
        };
        if kind == StoreKind::Persistent && dir.exists() {
            let entries = std::fs::read_dir(dir).map_err(|source| StoreError::Io { path: dir.to_owned(), source })?;
            for entry in entries {
                let entry = entry.map_err(|source| StoreError::Io { path: dir.to_owned(), source })?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(id) = name.strip_prefix("segment-").and_then(|id| id.parse::<i64>().ok()) {
                    store.add(id, Box::new(RocksStore::open_windowed(&entry.path(), segments.time)?));
                }
            }
            if let Some(&last) = store.open.keys().next_back() {
                store.observed = last * segments.interval();
                store.newest = (last + 1) * segments.interval() - 1;
                store.view.observed.store(store.observed, Ordering::Relaxed);
            }
        }
        Ok(store)
    }

    /// The segments open now, by id (for tests and metrics).
    pub fn segment_ids(&self) -> Vec<i64> {
        self.open.keys().copied().collect()
    }

    fn segment_path(&self, id: i64) -> PathBuf {
        self.dir.join(format!("segment-{id}"))
    }

    /// Takes in a later observed time: the view's reads follow, and
    /// segments past the retention go.
    fn advance(&mut self, observed: i64) -> Result<(), StoreError> {
        if self.observe_time(observed) {
            self.drop_expired()?;
        }
        Ok(())
    }

    /// Takes in a later observed time for the store and its view; true if
    /// `time` was later.
    fn observe_time(&mut self, time: i64) -> bool {
        let later = time > self.observed;
        if later {
            self.observed = time;
            self.view.observed.store(time, Ordering::Relaxed);
        }
        later
    }

    /// The first `limit` entries of `ranges`, in key order, leaving out
    /// those past the retention.
    fn live(
        &self,
        ranges: impl Iterator<Item = Result<Vec<Entry>, StoreError>>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        live(&self.segments, self.observed, ranges, limit)
    }

    /// The oldest segment still live.
    fn first_live(&self) -> i64 {
        self.segments.segment_of(self.observed - self.segments.retention)
    }

    fn segment(&mut self, id: i64) -> Result<&mut Box<dyn KeyValueStore>, StoreError> {
        if !self.open.contains_key(&id) {
            let store: Box<dyn KeyValueStore> = match self.kind {
                StoreKind::Persistent => {
                    Box::new(RocksStore::open_windowed(&self.segment_path(id), self.segments.time)?)
                }
                StoreKind::InMemory => Box::new(MemoryStore::default()),
            };
            self.add(id, store);
        }
        Ok(self.open.get_mut(&id).expect("opened above"))
    }

    /// Takes an open segment in, readers too.
    fn add(&mut self, id: i64, segment: Box<dyn KeyValueStore>) {
        self.view.readers.write().unwrap_or_else(|p| p.into_inner()).insert(id, segment.reader());
        self.open.insert(id, segment);
    }

    /// Takes segment `id` out of the readers' view, then out of the store.
    fn remove(&mut self, id: i64) -> Option<Box<dyn KeyValueStore>> {
        self.view.readers.write().unwrap_or_else(|p| p.into_inner()).remove(&id);
        self.open.remove(&id)
    }

    /// Drops every segment older than the first live one.
    fn drop_expired(&mut self) -> Result<(), StoreError> {
        let first_live = self.first_live();
        let expired: Vec<i64> = self.open.range(..first_live).map(|(&id, _)| id).collect();
        for id in expired {
            // Closed before its directory goes.
            drop(self.remove(id));
            let path = self.segment_path(id);
            if path.exists() {
                std::fs::remove_dir_all(&path).map_err(|source| StoreError::Io { path, source })?;
            }
            tracing::debug!("dropped window segment {id} of {}", self.dir.display());
        }
        Ok(())
    }
}

/// The first `limit` entries of several segments' ranges, in key order (a
/// key lives in one segment only), leaving out those past the retention
/// once the store has seen `observed`. (Each range is read with the
/// limit, so entries left out may leave it short: callers that limit read
/// within the retention.)
fn live(
    segments: &Segments,
    observed: i64,
    ranges: impl Iterator<Item = Result<Vec<Entry>, StoreError>>,
    limit: usize,
) -> Result<Vec<Entry>, StoreError> {
    let mut merged = BTreeMap::new();
    for range in ranges {
        merged.extend(range?.into_iter().filter(|(k, _)| !segments.key_expired(k, observed)));
    }
    Ok(merged.into_iter().take(limit).collect())
}

impl KeyValueStore for SegmentedStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        // A window later than any written is not here: most lookups of a
        // windowed aggregation are for the newest windows, and need no
        // search.
        let Some(time) = self.segments.time.of(key).filter(|&t| t <= self.newest) else { return Ok(None) };
        if self.segments.is_expired(time, self.observed) {
            return Ok(None);
        }
        match self.open.get(&self.segments.segment_of(time)) {
            Some(segment) => segment.get(key),
            None => Ok(None),
        }
    }

    fn write(&mut self, batch: &[(Bytes, Option<Bytes>)]) -> Result<(), StoreError> {
        let times: Vec<Option<i64>> = batch.iter().map(|(key, _)| self.segments.time.of(key)).collect();
        if let Some(&latest) = times.iter().flatten().max() {
            self.newest = self.newest.max(latest);
            self.observe_time(latest);
        }
        // Each entry's segment, if it is still live.
        let first_live = self.first_live();
        let ids: Vec<Option<i64>> =
            times.into_iter().map(|t| t.map(|t| self.segments.segment_of(t)).filter(|&id| id >= first_live)).collect();
        // Most batches fall in one segment: they go as they are.
        if let Some(Some(id)) = ids.first().filter(|&&first| ids.iter().all(|&id| id == first)) {
            self.segment(*id)?.write(batch)?;
            return self.drop_expired();
        }
        let mut by_segment: BTreeMap<i64, Vec<(Bytes, Option<Bytes>)>> = BTreeMap::new();
        for ((key, value), id) in batch.iter().zip(ids) {
            if let Some(id) = id {
                by_segment.entry(id).or_default().push((key.clone(), value.clone()));
            }
        }
        for (id, writes) in by_segment {
            self.segment(id)?.write(&writes)?;
        }
        self.drop_expired()
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.live(self.open.values().map(|s| s.range(from, to, limit)), limit)
    }

    /// Reads only the segments of `times`, and none if they are all later
    /// than any key stored.
    fn key_range(
        &self,
        key: &[u8],
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        limit: usize,
        times: Option<(i64, i64)>,
    ) -> Result<Vec<Entry>, StoreError> {
        let read = |s: &dyn KeyValueStore| s.key_range(key, from, to, limit, None);
        let Some((first, last)) = times else { return self.live(self.open.values().map(|s| read(&**s)), limit) };
        let first = first.max(self.observed.saturating_sub(self.segments.retention) + 1);
        if first > self.newest || first > last {
            return Ok(Vec::new());
        }
        let ids = self.segments.segment_of(first)..=self.segments.segment_of(last.min(self.newest));
        self.live(self.open.range(ids).map(|(_, s)| read(&**s)), limit)
    }

    fn observe(&mut self, time: i64) -> Result<(), StoreError> {
        self.advance(time)
    }

    fn persist(&mut self) -> Result<(), StoreError> {
        self.open.values_mut().try_for_each(|s| s.persist())
    }

    fn reader(&self) -> Arc<dyn StoreReader> {
        self.view.clone()
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        self.observed = -1;
        self.newest = -1;
        self.view.observed.store(-1, Ordering::Relaxed);
        self.view.readers.write().unwrap_or_else(|p| p.into_inner()).clear();
        for (id, mut segment) in std::mem::take(&mut self.open) {
            segment.clear()?;
            drop(segment);
            let path = self.segment_path(id);
            if path.exists() {
                std::fs::remove_dir_all(&path).map_err(|source| StoreError::Io { path, source })?;
            }
        }
        Ok(())
    }
}

impl StoreReader for SegmentView {
    /// Holds the view for the read, so no segment is dropped meanwhile.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(time) = self.segments.time.of(key) else { return Ok(None) };
        if self.segments.is_expired(time, self.observed.load(Ordering::Relaxed)) {
            return Ok(None);
        }
        let readers = self.readers.read().unwrap_or_else(|p| p.into_inner());
        match readers.get(&self.segments.segment_of(time)) {
            Some(segment) => segment.get(key),
            None => Ok(None),
        }
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>, StoreError> {
        let readers = self.readers.read().unwrap_or_else(|p| p.into_inner());
        live(
            &self.segments,
            self.observed.load(Ordering::Relaxed),
            readers.values().map(|s| s.range(from, to, limit)),
            limit,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::windowed_key;

    const MIN: i64 = 60_000;

    fn put(store: &mut SegmentedStore, key: &str, start: i64) {
        let k = windowed_key(key.as_bytes(), start);
        store.write(&[(k, Some(Bytes::from(format!("{key}@{start}"))))]).unwrap();
    }

    #[test]
    fn expired_segments_are_dropped_whole_and_late_writes_ignored() {
        for kind in [StoreKind::Persistent, StoreKind::InMemory] {
            let dir = tempfile::tempdir().unwrap();
            // Ten minutes of retention: five-minute segments.
            let segments = Segments { time: KeyTime::WindowStart, retention: 10 * MIN };
            assert_eq!(segments.interval(), 5 * MIN);
            let mut store = SegmentedStore::open(dir.path(), kind, segments).unwrap();
            let reader = store.reader();
            put(&mut store, "a", 0);
            put(&mut store, "b", 4 * MIN);
            put(&mut store, "a", 7 * MIN);
            assert_eq!(store.segment_ids(), [0, 1]);
            assert_eq!(store.range(None, None, 10).unwrap().len(), 3, "{kind:?}: ranges span segments");
            assert_eq!(reader.range(None, None, 10).unwrap(), store.range(None, None, 10).unwrap());
            assert_eq!(reader.get(&windowed_key(b"a", 0)).unwrap(), Some(b"a@0".to_vec()), "{kind:?}");
            // Time 16 min: everything up to minute 6 has expired, so segment
            // 0 (minutes 0-5) goes as a whole.
            put(&mut store, "c", 16 * MIN);
            assert_eq!(store.segment_ids(), [1, 3], "{kind:?}");
            assert_eq!(store.get(&windowed_key(b"a", 0)).unwrap(), None);
            assert_eq!(reader.get(&windowed_key(b"a", 0)).unwrap(), None, "{kind:?}: the reader lost the segment");
            let c = windowed_key(b"c", 16 * MIN);
            assert_eq!(reader.get(&c).unwrap(), Some(b"c@960000".to_vec()), "{kind:?}: and saw the new one");
            assert_eq!(reader.range(None, None, 10).unwrap().len(), 2, "{kind:?}");
            assert_eq!(store.get(&windowed_key(b"a", 7 * MIN)).unwrap(), Some(b"a@420000".to_vec()));
            put(&mut store, "d", 6 * MIN);
            assert_eq!(
                store.get(&windowed_key(b"d", 6 * MIN)).unwrap(),
                None,
                "{kind:?}: past the retention, in a live segment"
            );
            assert_eq!(reader.get(&windowed_key(b"d", 6 * MIN)).unwrap(), None, "{kind:?}");
            assert_eq!(reader.range(None, None, 10).unwrap().len(), 2, "{kind:?}: nor in ranges");
            put(&mut store, "late", MIN);
            assert_eq!(store.get(&windowed_key(b"late", MIN)).unwrap(), None, "{kind:?}: too old to keep");
            if kind == StoreKind::Persistent {
                assert!(!dir.path().join("segment-0").exists(), "the segment's database is gone");
                store.persist().unwrap();
                drop(store);
                let again = SegmentedStore::open(dir.path(), kind, segments).unwrap();
                assert_eq!(again.segment_ids(), [1, 3]);
                // A restart knows only the newest segment's start as its
                // observed time (minute 15): the entry of minute 6 shows
                // again until a later time is observed.
                assert_eq!(again.range(None, None, 10).unwrap().len(), 3);
                // A key later than its segment's start is found after a restart.
                assert_eq!(again.get(&c).unwrap(), Some(b"c@960000".to_vec()));
            }
        }
    }

    #[test]
    fn ranges_within_times_read_the_segments_of_those_times() {
        for kind in [StoreKind::Persistent, StoreKind::InMemory] {
            let dir = tempfile::tempdir().unwrap();
            let segments = Segments { time: KeyTime::WindowStart, retention: 10 * MIN };
            let mut store = SegmentedStore::open(dir.path(), kind, segments).unwrap();
            for start in [MIN, 4 * MIN, 6 * MIN, 9 * MIN] {
                put(&mut store, "a", start);
            }
            let (from, to) = (windowed_key(b"a", 0), windowed_key(b"a", 20 * MIN));
            let within = |first: i64, last: i64| -> Vec<i64> {
                let entries = store.key_range(b"a", Some(&from), Some(&to), 10, Some((first, last))).unwrap();
                entries.iter().map(|(k, _)| KeyTime::WindowStart.of(k).unwrap()).collect()
            };
            // Minutes 0-4 are segment 0, 5-9 segment 1: a range of minutes
            // 4-5 reads both, one of minutes 6-7 segment 1 only (and gives
            // its other entry too: callers filter).
            assert_eq!(within(4 * MIN, 5 * MIN), [MIN, 4 * MIN, 6 * MIN, 9 * MIN], "{kind:?}");
            assert_eq!(within(6 * MIN, 7 * MIN), [6 * MIN, 9 * MIN], "{kind:?}");
            assert_eq!(within(2 * MIN, 3 * MIN), [MIN, 4 * MIN], "{kind:?}");
            // Later than anything stored: nothing to read.
            assert!(within(9 * MIN + 1, 12 * MIN).is_empty(), "{kind:?}");
            assert_eq!(within(9 * MIN, 12 * MIN), [6 * MIN, 9 * MIN], "{kind:?}");
        }
    }

    #[test]
    fn keys_carry_their_time_where_their_layout_says() {
        let session = crate::window::session_key(b"k", 5, 9);
        assert_eq!(KeyTime::SessionEnd.of(&session), Some(9));
        assert_eq!(KeyTime::WindowStart.of(&windowed_key(b"k", 7)), Some(7));
        let mut join = windowed_key(b"k", 11).to_vec();
        join.extend_from_slice(&3u32.to_be_bytes());
        assert_eq!(KeyTime::JoinRecord.of(&join), Some(11));
        assert_eq!(KeyTime::SessionEnd.of(b"short"), None);
    }
}
