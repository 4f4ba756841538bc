//! The executable form of a topology: pushes batches of records through the
//! operator graph, calling the plugin once per operator per batch.
//!
//! A [`Pipeline`] belongs to one worker thread and serves all its tasks
//! (stateless operators keep nothing per task). Each node is an
//! [`operator::Operator`] in the module of its family (`stateless`,
//! `aggregate`, `table`, `process`, `sink`); the pipeline walks the graph,
//! giving each operator a batch from one of its inputs and passing what it
//! emits to its children, and runs the lifecycle around them: sources,
//! punctuation, store flushes before a commit, checkpoints.
//!
//! Records that a function rejects, traps on, or that fail their serde meet
//! the application's [`ErrorPolicy`](crate::app::ErrorPolicy). A trap kills
//! the plugin instance; the call is made again record by record with a new
//! one, so that only the record that traps is treated as failed.

mod aggregate;
mod context;
mod fk_join;
mod join;
mod operator;
mod process;
mod session;
mod sink;
mod sliding;
mod stateless;
pub mod stats;
mod stream_join;
mod suppress;
mod table;
mod tasks;
mod versioned_join;
mod window;

use std::collections::{BTreeMap, HashSet};

use crate::app::{App, ErrorPolicy};
use crate::log::{Fetched, Log, LogError, LogRecord, Producer, TopicPartition};
use crate::plugin::{FunctionKind, Outcome, PUNCTUATION_HEADER, PluginError};
use crate::record::Record;
use crate::serdes::Serde;
use crate::store::{StoreError, changelog_topic};
use crate::task::{self, TaskId};
use crate::topology::{JoinKind, Op, PunctuationTime, StoreSpec, Timestamps, Topology};
use crate::window::Windows;

use context::{Cx, FailureKind, Shared, Stores, check};
use operator::{Batch, Emit, Operator, Pass};
pub use stats::PipelineMetrics;

/// The header that marks a grouped table's record as an old value to take
/// out of its group's aggregate.
pub const SUBTRACT_HEADER: &str = "eddy.subtract";

/// The header of an internal record that names the partition its sink must
/// write it to (as 4 bytes, big-endian); the sink takes it off.
pub const PARTITION_HEADER: &str = "eddy.partition";

/// Why processing stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The run was asked to stop while a batch that trapped was being run
    /// again record by record (a runaway plugin takes its call timeout per
    /// record): nothing since the last commit is kept.
    #[error("stopped in the middle of a batch; it runs again from the last commit")]
    Stopped,
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
    /// A suppression's buffer went over its bound with `when-full: shut-down`.
    #[error(
        "suppress node '{node}' is full: {records} keys and {bytes} bytes wait (bound: {bound}); raise `max-records`/`max-bytes`, or let it `emit-early` (not for final results)"
    )]
    BufferFull {
        /// The node.
        node: String,
        /// Keys waiting.
        records: u64,
        /// Bytes waiting.
        bytes: u64,
        /// The bound, as written.
        bound: String,
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
    /// Records dropped from a window that had closed (one per window).
    pub dropped_late: u64,
}

/// A source node: the topics it reads and how their records are checked.
struct Source {
    node: usize,
    topics: Vec<String>,
    key: Serde,
    value: Serde,
    /// True for a table: records update the node's store, which passes them
    /// on as it flushes.
    table: bool,
    /// Where event time comes from: `None` for the record's timestamp,
    /// `Some(None)` for the wall clock, `Some(Some(f))` for an extractor.
    time: Option<Option<u32>>,
    /// For a versioned table, its history retention: records update its
    /// versioned store, and those that are their key's latest version pass
    /// on at once.
    versioned: Option<i64>,
}

/// A processor's punctuation schedule.
struct Punctuator {
    node: usize,
    every: i64,
    clock: PunctuationTime,
    /// For stream time: the source topics upstream of the node. Only they
    /// advance its stream time (as a sub-topology's own task in Kafka
    /// Streams), so records coming back through a repartition topic are not
    /// late against their own input.
    topics: Vec<String>,
}

