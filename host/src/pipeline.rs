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

use std::sync::Arc;

use bytes::Bytes;

use crate::app::{App, ErrorPolicy};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use crate::log::{Fetched, Log, LogError, LogRecord, Producer, TopicPartition};
use crate::partition::partition_for_key;
use crate::plugin::{
    AGGREGATE_HEADER, ChainOutcome, ChainStep, FunctionKind, Instance, Outcome, Plugin, PluginError, RecordError,
};
use crate::record::{Header, Record};
use crate::serdes::Serde;
use crate::store::{StoreError, TaskStore, changelog_topic};
use crate::topology::Op;
use crate::topology::StoreSpec;

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
    Count,
    Aggregate {
        kind: FunctionKind,
        function: u32,
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
    /// Open stores by (task, node).
    stores: BTreeMap<(u32, usize), TaskStore>,
    /// The store of each stateful node.
    store_specs: Vec<(usize, StoreSpec)>,
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
        let mut execs = Vec::with_capacity(app.topology.nodes.len());
        for node in &app.topology.nodes {
            execs.push(match &node.op {
                Op::Source { topics, key_serde, value_serde, table } => Exec::Source {
                    topics: topics.clone(),
                    key: *key_serde,
                    value: *value_serde,
                    table: table.is_some(),
                },
                Op::Count { .. } => Exec::Count,
                Op::Aggregate { kind, function, .. } => Exec::Aggregate { kind: *kind, function: index(function) },
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
            stores: BTreeMap::new(),
            store_specs: app.topology.stores().into_iter().map(|(n, s)| (n, s.clone())).collect(),
            app_id: app.id.clone(),
        })
    }

    /// Counts so far.
    pub fn stats(&self) -> PipelineStats {
        self.stats
    }

    /// Pushes records fetched from one partition through every source that
    /// reads its topic, sending outputs (and dead letters) to `out`.
    pub fn process(&mut self, input: &Fetched, out: &mut dyn Producer) -> Result<(), ProcessError> {
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

    /// Opens (and restores) the stores of `tasks`, dividing `cache_bytes`
    /// evenly among them.
    pub fn open_stores(
        &mut self,
        tasks: &[u32],
        state_dir: &Path,
        cache_bytes: usize,
        log: &dyn Log,
    ) -> Result<(), ProcessError> {
        let count = (tasks.len() * self.store_specs.len()).max(1);
        for &task in tasks {
            for (node, spec) in &self.store_specs {
                let store =
                    TaskStore::open(state_dir, &self.app_id, &spec.name, task, spec.kind, cache_bytes / count, log)?;
                self.stores.insert((task, *node), store);
            }
        }
        Ok(())
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
        let name = &self.names[node];
        let store = self.stores.get_mut(&(task, node)).ok_or_else(|| ProcessError::NoStore(name.clone(), task))?;
        let flushed = store.put(key, value, out)?;
        self.forward_flushed(task, node, flushed, out)
    }

    fn store(&mut self, task: u32, node: usize) -> Result<&mut TaskStore, ProcessError> {
        let name = &self.names[node];
        self.stores.get_mut(&(task, node)).ok_or_else(|| ProcessError::NoStore(name.clone(), task))
    }

    /// Sends records a store flushed to the nodes that read its node. They
    /// come from no single input record: errors downstream name the store's
    /// changelog as their source.
    fn forward_flushed(
        &mut self,
        task: u32,
        node: usize,
        flushed: Vec<Record>,
        out: &mut dyn Producer,
    ) -> Result<(), ProcessError> {
        if flushed.is_empty() {
            return Ok(());
        }
        let Some((_, spec)) = self.store_specs.iter().find(|(n, _)| *n == node) else { return Ok(()) };
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
            for (task, node) in dirty {
                let flushed = match self.stores.get_mut(&(task, node)) {
                    Some(store) => store.flush(out)?,
                    None => Vec::new(),
                };
                self.forward_flushed(task, node, flushed, out)?;
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
                self.push(child, copy, input, out)?;
            }
            self.push(last, batch, input, out)
        })();
        self.children[node] = children;
        result
    }

    fn push(&mut self, node: usize, batch: Batch, input: &Fetched, out: &mut dyn Producer) -> Result<(), ProcessError> {
        match &self.execs[node] {
            Exec::Source { .. } => unreachable!("sources have no inputs"),
            Exec::Pass => self.forward(node, batch, input, out),
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
                for (origin, e) in failures {
                    self.reject(node, origin, FailureKind::Function, e, input, out)?;
                }
                self.forward(node, kept, input, out)
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
                for (origin, e) in failures {
                    self.reject(node, origin, FailureKind::Function, e, input, out)?;
                }
                self.forward(node, next, input, out)
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
            &Exec::Aggregate { kind, function } => self.aggregate(node, kind, function, batch, input, out),
            Exec::Count => {
                let task = input.partition.partition;
                for r in batch.records {
                    let Some(key) = r.key else { continue };
                    let count = match self.store(task, node)?.get(&key)? {
                        Some(v) => <[u8; 8]>::try_from(&v[..]).map(i64::from_be_bytes).unwrap_or(0),
                        None => 0,
                    };
                    let value = Bytes::copy_from_slice(&(count + 1).to_be_bytes());
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
    fn aggregate(
        &mut self,
        node: usize,
        kind: FunctionKind,
        function: u32,
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
            let mut calls = Vec::with_capacity(round.len());
            let mut keys = Vec::with_capacity(round.len());
            for (mut r, origin) in round {
                let key = r.key.clone().expect("keyed");
                match self.store(task, node)?.get(&key)? {
                    None if kind == FunctionKind::Reducer => self.update(task, node, key, r.value, out)?,
                    agg => {
                        if let Some(agg) = agg {
                            r.headers.push(Header { name: AGGREGATE_HEADER.to_owned(), value: Some(agg) });
                        }
                        calls.push(r);
                        keys.push((key, origin));
                    }
                }
            }
            if calls.is_empty() {
                continue;
            }
            let outcomes = self.call(function, kind, &calls)?;
            for ((key, origin), outcome) in keys.into_iter().zip(outcomes) {
                match outcome {
                    Outcome::Value(v) => self.update(task, node, key, v, out)?,
                    other => self.reject(node, origin, FailureKind::Function, failure(other, kind), input, out)?,
                }
            }
        }
        Ok(())
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

/// Replaces each maximal run of two or more fusable operators (each the only
/// reader of the one before) with one [`Exec::Chain`] at its first node.
fn fuse_chains(app: &App, execs: &mut [Exec]) {
    let nodes = &app.topology.nodes;
    let children = app.topology.children();
    let step = |execs: &[Exec], i: usize| match execs[i] {
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
