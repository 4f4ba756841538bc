//! Global stores: a full copy of a topic on every instance (a GlobalKTable).
//!
//! A global store reads every partition of its source topic as an upsert log
//! (a record without a value deletes its key), outside any consumer group and
//! without a changelog: the topic is its changelog. On start it catches up to
//! the topic's end before any task runs; while the application runs, a thread
//! keeps it up to date. Every task reads it; nothing but the topic writes it.
//! A clean stop records the offsets the local store holds (`.checkpoint`), so
//! the next start reads only what is new; a start without a checkpoint
//! rebuilds the store from the topic.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;

use super::{Entry, KeyValueStore, MemoryStore, RocksStore, StoreError, StoreKind};
use crate::log::{Log, LogError, TopicPartition, read_to_end};

const CHECKPOINT: &str = ".checkpoint";

/// A global table's store, shared by every worker thread.
pub struct GlobalStore {
    name: String,
    topic: String,
    dir: PathBuf,
    inner: Mutex<Inner>,
}

struct Inner {
    local: Box<dyn KeyValueStore>,
    /// Next offset to read, per partition of the topic.
    next: Vec<u64>,
}

impl GlobalStore {
    /// Opens global store `name` of application `app`, a copy of `topic`, and
    /// catches it up to the topic's end.
    pub fn open(
        state_dir: &Path,
        app: &str,
        name: &str,
        topic: &str,
        kind: StoreKind,
        log: &dyn Log,
    ) -> Result<GlobalStore, StoreError> {
        let dir = state_dir.join(app).join("global").join(name);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, source }
        };
        let checkpoint_path = dir.join(CHECKPOINT);
        let checkpoint: Option<Vec<u64>> = match kind {
            StoreKind::Persistent => {
                std::fs::read_to_string(&checkpoint_path).ok().and_then(|text| serde_json::from_str(&text).ok())
            }
            StoreKind::InMemory => None,
        };
        if checkpoint.is_none() && dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        if checkpoint.is_some() {
            std::fs::remove_file(&checkpoint_path).map_err(io(&checkpoint_path))?;
        }
        let local: Box<dyn KeyValueStore> = match kind {
            StoreKind::Persistent => Box::new(RocksStore::open(&dir.join("rocksdb"))?),
            StoreKind::InMemory => Box::new(MemoryStore::default()),
        };
        let partitions = log.partitions(topic)?.ok_or_else(|| LogError::UnknownTopic(topic.to_owned()))?;
        let mut next = checkpoint.unwrap_or_default();
        next.resize(partitions as usize, 0);
        let store = GlobalStore {
            name: name.to_owned(),
            topic: topic.to_owned(),
            dir,
            inner: Mutex::new(Inner { local, next }),
        };
        let applied = store.catch_up(log)?;
        tracing::debug!("global store {name} caught up with {topic} ({applied} records read)");
        Ok(store)
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the topic from where the store is up to the end offsets it has
    /// now, applying each record. Returns how many records it read.
    pub fn catch_up(&self, log: &dyn Log) -> Result<usize, StoreError> {
        let from: Vec<(TopicPartition, u64)> = self
            .inner()
            .next
            .iter()
            .enumerate()
            .map(|(p, &start)| (TopicPartition::new(&self.topic, p as u32), start))
            .collect();
        let mut read = 0;
        let next = read_to_end(log, &from, |fetched| {
            let mut batch: Vec<(Bytes, Option<Bytes>)> = Vec::new();
            for r in fetched.into_iter().flat_map(|f| f.records) {
                read += 1;
                if let Some(key) = r.record.key {
                    batch.push((key, r.record.value));
                }
            }
            self.inner().local.write(&batch)
        })?;
        self.inner().next = next;
        Ok(read)
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StoreError> {
        Ok(self.inner().local.get(key)?.map(Bytes::from))
    }

    /// The first `limit` entries with `from <= key < to`, in key order.
    pub fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.inner().local.range(from, to, limit)
    }

    /// Records a clean stop: the offsets the local store holds.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let mut inner = self.inner();
        inner.local.persist()?;
        let path = self.dir.join(CHECKPOINT);
        let text = serde_json::to_string(&inner.next).unwrap_or_default();
        std::fs::write(&path, text).map_err(|source| StoreError::Io { path, source })
    }
}
