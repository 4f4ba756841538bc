//! State stores: per-task key-value stores owned by the host.
//!
//! A [`KeyValueStore`] is the local storage: [`RocksStore`] (persistent, the
//! default) or [`MemoryStore`]. A [`TaskStore`] puts a [`RecordCache`] in
//! front of it and a changelog topic (`<application-id>-<store>-changelog`,
//! partition = task) behind it:
//!
//! - updates land in the cache and coalesce per key;
//! - at commit the cache flushes: one write batch to the local store, one
//!   changelog record per key sent in the commit's transaction, and the
//!   flushed updates go downstream;
//! - every entry keeps the timestamp of its last update: changelog records
//!   carry it as their timestamp, downstream records too, and aggregations
//!   take the larger of it and a new record's (as Kafka Streams' timestamped
//!   stores do);
//! - on a clean stop a checkpoint file records the changelog offset the
//!   local store holds. A start with a checkpoint replays the changelog from there;
//!   a start without one (a crash, a lost directory) wipes the local store and
//!   restores it from the whole changelog, so local state never runs ahead of
//!   what was committed.
//!
//! Other threads read a task's stores through a [`TaskStoreReader`]
//! ([`TaskStore::reader`]), never through the worker that owns them: it
//! sees each store as of its last flush (the entries flushed but not yet in
//! the local store, then the local store through a [`StoreReader`]), so it
//! never sees an update before it went to the changelog.

mod access;
mod cache;
mod claim;
mod global;
mod memory;
mod range;
mod reader;
pub mod restore;
mod rocks;
mod segmented;
mod stamped;
mod versioned;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

pub use access::{SlotStore, StoreAccess, WriteError};
pub use cache::{CacheSlot, RecordCache};
pub use global::GlobalStore;
pub use memory::MemoryStore;
pub(crate) use range::merge_pending;
pub use reader::{StoreReader, TaskStoreReader};
pub use rocks::RocksStore;
pub use segmented::{KeyTime, SegmentedStore, Segments};
pub use versioned::{PutOutcome, Version, VersionedStore};
pub(crate) use versioned::{decode_version, version_bounds};

use crate::log::{Cleanup, Log, LogError, LogRecord, Producer, TopicPartition, read_to_end};
use crate::record::Record;
use crate::task::TaskId;

/// What went wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// RocksDB failed.
    #[error("store {path}: {detail}")]
    Rocks {
        /// The store's directory.
        path: PathBuf,
        /// RocksDB's message.
        detail: String,
    },
    /// A file of the store could not be read or written.
    #[error("store {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The changelog could not be read or written.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Another thread of this process has the store open (it has not
    /// closed it yet): try again once it has.
    #[error("store {0}: another thread of this process has it open")]
    Held(PathBuf),
    /// A reader's store was closed (its task stopped or moved): read the
    /// task's new reader instead.
    #[error("store {0} was closed (its task stopped or moved)")]
    Closed(PathBuf),
}

/// A key and its value, as stores return them.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A key, its value and the timestamp of its last update.
pub type TimestampedEntry = (Vec<u8>, Vec<u8>, i64);

/// Local key-value storage, ordered by key bytes.
pub trait KeyValueStore: Send {
    /// The value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Applies puts (`Some`) and deletes (`None`) atomically.
    fn write(&mut self, batch: &[(Bytes, Option<Bytes>)]) -> Result<(), StoreError>;

    /// The first `limit` entries with `from <= key < to` (unbounded where
    /// `None`), in key order.
    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>, StoreError>;

    /// The entries of record key `key` in a window store (whose keys are
    /// the record key, then a time suffix: [`KeyTime`]) with `from <= key <
    /// to`, in key order; with `times`, the caller wants only those whose
    /// keys carry a time within it (inclusive). Entries of other record keys
    /// or times may come too (callers filter): this is a
    /// [`KeyValueStore::range`] that a segmented store narrows to the
    /// segments of `times`, and a RocksDB segment to the table files its
    /// prefix Bloom filters say hold `key`.
    fn key_range(
        &self,
        _key: &[u8],
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        limit: usize,
        _times: Option<(i64, i64)>,
    ) -> Result<Vec<Entry>, StoreError> {
        self.range(from, to, limit)
    }

