//! The executable form of a topology: pushes batches of records through the
//! operator graph, calling the plugin once per operator per batch.
//!
//! A [`Pipeline`] belongs to one worker thread and serves all its tasks
//! (stateless operators keep nothing per task). Records that a function
//! rejects, traps on, or that fail their serde meet the application's
//! [`ErrorPolicy`]. A trap kills the plugin instance; the pipeline makes a new
//! one and replays the batch record by record, so that only the record that
//! traps is treated as failed.
//!
//! Consecutive one-in-one-out plugin operators (filters, map, map-values,
//! select-key, peek) with no branching between them are fused: the whole
//! chain runs in one plugin call per batch, and errors still name the node
//! whose function failed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::app::{App, ErrorPolicy};

use crate::log::{Fetched, Log, LogError, LogRecord, Producer, TopicPartition};
use crate::partition::partition_for_key;
use crate::plugin::{
    AGGREGATE_HEADER, ChainOutcome, ChainStep, FunctionKind, Instance, Outcome, PUNCTUATION_HEADER, Plugin,
    PluginError, RecordError,
};
use crate::record::{Header, Record};
use crate::serdes::Serde;
use crate::store::{GlobalStore, SlotStore, StoreAccess, StoreError, TaskStore, changelog_topic};
use crate::topology::{Op, PunctuationTime, StoreSpec};

/// The header that marks a grouped table's record as an old value to take
/// out of its group's aggregate.
pub const SUBTRACT_HEADER: &str = "eddy.subtract";

/// Why processing stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// A record failed under the `fail` error policy.
    #[error(
        "node '{node}' failed on {source_partition} offset {offset}: {error} (error-policy: fail; use skip or dead-letter to go on past such records)"
    )]
    RecordFailed {
        /// The node.
        node: String,
        /// Where the input record came from.
        source_partition: TopicPartition,
        /// Its offset.
        offset: u64,
        /// What went wrong.
        error: String,
    },
    /// The plugin could not be instantiated.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stateful node ran for a task whose stores were not opened (a bug).
    #[error("node '{0}' has no store open for task {1}")]
    NoStore(String, u32),
    /// A processor names a store that is neither its own nor a global table's.
    #[error("node '{node}' uses store '{store}', which is not open")]
    UnknownStore {
        /// The node.
        node: String,
        /// The store.
        store: String,
    },
}

/// Counts kept by a pipeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipelineStats {
    /// Records written to sink topics.
    pub records_out: u64,
    /// Records skipped under the `skip` policy.
    pub skipped: u64,
    /// Records written to the dead-letter topic.
    pub dead_lettered: u64,
}

enum Exec {
    Source {
        topics: Vec<String>,
        key: Serde,
        value: Serde,
        table: bool,
    },
    Count {
        subtract: bool,
    },
    Aggregate {
        kind: FunctionKind,
        function: u32,
        subtractor: Option<u32>,
        /// For a cogroup: the aggregator of each input node.
        cogroup: Vec<(usize, u32)>,
    },
    TableGroupBy {
        function: u32,
    },
    Materialize,
    Process {
        function: u32,
        /// The node's stores by name: a task store's id, or `None` for a
        /// global table's.
        slots: Vec<(String, Option<usize>)>,
        /// The punctuator, its interval and its clock.
        punctuator: Option<(u32, i64, PunctuationTime)>,
    },
    Filter {
        function: u32,
        negate: bool,
    },
    Transform {
        kind: FunctionKind,
        function: u32,
    },
    Split {
        branches: Vec<(usize, Option<u32>)>,
    },
    /// Fused operators: the steps, and the node of each step.
    Chain {
        steps: Arc<[ChainStep]>,
        nodes: Arc<[usize]>,
    },
    Pass,
    Sink {
        partitions: Vec<TopicPartition>,
        key: Serde,
        value: Serde,
        next: u32,
    },
}

/// Records for one plugin call, with the key and input record of each.
type Calls = (Vec<Record>, Vec<(Bytes, u32)>);

/// Records in flight, each with the index of the input record it came from.
#[derive(Default)]
struct Batch {
    records: Vec<Record>,
    origins: Vec<u32>,
}

impl Batch {
    fn with_capacity(n: usize) -> Self {
        Batch { records: Vec::with_capacity(n), origins: Vec::with_capacity(n) }
    }

    fn push(&mut self, r: Record, origin: u32) {
        self.records.push(r);
        self.origins.push(origin);
    }

    fn len(&self) -> usize {
        self.records.len()
    }
}

/// What a failure is about, for logs and dead-letter headers.
enum FailureKind {
    Deserialization,
    Serialization,
    Function,
}

impl FailureKind {
    fn as_str(&self) -> &'static str {
        match self {
            FailureKind::Deserialization => "deserialization",
            FailureKind::Serialization => "serialization",
            FailureKind::Function => "function",
        }
    }
}

struct DeadLetter {
    partitions: Vec<TopicPartition>,
}

/// The topology of an [`App`], ready to process batches.
pub struct Pipeline {
    names: Vec<String>,
    execs: Vec<Exec>,
    children: Vec<Vec<usize>>,
    plugin: Arc<dyn Plugin>,
    instance: Option<Box<dyn Instance>>,
    policy: ErrorPolicy,
    dead_letter: Option<DeadLetter>,
    stats: PipelineStats,
    scratch: Vec<Outcome>,
    /// True for nodes whose output is a table's changelog.
    tables: Vec<bool>,
    /// Open task stores by (task, store id).
    stores: BTreeMap<(u32, usize), TaskStore>,
    /// The task stores, by id, with the node whose children get what the
    /// store flushes (none for processors' and group-by's stores).
    store_specs: Vec<(StoreSpec, Option<usize>)>,
    /// The store id of each node that owns one.
    node_store: Vec<Option<usize>>,
    /// Global tables' stores, by store name.
    globals: HashMap<String, Arc<GlobalStore>>,
    /// The tasks of this pipeline.
    tasks: Vec<u32>,
    /// Largest record timestamp seen, per task.
    stream_time: BTreeMap<(u32, usize), i64>,
    /// Each stream-time punctuator's node, with the topics whose records
    /// reach it: only they advance its stream time (as a sub-topology's own
    /// task in Kafka Streams), so records coming back through a repartition
    /// topic are not late against their own input.
    stream_sources: Vec<(usize, Vec<String>)>,
    /// Next punctuation time per (task, node): stream time or wall-clock ms.
    next_punctuation: BTreeMap<(u32, usize), i64>,
    /// A fixed wall clock `(start, now)`, or none for the system clock.
    wall_clock: Option<(i64, i64)>,
    app_id: String,
}

