//! What operators share: the plugin instance and how calls to it are
//! isolated from traps, the task stores, the error policy, and the call's
//! input and producer ([`Cx`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A failed plugin call that ran this long is throttled (see
/// [`Shared::drop_instance`]).
const THROTTLE_AFTER: Duration = Duration::from_millis(20);
/// The longest pause after such a call, as a multiple of its length: a
/// plugin that fails this way on every call gets a tenth of a core.
const THROTTLE_MAX_FACTOR: u32 = 9;
/// How often a throttled worker looks for a stop.
const THROTTLE_SLICE: Duration = Duration::from_millis(10);

use bytes::Bytes;

use super::stats::PipelineMetrics;
use super::{PipelineStats, ProcessError};
use crate::app::ErrorPolicy;
use crate::log::{Fetched, Producer, TopicPartition};
use crate::partition::partition_for_key;
use crate::plugin::{ChainOutcome, ChainStep, FunctionKind, Instance, Outcome, Plugin, RecordError};
use crate::record::Record;
use crate::serdes::Serde;
use crate::store::{GlobalStore, TaskStore};
use crate::topology::StoreSpec;

/// What a failure is about, for logs and dead-letter headers.
#[derive(Clone, Copy)]
pub(crate) enum FailureKind {
    Deserialization,
    Serialization,
    Function,
    Timestamp,
}

impl FailureKind {
    fn as_str(self) -> &'static str {
        match self {
            FailureKind::Deserialization => "deserialization",
            FailureKind::Serialization => "serialization",
            FailureKind::Function => "function",
            FailureKind::Timestamp => "timestamp",
        }
    }
}

/// The task stores of a pipeline and the global tables' stores.
#[derive(Default)]
pub(crate) struct Stores {
    /// Open task stores by (partition, store id): a store belongs to one
    /// sub-topology, so the partition names its task.
    pub open: BTreeMap<(u32, usize), TaskStore>,
    /// The task stores, by id, with the node whose children get what the
    /// store flushes (none for processors' and group-by's stores).
    pub specs: Vec<(StoreSpec, Option<usize>)>,
    /// The store id of each node that owns one.
    pub of_node: Vec<Option<usize>>,
    /// The sub-topology of each store, by id: its tasks hold one each.
    pub subtopology: Vec<Option<usize>>,
    /// Global tables' stores, by store name.
    pub globals: HashMap<String, Arc<GlobalStore>>,
}

/// What every operator call of a pipeline shares.
pub(crate) struct Shared {
    /// Node names, for errors.
    pub names: Vec<String>,
    /// For each node, the nodes that read it.
    pub children: Vec<Vec<usize>>,
    plugin: Arc<dyn Plugin>,
    instance: Option<Box<dyn Instance>>,
    policy: ErrorPolicy,
    /// The dead-letter topic's partitions, under the dead-letter policy.
    dead_letter: Option<Vec<TopicPartition>>,
    pub stats: PipelineStats,
    /// Records per node, plugin call latency and traps, end-to-end latency.
    pub metrics: PipelineMetrics,
    /// Reused outcome buffer.
    scratch: Vec<Outcome>,
    pub stores: Stores,
    /// How long the last plugin call ran.
    last_call: Duration,
    /// Failed calls in a row that ran long enough to be throttled.
    slow_failures: u32,
    /// Set when the run stops: a batch run record by record gives up.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Shared {
    pub fn new(
        names: Vec<String>,
        children: Vec<Vec<usize>>,
        plugin: Arc<dyn Plugin>,
        policy: ErrorPolicy,
        dead_letter: Option<Vec<TopicPartition>>,
        stores: Stores,
    ) -> Self {
        Shared {
            metrics: PipelineMetrics::new(names.len()),
            names,
            children,
            plugin,
            instance: None,
            policy,
            dead_letter,
            stats: PipelineStats::default(),
            scratch: Vec::new(),
            stores,
            stop: None,
            last_call: Duration::ZERO,
            slow_failures: 0,
        }
    }

    /// [`ProcessError::Stopped`] once the run is stopping.
    fn check_stop(&self) -> Result<(), ProcessError> {
        match &self.stop {
            Some(stop) if stop.load(std::sync::atomic::Ordering::SeqCst) => Err(ProcessError::Stopped),
            _ => Ok(()),
        }
    }

    /// The plugin instance, made anew after a trap dropped the last one.
    pub fn instance(&mut self) -> Result<&mut Box<dyn Instance>, ProcessError> {
        if self.instance.is_none() {
            self.instance = Some(self.plugin.instantiate()?);
        }
        Ok(self.instance.as_mut().expect("instantiated above"))
    }