    /// Tells a window store the latest time its owner has put (see
    /// [`Segments`]): entries past the retention from then on are not read,
    /// and need not be written. Other stores ignore it.
    fn observe(&mut self, _time: i64) -> Result<(), StoreError> {
        Ok(())
    }

    /// Makes every write so far survive a process exit (before a checkpoint).
    fn persist(&mut self) -> Result<(), StoreError>;

    /// Removes every entry.
    fn clear(&mut self) -> Result<(), StoreError>;

    /// A handle that reads the store from any thread while its owner goes on
    /// writing: it sees every write the store has completed, and fails with
    /// [`StoreError::Closed`] once a persistent store is closed.
    fn reader(&self) -> Arc<dyn StoreReader>;
}

/// Which local storage a store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    /// RocksDB on local disk.
    #[default]
    Persistent,
    /// A map in memory, rebuilt from the changelog on every start.
    InMemory,
}

/// A named state store of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSpec {
    /// The store's name: it names the changelog topic and the state
    /// directory, so a redeploy under the same name finds its state.
    pub name: String,
    /// Local storage.
    pub kind: StoreKind,
    /// For a window store: its time segments, so expired windows are dropped
    /// in bulk.
    pub segments: Option<Segments>,
    /// For a versioned store: how long (ms) it keeps history.
    pub versioned: Option<i64>,
}

/// How a store's entries appear in its changelog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangelogLayout {
    /// As the store keeps them.
    Plain,
    /// A time-window store's: each key with a 4-byte sequence number (always
    /// 0) after the window start, as Kafka Streams' window store changelogs
    /// have (`WindowKeySchema`), so that its users can read them; the local
    /// store's keys end at the window start.
    WindowSequence,
    /// A versioned store's, as Kafka Streams logs them: the user key, the
    /// version's value (null for a tombstone) and, as the record's
    /// timestamp, the time it became valid. The compacted topic keeps the
    /// history for its `min.compaction.lag.ms`; the store's deletes of
    /// expired versions are not logged.
    Versioned,
}

impl StoreSpec {
    /// A key-value store.
    pub fn new(name: impl Into<String>, kind: StoreKind) -> StoreSpec {
        StoreSpec { name: name.into(), kind, segments: None, versioned: None }
    }

    /// How the store's entries appear in its changelog.
    pub fn changelog_layout(&self) -> ChangelogLayout {
        match (self.segments, self.versioned) {
            (Some(Segments { time: KeyTime::WindowStart, .. }), _) => ChangelogLayout::WindowSequence,
            (_, Some(_)) => ChangelogLayout::Versioned,
            _ => ChangelogLayout::Plain,
        }
    }

    /// How the store's changelog drops old records, as Kafka Streams
    /// configures it: a window store's keeps records for its retention plus a
    /// day (`windowstore.changelog.additional.retention.ms`), so a restore
    /// finds every window still live; a versioned store's keeps every
    /// version for its history retention plus a day
    /// (`min.compaction.lag.ms`); a key-value store's keeps its keys forever.
    /// A deleted key's tombstone goes a day after compaction first kept it
    /// (Kafka's `delete.retention.ms`), so a changelog whose keys never come
    /// back (a suppression buffer's, a join's grace buffer's) stops growing.
    pub fn changelog_cleanup(&self) -> Cleanup {
        let extra = |ms: i64| ms.saturating_add(CHANGELOG_EXTRA_RETENTION_MS);
        Cleanup {
            retention_ms: self.segments.map(|s| extra(s.retention)),
            min_compaction_lag_ms: self.versioned.map(extra),
            delete_retention_ms: Some(DELETE_RETENTION_MS),
        }
    }
}

/// How much longer than its store a window or versioned store's changelog
/// keeps records.
pub const CHANGELOG_EXTRA_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

/// How long a changelog keeps a deleted key's tombstone once compacted
/// (Kafka's default `delete.retention.ms`, a day).
pub const DELETE_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

/// The changelog topic of `store` in application `app`.
pub fn changelog_topic(app: &str, store: &str) -> String {
    format!("{app}-{store}-changelog")
}