fn partitions_of(log: &dyn Log, topic: &str) -> Result<Vec<TopicPartition>, LogError> {
    let n = log.partitions(topic)?.ok_or_else(|| LogError::UnknownTopic(topic.to_owned()))?;
    Ok((0..n).map(|p| TopicPartition::new(topic, p)).collect())
}

impl Pipeline {
    /// Prepares `app`'s topology; sink and dead-letter topics must exist in `log`.
    pub fn new(app: &App, log: &dyn Log) -> Result<Pipeline, ProcessError> {
        let manifest = app.plugin.manifest();
        let index = |name: &str| manifest.index_of(name).expect("topology was checked against the manifest");
        let mut store_specs: Vec<(StoreSpec, Option<usize>)> = Vec::new();
        let mut node_store = vec![None; app.topology.nodes.len()];
        for (node, spec) in app.topology.stores() {
            let emits = !matches!(app.topology.nodes[node].op, Op::Process { .. } | Op::TableGroupBy { .. });
            if !matches!(app.topology.nodes[node].op, Op::Process { .. }) {
                node_store[node] = Some(store_specs.len());
            }
            store_specs.push((spec.clone(), emits.then_some(node)));
        }
        let store_id = |name: &str| store_specs.iter().position(|(s, _)| s.name == name);
        let mut execs = Vec::with_capacity(app.topology.nodes.len());
        for node in &app.topology.nodes {
            execs.push(match &node.op {
                Op::Source { topics, key_serde, value_serde, table } => Exec::Source {
                    topics: topics.clone(),
                    key: *key_serde,
                    value: *value_serde,
                    table: table.is_some(),
                },
                Op::Count { subtract, .. } => Exec::Count { subtract: *subtract },
                Op::Aggregate { kind, function, subtractor, cogroup, .. } => Exec::Aggregate {
                    kind: *kind,
                    function: index(function),
                    subtractor: subtractor.as_deref().map(index),
                    cogroup: cogroup.iter().map(|(input, f)| (*input, index(f))).collect(),
                },
                Op::TableGroupBy { function, .. } => Exec::TableGroupBy { function: index(function) },
                Op::Materialize { .. } => Exec::Materialize,
                Op::Process { function, stores, punctuate } => Exec::Process {
                    function: index(function),
                    slots: stores.iter().map(|s| (s.name.clone(), store_id(&s.name))).collect(),
                    punctuator: punctuate.as_ref().map(|p| (index(&p.function), p.every_ms as i64, p.time)),
                },
                Op::GlobalTable { .. } | Op::ToStream => Exec::Pass,
                Op::Filter { function, negate } => Exec::Filter { function: index(function), negate: *negate },
                Op::Transform { kind, function } => Exec::Transform { kind: *kind, function: index(function) },
                Op::Split { branches } => {
                    Exec::Split { branches: branches.iter().map(|(b, p)| (*b, p.as_deref().map(index))).collect() }
                }
                Op::Branch | Op::Merge => Exec::Pass,
                Op::Sink { topic, key_serde, value_serde } => {
                    Exec::Sink { partitions: partitions_of(log, topic)?, key: *key_serde, value: *value_serde, next: 0 }
                }
            });
        }
        fuse_chains(app, &mut execs);
        let dead_letter = match app.error_policy {
            ErrorPolicy::DeadLetter => Some(DeadLetter { partitions: partitions_of(log, &app.dead_letter_topic)? }),
            _ => None,
        };
        Ok(Pipeline {
            names: app.topology.nodes.iter().map(|n| n.name.clone()).collect(),
            execs,
            children: app.topology.children(),
            plugin: app.plugin.clone(),
            instance: None,
            policy: app.error_policy,
            dead_letter,
            stats: PipelineStats::default(),
            scratch: Vec::new(),
            tables: app.topology.nodes.iter().map(|n| n.table).collect(),
            stores: BTreeMap::new(),
            store_specs,
            node_store,
            globals: HashMap::new(),
            tasks: Vec::new(),
            stream_time: BTreeMap::new(),
            stream_sources: stream_sources(app),
            next_punctuation: BTreeMap::new(),
            wall_clock: None,
            app_id: app.id.clone(),
        })
    }

    /// Counts so far.
    pub fn stats(&self) -> PipelineStats {
        self.stats
    }

    /// Pushes records fetched from one partition through every source that
    /// reads its topic, sending outputs (and dead letters) to `out`. Stream-
    /// time punctuators run between the records where their stream time (the
    /// largest timestamp, in this task, of the topics that reach them)
    /// crosses their next punctuation time.
    pub fn process(&mut self, input: &Fetched, out: &mut dyn Producer) -> Result<(), ProcessError> {
        let task = input.partition.partition;
        let topic = &*input.partition.topic;
        let punctuators: Vec<usize> =
            self.stream_sources.iter().filter(|(_, ts)| ts.iter().any(|t| t == topic)).map(|(n, _)| *n).collect();
        if punctuators.is_empty() {
            return self.process_segment(input, out);
        }
        let mut start = 0;
        for (i, r) in input.records.iter().enumerate() {
            let mut due = false;
            for &node in &punctuators {
                let time = self.stream_time.entry((task, node)).or_insert(r.record.timestamp);
                *time = (*time).max(r.record.timestamp);
                due |= self.next_punctuation.get(&(task, node)).is_some_and(|next| *time >= *next);
            }
            if due {
                let segment =
                    Fetched { partition: input.partition.clone(), records: input.records[start..=i].to_vec() };
                self.process_segment(&segment, out)?;
                start = i + 1;
            }
            for &node in &punctuators {
                let time = self.stream_time[&(task, node)];
                self.punctuate(task, &[node], PunctuationTime::Stream, time, out)?;
            }
        }
        if start == 0 {
            self.process_segment(input, out)
        } else if start < input.records.len() {
            let rest = Fetched { partition: input.partition.clone(), records: input.records[start..].to_vec() };
            self.process_segment(&rest, out)
        } else {
            Ok(())
        }
    }

    /// Fixes the wall clock: the time is `now`, and a punctuator runs if the
    /// clock crossed a multiple of its interval since `start` (see
    /// [`crate::runtime::RunOptions::wall_clock`]).
    pub fn set_wall_clock(&mut self, clock: Option<(i64, i64)>) {
        self.wall_clock = clock;
    }

