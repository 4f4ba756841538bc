//! The log: topics of partitioned, offset-addressed records, consumer group
//! offsets, and transactional commits.
//!
//! [`Log`] is the seam between the runtime and a backend. It maps onto Kafka
//! one to one: topics and partitions; offsets per partition; committed offsets
//! per group (the application id); a [`Producer`] whose `commit` makes the
//! records sent since the last commit visible together with the group's new
//! offsets, all or nothing (Kafka's transactional producer with
//! `sendOffsetsToTransaction`); and a [`Consumer`] that reads only committed
//! records (`read_committed`). [`embedded::EmbeddedLog`] implements it on local
//! disk, [`kafka::KafkaLog`] on an Apache Kafka cluster.

pub mod embedded;
pub mod kafka;

use std::any::Any;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::record::Record;

pub use embedded::EmbeddedLog;
pub use kafka::KafkaLog;

/// A topic name and a partition number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition number, from 0.
    pub partition: u32,
}

impl TopicPartition {
    /// The partition `partition` of `topic`.
    pub fn new(topic: &str, partition: u32) -> Self {
        TopicPartition { topic: Arc::from(topic), partition }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A topic's name and partition count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Number of partitions.
    pub partitions: u32,
}

/// A record read from a partition, with its offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Position of the record in its partition.
    pub offset: u64,
    /// The record.
    pub record: Record,
}

/// Records fetched from one partition by [`Consumer::poll`].
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Where the records come from.
    pub partition: TopicPartition,
    /// The records, in offset order.
    pub records: Vec<LogRecord>,
}

/// What went wrong in a log backend.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file of the log could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The topic does not exist.
    #[error("topic '{0}' does not exist (create it with `eddy topic create {0} --partitions N`)")]
    UnknownTopic(String),
    /// The partition does not exist.
    #[error("topic '{topic}' has {partitions} partition(s); there is no partition {partition}")]
    UnknownPartition {
        /// Topic name.
        topic: String,
        /// The partition asked for.
        partition: u32,
        /// How many the topic has.
        partitions: u32,
    },
    /// A topic of that name exists already.
    #[error("topic '{name}' already exists with {partitions} partition(s)")]
    TopicExists {
        /// Topic name.
        name: String,
        /// Its partition count.
        partitions: u32,
    },
    /// A topic name or partition count is not allowed.
    #[error("invalid topic '{name}': {reason}")]
    InvalidTopic {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Stored data failed its checksum or could not be decoded.
    #[error("corrupt log data in {path} at byte {at}: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte position.
        at: u64,
        /// What is wrong.
        detail: String,
    },
    /// Another process holds a lock this one needs.
    #[error("{0}")]
    Busy(String),
    /// A commit was refused because this member or producer no longer owns
    /// its work: the group moved its tasks on (a rebalance, or the member
    /// was thought dead), or a newer producer took its transactional id.
    /// Nothing since the last commit is committed; the work must go back to
    /// the last commit.
    #[error("fenced: {op}: {source}")]
    Fenced {
        /// What was being done.
        op: String,
        /// The client's error.
        source: rdkafka::error::KafkaError,
    },
    /// At-least-once, the group refused the offsets because it is moving
    /// tasks: the records sent are written, the offsets are not committed.
    /// Commit them again later (if the tasks moved away, the group says so).
    #[error("offsets not committed while the group rebalances: {op}: {source}")]
    Rebalancing {
        /// What was being done.
        op: String,
        /// The client's error.
        source: rdkafka::error::KafkaError,
    },
    /// A client setting the user gave cannot be used; the message names it.
    #[error("{0}")]
    Settings(String),
    /// The Kafka cluster or client refused or failed an operation.
    #[error("kafka: {op}: {source}")]
    Kafka {
        /// What was being done, naming the topic or group.
        op: String,
        /// The client's error.
        source: rdkafka::error::KafkaError,
    },
}