/// The committed contents of store `store` of application `app`, read from
/// its changelog: what every task's store holds as of the last commit, keys
/// in order. Works while the application runs. `layout`: how the changelog
/// holds the store's entries; a versioned store's contents are each key's
/// last logged version.
pub fn committed_contents(
    log: &dyn Log,
    app: &str,
    store: &str,
    layout: ChangelogLayout,
) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, StoreError> {
    let topic = changelog_topic(app, store);
    let partitions = log.partitions(&topic)?.ok_or_else(|| LogError::UnknownTopic(topic.clone()))?;
    let mut contents = BTreeMap::new();
    let from: Vec<(TopicPartition, u64)> = (0..partitions).map(|p| (TopicPartition::new(&topic, p), 0)).collect();
    read_to_end(log, &from, |fetched| {
        for r in fetched.into_iter().flat_map(|f| f.records) {
            if clock_of(&r.record).is_some() {
                continue;
            }
            let Some(key) = r.record.key else { continue };
            let key = if layout == ChangelogLayout::WindowSequence { without_sequence(key) } else { key };
            match r.record.value {
                Some(v) => contents.insert(key.to_vec(), v.to_vec()),
                None => contents.remove(&key[..]),
            };
        }
        Ok::<_, StoreError>(())
    })?;
    Ok(contents)
}

/// A window store changelog key without its sequence number.
fn without_sequence(key: Bytes) -> Bytes {
    let end = key.len().saturating_sub(4);
    key.slice(..end)
}

/// The header that marks a changelog record as the owner's clock
/// ([`TaskStore::clock`]), not an entry of the store.
pub const CLOCK_HEADER: &str = "eddy.clock";

/// The changelog record of a clock: the empty key, the clock's values as
/// 8-byte big-endian integers.
fn clock_record(clock: &[i64]) -> Record {
    let value: Vec<u8> = clock.iter().flat_map(|t| t.to_be_bytes()).collect();
    let timestamp = clock.first().copied().unwrap_or(0).max(0);
    Record::new(Some(Bytes::new()), Some(value), timestamp).with_header(CLOCK_HEADER, Bytes::new())
}

/// The clock a changelog record carries, if it is a clock record.
fn clock_of(r: &Record) -> Option<Vec<i64>> {
    r.header(CLOCK_HEADER)?;
    let value = r.value.as_deref().unwrap_or_default();
    Some(value.chunks_exact(8).map(|c| i64::from_be_bytes(c.try_into().unwrap_or_default())).collect())
}

/// Sorts entries by key. The comparisons run on a copy of each key's first
/// 16 bytes beside its position (the full keys are compared only where
/// those tie): sorting the entries themselves went to each key's memory
/// for every comparison, and sorting an evicted cache was a twentieth of a
/// windowed count's time.
fn sort_by_key(entries: &mut Vec<(Bytes, Option<Bytes>)>) {
    let head = |k: &[u8]| {
        let mut b = [0u8; 16];
        let n = k.len().min(16);
        b[..n].copy_from_slice(&k[..n]);
        u128::from_be_bytes(b)
    };
    let mut order: Vec<(u128, u32)> = entries.iter().enumerate().map(|(i, (k, _))| (head(k), i as u32)).collect();
    order.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| entries[a.1 as usize].0.cmp(&entries[b.1 as usize].0)));
    let mut unsorted: Vec<Option<(Bytes, Option<Bytes>)>> = entries.drain(..).map(Some).collect();
    entries.extend(order.into_iter().filter_map(|(_, i)| unsorted[i as usize].take()));
}

/// A task's instance of a named store: cache, local storage and changelog.
pub struct TaskStore {
    name: String,
    dir: PathBuf,
    local: Box<dyn KeyValueStore>,
    cache: RecordCache,
    changelog: TopicPartition,
    clock: Vec<i64>,
    /// True if the clock changed since it last went to the changelog.
    clock_dirty: bool,
    /// How the changelog holds the store's entries.
    layout: ChangelogLayout,
    /// A window store's segments, and the latest time a key put carried:
    /// a full cache forgets the entries past the retention instead of
    /// writing them ([`TaskStore::forget_expired`]).
    segments: Option<Segments>,
    observed: i64,
    /// Entries written from the cache to the local store.
    local_writes: u64,
    /// The changelog offset the local store holds up to, while it is being
    /// restored (or kept as a standby); meaningless once the task writes.
    restored_to: u64,
    /// Once the store has a [`TaskStoreReader`]: the entries flushed but not
    /// yet written to the local store, which readers see first.
    flushed: Option<Arc<reader::Flushed>>,
    /// Declared last, so released once the local store is closed.
    _claim: claim::DirClaim,
}