    /// Runs the wall-clock punctuators that are due. Call often (the worker
    /// calls it after every poll, records or not).
    pub fn punctuate_wall_clock(&mut self, out: &mut dyn Producer) -> Result<(), ProcessError> {
        let nodes = self.punctuators(PunctuationTime::Wall);
        if nodes.is_empty() {
            return Ok(());
        }
        let now = match self.wall_clock {
            Some((start, now)) => {
                for &task in &self.tasks {
                    for &node in &nodes {
                        if let Exec::Process { punctuator: Some((_, every, _)), .. } = self.execs[node] {
                            // Runs when the clock crosses a multiple of the interval.
                            let next = (start.div_euclid(every) + 1) * every;
                            self.next_punctuation.entry((task, node)).or_insert(next);
                        }
                    }
                }
                now
            }
            None => crate::jsonl::now_ms(),
        };
        for task in self.tasks.clone() {
            self.punctuate(task, &nodes, PunctuationTime::Wall, now, out)?;
        }
        Ok(())
    }

    /// The processor nodes with a punctuator on `clock`.
    fn punctuators(&self, clock: PunctuationTime) -> Vec<usize> {
        (0..self.execs.len())
            .filter(|&n| matches!(&self.execs[n], Exec::Process { punctuator: Some((_, _, c)), .. } if *c == clock))
            .collect()
    }

    /// Runs the punctuators of `nodes` for `task` whose next time `now` has
    /// reached; a punctuator seen for the first time is scheduled for the next
    /// multiple of its interval (stream time) or one interval from now (wall).
    fn punctuate(
        &mut self,
        task: u32,
        nodes: &[usize],
        clock: PunctuationTime,
        now: i64,
        out: &mut dyn Producer,
    ) -> Result<(), ProcessError> {
        for &node in nodes {
            let Exec::Process { punctuator: Some((function, every, _)), .. } = self.execs[node] else { continue };
            let following = match clock {
                PunctuationTime::Stream => (now.div_euclid(every) + 1) * every,
                PunctuationTime::Wall => now + every,
            };
            let next = self.next_punctuation.entry((task, node)).or_insert(following);
            if now < *next {
                continue;
            }
            *next = following;
            let record = Record { key: None, value: None, timestamp: now, headers: Vec::new() }
                .with_header(PUNCTUATION_HEADER, clock.as_str());
            let input = Fetched {
                partition: TopicPartition::new(&format!("{}-punctuation", self.names[node]), task),
                records: vec![LogRecord { offset: 0, record: record.clone() }],
            };
            let batch = Batch { records: vec![record], origins: vec![0] };
            self.run_processor(node, function, FunctionKind::Punctuator, batch, &input, out)?;
        }
        Ok(())
    }

    fn process_segment(&mut self, input: &Fetched, out: &mut dyn Producer) -> Result<(), ProcessError> {
        for node in 0..self.execs.len() {
            let Exec::Source { topics, key, value, table } = &self.execs[node] else {
                continue;
            };
            if !topics.iter().any(|t| **t == *input.partition.topic) {
                continue;
            }
            let (key, value, table) = (*key, *value, *table);
            let mut batch = Batch::with_capacity(input.records.len());
            for (i, lr) in input.records.iter().enumerate() {
                let checked = check(key, lr.record.key.as_deref(), "key")
                    .and_then(|()| check(value, lr.record.value.as_deref(), "value"));
                match checked {
                    Ok(()) => batch.push(lr.record.clone(), i as u32),
                    Err(e) => self.reject(node, i as u32, FailureKind::Deserialization, e, input, out)?,
                }
            }
            if table {
                let task = input.partition.partition;
                for r in batch.records {
                    let Some(key) = r.key else { continue };
                    self.update(task, node, key, r.value, out)?;
                }
            } else {
                self.forward(node, batch, input, out)?;
            }
        }
        Ok(())
    }

    /// Opens (and restores) the task stores of `tasks`, dividing
    /// `cache_bytes` evenly among them, and gives processors the global
    /// tables' stores. Without a state directory, only tasks without stores
    /// can run.
    pub fn open_tasks(
        &mut self,
        tasks: &[u32],
        state_dir: Option<&Path>,
        cache_bytes: usize,
        globals: &[Arc<GlobalStore>],
        log: &dyn Log,
    ) -> Result<(), ProcessError> {
        self.tasks = tasks.to_vec();
        self.globals = globals.iter().map(|g| (g.name().to_owned(), g.clone())).collect();
        let count = (tasks.len() * self.store_specs.len()).max(1);
        for &task in tasks {
            for (id, (spec, _)) in self.store_specs.iter().enumerate() {
                let Some(state_dir) = state_dir else {
                    return Err(ProcessError::NoStore(spec.name.clone(), task));
                };
                let store =
                    TaskStore::open(state_dir, &self.app_id, &spec.name, task, spec.kind, cache_bytes / count, log)?;
                self.stores.insert((task, id), store);
            }
        }
        for (node, exec) in self.execs.iter().enumerate() {
            let Exec::Process { slots, .. } = exec else { continue };
            if let Some((name, _)) = slots.iter().find(|(name, id)| id.is_none() && !self.globals.contains_key(name)) {
                return Err(ProcessError::UnknownStore { node: self.names[node].clone(), store: name.clone() });
            }
        }
        Ok(())
    }

    fn store(&mut self, task: u32, node: usize) -> Result<&mut TaskStore, ProcessError> {
        let name = &self.names[node];
        let id = self.node_store[node].ok_or_else(|| ProcessError::NoStore(name.clone(), task))?;
        self.stores.get_mut(&(task, id)).ok_or_else(|| ProcessError::NoStore(name.clone(), task))
    }

    /// Puts `key` in the store of `node` for `task` and sends on whatever
    /// the store flushes.
    fn update(
        &mut self,
        task: u32,
        node: usize,
        key: Bytes,
        value: Option<Bytes>,
        out: &mut dyn Producer,
    ) -> Result<(), ProcessError> {
        let flushed = self.store(task, node)?.put(key, value, out)?;
        let id = self.node_store[node].expect("store() found it");
        self.forward_flushed(task, id, flushed, out)
    }