    /// The store id and task store of `node` for `task`.
    fn task_store(&mut self, node: usize, task: u32) -> Result<(usize, &mut TaskStore), ProcessError> {
        let id = self.stores.of_node[node].ok_or_else(|| ProcessError::NoStore(self.names[node].clone(), task))?;
        Ok((id, self.store_by_id(id, task)?))
    }

    /// Task store `id` of `task`.
    fn store_by_id(&mut self, id: usize, task: u32) -> Result<&mut TaskStore, ProcessError> {
        let missing = || ProcessError::NoStore(self.stores.specs[id].0.name.clone(), task);
        self.stores.open.get_mut(&(task, id)).ok_or_else(missing)
    }

    /// Runs `call` on the plugin instance (made first if need be), timed as
    /// one plugin call.
    pub fn timed<T>(&mut self, call: impl FnOnce(&mut dyn Instance) -> T) -> Result<T, ProcessError> {
        let instance = self.instance()?;
        let start = Instant::now();
        let result = call(&mut **instance);
        self.last_call = start.elapsed();
        if self.last_call < THROTTLE_AFTER {
            // A quick call ends a run of slow failures.
            self.slow_failures = 0;
        }
        let ns = u64::try_from(self.last_call.as_nanos()).unwrap_or(u64::MAX);
        self.metrics.plugin_calls.observe(ns);
        Ok(result)
    }

    /// Drops the instance after a trap: the next call makes a new one.
    /// Every failed call comes here, so here traps are counted. A call that
    /// failed after running long (into its deadline, as a runaway plugin
    /// does on every record) is followed by a pause: twice its length the
    /// first time, doubling with each such failure in a row up to nine
    /// times, so that a runaway takes about a tenth of a core from the apps
    /// beside it while a plugin that trips once is barely held up. A stop
    /// ends the pause.
    pub fn drop_instance(&mut self) {
        self.instance = None;
        self.metrics.traps += 1;
        if self.last_call >= THROTTLE_AFTER {
            self.slow_failures = self.slow_failures.saturating_add(1);
            let factor = 2u32.saturating_pow(self.slow_failures).min(THROTTLE_MAX_FACTOR);
            let until = Instant::now() + self.last_call * factor;
            while Instant::now() < until && self.check_stop().is_ok() {
                std::thread::sleep(THROTTLE_SLICE.min(until.saturating_duration_since(Instant::now())));
            }
        }
    }
}

/// One operator call: the shared state, the node and task it runs for, the
/// input the records came from, and the producer outputs go to.
pub(crate) struct Cx<'a> {
    pub shared: &'a mut Shared,
    /// The node being run.
    pub node: usize,
    /// The task whose records these are.
    pub task: u32,
    /// The fetched input the batch's origins index into.
    pub input: &'a Fetched,
    pub out: &'a mut dyn Producer,
    /// Records the stores flushed during the call, by store id: the pipeline
    /// passes them on from the store's node afterwards.
    pub flushed: Vec<(usize, Vec<Record>)>,
}