const CHECKPOINT: &str = ".checkpoint";
/// The owner's clock, saved with the checkpoint.
const CLOCK: &str = ".clock";

static LOCAL_WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Entries this process has written from task stores' caches to their local
/// stores (RocksDB or memory), for benchmarks and metrics.
pub fn local_writes() -> u64 {
    LOCAL_WRITES.load(std::sync::atomic::Ordering::Relaxed)
}

/// The smallest key after every key that starts with `prefix`, or none if
/// there is none (all bytes 0xff).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl TaskStore {
    /// Opens the store `name` of task `task` under `state_dir`
    /// (`<state-dir>/<app>/<task>/<store>`), restoring it from partition
    /// `task.partition` of its changelog as the module documentation
    /// describes.
    pub fn open(
        state_dir: &Path,
        app: &str,
        spec: &StoreSpec,
        task: TaskId,
        cache_bytes: usize,
        log: &dyn Log,
    ) -> Result<TaskStore, StoreError> {
        let mut store = TaskStore::open_unrestored(state_dir, app, spec, task, cache_bytes)?;
        store.restore(log)?;
        Ok(store)
    }

    /// The directory of `task`'s store `name`.
    fn dir(state_dir: &Path, app: &str, name: &str, task: TaskId) -> PathBuf {
        state_dir.join(app).join(task.to_string()).join(name)
    }

    /// [`StoreError::Held`] if another thread of this process has `task`'s
    /// store `spec` open now (opening it would fail).
    pub fn check_free(state_dir: &Path, app: &str, spec: &StoreSpec, task: TaskId) -> Result<(), StoreError> {
        let dir = Self::dir(state_dir, app, &spec.name, task);
        if claim::DirClaim::is_held(&dir) { Err(StoreError::Held(dir)) } else { Ok(()) }
    }

    /// Opens the store as [`TaskStore::open`] does, without restoring it:
    /// it holds its changelog up to [`TaskStore::restored_to`] (its
    /// checkpoint, or nothing), and catches up through
    /// [`TaskStore::apply_changelog`] (see [`restore`]).
    pub fn open_unrestored(
        state_dir: &Path,
        app: &str,
        spec: &StoreSpec,
        task: TaskId,
        cache_bytes: usize,
    ) -> Result<TaskStore, StoreError> {
        let (name, kind) = (spec.name.as_str(), spec.kind);
        let dir = Self::dir(state_dir, app, name, task);
        let claim = claim::DirClaim::take(&dir)?;
        let checkpoint_path = dir.join(CHECKPOINT);
        let checkpoint = match std::fs::read_to_string(&checkpoint_path) {
            Ok(text) => text.trim().parse::<u64>().ok(),
            Err(_) => None,
        };
        // The owner's clock as of the clean stop the checkpoint records.
        let clock_path = dir.join(CLOCK);
        let clock: Vec<i64> = match (checkpoint, std::fs::read_to_string(&clock_path)) {
            (Some(_), Ok(text)) => text.split_whitespace().filter_map(|t| t.parse().ok()).collect(),
            _ => Vec::new(),
        };
        let checkpoint = if kind == StoreKind::Persistent { checkpoint } else { None };
        if checkpoint.is_none() && dir.exists() {
            // No clean stop recorded: what is on disk may be ahead of the
            // changelog. Start over from the changelog.
            std::fs::remove_dir_all(&dir).map_err(|source| StoreError::Io { path: dir.clone(), source })?;
        }
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io { path: dir.clone(), source })?;
        // While the task runs, the directory has no valid checkpoint.
        for path in [&checkpoint_path, &clock_path] {
            if path.exists() {
                std::fs::remove_file(path).map_err(|source| StoreError::Io { path: path.clone(), source })?;
            }
        }
        let local: Box<dyn KeyValueStore> = match (kind, spec.segments) {
            (kind, Some(segments)) => Box::new(SegmentedStore::open(&dir.join("segments"), kind, segments)?),
            (StoreKind::Persistent, None) => Box::new(RocksStore::open(&dir.join("rocksdb"))?),
            (StoreKind::InMemory, None) => Box::new(MemoryStore::default()),
        };
        let changelog = TopicPartition::new(&changelog_topic(app, name), task.partition);
        Ok(TaskStore {
            name: name.to_owned(),
            dir,
            local,
            cache: match spec.segments {
                Some(segments) => RecordCache::windowed(cache_bytes, segments.time.suffix()),
                None => RecordCache::new(cache_bytes),
            },
            changelog,
            clock,
            clock_dirty: false,
            layout: spec.changelog_layout(),
            segments: spec.segments,
            observed: i64::MIN,
            local_writes: 0,
            restored_to: checkpoint.unwrap_or(0),
            flushed: None,
            _claim: claim,
        })
    }

    /// Replays the changelog from where the local store is to its end.
    fn restore(&mut self, log: &dyn Log) -> Result<(), StoreError> {
        let from = self.restored_to;
        let end = read_to_end(log, &[(self.changelog.clone(), from)], |fetched| {
            fetched.into_iter().try_for_each(|f| self.apply_changelog(f.records))
        })?[0];
        self.restored_to = end;
        if end > from {
            tracing::debug!(
                "restored store {} of task {} from offset {from} to {end}",
                self.name,
                self.changelog.partition
            );
        }
        Ok(())
    }

    /// The partition of the changelog this store restores from.
    pub fn changelog(&self) -> &TopicPartition {
        &self.changelog
    }

    /// The changelog offset the local store holds up to (see
    /// [`TaskStore::open_unrestored`]).
    pub fn restored_to(&self) -> u64 {
        self.restored_to
    }

    /// Writes changelog records, read from [`TaskStore::changelog`] at
    /// [`TaskStore::restored_to`] onwards, into the local store.
    pub fn apply_changelog(&mut self, records: Vec<LogRecord>) -> Result<(), StoreError> {
        let Some(last) = records.last().map(|r| r.offset) else { return Ok(()) };
        let mut batch = Vec::with_capacity(records.len());
        for r in records {
            if let Some(clock) = clock_of(&r.record) {
                self.clock = clock;
                continue;
            }
            let Some(key) = r.record.key else { continue };
            let timestamp = r.record.timestamp;
            let (key, value) = match self.layout {
                ChangelogLayout::Plain => (key, r.record.value),
                ChangelogLayout::WindowSequence => (without_sequence(key), r.record.value),
                ChangelogLayout::Versioned => versioned::entry_of_changelog(&key, r.record.value.as_deref(), timestamp),
            };
            batch.push((key, value.map(|v| stamped::encode(Some(&v), timestamp))));
        }
        self.local.write(&batch)?;
        self.restored_to = last + 1;
        Ok(())
    }

    /// The value of `key`: the cache's if it has one, else the local
    /// store's (which the cache then remembers).
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Bytes>, StoreError> {
        Ok(self.get_timestamped(key)?.map(|(v, _)| v))
    }

    /// The value of `key` with the timestamp of its last update.
    pub fn get_timestamped(&mut self, key: &[u8]) -> Result<Option<(Bytes, i64)>, StoreError> {
        if self.is_expired(key) {
            return Ok(None);
        }
        let stamped = match self.cache.get(key) {
            Some(v) => v.clone(),
            None => {
                let value = self.local.get(key)?.map(Bytes::from);
                self.cache.remember(Bytes::copy_from_slice(key), value.clone());
                value
            }
        };
        Ok(stamped::present(stamped))
    }

    /// Puts (`Some`) or deletes (`None`) `key`, an update made at
    /// `timestamp`. With the cache full, the cache is flushed first.
    pub fn put(
        &mut self,
        key: Bytes,
        value: Option<Bytes>,
        timestamp: i64,
        out: &mut dyn Producer,
    ) -> Result<Vec<Record>, StoreError> {
        let slot = self.cache.slot(&key);
        self.put_in(slot, key, value, timestamp, out)
    }

    /// Reads `key` with its timestamp, as [`TaskStore::get_timestamped`],
    /// and puts the value and timestamp `update` makes of it, as
    /// [`TaskStore::put`], looking the key up in the cache once: for an
    /// aggregation, which writes back each aggregate it reads. A key the
    /// cache lacks is read from the local store without being remembered.
    pub fn update_timestamped(
        &mut self,
        key: Bytes,
        out: &mut dyn Producer,
        update: impl FnOnce(Option<(Bytes, i64)>) -> (Option<Bytes>, i64),
    ) -> Result<Vec<Record>, StoreError> {
        let slot = self.cache.slot(&key);
        let stamped = match self.cache.value_in(&slot) {
            _ if self.is_expired(&key) => None,
            Some(v) => v.clone(),
            None => self.local.get(&key)?.map(Bytes::from),
        };
        let (value, timestamp) = update(stamped::present(stamped));
        self.put_in(slot, key, value, timestamp, out)
    }

    /// [`TaskStore::put`] into the cache slot taken for `key`.
    fn put_in(
        &mut self,
        slot: CacheSlot,
        key: Bytes,
        value: Option<Bytes>,
        timestamp: i64,
        out: &mut dyn Producer,
    ) -> Result<Vec<Record>, StoreError> {
        if let Some(t) = self.segments.and_then(|s| s.time.of(&key)) {
            self.observed = self.observed.max(t);
        }
        self.cache.put_in(slot, key, Some(stamped::encode(value.as_deref(), timestamp)));
        if self.cache.is_over() { self.flush(out) } else { Ok(Vec::new()) }
    }

    /// The clock of the operator that owns the store (its stream time and
    /// the like, as it defines them). It goes to the changelog with the
    /// store's updates (a record under the empty key, marked with the
    /// [`CLOCK_HEADER`]) and is saved with a clean stop's checkpoint, so a
    /// restart, after a crash too, goes on with the clock as of the last
    /// commit: a record that was late before the crash is late after it.
    pub fn clock(&self) -> &[i64] {
        &self.clock
    }

    /// Sets the owner's clock ([`TaskStore::clock`]).
    pub fn set_clock(&mut self, clock: &[i64]) {
        if self.clock != clock {
            self.clock.clear();
            self.clock.extend_from_slice(clock);
            self.clock_dirty = true;
        }
    }

    /// True if the cache holds updates not yet flushed.
    pub fn is_dirty(&self) -> bool {
        !self.cache.is_clean()
    }

    /// Sends the cached updates to the changelog (in `out`'s transaction)
    /// and returns them as records for downstream, each with the timestamp
    /// of its update. They reach the local store when the cache needs their room, or at the
    /// checkpoint: until then the changelog is their only durable copy.
    pub fn flush(&mut self, out: &mut dyn Producer) -> Result<Vec<Record>, StoreError> {
        if self.clock_dirty {
            out.send(&self.changelog, clock_record(&self.clock))?;
            self.clock_dirty = false;
        }
        let updates = self.cache.drain();
        if let Some(flushed) = &self.flushed {
            let mut flushed = flushed.write().unwrap_or_else(|p| p.into_inner());
            flushed.extend(updates.iter().cloned());
        }
        if self.cache.is_over() && !self.forget_expired()? {
            let entries = self.cache.evict();
            self.write_local(entries)?;
        }
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let mut records = Vec::with_capacity(updates.len());
        for (key, stamped) in updates {
            let (value, timestamp) = stamped.as_ref().map_or((None, 0), stamped::decode);
            let record = Record { key: Some(key), value, timestamp, headers: Vec::new() };
            let logged = match self.layout {
                ChangelogLayout::Plain => Some(record.clone()),
                ChangelogLayout::WindowSequence => {
                    let key = record.key.as_deref().map(|k| Bytes::from([k, &[0u8; 4][..]].concat()));
                    Some(Record { key, ..record.clone() })
                }
                ChangelogLayout::Versioned => versioned::changelog_record(&record),
            };
            if let Some(logged) = logged {
                out.send(&self.changelog, logged)?;
            }
            records.push(record);
        }
        Ok(records)
    }

    /// True if `key` is a window store's entry past the retention, which
    /// reads leave out wherever it is (see [`Segments`]).
    fn is_expired(&self, key: &[u8]) -> bool {
        self.segments.is_some_and(|s| s.key_expired(key, self.observed))
    }

    /// For a full window store's cache: drops the entries past the
    /// retention rather than writing them to the local store, which would
    /// only drop them with their segment (and reads no longer see them
    /// there). True if that freed at least an eighth of the cache, so it
    /// need not be written out: a cache that holds the retention's worth of
    /// a join window never writes to the local store. (Freeing less, the
    /// cache is written out as usual: forgetting a few entries at a time
    /// would rebuild its indexes for each few.)
    fn forget_expired(&mut self) -> Result<bool, StoreError> {
        let Some(segments) = self.segments.filter(|_| self.observed > i64::MIN) else { return Ok(false) };
        let (observed, before) = (self.observed, self.cache.bytes());
        // The local store first: from now on it reads nothing this forgets.
        self.local.observe(observed)?;
        let dropped = self.cache.forget(|key| segments.key_expired(key, observed));
        if let Some(flushed) = &self.flushed {
            let mut flushed = flushed.write().unwrap_or_else(|p| p.into_inner());
            for k in &dropped {
                flushed.remove(k);
            }
        }
        Ok(!self.cache.is_over() && before - self.cache.bytes() >= self.cache.max_bytes() / 8)
    }

    /// Writes the flushed entries the local store lacks to it.
    fn sync(&mut self) -> Result<(), StoreError> {
        let entries = self.cache.take_unsynced();
        self.write_local(entries)
    }

    /// Writes flushed entries to the local store.
    fn write_local(&mut self, mut entries: Vec<(Bytes, Option<Bytes>)>) -> Result<(), StoreError> {
        for (_, v) in &mut entries {
            // A stamped delete is a delete in the local store.
            if v.as_deref().is_some_and(stamped::is_delete) {
                *v = None;
            }
        }
        if !entries.is_empty() {
            // In key order: RocksDB inserts a sorted batch into its memtable
            // several times faster (each insert starts where the last ended).
            sort_by_key(&mut entries);
            LOCAL_WRITES.fetch_add(entries.len() as u64, std::sync::atomic::Ordering::Relaxed);
            self.local_writes += entries.len() as u64;
            self.local.write(&entries)?;
            // Readers find them in the local store now (written first, so a
            // reader always finds them in one place or the other).
            if let Some(flushed) = &self.flushed {
                let mut flushed = flushed.write().unwrap_or_else(|p| p.into_inner());
                for (k, _) in &entries {
                    flushed.remove(k);
                }
            }
        }
        Ok(())
    }

    /// A reader of the store for other threads (see [`TaskStoreReader`]).
    /// The first call writes the entries already flushed to the local store,
    /// so that from then on the reader sees each flush as it happens.
    pub fn reader(&mut self) -> Result<TaskStoreReader, StoreError> {
        let flushed = match &self.flushed {
            Some(flushed) => flushed.clone(),
            None => {
                self.sync()?;
                let flushed = Arc::<reader::Flushed>::default();
                self.flushed = Some(flushed.clone());
                flushed
            }
        };
        Ok(TaskStoreReader::new(flushed, self.local.reader()))
    }

    /// Records a clean stop: the local store holds the changelog up to its
    /// end. Call after the final commit. (The changelog is not compacted
    /// here: the next start reads from the checkpoint, and the run's
    /// compaction thread keeps changelogs compact as they grow, as Kafka's
    /// log cleaner does, without every stop rewriting them whole.)
    pub fn checkpoint(&mut self, log: &dyn Log) -> Result<(), StoreError> {
        self.sync()?;
        self.local.persist()?;
        let end = log.end_offset(&self.changelog)?;
        self.write_checkpoint(end)
    }

    /// Records where a store that was only restored (never written by its
    /// task: a standby, or a task that moved before it caught up) stands,
    /// so that its next owner here goes on from there. What it holds came
    /// from the changelog, so it never runs ahead of what was committed.
    pub fn checkpoint_restored(&mut self) -> Result<(), StoreError> {
        self.local.persist()?;
        self.write_checkpoint(self.restored_to)
    }

    fn write_checkpoint(&mut self, offset: u64) -> Result<(), StoreError> {
        let path = self.dir.join(CLOCK);
        let clock: Vec<String> = self.clock.iter().map(i64::to_string).collect();
        std::fs::write(&path, clock.join(" ")).map_err(|source| StoreError::Io { path, source })?;
        let path = self.dir.join(CHECKPOINT);
        std::fs::write(&path, offset.to_string()).map_err(|source| StoreError::Io { path, source })
    }
}

#[cfg(test)]
mod tests;