/// What a topic is for, which decides its configuration on a broker (the
/// embedded log keeps every topic the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicRole {
    /// A user's topic: the cluster's defaults.
    Plain,
    /// A store's changelog: compacted, as its [`Cleanup`] says.
    Changelog(Cleanup),
    /// A repartition (or other internal) topic: kept until read, whatever
    /// its records' timestamps (`retention.ms=-1`).
    Repartition,
}

/// How a changelog's old records go: Kafka's cleanup settings for it. The
/// default keeps each key's last record forever (`cleanup.policy=compact`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cleanup {
    /// Records this much (ms) older than the partition's latest timestamp
    /// go, whatever their key (`cleanup.policy=compact,delete` with
    /// `retention.ms`): a window store's changelog.
    pub retention_ms: Option<i64>,
    /// Records less than this much (ms) older than the partition's latest
    /// timestamp stay even when a later record has their key
    /// (`min.compaction.lag.ms`): a versioned store's history.
    pub min_compaction_lag_ms: Option<i64>,
    /// A tombstone that is its key's last record goes this long (ms, wall
    /// clock) after a compaction first kept it (`delete.retention.ms`):
    /// readers behind by less than that still see the delete. `None` keeps
    /// tombstones forever.
    pub delete_retention_ms: Option<i64>,
}

