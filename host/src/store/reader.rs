//! Reading stores from other threads than the worker that owns them: a
//! [`StoreReader`] reads a [`KeyValueStore`](super::KeyValueStore) as it
//! is, a [`TaskStoreReader`] a [`TaskStore`](super::TaskStore) as of its
//! last flush (the flushed entries its local store lacks first, then the
//! local store), for interactive queries.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use super::{Entry, StoreError, TimestampedEntry, stamped};

/// Reads a [`KeyValueStore`](super::KeyValueStore) from other threads
/// ([`KeyValueStore::reader`](super::KeyValueStore::reader)).
pub trait StoreReader: Send + Sync {
    /// The value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// The first `limit` entries with `from <= key < to` (unbounded where
    /// `None`), in key order.
    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>, StoreError>;
}

/// Entries a task store flushed that its local store lacks: stamped values,
/// `None` (or a stamped delete) for a delete.
pub(super) type Flushed = RwLock<BTreeMap<Bytes, Option<Bytes>>>;

/// Reads a [`TaskStore`](super::TaskStore) from another thread: the store as of its last
/// flush, which the worker makes every commit interval just before the
/// commit. Updates still in the cache are not seen. What it reads went to
/// the changelog in the transaction of that commit; if that transaction
/// fails, the worker closes the task (its readers then fail with
/// [`StoreError::Closed`]) and rebuilds the store from what was committed.
#[derive(Clone)]
pub struct TaskStoreReader {
    flushed: Arc<Flushed>,
    local: Arc<dyn StoreReader>,
}

impl TaskStoreReader {
    /// A reader of `flushed` over `local`.
    pub(super) fn new(flushed: Arc<Flushed>, local: Arc<dyn StoreReader>) -> TaskStoreReader {
        TaskStoreReader { flushed, local }
    }

    /// The value of `key` with the timestamp of its last update.
    pub fn get(&self, key: &[u8]) -> Result<Option<(Bytes, i64)>, StoreError> {
        let pending = self.flushed.read().unwrap_or_else(|p| p.into_inner()).get(key).cloned();
        let stamped = match pending {
            Some(v) => v,
            None => self.local.get(key)?.map(Bytes::from),
        };
        Ok(stamped::present(stamped))
    }

    /// The first `limit` entries with `from <= key < to` (unbounded where
    /// `None`), in key order, each with the timestamp of its last update.
    pub fn range(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<TimestampedEntry>, StoreError> {
        let pending: Vec<(Bytes, Option<Bytes>)> = {
            let flushed = self.flushed.read().unwrap_or_else(|p| p.into_inner());
            let lower = from.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Included);
            let upper = to.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
            if matches!((from, to), (Some(f), Some(t)) if f >= t) {
                return Ok(Vec::new());
            }
            flushed.range::<[u8], _>((lower, upper)).map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let local = &self.local;
        super::merge_pending(pending, limit, |n| local.range(from, to, n))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::{StoreKind, StoreSpec, TaskStore, changelog_topic};
    use super::*;
    use crate::log::{EmbeddedLog, Log};
    use crate::task::TaskId;

    #[test]
    fn a_reader_sees_each_flush_from_another_thread() {
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        let task = TaskId { subtopology: 0, partition: 0 };
        for (name, kind, cache) in [
            ("p", StoreKind::Persistent, 1 << 20),
            ("m", StoreKind::InMemory, 1 << 20),
            ("z", StoreKind::Persistent, 0),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let log = EmbeddedLog::open(dir.path().join("log"), false).unwrap();
            log.create_topic(&changelog_topic("app", name), 1).unwrap();
            let state = dir.path().join("state");
            let mut store = TaskStore::open(&state, "app", &StoreSpec::new(name, kind), task, cache, &log).unwrap();
            let mut out = log.producer().unwrap();
            let reader = store.reader().unwrap();
            let read =
                |key: &'static [u8]| std::thread::scope(|s| s.spawn(|| reader.get(key).unwrap()).join().unwrap());
            store.put(b("a"), Some(b("1")), 10, &mut *out).unwrap();
            if cache > 0 {
                assert_eq!(read(b"a"), None, "{name}: an update in the cache is not seen before its flush");
                store.flush(&mut *out).unwrap();
            }
            assert_eq!(read(b"a"), Some((b("1"), 10)), "{name}: seen once flushed");
            store.put(b("b"), Some(b("2")), 20, &mut *out).unwrap();
            store.put(b("a"), None, 30, &mut *out).unwrap();
            store.flush(&mut *out).unwrap();
            out.commit(None, &[]).unwrap();
            let want = [(b"b".to_vec(), b"2".to_vec(), 20)];
            assert_eq!(reader.range(None, None, 10).unwrap(), want, "{name}: a flushed delete hides the entry");
            assert_eq!(read(b"a"), None, "{name}");
            // In the local store now: the reader finds the same.
            store.checkpoint(&log).unwrap();
            assert_eq!(reader.range(None, None, 10).unwrap(), want, "{name}: after the sync");
            assert_eq!(reader.range(Some(b"c"), None, 10).unwrap(), [], "{name}");
            drop(store);
            if kind == StoreKind::Persistent {
                assert!(matches!(reader.get(b"b"), Err(StoreError::Closed(_))), "{name}: closed with its store");
            }
        }
    }
}
