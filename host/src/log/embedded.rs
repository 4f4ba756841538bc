//! The embedded log: topics on local disk, no broker.
//!
//! Layout under the data directory:
//!
//! ```text
//! journal                  commit journal: the source of truth
//! journal.lock             held while a process commits
//! topics/<topic>/<p>.log   partition files: framed records, append-only
//! ```
//!
//! A partition file holds frames `len:u32 crc:u32 record`, where `record` is
//! the packed record encoding of `eddy-codec`; a record's offset is the one
//! after the record before it. Bytes past a partition's committed length are
//! invisible; they are left by a process that died mid-commit and are cut off
//! by the next commit to that partition.
//!
//! Compaction ([`Log::compact`], for changelogs) rewrites a partition as a new
//! file generation, `<p>.<generation>.log`, keeping each key's last record.
//! Where records were dropped, a marker frame `0xFFFFFFFF crc:u32 offset:u64`
//! gives the next record's offset, so offsets never change. A `compact`
//! journal line switches readers to the new file; the old one is removed
//! (readers that have it open finish their read, then follow).
//!
//! The journal holds one line per topic creation or commit: a CRC, then JSON.
//! A commit line lists each partition's new end (offset and byte length) and
//! the consumer group offsets committed with it, so records and offsets
//! become visible together or not at all. A torn last line (a crash while
//! writing it) is ignored and cut off by the next commit. Every commit line is
//! also a seek point: reading from an offset scans from the nearest commit.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use eddy_codec::{Reader, Writer};
use serde::{Deserialize, Serialize};

use super::{
    Cleanup, Consumer, Fetched, FixedMember, Log, LogError, LogRecord, Member, Producer, TopicInfo, TopicPartition,
    TopicRole, check_new_topic,
};
use crate::record::Record;

const JOURNAL: &str = "journal";
const JOURNAL_LOCK: &str = "journal.lock";
const FRAME_HEADER: usize = 8;
const READ_CHUNK: usize = 1 << 20;
/// Records between seek points of a compacted partition file.
const COMPACT_SEEK_EVERY: usize = 1024;
/// How often an idle consumer looks for commits made by other processes.
const FOREIGN_POLL: Duration = Duration::from_millis(20);

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> LogError + 'a {
    move |source| LogError::Io { op, path: path.to_owned(), source }
}

/// One line of the journal.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Entry {
    Create {
        topic: String,
        partitions: u32,
    },
    Commit {
        appends: Vec<Append>,
        offsets: Vec<GroupOffset>,
    },
    Compact {
        topic: String,
        partition: u32,
        generation: u32,
        end_bytes: u64,
        seek_points: Vec<(u64, u64)>,
        /// The end offset up to which it compacted.
        compacted_at: u64,
        /// Records it kept.
        kept: u64,
        /// Rewrites so far whose tombstones may not all be gone yet: the
        /// offset each went up to and when (ms since the epoch).
        #[serde(default)]
        cleaned: Vec<(u64, i64)>,
    },
    /// A compaction that found nothing to drop up to `compacted_at`: the
    /// file stays as it is, and the next compaction waits for as many new
    /// records again.
    Examined {
        topic: String,
        partition: u32,
        generation: u32,
        compacted_at: u64,
        kept: u64,
    },
    /// Topics deleted with their records and every offset committed for
    /// them, and groups forgotten.
    Delete {
        topics: Vec<String>,
        groups: Vec<String>,
    },
}

/// A partition's new end after a commit.
#[derive(Debug, Serialize, Deserialize)]
struct Append {
    topic: String,
    partition: u32,
    end_offset: u64,
    end_bytes: u64,
}

/// A consumer group offset committed with a commit.
#[derive(Debug, Serialize, Deserialize)]
struct GroupOffset {
    group: String,
    topic: String,
    partition: u32,
    offset: u64,
}

#[derive(Debug, Clone, Default)]
struct PartitionState {
    end_offset: u64,
    end_bytes: u64,
    /// Commit points `(offset, byte position)`, ascending, from (0, 0).
    seek_points: Vec<(u64, u64)>,
    /// The partition file's generation (0 until the first compaction).
    generation: u32,
    /// The end offset up to which the last compaction went.
    compacted_at: u64,
    /// Records the last compaction kept.
    kept: u64,
    /// Rewrites whose tombstones may not all be gone yet: the offset each
    /// went up to, and when (ms since the epoch); see `compaction.rs`.
    cleaned: Vec<(u64, i64)>,
}