    /// Sends records a store flushed to the children of the node it belongs
    /// to, if that node passes its updates on. They come from no single input
    /// record: errors downstream name the store's changelog as their source.
    fn forward_flushed(
        &mut self,
        task: u32,
        id: usize,
        flushed: Vec<Record>,
        out: &mut dyn Producer,
    ) -> Result<(), ProcessError> {
        let (spec, Some(node)) = &self.store_specs[id] else { return Ok(()) };
        if flushed.is_empty() {
            return Ok(());
        }
        let node = *node;
        let partition = TopicPartition::new(&changelog_topic(&self.app_id, &spec.name), task);
        let batch = Batch { records: flushed.clone(), origins: (0..flushed.len() as u32).collect() };
        let records = flushed.into_iter().map(|record| LogRecord { offset: 0, record }).collect();
        let input = Fetched { partition, records };
        self.forward(node, batch, &input, out)
    }

    /// Flushes every store's cache (writing local stores and changelogs, and
    /// sending the updates downstream). Call before each commit.
    pub fn flush(&mut self, out: &mut dyn Producer) -> Result<(), ProcessError> {
        // Downstream of one store may be another: flush until all are clean.
        for _ in 0..64 {
            let dirty: Vec<(u32, usize)> = self.stores.iter().filter(|(_, s)| s.is_dirty()).map(|(k, _)| *k).collect();
            if dirty.is_empty() {
                return Ok(());
            }
            for (task, id) in dirty {
                let flushed = match self.stores.get_mut(&(task, id)) {
                    Some(store) => store.flush(out)?,
                    None => Vec::new(),
                };
                self.forward_flushed(task, id, flushed, out)?;
            }
        }
        Ok(())
    }

    /// Records a clean stop in every store. Call after the final commit.
    pub fn checkpoint(&mut self, log: &dyn Log) -> Result<(), ProcessError> {
        for store in self.stores.values_mut() {
            store.checkpoint(log)?;
        }
        Ok(())
    }

    fn forward(
        &mut self,
        node: usize,
        batch: Batch,
        input: &Fetched,
        out: &mut dyn Producer,
    ) -> Result<(), ProcessError> {
        if batch.len() == 0 {
            return Ok(());
        }
        let children = std::mem::take(&mut self.children[node]);
        let result = (|| {
            let Some((&last, rest)) = children.split_last() else {
                return Ok(());
            };
            for &child in rest {
                let copy = Batch { records: batch.records.clone(), origins: batch.origins.clone() };
                self.push(node, child, copy, input, out)?;
            }
            self.push(node, last, batch, input, out)
        })();
        self.children[node] = children;
        result
    }

    /// Runs `node` over a batch that node `from` passed on.
    fn push(
        &mut self,
        from: usize,
        node: usize,
        batch: Batch,
        input: &Fetched,
        out: &mut dyn Producer,
    ) -> Result<(), ProcessError> {
        match &self.execs[node] {
            Exec::Source { .. } => unreachable!("sources have no inputs"),
            Exec::Pass => self.forward(node, batch, input, out),
            &Exec::Filter { function, negate } if self.tables[node] => {
                self.table_step(node, function, FunctionKind::Predicate, negate, batch, input, out)
            }
            &Exec::Transform { kind, function } if self.tables[node] => {
                self.table_step(node, function, kind, false, batch, input, out)
            }
            Exec::Materialize => {
                let task = input.partition.partition;
                for r in batch.records {
                    let Some(key) = r.key else { continue };
                    self.update(task, node, key, r.value, out)?;
                }
                Ok(())
            }
            &Exec::TableGroupBy { function } => self.table_group_by(node, function, batch, input, out),
            &Exec::Process { function, .. } => {
                self.run_processor(node, function, FunctionKind::Processor, batch, input, out)
            }
            &Exec::Filter { function, negate } => {
                let mut outcomes = self.call(function, FunctionKind::Predicate, &batch.records)?;
                let mut kept = Batch::with_capacity(batch.len());
                let mut failures = Vec::new();
                for ((r, origin), outcome) in batch.records.into_iter().zip(batch.origins).zip(outcomes.drain(..)) {
                    match outcome {
                        Outcome::Keep(k) if k != negate => kept.push(r, origin),
                        Outcome::Keep(_) => {}
                        other => failures.push((origin, failure(other, FunctionKind::Predicate))),
                    }
                }
                self.scratch = outcomes;
                self.reject_then_forward(node, failures, kept, input, out)
            }
            &Exec::Transform { kind, function } => {
                let mut outcomes = self.call(function, kind, &batch.records)?;
                let mut next = Batch::with_capacity(batch.len());
                let mut failures = Vec::new();
                for ((mut r, origin), outcome) in batch.records.into_iter().zip(batch.origins).zip(outcomes.drain(..)) {
                    match (kind, outcome) {
                        (FunctionKind::Map, Outcome::Record(new)) => next.push(new, origin),
                        (FunctionKind::MapValues, Outcome::Value(v)) => {
                            r.value = v;
                            next.push(r, origin);
                        }
                        (FunctionKind::SelectKey, Outcome::Key(k)) => {
                            r.key = k;
                            next.push(r, origin);
                        }
                        (FunctionKind::FlatMap, Outcome::Records(rs)) => {
                            rs.into_iter().for_each(|new| next.push(new, origin))
                        }
                        (FunctionKind::FlatMapValues, Outcome::Values(vs)) => {
                            for v in vs {
                                next.push(Record { value: v, ..r.clone() }, origin);
                            }
                        }
                        (FunctionKind::Peek, Outcome::Done) => next.push(r, origin),
                        (_, other) => failures.push((origin, failure(other, kind))),
                    }
                }
                self.scratch = outcomes;
                self.reject_then_forward(node, failures, next, input, out)
            }
            Exec::Split { branches } => {
                let branches = branches.clone();
                let mut rest = batch;
                for (branch, predicate) in branches {
                    let Some(function) = predicate else {
                        self.forward(branch, std::mem::take(&mut rest), input, out)?;
                        break;
                    };
                    if rest.len() == 0 {
                        break;
                    }
                    let mut outcomes = self.call(function, FunctionKind::Predicate, &rest.records)?;
                    let mut taken = Batch::default();
                    let mut left = Batch::default();
                    let mut failures = Vec::new();
                    for ((r, origin), outcome) in rest.records.into_iter().zip(rest.origins).zip(outcomes.drain(..)) {
                        match outcome {
                            Outcome::Keep(true) => taken.push(r, origin),
                            Outcome::Keep(false) => left.push(r, origin),
                            other => failures.push((origin, failure(other, FunctionKind::Predicate))),
                        }
                    }
                    self.scratch = outcomes;
                    for (origin, e) in failures {
                        self.reject(node, origin, FailureKind::Function, e, input, out)?;
                    }
                    self.forward(branch, taken, input, out)?;
                    rest = left;
                }
                Ok(())
            }
            Exec::Sink { .. } => self.sink(node, batch, input, out),
            Exec::Aggregate { kind, function, subtractor, cogroup } => {
                // A cogroup folds each input with its own aggregator.
                let function = cogroup.iter().find(|(input, _)| *input == from).map_or(*function, |(_, f)| *f);
                let (kind, subtractor) = (*kind, *subtractor);
                self.aggregate(node, kind, function, subtractor, batch, input, out)
            }
            &Exec::Count { subtract } => {
                let task = input.partition.partition;
                for r in batch.records {
                    let delta = if subtract && r.header(SUBTRACT_HEADER).is_some() { -1 } else { 1 };
                    let Some(key) = r.key else { continue };
                    let count = match self.store(task, node)?.get(&key)? {
                        Some(v) => <[u8; 8]>::try_from(&v[..]).map(i64::from_be_bytes).unwrap_or(0),
                        None => 0,
                    };
                    let value = Bytes::copy_from_slice(&(count + delta).to_be_bytes());
                    self.update(task, node, key, Some(value), out)?;
                }
                Ok(())
            }
            Exec::Chain { steps, nodes } => {
                let (steps, nodes) = (steps.clone(), nodes.clone());
                let outcomes = self.call_chain(&steps, &batch.records)?;
                let mut next = Batch::with_capacity(batch.len());
                let mut failures = Vec::new();
                for ((r, origin), outcome) in batch.records.into_iter().zip(batch.origins).zip(outcomes) {
                    match outcome {
                        ChainOutcome::Passed(None) => next.push(r, origin),
                        ChainOutcome::Passed(Some(new)) => next.push(new, origin),
                        ChainOutcome::Dropped => {}
                        ChainOutcome::Failed { step, error } => failures.push((
                            nodes.get(step as usize).copied().unwrap_or(node),
                            origin,
                            error.to_string(),
                        )),
                    }
                }
                for (failed_node, origin, e) in failures {
                    self.reject(failed_node, origin, FailureKind::Function, e, input, out)?;
                }
                let tail = *nodes.last().expect("a chain has steps");
                self.forward(tail, next, input, out)
            }
        }
    }