/// The topology of an [`App`], ready to process batches.
pub struct Pipeline {
    ops: Vec<Box<dyn Operator>>,
    sources: Vec<Source>,
    shared: Shared,
    /// The tasks of this pipeline.
    tasks: Vec<TaskId>,
    /// For each node, its sub-topology (none for global tables).
    subtopology_of: Vec<Option<usize>>,
    punctuators: Vec<Punctuator>,
    /// Stores processors name that are not task stores, by node: they must
    /// be global tables' stores.
    global_uses: Vec<(usize, String)>,
    /// Largest record timestamp seen, per (task, punctuator node).
    stream_time: BTreeMap<(u32, usize), i64>,
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
        let topology = &app.topology;
        let manifest = app.plugin.manifest();
        let index = |name: &str| manifest.index_of(name).expect("topology was checked against the manifest");
        let subtopology_of = task::subtopology_of(topology);
        let mut stores = Stores { of_node: vec![None; topology.nodes.len()], ..Stores::default() };
        for (node, spec) in topology.stores() {
            stores.subtopology.push(subtopology_of[node]);
            let op = &topology.nodes[node].op;
            let emits = !matches!(
                op,
                Op::Process { .. }
                    | Op::TableGroupBy { .. }
                    | Op::Suppress { .. }
                    | Op::TableTableJoin { .. }
                    | Op::ForeignKeySubscribe { .. }
                    | Op::ForeignKeyRespond { .. }
                    | Op::ForeignKeyJoin { .. }
                    | Op::StreamStreamJoin { .. }
                    | Op::StreamTableJoin { .. }
                    | Op::Source { versioned: Some(_), .. }
            );
            if !matches!(op, Op::Process { .. }) {
                stores.of_node[node] = Some(stores.specs.len());
            }
            stores.specs.push((spec.clone(), emits.then_some(node)));
        }
        let store_id = |name: &str| stores.specs.iter().position(|(s, _)| s.name == name);
        let mut ops: Vec<Box<dyn Operator>> = Vec::with_capacity(topology.nodes.len());
        let mut sources = Vec::new();
        let mut global_uses = Vec::new();
        for (i, node) in topology.nodes.iter().enumerate() {
            ops.push(match &node.op {
                Op::Source { topics, key_serde, value_serde, table, timestamps, versioned } => {
                    let (topics, key, value, table) = (topics.clone(), *key_serde, *value_serde, table.is_some());
                    let versioned = *versioned;
                    let time = match timestamps {
                        Timestamps::Record => None,
                        Timestamps::WallClock => Some(None),
                        Timestamps::Extractor(f) => Some(Some(index(f))),
                    };
                    sources.push(Source { node: i, topics, key, value, table, time, versioned });
                    Box::new(Pass)
                }
                Op::Count { window: Some(windows), .. } => windowed(*windows, window::Folder::Count, None),
                Op::Aggregate { kind, function, window: Some(windows), merger, .. } => {
                    let folder = window::Folder::Function { kind: *kind, function: index(function) };
                    windowed(*windows, folder, merger.as_deref().map(index))
                }
                Op::Count { subtract, .. } => Box::new(aggregate::Count { subtract: *subtract }),
                Op::Aggregate { kind, function, subtractor, cogroup, .. } => Box::new(aggregate::Aggregate {
                    kind: *kind,
                    function: index(function),
                    subtractor: subtractor.as_deref().map(index),
                    cogroup: cogroup.iter().map(|(input, f)| (*input, index(f))).collect(),
                }),
                Op::TableGroupBy { function, .. } => Box::new(table::TableGroupBy { function: index(function) }),
                Op::Materialize { .. } => Box::new(table::Materialize),
                Op::GlobalTableJoin { store, key_mapper, joiner, left } => Box::new(join::GlobalTableJoin {
                    store: store.clone(),
                    key_mapper: key_mapper.as_deref().map(index),
                    joiner: index(joiner),
                    left: *left,
                }),
                Op::TableTableJoin { left, right, joiner, kind, .. } => {
                    Box::new(join::TableTableJoin { left: *left, right: *right, joiner: index(joiner), kind: *kind })
                }
                Op::ForeignKeySubscribe { extractor, left_join, .. } => {
                    Box::new(fk_join::Subscribe { extractor: index(extractor), left_join: *left_join })
                }
                Op::ForeignKeyRespond { right, .. } => Box::new(fk_join::Respond { right: *right }),
                Op::ForeignKeyJoin { left, subscribe, joiner, kind, .. } => Box::new(fk_join::Resolve {
                    left: *left,
                    subscribe: *subscribe,
                    joiner: index(joiner),
                    left_join: *kind == JoinKind::Left,
                }),
                Op::StreamStreamJoin { joiner, kind, windows, stores } => {
                    let id = |s: &StoreSpec| store_id(&s.name).expect("a join's stores are task stores");
                    Box::new(stream_join::StreamStreamJoin {
                        joiner: index(joiner),
                        windows: *windows,
                        outer: [*kind != JoinKind::Inner, *kind == JoinKind::Outer],
                        sides: [id(&stores[0]), id(&stores[1])],
                        unmatched: stores.get(2).map(id),
                        left_input: node.inputs[0],
                    })
                }
                Op::StreamTableJoin { table, joiner, left, grace } => {
                    let history = match &topology.nodes[*table].op {
                        Op::Source { versioned, .. } => *versioned,
                        _ => None,
                    };
                    match (grace, history) {
                        (Some(grace), Some(history)) => Box::new(versioned_join::GraceJoin {
                            table: *table,
                            history,
                            joiner: index(joiner),
                            left: *left,
                            grace: grace.grace_ms,
                        }),
                        _ => Box::new(join::StreamTableJoin {
                            table: *table,
                            history,
                            joiner: index(joiner),
                            left: *left,
                        }),
                    }
                }
                Op::Suppress { until, bound, .. } => Box::new(suppress::Suppress { until: *until, bound: *bound }),
                Op::Process { function, stores, punctuate } => {
                    let slots: Vec<(String, Option<usize>)> =
                        stores.iter().map(|s| (s.name.clone(), store_id(&s.name))).collect();
                    global_uses.extend(slots.iter().filter(|(_, id)| id.is_none()).map(|(name, _)| (i, name.clone())));
                    Box::new(process::Processor {
                        function: index(function),
                        slots,
                        punctuator: punctuate.as_ref().map(|p| index(&p.function)),
                    })
                }
                Op::Filter { function, negate } if node.table => Box::new(table::TableStep {
                    function: index(function),
                    kind: FunctionKind::Predicate,
                    negate: *negate,
                }),
                Op::Transform { kind, function } if node.table => {
                    Box::new(table::TableStep { function: index(function), kind: *kind, negate: false })
                }
                Op::Filter { function, negate } => {
                    Box::new(stateless::Filter { function: index(function), negate: *negate })
                }
                Op::Transform { kind, function } => {
                    Box::new(stateless::Transform { kind: *kind, function: index(function) })
                }
                Op::Split { branches } => Box::new(stateless::Split {
                    branches: branches.iter().map(|(b, p)| (*b, p.as_deref().map(index))).collect(),
                }),
                Op::GlobalTable { .. } | Op::ToStream | Op::Branch | Op::Merge => Box::new(Pass),
                Op::Sink { topic, key_serde, value_serde } => Box::new(sink::Sink {
                    partitions: partitions_of(log, topic)?,
                    key: *key_serde,
                    value: *value_serde,
                    next: 0,
                    windowed: node.windowed,
                    terminal: !topology.internal_topics.iter().any(|t| t.name == *topic),
                }),
            });
        }
        for (head, steps, nodes) in stateless::chains(topology, index) {
            ops[head] = Box::new(stateless::Chain { steps: steps.into(), nodes: nodes.into() });
        }
        let dead_letter = match app.error_policy {
            ErrorPolicy::DeadLetter => Some(partitions_of(log, &app.dead_letter_topic)?),
            _ => None,
        };
        let names = topology.nodes.iter().map(|n| n.name.clone()).collect();
        Ok(Pipeline {
            ops,
            sources,
            shared: Shared::new(names, topology.children(), app.plugin.clone(), app.error_policy, dead_letter, stores),
            tasks: Vec::new(),
            punctuators: punctuators(topology),
            global_uses,
            subtopology_of,
            stream_time: BTreeMap::new(),
            next_punctuation: BTreeMap::new(),
            wall_clock: None,
            app_id: app.id.clone(),
        })
    }

    /// Counts so far.
    pub fn stats(&self) -> PipelineStats {
        self.shared.stats
    }

    /// Hands what was measured since the last call to `publish`, then
    /// starts the measurements over.
    pub fn publish_metrics(&mut self, publish: impl FnOnce(&PipelineMetrics)) {
        publish(&self.shared.metrics);
        self.shared.metrics.clear();
    }

    /// Pushes records fetched from one partition through every source that
    /// reads its topic, sending outputs (and dead letters) to `out`. Stream-
    /// time punctuators run between the records where their stream time (the
    /// largest timestamp, in this task, of the topics that reach them)
    /// crosses their next punctuation time.
    pub fn process(&mut self, input: &Fetched, out: &mut dyn Producer) -> Result<(), ProcessError> {
        let timed = self.event_times(input, out)?;
        let input = timed.as_ref().unwrap_or(input);
        let task = input.partition.partition;
        let topic = &*input.partition.topic;
        let punctuators: Vec<usize> = self
            .punctuators
            .iter()
            .filter(|p| p.clock == PunctuationTime::Stream && p.topics.iter().any(|t| t == topic))
            .map(|p| p.node)
            .collect();
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
                self.punctuate(task, node, PunctuationTime::Stream, time, out)?;
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

    /// Gives the records of `input` their event time as their source says
    /// (the record's timestamp, the wall clock, or a plugin extractor); a
    /// record whose extractor fails or whose event time is negative meets the
    /// error policy and is left out. `None`: the records are fine as they are.
    fn event_times(&mut self, input: &Fetched, out: &mut dyn Producer) -> Result<Option<Fetched>, ProcessError> {
        let topic = &*input.partition.topic;
        let Some(source) = self.sources.iter().find(|s| s.topics.iter().any(|t| t == topic)) else { return Ok(None) };
        let (node, time) = (source.node, source.time);
        if time.is_none() && input.records.iter().all(|r| r.record.timestamp >= 0) {
            return Ok(None);
        }
        let mut records = input.records.clone();
        let mut failed: Vec<Option<String>> = vec![None; records.len()];
        let task = input.partition.partition;
        let mut cx = Cx { shared: &mut self.shared, node, task, input, out, flushed: Vec::new() };
        match time {
            None => {}
            Some(None) => {
                let now = self.wall_clock.map_or_else(crate::jsonl::now_ms, |(_, now)| now);
                records.iter_mut().for_each(|r| r.record.timestamp = now);
            }
            Some(Some(function)) => {
                let batch: Vec<Record> = records.iter().map(|r| r.record.clone()).collect();
                let outcomes = cx.call(function, FunctionKind::TimestampExtractor, &batch)?;
                for (i, outcome) in outcomes.into_iter().enumerate() {
                    match outcome {
                        Outcome::Timestamp(t) => records[i].record.timestamp = t,
                        other => failed[i] = Some(context::failure(other, FunctionKind::TimestampExtractor)),
                    }
                }
            }
        }
        for (i, r) in records.iter().enumerate() {
            if failed[i].is_none() && r.record.timestamp < 0 {
                failed[i] = Some(format!(
                    "event time {} is negative: give records a timestamp of 0 or more, or read it with a `timestamp-extractor`",
                    r.record.timestamp
                ));
            }
        }
        for (i, why) in failed.iter().enumerate() {
            if let Some(why) = why {
                cx.reject(node, i as u32, FailureKind::Timestamp, why.clone())?;
            }
        }
        let kept = records.into_iter().zip(&failed).filter(|(_, f)| f.is_none()).map(|(r, _)| r).collect();
        Ok(Some(Fetched { partition: input.partition.clone(), records: kept }))
    }

    /// Makes a batch that is being run again record by record give up
    /// ([`ProcessError::Stopped`]) once `stop` is set.
    pub fn set_stop(&mut self, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) {
        self.shared.stop = Some(stop);
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
        let nodes: Vec<(usize, i64)> =
            self.punctuators.iter().filter(|p| p.clock == PunctuationTime::Wall).map(|p| (p.node, p.every)).collect();
        if nodes.is_empty() {
            return Ok(());
        }
        // Each punctuator runs for the tasks of its own sub-topology.
        let mut due = Vec::new();
        for task in &self.tasks {
            for &(node, every) in &nodes {
                if self.subtopology_of[node] == Some(task.subtopology) {
                    due.push((task.partition, node, every));
                }
            }
        }
        let now = match self.wall_clock {
            Some((start, now)) => {
                for &(task, node, every) in &due {
                    // Runs when the clock crosses a multiple of the interval.
                    let next = (start.div_euclid(every) + 1) * every;
                    self.next_punctuation.entry((task, node)).or_insert(next);
                }
                now
            }
            None => crate::jsonl::now_ms(),
        };
        for (task, node, _) in due {
            self.punctuate(task, node, PunctuationTime::Wall, now, out)?;
        }
        Ok(())
    }

    /// Runs the punctuator of `node` for `task` if `now` has reached its
    /// next time; a punctuator seen for the first time is scheduled for the
    /// next multiple of its interval (stream time) or one interval from now
    /// (wall clock).
    fn punctuate(
        &mut self,
        task: u32,
        node: usize,
        clock: PunctuationTime,
        now: i64,
        out: &mut dyn Producer,
    ) -> Result<(), ProcessError> {
        let Some(every) = self.punctuators.iter().find(|p| p.node == node).map(|p| p.every) else { return Ok(()) };
        let following = match clock {
            PunctuationTime::Stream => (now.div_euclid(every) + 1) * every,
            PunctuationTime::Wall => now + every,
        };
        let next = self.next_punctuation.entry((task, node)).or_insert(following);
        if now < *next {
            return Ok(());
        }
        *next = following;
        let record = Record { key: None, value: None, timestamp: now, headers: Vec::new() }
            .with_header(PUNCTUATION_HEADER, clock.as_str());
        // Errors name the punctuation as the record's source.
        let input = Fetched {
            partition: TopicPartition::new(&format!("{}-punctuation", self.shared.names[node]), task),
            records: vec![LogRecord { offset: 0, record }],
        };
        let mut cx = Cx { shared: &mut self.shared, node, task, input: &input, out, flushed: Vec::new() };
        let emit = self.ops[node].punctuate(&mut cx, clock, now)?;
        let flushed = cx.flushed;
        self.after(node, task, emit, flushed, &input, out)
    }

    /// Reads a fetched segment through every source of its topic.
    fn process_segment(&mut self, input: &Fetched, out: &mut dyn Producer) -> Result<(), ProcessError> {
        let task = input.partition.partition;
        for s in 0..self.sources.len() {
            let Source { node, ref topics, key, value, table, versioned, .. } = self.sources[s];
            if !topics.iter().any(|t| **t == *input.partition.topic) {
                continue;
            }
            self.shared.metrics.received(node, input.records.len());
            let mut cx = Cx { shared: &mut self.shared, node, task, input, out: &mut *out, flushed: Vec::new() };
            let mut batch = Batch::with_capacity(input.records.len());
            for (i, lr) in input.records.iter().enumerate() {
                let checked = check(key, lr.record.key.as_deref(), "key")
                    .and_then(|()| check(value, lr.record.value.as_deref(), "value"));
                match checked {
                    Ok(()) => batch.push(lr.record.clone(), i as u32),
                    Err(e) => cx.reject(node, i as u32, FailureKind::Deserialization, e)?,
                }
            }
            let emit = if let Some(history) = versioned {
                Emit::All(table::versioned_updates(&mut cx, node, history, batch)?)
            } else if table {
                // A table's store passes its updates on as it flushes.
                for r in batch.records {
                    let Some(key) = r.key else { continue };
                    cx.update(node, key, r.value, r.timestamp)?;
                }
                Emit::Nothing
            } else {
                Emit::All(batch)
            };
            let flushed = cx.flushed;
            self.after(node, task, emit, flushed, input, out)?;
        }
        Ok(())
    }

    /// Runs `node` over a batch that node `from` passed on, then passes on
    /// what it emits and what its stores flushed.
    fn run(
        &mut self,
        node: usize,
        from: usize,
        batch: Batch,
        input: &Fetched,
        out: &mut dyn Producer,
    ) -> Result<(), ProcessError> {
        let task = input.partition.partition;
        self.shared.metrics.received(node, batch.len());
        let mut cx = Cx { shared: &mut self.shared, node, task, input, out: &mut *out, flushed: Vec::new() };
        let emit = self.ops[node].process(&mut cx, from, batch)?;
        let flushed = cx.flushed;
        self.after(node, task, emit, flushed, input, out)
    }

    /// Passes on what `node` emitted, then what stores flushed meanwhile.
    fn after(
        &mut self,
        node: usize,
        task: u32,
        emit: Emit,
        flushed: Vec<(usize, Vec<Record>)>,
        input: &Fetched,
        out: &mut dyn Producer,
    ) -> Result<(), ProcessError> {
        match emit {
            Emit::Nothing => {}
            Emit::All(batch) => self.forward(node, batch, input, out)?,
            Emit::As(as_node, batch) => self.forward(as_node, batch, input, out)?,
            Emit::To(batches) => {
                for (child, batch) in batches {
                    if !batch.is_empty() {
                        self.run(child, node, batch, input, out)?;
                    }
                }
            }
        }
        for (id, records) in flushed {
            self.forward_flushed(task, id, records, out)?;
        }
        Ok(())
    }

    /// Gives a batch to every child of `node`.
    fn forward(
        &mut self,
        node: usize,
        batch: Batch,
        input: &Fetched,
        out: &mut dyn Producer,
    ) -> Result<(), ProcessError> {
        if batch.is_empty() {
            return Ok(());
        }
        let count = self.shared.children[node].len();
        let mut batch = Some(batch);
        for i in 0..count {
            let child = self.shared.children[node][i];
            let b = if i + 1 == count {
                batch.take().expect("the last child takes it")
            } else {
                batch.clone().expect("kept for the last child")
            };
            self.run(child, node, b, input, out)?;
        }
        Ok(())
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
        let (spec, Some(node)) = &self.shared.stores.specs[id] else { return Ok(()) };
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
            let dirty: Vec<(u32, usize)> =
                self.shared.stores.open.iter().filter(|(_, s)| s.is_dirty()).map(|(k, _)| *k).collect();
            if dirty.is_empty() {
                return Ok(());
            }
            for (task, id) in dirty {
                let flushed = match self.shared.stores.open.get_mut(&(task, id)) {
                    Some(store) => store.flush(out)?,
                    None => Vec::new(),
                };
                self.forward_flushed(task, id, flushed, out)?;
            }
        }
        Ok(())
    }
}

/// The operator of a windowed aggregation over `windows`.
fn windowed(windows: Windows, folder: window::Folder, merger: Option<u32>) -> Box<dyn Operator> {
    match windows {
        Windows::Time(windows) => Box::new(window::WindowAggregate { windows, folder }),
        Windows::Sliding(windows) => Box::new(sliding::SlidingAggregate { windows, folder }),
        Windows::Session(windows) => Box::new(session::SessionAggregate { windows, folder, merger }),
    }
}

/// Each punctuating processor's schedule, with the source topics upstream of
/// it for stream time.
fn punctuators(topology: &Topology) -> Vec<Punctuator> {
    let nodes = &topology.nodes;
    let mut out = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let Op::Process { punctuate: Some(p), .. } = &n.op else { continue };
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
        out.push(Punctuator { node: i, every: p.every_ms as i64, clock: p.time, topics });
    }
    out
}