impl Cx<'_> {
    /// The task store of `node`.
    pub fn store(&mut self, node: usize) -> Result<&mut TaskStore, ProcessError> {
        Ok(self.shared.task_store(node, self.task)?.1)
    }

    /// The task store of `node` and the producer its changelog goes to, for
    /// a store written through a view (a versioned store).
    pub fn store_with_out(&mut self, node: usize) -> Result<(&mut TaskStore, &mut dyn Producer), ProcessError> {
        let store = self.shared.task_store(node, self.task)?.1;
        Ok((store, &mut *self.out))
    }

    /// Task store `id` (for a node with several stores).
    pub fn store_at(&mut self, id: usize) -> Result<&mut TaskStore, ProcessError> {
        self.shared.store_by_id(id, self.task)
    }

    /// Puts `key` in the store of `node`, an update made at `timestamp`;
    /// what the store flushes is passed on after the call.
    pub fn update(
        &mut self,
        node: usize,
        key: Bytes,
        value: Option<Bytes>,
        timestamp: i64,
    ) -> Result<(), ProcessError> {
        let (id, _) = self.shared.task_store(node, self.task)?;
        self.update_at(id, key, value, timestamp)
    }

    /// Puts `key` in task store `id`, as [`Cx::update`].
    pub fn update_at(
        &mut self,
        id: usize,
        key: Bytes,
        value: Option<Bytes>,
        timestamp: i64,
    ) -> Result<(), ProcessError> {
        let store = self.shared.store_by_id(id, self.task)?;
        let flushed = store.put(key, value, timestamp, &mut *self.out)?;
        if !flushed.is_empty() {
            self.flushed.push((id, flushed));
        }
        Ok(())
    }

    /// Puts at `key` in the node's store the value and timestamp `update`
    /// makes of what the key holds, as [`Cx::update`] after a read, with
    /// one lookup ([`crate::store::TaskStore::update_timestamped`]).
    pub fn update_with(
        &mut self,
        node: usize,
        key: Bytes,
        update: impl FnOnce(Option<(Bytes, i64)>) -> (Option<Bytes>, i64),
    ) -> Result<(), ProcessError> {
        let (id, store) = self.shared.task_store(node, self.task)?;
        let flushed = store.update_timestamped(key, &mut *self.out, update)?;
        if !flushed.is_empty() {
            self.flushed.push((id, flushed));
        }
        Ok(())
    }

    /// Calls a function over a batch, isolating the records a trap is about:
    /// after a trap the batch runs again record by record, and the record
    /// that traps fails alone.
    pub fn call(
        &mut self,
        function: u32,
        kind: FunctionKind,
        records: &[Record],
    ) -> Result<Vec<Outcome>, ProcessError> {
        let mut out = std::mem::take(&mut self.shared.scratch);
        out.clear();
        match self.shared.timed(|instance| instance.call(function, kind, records, &mut out))? {
            Ok(()) => return Ok(out),
            Err(e) if records.len() == 1 => {
                self.shared.drop_instance();
                out.push(Outcome::Failed(RecordError::Failed(e.to_string())));
                return Ok(out);
            }
            Err(e) => {
                tracing::debug!("batch of {} failed ({e}); retrying record by record", records.len());
                self.shared.drop_instance();
            }
        }
        for r in records {
            self.shared.check_stop()?;
            if let Err(e) =
                self.shared.timed(|instance| instance.call(function, kind, std::slice::from_ref(r), &mut out))?
            {
                self.shared.drop_instance();
                out.push(Outcome::Failed(RecordError::Failed(e.to_string())));
            }
        }
        Ok(out)
    }

    /// Gives an outcome buffer back for reuse.
    pub fn recycle(&mut self, outcomes: Vec<Outcome>) {
        self.shared.scratch = outcomes;
    }

    /// Runs a fused chain over a batch. If the plugin traps, each record is
    /// run again step by step, so the trap is pinned to one record and node.
    pub fn call_chain(&mut self, steps: &[ChainStep], records: &[Record]) -> Result<Vec<ChainOutcome>, ProcessError> {
        let mut out = Vec::with_capacity(records.len());
        match self.shared.timed(|instance| instance.call_chain(steps, records, &mut out))? {
            Ok(()) => return Ok(out),
            Err(e) => {
                tracing::debug!("chain over {} records failed ({e}); retrying step by step", records.len());
                self.shared.drop_instance();
                out.clear();
            }
        }
        for r in records {
            self.shared.check_stop()?;
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

    /// Applies the error policy to each failed record of this node.
    pub fn reject_all(&mut self, failures: Vec<(u32, String)>) -> Result<(), ProcessError> {
        for (origin, e) in failures {
            self.reject(self.node, origin, FailureKind::Function, e)?;
        }
        Ok(())
    }

    /// Applies the error policy to input record `origin`, which failed in
    /// `node`.
    pub fn reject(&mut self, node: usize, origin: u32, kind: FailureKind, error: String) -> Result<(), ProcessError> {
        let input = self.input;
        let source = &input.records[origin as usize];
        let node_name = &self.shared.names[node];
        match self.shared.policy {
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
                self.shared.stats.skipped += 1;
                Ok(())
            }
            ErrorPolicy::DeadLetter => {
                let partitions = self.shared.dead_letter.as_ref().expect("dead-letter policy has a topic");
                let record = source
                    .record
                    .clone()
                    .with_header("eddy.error", error)
                    .with_header("eddy.error.kind", kind.as_str())
                    .with_header("eddy.error.node", Bytes::from(node_name.clone()))
                    .with_header("eddy.source.topic", Bytes::from(input.partition.topic.to_string()))
                    .with_header("eddy.source.partition", input.partition.partition.to_string())
                    .with_header("eddy.source.offset", source.offset.to_string());
                let n = partitions.len() as u32;
                let p = record.key.as_deref().map_or(input.partition.partition % n, |k| partition_for_key(k, n));
                self.out.send(&partitions[p as usize], record)?;
                self.shared.stats.dead_lettered += 1;
                Ok(())
            }
        }
    }
}

/// Checks key or value bytes against a serde.
pub(crate) fn check(serde: Serde, data: Option<&[u8]>, what: &str) -> Result<(), String> {
    match data {
        Some(d) => serde.check(d).map_err(|e| format!("{what} is not {serde}: {e}")),
        None => Ok(()),
    }
}

/// Why an outcome is a failure for a function of `kind`.
pub(crate) fn failure(outcome: Outcome, kind: FunctionKind) -> String {
    match outcome {
        Outcome::Failed(e) => e.to_string(),
        other => format!("a {kind} function returned {other:?}"),
    }
}