#[derive(Debug, Default)]
struct State {
    /// Bytes of the journal applied so far.
    journal_len: u64,
    topics: BTreeMap<String, Vec<PartitionState>>,
    offsets: HashMap<(String, TopicPartition), u64>,
}

impl State {
    fn apply(&mut self, entry: Entry) {
        match entry {
            Entry::Create { topic, partitions } => {
                let fresh = PartitionState { seek_points: vec![(0, 0)], ..Default::default() };
                self.topics.entry(topic).or_insert_with(|| vec![fresh; partitions as usize]);
            }
            Entry::Commit { appends, offsets } => {
                for a in appends {
                    if let Some(p) = self.topics.get_mut(&a.topic).and_then(|ps| ps.get_mut(a.partition as usize)) {
                        p.end_offset = a.end_offset;
                        p.end_bytes = a.end_bytes;
                        p.seek_points.push((a.end_offset, a.end_bytes));
                    }
                }
                for o in offsets {
                    self.offsets.insert((o.group, TopicPartition::new(&o.topic, o.partition)), o.offset);
                }
            }
            Entry::Compact { topic, partition, generation, end_bytes, seek_points, compacted_at, kept, cleaned } => {
                if let Some(p) = self.topics.get_mut(&topic).and_then(|ps| ps.get_mut(partition as usize)) {
                    p.generation = generation;
                    p.end_bytes = end_bytes;
                    p.seek_points = seek_points;
                    p.compacted_at = compacted_at;
                    p.kept = kept;
                    p.cleaned = cleaned;
                }
            }
            Entry::Examined { topic, partition, generation, compacted_at, kept } => {
                if let Some(p) = self.topics.get_mut(&topic).and_then(|ps| ps.get_mut(partition as usize))
                    && p.generation == generation
                {
                    p.compacted_at = compacted_at;
                    p.kept = kept;
                }
            }
            Entry::Delete { topics, groups } => {
                for topic in &topics {
                    self.topics.remove(topic);
                }
                self.offsets
                    .retain(|(group, tp), _| !groups.contains(group) && !topics.iter().any(|t| *t == *tp.topic));
            }
        }
    }

    fn partition(&self, tp: &TopicPartition) -> Result<&PartitionState, LogError> {
        let parts = self.topics.get(&*tp.topic).ok_or_else(|| LogError::UnknownTopic(tp.topic.to_string()))?;
        parts.get(tp.partition as usize).ok_or_else(|| LogError::UnknownPartition {
            topic: tp.topic.to_string(),
            partition: tp.partition,
            partitions: parts.len() as u32,
        })
    }
}

struct Shared {
    dir: PathBuf,
    fsync: bool,
    state: RwLock<State>,
    /// Serialises commits within this process; the file lock does across processes.
    commit: Mutex<()>,
    /// Bumped after every commit this process makes, to wake consumers.
    generation: Mutex<u64>,
    committed: Condvar,
}

/// The embedded log backend: durable topics in a local directory.
///
/// Cheap to clone; clones share one view of the directory. Several processes
/// may use the same directory: commits are serialised by a file lock and each
/// process picks up the others' commits from the journal.
#[derive(Clone)]
pub struct EmbeddedLog {
    shared: Arc<Shared>,
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log in `dir`. With `fsync`, each commit
    /// reaches the disk before it returns.
    pub fn open(dir: impl Into<PathBuf>, fsync: bool) -> Result<Self, LogError> {
        let dir = dir.into();
        fs::create_dir_all(dir.join("topics")).map_err(io("create directory", &dir))?;
        let log = EmbeddedLog {
            shared: Arc::new(Shared {
                dir,
                fsync,
                state: RwLock::new(State::default()),
                commit: Mutex::new(()),
                generation: Mutex::new(0),
                committed: Condvar::new(),
            }),
        };
        log.refresh()?;
        Ok(log)
    }

