//! The persistent store: RocksDB in the task's state directory.
//!
//! RocksDB's write-ahead log is off, as in Kafka Streams: the changelog topic
//! is what makes the store durable. A clean stop flushes the memtables to
//! disk before the checkpoint is written.
//!
//! Readers on other threads share the database until the store closes: the
//! store then takes it from them (waiting for reads under way), so that the
//! database is closed when the store is, and its directory can be opened
//! again at once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use rocksdb::{
    BlockBasedOptions, DB, Direction, FlushOptions, IteratorMode, Options, ReadOptions, WriteBatch, WriteOptions,
};

use super::{Entry, KeyValueStore, StoreError, StoreReader};

/// A store in a RocksDB database.
pub struct RocksStore {
    path: PathBuf,
    db: Arc<DB>,
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
    let mode = match from {
        Some(f) => IteratorMode::From(f, Direction::Forward),
        None => IteratorMode::Start,
    };
    // With the end as the iterator's bound, RocksDB stops there itself and
    // leaves out the table files that start past it: a scan of one key's
    // windows, as joins and sessions make per record, reads no more.
    let mut options = ReadOptions::default();
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

impl RocksStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<RocksStore, StoreError> {
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
        // Kafka Streams' memtables (16 MiB, at most 3) rather than RocksDB's
        // 64 MiB: a task's store takes a quarter of the memory, and a busy
        // aggregation's memtable, which keeps every version of a key until
        // it is flushed, flushes sooner.
        options.set_write_buffer_size(16 << 20);
        options.set_max_write_buffer_number(3);
        let db = Arc::new(DB::open(&options, path).map_err(|e| rocks_error(path, e))?);
        let shared = Arc::new(RocksReader { path: path.to_owned(), db: RwLock::new(Some(db.clone())) });
        Ok(RocksStore { path: path.to_owned(), db, shared })
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
        let mut wb = WriteBatch::default();
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
}