/// Checks a topic name the way Kafka does: 1-249 characters of ASCII letters,
/// digits, `.`, `_` and `-`, and not `.` or `..`.
pub fn check_topic_name(name: &str) -> Result<(), LogError> {
    let bad = |reason: &str| Err(LogError::InvalidTopic { name: name.to_owned(), reason: reason.to_owned() });
    if name.is_empty() || name.len() > 249 {
        return bad("a topic name has 1 to 249 characters");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not topic names");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return bad("use only ASCII letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

/// Checks a new topic's name and partition count (1 to 10000).
pub fn check_new_topic(name: &str, partitions: u32) -> Result<(), LogError> {
    check_topic_name(name)?;
    if partitions == 0 || partitions > 10_000 {
        return Err(LogError::InvalidTopic {
            name: name.to_owned(),
            reason: format!("{partitions} partitions: a topic has 1 to 10000"),
        });
    }
    Ok(())
}

/// A log backend: topics, offsets and transactional commits.
pub trait Log: Send + Sync {
    /// Creates a user topic with `partitions` partitions.
    fn create_topic(&self, name: &str, partitions: u32) -> Result<(), LogError> {
        self.create_topic_as(name, partitions, TopicRole::Plain)
    }

    /// Creates a topic with `partitions` partitions, configured for `role`.
    fn create_topic_as(&self, name: &str, partitions: u32, role: TopicRole) -> Result<(), LogError>;

    /// All topics, by name.
    fn topics(&self) -> Result<Vec<TopicInfo>, LogError>;

    /// Deletes these topics with their records and the offsets committed
    /// for them; names that do not exist are left alone.
    fn delete_topics(&self, names: &[String]) -> Result<(), LogError>;

    /// Forgets consumer group `group`: its committed offsets (and where the
    /// log keeps one, the group's own coordination topic).
    fn delete_group(&self, group: &str) -> Result<(), LogError>;

    /// The partition count of `topic`, or `None` if it does not exist.
    fn partitions(&self, topic: &str) -> Result<Option<u32>, LogError>;

    /// The offset after the last committed record of a partition (Kafka's
    /// last stable offset).
    fn end_offset(&self, tp: &TopicPartition) -> Result<u64, LogError>;

    /// The offset `group` committed for a partition: the next to read.
    fn committed(&self, group: &str, tp: &TopicPartition) -> Result<Option<u64>, LogError>;

    /// A consumer that reads committed records of assigned partitions.
    fn consumer(&self) -> Result<Box<dyn Consumer>, LogError>;

    /// A transactional producer.
    fn producer(&self) -> Result<Box<dyn Producer>, LogError>;

    /// Joins consumer group `group`, which shares `tasks` tasks (numbered
    /// from 0) among its members, as Kafka Streams shares an application's
    /// tasks among its threads and instances. On a log with a group
    /// coordinator (Kafka) the coordinator decides which tasks each member
    /// owns, and moves them when members come and go; a log without one (the
    /// embedded log, which one process uses) gives the member the `local`
    /// tasks.
    fn join(&self, group: &str, tasks: u32, local: &[u32]) -> Result<Box<dyn Member>, LogError>;

    /// The members of `group` (joined with [`Log::join`]) and the tasks each
    /// owns, as the group's coordinator last assigned them: for placing
    /// standby replicas. Empty on a log without a coordinator.
    fn members(&self, _group: &str) -> Result<Vec<GroupMember>, LogError> {
        Ok(Vec::new())
    }

    /// The name this process's group members go by in [`Log::members`].
    fn instance(&self) -> Option<String> {
        None
    }

    /// Compacts a partition of a keyed topic (a changelog): drops each record
    /// a later record with the same key supersedes, and records without a
    /// key, keeping every other record's offset, as `cleanup` says (see
    /// [`Cleanup`]). Runs only if the records since the last
    /// compaction are at least `min_dirty` (0 to 1) of the partition's
    /// records (Kafka's `min.cleanable.dirty.ratio`); with a `min_dirty`
    /// above 0 (the background cleaner's), only if it drops at least an
    /// eighth of the records, or records past the retention. Returns how
    /// many records it dropped. A backend whose broker compacts by itself
    /// does nothing.
    fn compact(&self, tp: &TopicPartition, min_dirty: f64, cleanup: Cleanup) -> Result<u64, LogError>;

    /// Deletes the records of `tp` before offset `before`: a repartition
    /// topic's records once the group has committed past them, as Kafka
    /// Streams purges them (`deleteRecords`). A backend that cannot does
    /// nothing.
    fn purge(&self, _tp: &TopicPartition, _before: u64) -> Result<(), LogError> {
        Ok(())
    }
}

/// Reads committed records from assigned partitions.
pub trait Consumer: Send {
    /// Replaces the assignment: each partition is read from the given offset.
    fn assign(&mut self, partitions: &[(TopicPartition, u64)]) -> Result<(), LogError>;

    /// Fetches up to `max` records across the assigned partitions, waiting up
    /// to `timeout` if none is ready. Returns an empty list on timeout.
    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Fetched>, LogError>;

    /// The next offset this consumer reads in an assigned partition: past the
    /// records it returned and past offsets after them that hold no record
    /// for it (Kafka's transaction markers, records compacted away).
    fn position(&self, tp: &TopicPartition) -> Option<u64>;

    /// Whether an assigned partition has committed records this consumer has
    /// not returned yet. It may learn of new records a moment late, but never
    /// calls a partition behind that is not.
    fn behind(&mut self, tp: &TopicPartition) -> Result<bool, LogError>;
}

/// Reads partitions from the given offsets up to the end offsets they have
/// when it starts, handing each poll's records to `f` (records at or past a
/// partition's end are left out). Returns the end offsets it read to.
pub fn read_to_end<E: From<LogError>>(
    log: &dyn Log,
    from: &[(TopicPartition, u64)],
    mut f: impl FnMut(Vec<Fetched>) -> Result<(), E>,
) -> Result<Vec<u64>, E> {
    let mut ends = Vec::with_capacity(from.len());
    let mut assignment = Vec::new();
    for (tp, start) in from {
        let end = log.end_offset(tp)?;
        if *start < end {
            assignment.push((tp.clone(), *start));
        }
        ends.push(end);
    }
    let mut positions: Vec<u64> = from.iter().map(|(_, start)| *start).collect();
    if assignment.is_empty() {
        return Ok(positions);
    }
    let mut consumer = log.consumer()?;
    consumer.assign(&assignment)?;
    let index = |tp: &TopicPartition| from.iter().position(|(t, _)| t == tp);
    while positions.iter().zip(&ends).any(|(p, e)| p < e) {
        let mut batch = Vec::new();
        for mut fetched in consumer.poll(8192, Duration::from_millis(100))? {
            let Some(i) = index(&fetched.partition) else { continue };
            fetched.records.retain(|r| r.offset < ends[i]);
            if !fetched.records.is_empty() {
                batch.push(fetched);
            }
        }
        for (i, (tp, _)) in from.iter().enumerate() {
            // Asking moves the position past records the log deleted.
            consumer.behind(tp)?;
            if let Some(p) = consumer.position(tp) {
                positions[i] = positions[i].max(p.min(ends[i]));
            }
        }
        if !batch.is_empty() {
            f(batch)?;
        }
    }
    Ok(positions)
}

/// A member of an application's group, as [`Log::members`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The instance (process) it belongs to: every worker thread of one
    /// instance has the same.
    pub instance: String,
    /// The tasks it owns.
    pub tasks: Vec<u32>,
}

impl GroupMember {
    /// Where the member's instance answers interactive queries: the part of
    /// its instance name after `@` (`eddy run --listen`), if any.
    pub fn query_address(&self) -> Option<&str> {
        self.instance.split_once('@').map(|(_, address)| address).filter(|a| !a.is_empty())
    }
}

/// A change of the tasks a group member owns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rebalance {
    /// Tasks it owns from now on.
    pub assigned: Vec<u32>,
    /// Tasks it gives up.
    pub revoked: Vec<u32>,
    /// The revoked tasks were already taken away (the member was thought
    /// dead): their work since the last commit cannot be committed.
    pub lost: bool,
}