    /// The directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    fn journal_path(&self) -> PathBuf {
        self.shared.dir.join(JOURNAL)
    }

    fn partition_path(&self, topic: &str, partition: u32, generation: u32) -> PathBuf {
        let name = match generation {
            0 => format!("{partition}.log"),
            g => format!("{partition}.{g}.log"),
        };
        self.shared.dir.join("topics").join(topic).join(name)
    }

    /// Deletes `topics` (those that exist), their files and the offsets
    /// committed for them, and forgets `groups`' offsets, in one journal
    /// entry.
    fn delete(&self, topics: Vec<String>, groups: Vec<String>) -> Result<(), LogError> {
        self.locked(|valid_len| {
            let topics: Vec<String> = {
                let state = self.read_state();
                topics.into_iter().filter(|t| state.topics.contains_key(t)).collect()
            };
            if topics.is_empty() && groups.is_empty() {
                return Ok(());
            }
            let entry = Entry::Delete { topics: topics.clone(), groups };
            self.append_journal(valid_len, &entry)?;
            self.write_state().apply(entry);
            for topic in &topics {
                let dir = self.shared.dir.join("topics").join(topic);
                if dir.exists() {
                    fs::remove_dir_all(&dir).map_err(io("remove directory", &dir))?;
                }
            }
            Ok(())
        })
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.shared.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.shared.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies journal lines written since the last look (by any process).
    /// Returns the journal length that holds only whole, valid lines.
    fn refresh(&self) -> Result<u64, LogError> {
        let path = self.journal_path();
        let len = match fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io("stat", &path)(e)),
        };
        let mut state = self.write_state();
        if len <= state.journal_len {
            return Ok(state.journal_len);
        }
        let mut file = File::open(&path).map_err(io("open", &path))?;
        file.seek(SeekFrom::Start(state.journal_len)).map_err(io("seek", &path))?;
        let mut text = Vec::new();
        file.read_to_end(&mut text).map_err(io("read", &path))?;
        let mut used = 0usize;
        for line in text.split_inclusive(|&b| b == b'\n') {
            match parse_line(line) {
                Some(entry) => {
                    state.apply(entry);
                    used += line.len();
                }
                None => break,
            }
        }
        state.journal_len += used as u64;
        Ok(state.journal_len)
    }

    fn append_journal(&self, valid_len: u64, entry: &Entry) -> Result<(), LogError> {
        let path = self.journal_path();
        let mut file =
            OpenOptions::new().create(true).write(true).truncate(false).open(&path).map_err(io("open", &path))?;
        // Cut off a torn line left by a process that died while writing it.
        file.set_len(valid_len).map_err(io("truncate", &path))?;
        file.seek(SeekFrom::Start(valid_len)).map_err(io("seek", &path))?;
        let json = serde_json::to_string(entry).expect("journal entries serialize");
        let line = format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes()));
        file.write_all(line.as_bytes()).map_err(io("write", &path))?;
        if self.shared.fsync {
            file.sync_data().map_err(io("sync", &path))?;
        }
        self.write_state().journal_len = valid_len + line.len() as u64;
        Ok(())
    }

    /// Runs `f` holding the commit locks, after catching up with the journal.
    fn locked<T>(&self, f: impl FnOnce(u64) -> Result<T, LogError>) -> Result<T, LogError> {
        let _in_process = self.shared.commit.lock().unwrap_or_else(|e| e.into_inner());
        let lock_path = self.shared.dir.join(JOURNAL_LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io("open", &lock_path))?;
        lock.lock().map_err(io("lock", &lock_path))?;
        let valid_len = self.refresh()?;
        let result = f(valid_len);
        drop(lock);
        if result.is_ok() {
            let mut generation = self.shared.generation.lock().unwrap_or_else(|e| e.into_inner());
            *generation += 1;
            self.shared.committed.notify_all();
        }
        result
    }

    fn commit_batch(
        &self,
        pending: &[PendingPartition],
        group: Option<&str>,
        offsets: &[(TopicPartition, u64)],
    ) -> Result<(), LogError> {
        self.locked(|valid_len| {
            let mut appends = Vec::with_capacity(pending.len());
            for PendingPartition { tp, frames, count } in pending.iter().filter(|p| p.count > 0) {
                let (end_offset, end_bytes, generation) = {
                    let state = self.read_state();
                    let p = state.partition(tp)?;
                    (p.end_offset, p.end_bytes, p.generation)
                };
                let path = self.partition_path(&tp.topic, tp.partition, generation);
                let mut file = OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(false)
                    .open(&path)
                    .map_err(io("open", &path))?;
                // Bytes past the committed end belong to a commit that never finished.
                file.set_len(end_bytes).map_err(io("truncate", &path))?;
                file.seek(SeekFrom::Start(end_bytes)).map_err(io("seek", &path))?;
                file.write_all(frames.as_slice()).map_err(io("write", &path))?;
                if self.shared.fsync {
                    file.sync_data().map_err(io("sync", &path))?;
                }
                appends.push(Append {
                    topic: tp.topic.to_string(),
                    partition: tp.partition,
                    end_offset: end_offset + count,
                    end_bytes: end_bytes + frames.len() as u64,
                });
            }
            let offsets = match group {
                Some(g) => offsets
                    .iter()
                    .map(|(tp, o)| GroupOffset {
                        group: g.to_owned(),
                        topic: tp.topic.to_string(),
                        partition: tp.partition,
                        offset: *o,
                    })
                    .collect(),
                None => Vec::new(),
            };
            if appends.is_empty() && offsets.is_empty() {
                return Ok(());
            }
            let entry = Entry::Commit { appends, offsets };
            self.append_journal(valid_len, &entry)?;
            self.write_state().apply(entry);
            Ok(())
        })
    }

    fn wait_for_commit(&self, seen: u64, timeout: Duration) {
        let generation = self.shared.generation.lock().unwrap_or_else(|e| e.into_inner());
        if *generation == seen {
            let _unused = self.shared.committed.wait_timeout(generation, timeout);
        }
    }

    fn generation(&self) -> u64 {
        *self.shared.generation.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn parse_line(line: &[u8]) -> Option<Entry> {
    let line = line.strip_suffix(b"\n")?;
    let (crc, json) = (line.get(..8)?, line.get(9..)?);
    let crc = u32::from_str_radix(std::str::from_utf8(crc).ok()?, 16).ok()?;
    (crc32fast::hash(json) == crc).then(|| serde_json::from_slice(json).ok())?
}

impl Log for EmbeddedLog {
    /// Every topic is kept the same way here: changelogs are compacted by
    /// [`Log::compact`], and nothing is deleted by age.
    fn create_topic_as(&self, name: &str, partitions: u32, _role: TopicRole) -> Result<(), LogError> {
        check_new_topic(name, partitions)?;
        self.locked(|valid_len| {
            if let Some(parts) = self.read_state().topics.get(name) {
                return Err(LogError::TopicExists { name: name.to_owned(), partitions: parts.len() as u32 });
            }
            let dir = self.shared.dir.join("topics").join(name);
            fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
            for p in 0..partitions {
                let path = self.partition_path(name, p, 0);
                File::create(&path).map_err(io("create", &path))?;
            }
            let entry = Entry::Create { topic: name.to_owned(), partitions };
            self.append_journal(valid_len, &entry)?;
            self.write_state().apply(entry);
            Ok(())
        })
    }

    fn delete_topics(&self, names: &[String]) -> Result<(), LogError> {
        self.delete(names.to_vec(), Vec::new())
    }

    fn delete_group(&self, group: &str) -> Result<(), LogError> {
        self.delete(Vec::new(), vec![group.to_owned()])
    }

    fn topics(&self) -> Result<Vec<TopicInfo>, LogError> {
        self.refresh()?;
        let state = self.read_state();
        Ok(state.topics.iter().map(|(n, p)| TopicInfo { name: n.clone(), partitions: p.len() as u32 }).collect())
    }

    fn partitions(&self, topic: &str) -> Result<Option<u32>, LogError> {
        self.refresh()?;
        Ok(self.read_state().topics.get(topic).map(|p| p.len() as u32))
    }

    fn end_offset(&self, tp: &TopicPartition) -> Result<u64, LogError> {
        self.refresh()?;
        Ok(self.read_state().partition(tp)?.end_offset)
    }

    fn committed(&self, group: &str, tp: &TopicPartition) -> Result<Option<u64>, LogError> {
        self.refresh()?;
        Ok(self.read_state().offsets.get(&(group.to_owned(), tp.clone())).copied())
    }

    fn consumer(&self) -> Result<Box<dyn Consumer>, LogError> {
        Ok(Box::new(EmbeddedConsumer { log: self.clone(), readers: Vec::new(), next: 0, last_refresh: Instant::now() }))
    }

    fn compact(&self, tp: &TopicPartition, min_dirty: f64, cleanup: Cleanup) -> Result<u64, LogError> {
        compaction::compact(self, tp, min_dirty, cleanup)
    }

    fn join(&self, group: &str, _tasks: u32, local: &[u32]) -> Result<Box<dyn Member>, LogError> {
        Ok(Box::new(FixedMember::new(group, local)))
    }

    fn producer(&self) -> Result<Box<dyn Producer>, LogError> {
        Ok(Box::new(EmbeddedProducer {
            log: self.clone(),
            pending: Vec::new(),
            index: HashMap::default(),
            last: 0,
            records: 0,
        }))
    }
}

/// Records of one partition in an open transaction, already framed.
struct PendingPartition {
    tp: TopicPartition,
    frames: Writer,
    count: u64,
}

/// The largest buffer of a partition's records that a producer keeps for
/// the next transaction.
const MAX_KEPT_BUFFER: usize = 8 << 20;

/// Buffers a transaction's records until commit.
struct EmbeddedProducer {
    log: EmbeddedLog,
    pending: Vec<PendingPartition>,
    /// Index into `pending` by partition, and the last one used.
    /// foldhash: hashed once per record sent, so SipHash would show.
    index: HashMap<TopicPartition, usize, foldhash::fast::RandomState>,
    last: usize,
    records: usize,
}

impl EmbeddedProducer {
    /// The pending slot of `tp`, checking the partition exists on first use.
    fn slot(&mut self, tp: &TopicPartition) -> Result<usize, LogError> {
        if self.pending.get(self.last).is_some_and(|p| p.tp == *tp) {
            return Ok(self.last);
        }
        let i = match self.index.get(tp) {
            Some(&i) => i,
            None => {
                if self.log.read_state().partition(tp).is_err() {
                    self.log.refresh()?;
                    self.log.read_state().partition(tp)?;
                }
                self.pending.push(PendingPartition {
                    tp: tp.clone(),
                    frames: Writer::with_capacity(64 * 1024),
                    count: 0,
                });
                self.index.insert(tp.clone(), self.pending.len() - 1);
                self.pending.len() - 1
            }
        };
        self.last = i;
        Ok(i)
    }
}

impl Producer for EmbeddedProducer {
    fn send(&mut self, tp: &TopicPartition, record: Record) -> Result<(), LogError> {
        let slot = self.slot(tp)?;
        let p = &mut self.pending[slot];
        put_frame(&mut p.frames, &record);
        p.count += 1;
        self.records += 1;
        Ok(())
    }

    fn commit(&mut self, member: Option<&dyn Member>, offsets: &[(TopicPartition, u64)]) -> Result<(), LogError> {
        self.log.commit_batch(&self.pending, member.map(|m| m.group()), offsets)?;
        self.abort();
        Ok(())
    }

    fn abort(&mut self) {
        // The partitions written in this transaction keep their buffers
        // (up to MAX_KEPT_BUFFER) for the next: one that started empty each
        // commit grew by copying itself over, on fresh pages. Those not
        // written in it go.
        self.pending.retain_mut(|p| {
            let used = p.count > 0;
            p.count = 0;
            if p.frames.capacity() > MAX_KEPT_BUFFER {
                p.frames = Writer::with_capacity(MAX_KEPT_BUFFER);
            }
            p.frames.truncate(0);
            used
        });
        self.index.clear();
        for (i, p) in self.pending.iter().enumerate() {
            self.index.insert(p.tp.clone(), i);
        }
        self.last = 0;
        self.records = 0;
    }

    fn pending(&self) -> usize {
        self.records
    }
}

#[path = "embedded_reader.rs"]
mod reader;
use reader::*;

#[path = "embedded_consumer.rs"]
mod consumer;
use consumer::EmbeddedConsumer;

#[path = "compaction.rs"]
mod compaction;

#[cfg(test)]
#[path = "embedded_tests.rs"]
mod tests;