    /// Folds a batch into the aggregates of `node`'s store. Records go to the
    /// plugin in rounds with at most one record per key, each carrying its
    /// key's current aggregate; a record the function rejects leaves its
    /// key's aggregate as it was.
    /// For a grouped table, records marked with [`SUBTRACT_HEADER`] go to
    /// `subtractor` instead.
    #[allow(clippy::too_many_arguments)]
    fn aggregate(
        &mut self,
        node: usize,
        kind: FunctionKind,
        function: u32,
        subtractor: Option<u32>,
        batch: Batch,
        input: &Fetched,
        out: &mut dyn Producer,
    ) -> Result<(), ProcessError> {
        let task = input.partition.partition;
        let mut pending: Vec<(Record, u32)> =
            batch.records.into_iter().zip(batch.origins).filter(|(r, _)| r.key.is_some()).collect();
        while !pending.is_empty() {
            let mut seen = HashSet::new();
            let (round, later): (Vec<_>, Vec<_>) =
                pending.into_iter().partition(|(r, _)| seen.insert(r.key.clone().expect("keyed")));
            pending = later;
            // Adds and subtracts of this round, each a batch for one function.
            let mut calls: [Calls; 2] = Default::default();
            for (mut r, origin) in round {
                let key = r.key.clone().expect("keyed");
                let subtract = subtractor.is_some() && r.header(SUBTRACT_HEADER).is_some();
                match self.store(task, node)?.get(&key)? {
                    // Nothing to take a value out of.
                    None if subtract => {}
                    None if kind == FunctionKind::Reducer => self.update(task, node, key, r.value, out)?,
                    agg => {
                        if let Some(agg) = agg {
                            r.headers.push(Header { name: AGGREGATE_HEADER.to_owned(), value: Some(agg) });
                        }
                        let call = &mut calls[subtract as usize];
                        call.0.push(r);
                        call.1.push((key, origin));
                    }
                }
            }
            for (i, (records, keys)) in calls.into_iter().enumerate() {
                if records.is_empty() {
                    continue;
                }
                let f = if i == 1 { subtractor.expect("subtracts only with a subtractor") } else { function };
                let outcomes = self.call(f, kind, &records)?;
                for ((key, origin), outcome) in keys.into_iter().zip(outcomes) {
                    match outcome {
                        Outcome::Value(v) => self.update(task, node, key, v, out)?,
                        other => self.reject(node, origin, FailureKind::Function, failure(other, kind), input, out)?,
                    }
                }
            }
        }
        Ok(())
    }

    /// A filter or map-values of a table: a tombstone passes on without a
    /// call, and an update the filter drops becomes a tombstone for its key,
    /// so downstream tables forget the key too.
    #[allow(clippy::too_many_arguments)]
    fn table_step(
        &mut self,
        node: usize,
        function: u32,
        kind: FunctionKind,
        negate: bool,
        batch: Batch,
        input: &Fetched,
        out: &mut dyn Producer,
    ) -> Result<(), ProcessError> {
        let live: Vec<Record> = batch.records.iter().filter(|r| r.value.is_some()).cloned().collect();
        let mut outcomes = if live.is_empty() { Vec::new() } else { self.call(function, kind, &live)? }.into_iter();
        let mut next = Batch::with_capacity(batch.len());
        let mut failures = Vec::new();
        for (mut r, origin) in batch.records.into_iter().zip(batch.origins) {
            if r.value.is_none() {
                next.push(r, origin);
                continue;
            }
            match outcomes.next() {
                Some(Outcome::Keep(keep)) => {
                    if keep == negate {
                        r.value = None;
                    }
                    next.push(r, origin);
                }
                Some(Outcome::Value(v)) => {
                    r.value = v;
                    next.push(r, origin);
                }
                other => failures.push((origin, failure(other.unwrap_or(Outcome::Done), kind))),
            }
        }
        self.reject_then_forward(node, failures, next, input, out)
    }