/// A member of a consumer group ([`Log::join`]): the tasks it owns.
pub trait Member: Send {
    /// The group's name.
    fn group(&self) -> &str;

    /// Waits up to `timeout` for a change of the tasks this member owns.
    /// The first change assigns its first tasks.
    fn poll(&mut self, timeout: Duration) -> Result<Option<Rebalance>, LogError>;

    /// Completes a change `poll` returned. Call once the revoked tasks' work
    /// is committed and they are closed: until then no other member gets
    /// them.
    fn complete(&mut self, change: &Rebalance) -> Result<(), LogError>;

    /// The backend's own member, for its producers' commits.
    fn as_any(&self) -> &dyn Any;
}

/// A member of a group without a coordinator: it owns the tasks it was
/// given, from its first poll on (the embedded log's [`Log::join`]).
pub struct FixedMember {
    group: String,
    tasks: Option<Vec<u32>>,
}

impl FixedMember {
    /// A member of `group` that owns `tasks`.
    pub fn new(group: &str, tasks: &[u32]) -> Self {
        FixedMember { group: group.to_owned(), tasks: Some(tasks.to_vec()) }
    }
}

impl Member for FixedMember {
    fn group(&self) -> &str {
        &self.group
    }

    fn poll(&mut self, timeout: Duration) -> Result<Option<Rebalance>, LogError> {
        match self.tasks.take() {
            Some(assigned) => Ok(Some(Rebalance { assigned, ..Rebalance::default() })),
            None => {
                std::thread::sleep(timeout);
                Ok(None)
            }
        }
    }

    fn complete(&mut self, _change: &Rebalance) -> Result<(), LogError> {
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Writes records in transactions.
pub trait Producer: Send {
    /// Adds a record to the open transaction. It becomes visible at `commit`.
    fn send(&mut self, tp: &TopicPartition, record: Record) -> Result<(), LogError>;

    /// Commits the records sent since the last commit and, if a group
    /// member is given, its group's offsets for the partitions listed: all or
    /// nothing. A member that lost its tasks to another (a zombie) cannot
    /// commit.
    fn commit(&mut self, member: Option<&dyn Member>, offsets: &[(TopicPartition, u64)]) -> Result<(), LogError>;

    /// Drops the records sent since the last commit.
    fn abort(&mut self);

    /// Makes the producer usable again after a refused commit
    /// ([`LogError::Fenced`]): on Kafka, a new transactional producer with
    /// the same transactional id, which fences any older one.
    fn reset(&mut self) -> Result<(), LogError> {
        Ok(())
    }

    /// Number of records sent and not yet committed.
    fn pending(&self) -> usize;
}
