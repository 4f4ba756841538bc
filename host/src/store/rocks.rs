//! The persistent store: RocksDB in the task's state directory.
//!
//! RocksDB's write-ahead log is off, as in Kafka Streams: the changelog topic
//! is what makes the store durable. A clean stop flushes the memtables to
//! disk before the checkpoint is written.
//!
//! A window store's segment keeps its record keys (each key less its time
//! suffix) in prefix Bloom filters too: a scan of one key's windows, as
//! joins and sessions make per record, asks them first, and most often
//! learns that the segment has nothing of that key without a seek.
//!
//! Readers on other threads share the database until the store closes: the
//! store then takes it from them (waiting for reads under way), so that the
//! database is closed when the store is, and its directory can be opened
//! again at once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use rocksdb::{
    BlockBasedOptions, DB, Direction, FlushOptions, IteratorMode, Options, ReadOptions, SliceTransform, WriteBatch,
    WriteOptions,
};

use super::{Entry, KeyTime, KeyValueStore, StoreError, StoreReader};

/// A store in a RocksDB database.
pub struct RocksStore {
    path: PathBuf,
    db: Arc<DB>,
    /// For a window store's segment: where its keys carry their time (its
    /// prefix Bloom filters hold the record keys).
    time: Option<KeyTime>,
    /// The database as readers see it, until the store closes.
    shared: Arc<RocksReader>,
}

/// Reads a [`RocksStore`] from other threads while it is open.
struct RocksReader {
    path: PathBuf,
    db: RwLock<Option<Arc<DB>>>,
}

impl Drop for RocksStore {
    fn drop(&mut self) {
        // Readers let go of the database, so it closes with the store.
        self.shared.db.write().unwrap_or_else(|p| p.into_inner()).take();
    }
}

fn rocks_error(path: &Path, e: rocksdb::Error) -> StoreError {
    StoreError::Rocks { path: path.to_owned(), detail: e.to_string() }
}

/// The first `limit` entries of `db` with `from <= key < to`.
fn range(db: &DB, path: &Path, from: Option<&[u8]>, to: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>, StoreError> {
    // A window store's prefix Bloom filters cannot answer for a range of
    // many record keys: the whole order is read.
    let mut options = ReadOptions::default();
    options.set_total_order_seek(true);
    scan(db, path, from, to, limit, options)
}

/// The first `limit` entries of `db` from `from` on, below `to`, read with
/// `options`.
fn scan(
    db: &DB,
    path: &Path,
    from: Option<&[u8]>,
    to: Option<&[u8]>,
    limit: usize,
    mut options: ReadOptions,
) -> Result<Vec<Entry>, StoreError> {
    let mode = match from {
        Some(f) => IteratorMode::From(f, Direction::Forward),
        None => IteratorMode::Start,
    };
    // With the end as the iterator's bound, RocksDB stops there itself and
    // leaves out the table files that start past it: a scan of one key's
    // windows, as joins and sessions make per record, reads no more.
    if let Some(t) = to {
        options.set_iterate_upper_bound(t.to_vec());
    }
    let mut out = Vec::new();
    for item in db.iterator_opt(mode, options) {
        let (k, v) = item.map_err(|e| rocks_error(path, e))?;
        if out.len() >= limit || to.is_some_and(|t| &k[..] >= t) {
            break;
        }
        out.push((k.into_vec(), v.into_vec()));
    }
    Ok(out)
}

/// A window store key's record key (the key less its `SUFFIX`-byte time
/// suffix): what a segment's prefix Bloom filters hold.
fn record_key<const SUFFIX: usize>(key: &[u8]) -> &[u8] {
    &key[..key.len() - SUFFIX]
}

/// Whether `key` is long enough to carry a `SUFFIX`-byte time suffix (the
/// keys [`record_key`] applies to).
fn carries_time<const SUFFIX: usize>(key: &[u8]) -> bool {
    key.len() >= SUFFIX
}

/// The prefix extractor of a window store whose keys carry their time as
/// `time` says. Its name goes into every table file: files written with
/// another extractor are read without their prefix filters.
fn record_key_extractor(time: KeyTime) -> SliceTransform {
    match time {
        KeyTime::WindowStart => SliceTransform::create("eddy.record-key.8", record_key::<8>, Some(carries_time::<8>)),
        KeyTime::JoinRecord => SliceTransform::create("eddy.record-key.12", record_key::<12>, Some(carries_time::<12>)),
        KeyTime::SessionEnd => SliceTransform::create("eddy.record-key.16", record_key::<16>, Some(carries_time::<16>)),
    }
}

impl RocksStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<RocksStore, StoreError> {
        Self::open_with(path, None)
    }

    /// Opens (creating if needed) the database of a window store's segment
    /// at `path`, whose keys carry their time as `time` says: its prefix
    /// Bloom filters hold the record keys ([`KeyValueStore::key_range`]).
    pub fn open_windowed(path: &Path, time: KeyTime) -> Result<RocksStore, StoreError> {
        Self::open_with(path, Some(time))
    }

    fn open_with(path: &Path, time: Option<KeyTime>) -> Result<RocksStore, StoreError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        // Most lookups of an aggregation are for keys it has not stored yet
        // (a new window, a new key): Bloom filters, in the memtable and in
        // every table file, answer those without a search.
        let mut tables = BlockBasedOptions::default();
        tables.set_bloom_filter(10.0, false);
        options.set_block_based_table_factory(&tables);
        options.set_memtable_whole_key_filtering(true);
        options.set_memtable_prefix_bloom_ratio(0.1);
        if let Some(time) = time {
            options.set_prefix_extractor(record_key_extractor(time));
        }
        // Kafka Streams' memtables (16 MiB, at most 3) rather than RocksDB's
        // 64 MiB: a task's store takes a quarter of the memory, and a busy
        // aggregation's memtable, which keeps every version of a key until
        // it is flushed, flushes sooner.
        options.set_write_buffer_size(16 << 20);
        options.set_max_write_buffer_number(3);
        let db = Arc::new(DB::open(&options, path).map_err(|e| rocks_error(path, e))?);
        let shared = Arc::new(RocksReader { path: path.to_owned(), db: RwLock::new(Some(db.clone())) });
        Ok(RocksStore { path: path.to_owned(), db, time, shared })
    }

    fn error(&self, e: rocksdb::Error) -> StoreError {
        rocks_error(&self.path, e)
    }
}