    /// Re-keys a table's updates for aggregation: for each update, the key's
    /// old value (from this node's store) under its old group key, marked as a
    /// subtract, then the new value under its new group key. An update whose
    /// new group key cannot be computed is rejected and changes nothing.
    fn table_group_by(
        &mut self,
        node: usize,
        function: u32,
        batch: Batch,
        input: &Fetched,
        out: &mut dyn Producer,
    ) -> Result<(), ProcessError> {
        let task = input.partition.partition;
        // Old values, seeing this batch's earlier updates of the same key.
        let mut latest: HashMap<Bytes, Option<Bytes>> = HashMap::new();
        let mut olds = Vec::with_capacity(batch.len());
        for r in &batch.records {
            let Some(key) = &r.key else {
                olds.push(None);
                continue;
            };
            let old = match latest.get(key) {
                Some(v) => v.clone(),
                None => self.store(task, node)?.get(key)?,
            };
            latest.insert(key.clone(), r.value.clone());
            olds.push(old);
        }
        // One select-key call for the olds and the news.
        let mut calls = Vec::with_capacity(batch.len() * 2);
        for (r, old) in batch.records.iter().zip(&olds) {
            if let Some(old) = old {
                let subtract = Record { value: Some(old.clone()), ..r.clone() }.with_header(SUBTRACT_HEADER, "1");
                calls.push(subtract);
            }
            if r.key.is_some() && r.value.is_some() {
                calls.push(r.clone());
            }
        }
        let mut keys =
            if calls.is_empty() { Vec::new() } else { self.call(function, FunctionKind::SelectKey, &calls)? }
                .into_iter()
                .zip(calls);
        let mut next = Batch::with_capacity(batch.len() * 2);
        let mut failures = Vec::new();
        for ((r, old), origin) in batch.records.into_iter().zip(olds).zip(batch.origins) {
            let Some(key) = r.key.clone() else { continue };
            let subtract = if old.is_some() { keys.next() } else { None };
            let add = if r.value.is_some() { keys.next() } else { None };
            let rekeyed = |(outcome, mut record): (Outcome, Record)| match outcome {
                Outcome::Key(k) => {
                    record.key = k;
                    Ok(record)
                }
                other => Err(failure(other, FunctionKind::SelectKey)),
            };
            let add = match add.map(rekeyed).transpose() {
                Ok(add) => add,
                Err(e) => {
                    failures.push((origin, e));
                    continue;
                }
            };
            // The old value went in under a key computed the same way; if
            // that fails now there is nothing to take it out of.
            if let Some(Ok(subtract)) = subtract.map(rekeyed)
                && subtract.key.is_some()
            {
                next.push(subtract, origin);
            }
            if let Some(add) = add.filter(|a| a.key.is_some()) {
                next.push(add, origin);
            }
            self.update(task, node, key, r.value, out)?;
        }
        self.reject_then_forward(node, failures, next, input, out)
    }

    /// Runs a processor (or punctuator) of `node` over a batch with the
    /// node's stores for the batch's task. If any record fails or traps, the
    /// batch's store writes and outputs are dropped and each record runs
    /// again alone, so a failed record changes nothing.
    fn run_processor(
        &mut self,
        node: usize,
        function: u32,
        kind: FunctionKind,
        batch: Batch,
        input: &Fetched,
        out: &mut dyn Producer,
    ) -> Result<(), ProcessError> {
        let task = input.partition.partition;
        let mut access = self.take_access(task, node)?;
        let result = self.process_with(node, function, kind, batch, input, &mut access, out);
        self.return_access(task, node, access);
        result
    }

    /// Moves the stores of `node` for `task` into a [`StoreAccess`].
    fn take_access(&mut self, task: u32, node: usize) -> Result<StoreAccess, ProcessError> {
        let Exec::Process { slots, .. } = &self.execs[node] else { unreachable!("processor node") };
        let mut access = StoreAccess::default();
        let mut taken = Vec::new();
        for (name, id) in slots {
            let store = match id {
                Some(id) => match self.stores.remove(&(task, *id)) {
                    Some(s) => {
                        taken.push(*id);
                        SlotStore::Task(s)
                    }
                    None => {
                        let error = ProcessError::NoStore(self.names[node].clone(), task);
                        self.return_access(task, node, access);
                        return Err(error);
                    }
                },
                None => match self.globals.get(name) {
                    Some(g) => SlotStore::Global(g.clone()),
                    None => {
                        let error = ProcessError::UnknownStore { node: self.names[node].clone(), store: name.clone() };
                        self.return_access(task, node, access);
                        return Err(error);
                    }
                },
            };
            access.push(name, store);
        }
        Ok(access)
    }

    /// Puts the task stores of `access` back.
    fn return_access(&mut self, task: u32, node: usize, access: StoreAccess) {
        let Exec::Process { slots, .. } = &self.execs[node] else { unreachable!("processor node") };
        for ((_, id), store) in slots.iter().zip(access.into_stores()) {
            if let (Some(id), SlotStore::Task(s)) = (id, store) {
                self.stores.insert((task, *id), s);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn process_with(
        &mut self,
        node: usize,
        function: u32,
        kind: FunctionKind,
        batch: Batch,
        input: &Fetched,
        access: &mut StoreAccess,
        out: &mut dyn Producer,
    ) -> Result<(), ProcessError> {
        let mut outcomes = Vec::with_capacity(batch.len());
        let whole = self.instance()?.process(function, kind, &batch.records, access, &mut outcomes);
        if let Some(e) = access.take_failure() {
            return Err(e.into());
        }
        let forwards: Option<Vec<_>> = match whole {
            Ok(()) => outcomes.into_iter().map(|o| self.routes(node, o).ok()).collect(),
            Err(_) => {
                self.instance = None;
                None
            }
        };
        if let Some(forwards) = forwards {
            access.settle(out)?;
            return self.send_forwards(node, forwards.into_iter().zip(batch.origins), input, out);
        }
        access.discard();
        for (r, origin) in batch.records.into_iter().zip(batch.origins) {
            let mut one = Vec::with_capacity(1);
            let result = self.instance()?.process(function, kind, std::slice::from_ref(&r), access, &mut one);
            if let Some(e) = access.take_failure() {
                return Err(e.into());
            }
            let routed = match result {
                Ok(()) => match one.pop() {
                    Some(outcome) => self.routes(node, outcome),
                    None => Err("no result".to_owned()),
                },
                Err(e) => {
                    self.instance = None;
                    Err(e.to_string())
                }
            };
            match routed {
                Ok(forwards) => {
                    access.settle(out)?;
                    self.send_forwards(node, std::iter::once((forwards, origin)), input, out)?;
                }
                Err(e) => {
                    access.discard();
                    self.reject(node, origin, FailureKind::Function, e, input, out)?;
                }
            }
        }
        Ok(())
    }

    /// Where a processor's records go: each with the child it is for (`None`
    /// for every child), or why the outcome is a failure.
    fn routes(&self, node: usize, outcome: Outcome) -> Result<Vec<(Option<usize>, Record)>, String> {
        let records = match outcome {
            Outcome::Forward(records) => records,
            other => return Err(failure(other, FunctionKind::Processor)),
        };
        let children = &self.children[node];
        records
            .into_iter()
            .map(|(child, record)| match child {
                None => Ok((None, record)),
                Some(name) => match children.iter().find(|&&c| self.names[c] == name) {
                    Some(&c) => Ok((Some(c), record)),
                    None => {
                        let names: Vec<&str> = children.iter().map(|&c| self.names[c].as_str()).collect();
                        Err(format!(
                            "forwarded to '{name}', which is not a child of node '{}'; its children are: {}",
                            self.names[node],
                            if names.is_empty() { "none".to_owned() } else { names.join(", ") }
                        ))
                    }
                },
            })
            .collect()
    }

    /// Sends a processor's routed records on, one batch per child.
    fn send_forwards(
        &mut self,
        node: usize,
        forwards: impl Iterator<Item = (Vec<(Option<usize>, Record)>, u32)>,
        input: &Fetched,
        out: &mut dyn Producer,
    ) -> Result<(), ProcessError> {
        let children = self.children[node].clone();
        let mut batches: Vec<Batch> = children.iter().map(|_| Batch::default()).collect();
        for (records, origin) in forwards {
            for (child, record) in records {
                match child {
                    Some(c) => {
                        let i = children.iter().position(|&x| x == c).expect("routed to a child");
                        batches[i].push(record, origin);
                    }
                    None => batches.iter_mut().for_each(|b| b.push(record.clone(), origin)),
                }
            }
        }
        for (child, batch) in children.into_iter().zip(batches) {
            if batch.len() > 0 {
                self.push(node, child, batch, input, out)?;
            }
        }
        Ok(())
    }

    /// Applies the error policy to each failed record of a function node,
    /// then passes the records that made it on.
    fn reject_then_forward(
        &mut self,
        node: usize,
        failures: Vec<(u32, String)>,
        next: Batch,
        input: &Fetched,
        out: &mut dyn Producer,
    ) -> Result<(), ProcessError> {
        for (origin, e) in failures {
            self.reject(node, origin, FailureKind::Function, e, input, out)?;
        }
        self.forward(node, next, input, out)
    }

    /// Runs a fused chain over a batch. If the plugin traps, each record is
    /// run again step by step, so the trap is pinned to one record and node.
    fn call_chain(&mut self, steps: &[ChainStep], records: &[Record]) -> Result<Vec<ChainOutcome>, ProcessError> {
        let mut out = Vec::with_capacity(records.len());
        match self.instance()?.call_chain(steps, records, &mut out) {
            Ok(()) => return Ok(out),
            Err(e) => {
                tracing::debug!("chain over {} records failed ({e}); retrying step by step", records.len());
                self.instance = None;
                out.clear();
            }
        }
        for r in records {
            let mut current = None;
            let mut done = None;
            for (i, step) in steps.iter().enumerate() {
                let record = current.clone().unwrap_or_else(|| r.clone());
                let outcome = self.call(step.function, step.kind, std::slice::from_ref(&record))?.pop();
                let outcome = outcome.unwrap_or(Outcome::Failed(RecordError::Failed("no result".into())));
                if let Some(d) = step.apply(i as u32, outcome, &mut current, r) {
                    done = Some(d);
                    break;
                }
            }
            out.push(done.unwrap_or(ChainOutcome::Passed(current)));
        }
        Ok(out)
    }

    fn instance(&mut self) -> Result<&mut Box<dyn Instance>, ProcessError> {
        if self.instance.is_none() {
            self.instance = Some(self.plugin.instantiate()?);
        }
        Ok(self.instance.as_mut().expect("instantiated above"))
    }

    fn sink(&mut self, node: usize, batch: Batch, input: &Fetched, out: &mut dyn Producer) -> Result<(), ProcessError> {
        for (r, origin) in batch.records.into_iter().zip(batch.origins) {
            let Exec::Sink { partitions, key, value, next } = &mut self.execs[node] else { unreachable!("sink node") };
            let checked =
                check(*key, r.key.as_deref(), "key").and_then(|()| check(*value, r.value.as_deref(), "value"));
            if let Err(e) = checked {
                self.reject(node, origin, FailureKind::Serialization, e, input, out)?;
                continue;
            }
            let n = partitions.len() as u32;
            let p = match &r.key {
                Some(k) => partition_for_key(k, n),
                None => {
                    *next = (*next + 1) % n;
                    *next
                }
            };
            out.send(&partitions[p as usize], r)?;
            self.stats.records_out += 1;
        }
        Ok(())
    }

    /// Calls a function over a batch, isolating the records a trap is about.
    fn call(&mut self, function: u32, kind: FunctionKind, records: &[Record]) -> Result<Vec<Outcome>, ProcessError> {
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        match self.instance()?.call(function, kind, records, &mut out) {
            Ok(()) => return Ok(out),
            Err(e) if records.len() == 1 => {
                self.instance = None;
                out.push(Outcome::Failed(RecordError::Failed(e.to_string())));
                return Ok(out);
            }
            Err(e) => {
                tracing::debug!("batch of {} failed ({e}); retrying record by record", records.len());
                self.instance = None;
            }
        }
        for r in records {
            if let Err(e) = self.instance()?.call(function, kind, std::slice::from_ref(r), &mut out) {
                self.instance = None;
                out.push(Outcome::Failed(RecordError::Failed(e.to_string())));
            }
        }
        Ok(out)
    }

    /// Applies the error policy to input record `origin`.
    fn reject(
        &mut self,
        node: usize,
        origin: u32,
        kind: FailureKind,
        error: String,
        input: &Fetched,
        out: &mut dyn Producer,
    ) -> Result<(), ProcessError> {
        let source = &input.records[origin as usize];
        let node_name = &self.names[node];
        match self.policy {
            ErrorPolicy::Fail => Err(ProcessError::RecordFailed {
                node: node_name.clone(),
                source_partition: input.partition.clone(),
                offset: source.offset,
                error,
            }),
            ErrorPolicy::Skip => {
                tracing::warn!(
                    node = %node_name, partition = %input.partition, offset = source.offset,
                    "skipping record ({} error): {error}", kind.as_str()
                );
                self.stats.skipped += 1;
                Ok(())
            }
            ErrorPolicy::DeadLetter => {
                let dl = self.dead_letter.as_ref().expect("dead-letter policy has a topic");
                let record = source
                    .record
                    .clone()
                    .with_header("eddy.error", error)
                    .with_header("eddy.error.kind", kind.as_str())
                    .with_header("eddy.error.node", Bytes::from(node_name.clone()))
                    .with_header("eddy.source.topic", Bytes::from(input.partition.topic.to_string()))
                    .with_header("eddy.source.partition", input.partition.partition.to_string())
                    .with_header("eddy.source.offset", source.offset.to_string());
                let n = dl.partitions.len() as u32;
                let p = record.key.as_deref().map_or(input.partition.partition % n, |k| partition_for_key(k, n));
                out.send(&dl.partitions[p as usize], record)?;
                self.stats.dead_lettered += 1;
                Ok(())
            }
        }
    }
}

/// Each stream-time punctuator's node with the source topics upstream of it.
fn stream_sources(app: &App) -> Vec<(usize, Vec<String>)> {
    let nodes = &app.topology.nodes;
    let mut out = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let Op::Process { punctuate: Some(p), .. } = &n.op else { continue };
        if p.time != PunctuationTime::Stream {
            continue;
        }
        let mut topics = Vec::new();
        let mut seen = HashSet::new();
        let mut stack = vec![i];
        while let Some(at) = stack.pop() {
            if !seen.insert(at) {
                continue;
            }
            if let Op::Source { topics: ts, .. } = &nodes[at].op {
                topics.extend(ts.iter().cloned());
            }
            stack.extend(nodes[at].inputs.iter().copied());
        }
        out.push((i, topics));
    }
    out
}

/// Replaces each maximal run of two or more fusable operators (each the only
/// reader of the one before) with one [`Exec::Chain`] at its first node.
fn fuse_chains(app: &App, execs: &mut [Exec]) {
    let nodes = &app.topology.nodes;
    let children = app.topology.children();
    let step = |execs: &[Exec], i: usize| match execs[i] {
        // A table's filter or map-values treats tombstones apart.
        _ if nodes[i].table => None,
        Exec::Filter { function, negate } => Some(ChainStep { function, kind: FunctionKind::Predicate, negate }),
        Exec::Transform { kind, function } if kind.chains() => Some(ChainStep { function, kind, negate: false }),
        _ => None,
    };
    let links = |execs: &[Exec], from: usize| match children[from].as_slice() {
        [only] if nodes[*only].inputs.len() == 1 && step(execs, *only).is_some() => Some(*only),
        _ => None,
    };
    let mut chains = Vec::new();
    for (head, node) in nodes.iter().enumerate() {
        if step(execs, head).is_none() {
            continue;
        }
        // A node that continues its input's chain is fused from there.
        if let [input] = node.inputs.as_slice()
            && step(execs, *input).is_some()
            && links(execs, *input) == Some(head)
        {
            continue;
        }
        let mut members = vec![head];
        while let Some(next) = links(execs, *members.last().expect("not empty")) {
            members.push(next);
        }
        if members.len() >= 2 {
            let steps: Vec<ChainStep> = members.iter().map(|&m| step(execs, m).expect("fusable")).collect();
            chains.push((head, steps, members));
        }
    }
    for (head, steps, members) in chains {
        execs[head] = Exec::Chain { steps: steps.into(), nodes: members.into() };
    }
}

fn check(serde: Serde, data: Option<&[u8]>, what: &str) -> Result<(), String> {
    match data {
        Some(d) => serde.check(d).map_err(|e| format!("{what} is not {serde}: {e}")),
        None => Ok(()),
    }
}

fn failure(outcome: Outcome, kind: FunctionKind) -> String {
    match outcome {
        Outcome::Failed(e) => e.to_string(),
        other => format!("a {kind} function returned {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::EmbeddedLog;
    use crate::plugin::NativePlugin;
    use crate::topology::Topology;

    #[test]
    fn fuses_linear_runs_of_one_to_one_operators() {
        let plugin = NativePlugin::new("t")
            .function("p", FunctionKind::Predicate, |_| Outcome::Keep(true))
            .function("m", FunctionKind::MapValues, |r| Outcome::Value(r.value.clone()))
            .function("f", FunctionKind::FlatMap, |r| Outcome::Records(vec![r.clone()]));
        let topology = Topology::from_json(
            r#"[{"name": "in", "source": ["in"]},
                {"name": "a", "filter": "p"}, {"name": "b", "map-values": "m"},
                {"name": "c", "flat-map": "f"},
                {"name": "d", "filter-not": "p"}, {"name": "e", "map-values": "m"},
                {"name": "s", "split": [{"branch": "x", "predicate": "p"}, {"branch": "y"}]},
                {"name": "g", "from": "x", "map-values": "m"}, {"name": "out", "to": "out"},
                {"name": "h", "from": "y", "map-values": "m"}, {"name": "i", "filter": "p"},
                {"name": "j", "from": "i", "to": "out"}, {"name": "k", "from": "i", "map-values": "m"}]"#,
        )
        .unwrap();
        let app = App::from_parts("fuse", Arc::new(plugin), topology, ErrorPolicy::Fail).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), false).unwrap();
        log.create_topic("in", 1).unwrap();
        log.create_topic("out", 1).unwrap();
        let pipeline = Pipeline::new(&app, &log).unwrap();
        let chains: Vec<(String, Vec<String>, Vec<bool>)> = pipeline
            .execs
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                Exec::Chain { steps, nodes } => Some((
                    pipeline.names[i].clone(),
                    nodes.iter().map(|&n| pipeline.names[n].clone()).collect(),
                    steps.iter().map(|s| s.negate).collect(),
                )),
                _ => None,
            })
            .collect();
        // a+b fuse; c (flat-map) does not; d+e fuse; g is alone; h+i fuse but
        // not k, because i has two readers.
        let expected = [
            ("a".to_owned(), vec!["a".to_owned(), "b".to_owned()], vec![false, false]),
            ("d".to_owned(), vec!["d".to_owned(), "e".to_owned()], vec![true, false]),
            ("h".to_owned(), vec!["h".to_owned(), "i".to_owned()], vec![false, false]),
        ];
        assert_eq!(chains, expected);
    }
}