impl KeyValueStore for RocksStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get(key).map_err(|e| self.error(e))
    }

    fn write(&mut self, batch: &[(Bytes, Option<Bytes>)]) -> Result<(), StoreError> {
        // Sized up front: a batch that grows copies itself over and over.
        let bytes: usize = batch.iter().map(|(k, v)| k.len() + v.as_ref().map_or(0, Bytes::len) + 11).sum();
        let mut wb = WriteBatch::with_capacity_bytes(12 + bytes);
        for (k, v) in batch {
            match v {
                Some(v) => wb.put(k, v),
                None => wb.delete(k),
            }
        }
        let mut options = WriteOptions::default();
        options.disable_wal(true);
        self.db.write_opt(wb, &options).map_err(|e| self.error(e))
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>, StoreError> {
        range(&self.db, &self.path, from, to, limit)
    }

    /// Asks the prefix Bloom filters (of the memtable and of each table
    /// file) for `key` before seeking: the seek goes to `from` made as long
    /// as a full key of `key` (zeros after it, which sort before any key it
    /// could miss of `key`'s own), and the scan stops where `key`'s entries
    /// end.
    fn key_range(
        &self,
        key: &[u8],
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        limit: usize,
        _times: Option<(i64, i64)>,
    ) -> Result<Vec<Entry>, StoreError> {
        let full = key.len() + self.time.map_or(0, KeyTime::suffix);
        match (self.time, from) {
            (Some(_), Some(f)) if f.starts_with(key) && f.len() <= full && to.is_none_or(|t| t.starts_with(key)) => {
                let mut seek = f.to_vec();
                seek.resize(full, 0);
                let mut options = ReadOptions::default();
                options.set_prefix_same_as_start(true);
                scan(&self.db, &self.path, Some(&seek), to, limit, options)
            }
            _ => self.range(from, to, limit),
        }
    }

    fn persist(&mut self) -> Result<(), StoreError> {
        let mut options = FlushOptions::default();
        options.set_wait(true);
        self.db.flush_opt(&options).map_err(|e| self.error(e))
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        let keys: Vec<Vec<u8>> = self.range(None, None, usize::MAX)?.into_iter().map(|(k, _)| k).collect();
        let mut wb = WriteBatch::default();
        for k in keys {
            wb.delete(k);
        }
        self.db.write(wb).map_err(|e| self.error(e))
    }

    fn reader(&self) -> Arc<dyn StoreReader> {
        self.shared.clone()
    }
}

impl StoreReader for RocksReader {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let db = self.db.read().unwrap_or_else(|p| p.into_inner());
        let db = db.as_ref().ok_or_else(|| StoreError::Closed(self.path.clone()))?;
        db.get(key).map_err(|e| rocks_error(&self.path, e))
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>, StoreError> {
        let db = self.db.read().unwrap_or_else(|p| p.into_inner());
        let db = db.as_ref().ok_or_else(|| StoreError::Closed(self.path.clone()))?;
        range(db, &self.path, from, to, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rocks_store_behaves_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = RocksStore::open(dir.path()).unwrap();
        super::super::tests::exercise(&mut store);
        store.write(&[(Bytes::from_static(b"k"), Some(Bytes::from_static(b"v")))]).unwrap();
        let reader = store.reader();
        drop(store);
        assert!(matches!(reader.get(b"k"), Err(StoreError::Closed(_))), "a closed store's reader fails");
        // The readers let go of the database: it opens again at once.
        let again = RocksStore::open(dir.path()).unwrap();
        assert_eq!(again.get(b"k").unwrap(), Some(b"v".to_vec()));
        assert!(reader.range(None, None, 1).is_err(), "an old reader does not see the new store");
    }

    /// Keys of a join store: the record key, the record's time, a sequence
    /// number.
    fn join_key(key: &[u8], time: i64, seq: u32) -> Bytes {
        let mut k = key.to_vec();
        k.extend_from_slice(&time.to_be_bytes());
        k.extend_from_slice(&seq.to_be_bytes());
        Bytes::from(k)
    }

    #[test]
    fn a_key_range_finds_one_record_keys_entries_in_memory_and_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = RocksStore::open_windowed(dir.path(), KeyTime::JoinRecord).unwrap();
        let value = Some(Bytes::from_static(b"v"));
        // "a" is a prefix of "ab": their entries sort among each other.
        let puts = [join_key(b"a", 10, 0), join_key(b"ab", 12, 0), join_key(b"a", 15, 1), join_key(b"b", 11, 0)];
        let keys_in = |store: &RocksStore, key: &[u8], first: i64, last: i64| -> Vec<Vec<u8>> {
            // As the join reads: bounds of the record key and a time only.
            let (from, to) = (join_key(key, first, 0), join_key(key, last + 1, 0));
            let (from, to) = (&from[..key.len() + 8], &to[..key.len() + 8]);
            let entries = store.key_range(key, Some(from), Some(to), usize::MAX, None).unwrap();
            entries.into_iter().map(|(k, _)| k).filter(|k| k.len() == key.len() + 12 && k.starts_with(key)).collect()
        };
        store.write(&puts.iter().map(|k| (k.clone(), value.clone())).collect::<Vec<_>>()).unwrap();
        for on_disk in [false, true] {
            assert_eq!(keys_in(&store, b"a", 0, 20), [join_key(b"a", 10, 0), join_key(b"a", 15, 1)], "{on_disk}");
            assert_eq!(keys_in(&store, b"a", 11, 20), [join_key(b"a", 15, 1)], "{on_disk}");
            assert_eq!(keys_in(&store, b"ab", 0, 20), [join_key(b"ab", 12, 0)], "{on_disk}");
            assert!(keys_in(&store, b"c", 0, 20).is_empty(), "{on_disk}");
            // A scan over many record keys reads them all.
            assert_eq!(store.range(None, None, usize::MAX).unwrap().len(), 4, "{on_disk}");
            store.persist().unwrap();
        }
        // Opened again, the table files' prefix filters answer.
        drop(store);
        let store = RocksStore::open_windowed(dir.path(), KeyTime::JoinRecord).unwrap();
        assert_eq!(keys_in(&store, b"a", 0, 20), [join_key(b"a", 10, 0), join_key(b"a", 15, 1)]);
        assert!(keys_in(&store, b"", 0, 20).is_empty(), "no entry has the empty record key");
    }
}
