//! A worker thread: a member of the application's group that runs the
//! tasks the group gives it, and commits their work.
//!
//! The loop: poll the group (a change of tasks is applied between batches:
//! revoked tasks are committed and closed before the group may move them,
//! assigned ones opened), restore a batch of the new tasks' stores from their
//! changelogs ([`Restorer`]: a task starts once its stores caught up, and the
//! others run meanwhile), fetch, take runs in timestamp order per task
//! ([`Interleave`]), push them through the [`Pipeline`], and every commit
//! interval commit outputs, changelog records and input offsets.
//! When the log refuses a commit ([`LogError::Fenced`]), everything since
//! the last commit is dropped and the tasks open again from there.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::standby::Standbys;
use super::{RunError, RunOptions, RunStats};
use crate::app::App;
use crate::interleave::Interleave;
use crate::log::{Log, LogError, Member, Rebalance, TopicPartition};
use crate::pipeline::{Pipeline, PipelineStats, ProcessError};
use crate::store::restore::Restorer;
use crate::store::{GlobalStore, StoreError};
use crate::task::{Task, TaskId};

/// What every worker thread of a run shares.
#[derive(Clone, Copy)]
pub(super) struct Context<'a> {
    pub app: &'a App,
    pub log: &'a dyn Log,
    pub options: &'a RunOptions,
    pub stats: &'a RunStats,
    pub idle: &'a Idle,
    pub globals: &'a [Arc<GlobalStore>],
    /// The instance's standby replicas, told which tasks run here.
    pub standbys: &'a Standbys,
}

/// One worker thread: its group membership, the tasks it owns, their
/// partitions, and its consumer, producer and pipeline.
pub(super) struct Worker<'a> {
    cx: Context<'a>,
    /// Every task of the application; the group shares them by index.
    all_tasks: &'a [Task],
    /// The indices of the tasks this thread owns.
    owned: Vec<u32>,
    /// The owned tasks' input partitions.
    partitions: Vec<TopicPartition>,
    /// Next offset to process per partition, and whether it moved since the last commit.
    positions: BTreeMap<TopicPartition, (u64, bool)>,
    consumer: Box<dyn crate::log::Consumer>,
    /// Fetched records waiting to be taken in timestamp order per task.
    inputs: Interleave,
    producer: Box<dyn crate::log::Producer>,
    pipeline: Pipeline,
    reported: PipelineStats,
    marked_idle: bool,
    /// Tasks this thread owns whose stores are catching up with their
    /// changelogs, and since when.
    restorer: Restorer,
    restoring: BTreeMap<u32, Restoring>,
    /// Tasks this thread was given whose stores another thread of this
    /// process still has open, and since when: they start once it closes
    /// them (it learns from the group that they moved, or the standby
    /// thread lets go of its copy).
    held: BTreeMap<u32, Instant>,
    last_purge: Instant,
    /// Declared last, so dropped last: the thread leaves its group (and its
    /// tasks go to other members) only once its stores are closed.
    member: Box<dyn Member>,
}

/// How often a worker deletes the records of repartition topics it has
/// committed past (Kafka Streams' `repartition.purge.interval.ms`).
const PURGE_INTERVAL: Duration = Duration::from_secs(30);

/// How long a task given to this thread may wait for another thread of
/// this process to close its stores.
const HELD_TIMEOUT: Duration = Duration::from_secs(120);

/// A task whose stores are catching up: since when, and from which
/// changelog offset each (a standby copy or a checkpoint here starts late).
struct Restoring {
    since: Instant,
    from: Vec<u64>,
}

/// How many worker threads of an `until_idle` run have nothing left to do.
pub(super) struct Idle {
    pub count: std::sync::atomic::AtomicUsize,
    pub threads: usize,
    /// Every input partition of the run.
    pub partitions: Vec<TopicPartition>,
}

impl Idle {
    fn all_idle(&self) -> bool {
        self.count.load(Ordering::SeqCst) == self.threads
    }
}

/// True when the group has committed every record of `partitions`.
fn lag_is_zero(app: &App, log: &dyn Log, partitions: &[TopicPartition]) -> Result<bool, RunError> {
    for tp in partitions {
        if log.committed(&app.id, tp)?.unwrap_or(0) < log.end_offset(tp)? {
            return Ok(false);
        }
    }
    Ok(true)
}

impl<'a> Worker<'a> {
    /// Joins the application's group; `local` are the tasks the thread owns
    /// on a log without a group coordinator.
    pub(super) fn new(cx: Context<'a>, all_tasks: &'a [Task], local: &[u32]) -> Result<Self, RunError> {
        let (app, log) = (cx.app, cx.log);
        let member = log.join(&app.id, all_tasks.len() as u32, local)?;
        let mut pipeline = Pipeline::new(app, log)?;
        pipeline.open_tasks(&[], cx.options.state_dir.as_deref(), app.cache_max_bytes, cx.globals, log)?;
        pipeline.set_wall_clock(cx.options.wall_clock);
        pipeline.set_stop(cx.options.stop.clone());
        if let Some(queries) = &cx.options.queries {
            queries.set_tasks(all_tasks);
        }
        Ok(Worker {
            cx,
            all_tasks,
            owned: Vec::new(),
            member,
            partitions: Vec::new(),
            positions: BTreeMap::new(),
            consumer: log.consumer()?,
            inputs: Interleave::new(Vec::new()),
            producer: log.producer()?,
            pipeline,
            reported: PipelineStats::default(),
            marked_idle: false,
            restorer: Restorer::default(),
            restoring: BTreeMap::new(),
            held: BTreeMap::new(),
            last_purge: Instant::now(),
        })
    }

    pub(super) fn run(&mut self) -> Result<(), RunError> {
        let result = self.run_loop();
        if result.is_err() {
            self.producer.abort();
        }
        let owned = self.owned.clone();
        self.unregister(&owned);
        result
    }

    /// Makes the stores of `tasks`, which start processing, readable by
    /// interactive queries.
    fn register(&mut self, tasks: &[TaskId]) -> Result<(), RunError> {
        if let Some(queries) = &self.cx.options.queries {
            for &task in tasks {
                queries.register(task, self.pipeline.readers(task, &queries.stores_of(task.subtopology))?);
            }
        }
        Ok(())
    }

    /// Takes the stores of `tasks` (indices into all tasks), which stop
    /// processing, away from interactive queries.
    fn unregister(&self, tasks: &[u32]) {
        if let Some(queries) = &self.cx.options.queries {
            let ids: Vec<TaskId> = tasks.iter().map(|&i| self.all_tasks[i as usize].id).collect();
            queries.unregister(&ids);
        }
    }

    fn run_loop(&mut self) -> Result<(), RunError> {
        let poll_timeout = self.cx.app.commit_interval.min(Duration::from_millis(50));
        let mut last_commit = Instant::now();
        loop {
            if self.cx.options.stop.load(Ordering::SeqCst) {
                return self.finish();
            }
            // A thread without tasks waits on its group instead of its
            // consumer (one whose tasks are all held too, between tries).
            let group_wait =
                if self.owned.is_empty() && self.restoring.is_empty() { poll_timeout } else { Duration::ZERO };
            if let Some(change) = self.member.poll(group_wait)? {
                self.rebalance(change)?;
                continue;
            }
            if !self.held.is_empty() {
                self.start_held()?;
            }
            let idle = match self.step(poll_timeout) {
                Ok(idle) => idle,
                Err(RunError::Process(ProcessError::Stopped)) => return self.abandon(),
                Err(e) => match refused(&e) {
                    Some(why) => {
                        self.go_back(&why)?;
                        continue;
                    }
                    None => return Err(e),
                },
            };
            if last_commit.elapsed() >= self.cx.app.commit_interval {
                self.commit()?;
                last_commit = Instant::now();
            }
            if self.cx.options.until_idle {
                if !idle {
                    self.set_idle(false);
                } else if self.caught_up()? {
                    // Commit so the group's offsets show this thread is done,
                    // then stop only when every thread is: one thread's
                    // output may be another's input.
                    self.commit()?;
                    last_commit = Instant::now();
                    self.set_idle(true);
                    if self.cx.idle.all_idle() && lag_is_zero(self.cx.app, self.cx.log, &self.cx.idle.partitions)? {
                        return self.finish();
                    }
                }
            }
        }
    }

    /// Fetches and processes what the owned tasks can take now. Returns
    /// whether there was nothing to do.
    fn step(&mut self, poll_timeout: Duration) -> Result<bool, RunError> {
        if !self.restoring.is_empty() {
            self.restore(poll_timeout)?;
        }
        let fetched = if self.owned.is_empty() {
            Vec::new()
        } else {
            self.consumer.poll(self.cx.options.max_poll_records, poll_timeout)?
        };
        let idle = fetched.is_empty() && self.inputs.buffered() == 0;
        self.inputs.add(fetched);
        let consumer = &mut self.consumer;
        let runs = self.inputs.take(|tp| {
            consumer.behind(tp).unwrap_or_else(|e| {
                tracing::warn!("cannot tell whether {tp} has more records: {e}");
                false
            })
        });
        for f in runs {
            self.pipeline.process(&f, &mut *self.producer)?;
            if let Some(last) = f.records.last() {
                self.positions.insert(f.partition.clone(), (last.offset + 1, true));
            }
            self.cx.stats.records_in.fetch_add(f.records.len() as u64, Ordering::Relaxed);
        }
        self.pipeline.punctuate_wall_clock(&mut *self.producer)?;
        self.report();
        Ok(idle)
    }

    /// Applies a change of the tasks this thread owns: revoked tasks are
    /// committed and closed before the group may give them to another
    /// member; assigned ones are opened (their stores restored) and read
    /// from their group's committed offsets.
    fn rebalance(&mut self, change: Rebalance) -> Result<(), RunError> {
        let (app, log) = (self.cx.app, self.cx.log);
        let ids = |indices: &[u32]| -> Vec<TaskId> { indices.iter().map(|&i| self.all_tasks[i as usize].id).collect() };
        // Tasks still restoring hold only committed state: they close where
        // they stand, for whoever opens them next here.
        let mut given_up = Vec::new();
        for &i in &change.revoked {
            self.held.remove(&i);
            if self.restoring.remove(&i).is_some() {
                self.restorer.close(log, self.all_tasks[i as usize].id).map_err(ProcessError::from)?;
                given_up.push(i);
            }
        }
        let indices: Vec<u32> = change.revoked.iter().copied().filter(|i| self.owned.contains(i)).collect();
        if !indices.is_empty() {
            self.unregister(&indices);
            let revoked = ids(&indices);
            if change.lost {
                // Another member owns these tasks already: nothing since the
                // last commit may be committed, of them or of the others.
                self.pipeline.close_tasks(&revoked, false, log)?;
                self.owned.retain(|i| !indices.contains(i));
                self.go_back(&format!("tasks {} were lost to another member", show(&revoked)))?;
            } else {
                self.commit()?;
                self.pipeline.close_tasks(&revoked, true, log)?;
                self.owned.retain(|i| !indices.contains(i));
            }
            given_up.extend(indices);
        }
        if !given_up.is_empty() {
            tracing::info!("{}: gave up tasks {}", app.id, show(&ids(&given_up)));
        }
        for &i in &change.revoked {
            self.cx.standbys.set_active(i, false);
        }
        self.member.complete(&change)?;
        if !change.assigned.is_empty() {
            self.start(&change.assigned)?;
            tracing::info!("{}: took tasks {}", app.id, show(&ids(&change.assigned)));
        }
        self.reassign()
    }

    /// Starts tasks: those with stores restore them first (see
    /// [`Worker::restore`]), the others open at once.
    fn start(&mut self, tasks: &[u32]) -> Result<(), RunError> {
        let (app, log) = (self.cx.app, self.cx.log);
        let mut ready = Vec::new();
        for &i in tasks {
            let task = self.all_tasks[i as usize].id;
            // A standby copy here closes, so that this opens it.
            self.cx.standbys.set_active(i, true);
            let stores = match self.cx.options.state_dir.as_deref() {
                Some(dir) => match self.pipeline.open_stores(task, dir, app.cache_max_bytes) {
                    Err(ProcessError::Store(StoreError::Held(_))) => {
                        self.held.entry(i).or_insert_with(Instant::now);
                        continue;
                    }
                    result => result?,
                },
                None => Vec::new(),
            };
            self.held.remove(&i);
            if stores.is_empty() {
                ready.push(i);
            } else {
                let from = stores.iter().map(|(_, s)| s.restored_to()).collect();
                self.restorer.add(log, task, stores).map_err(ProcessError::from)?;
                self.restoring.insert(i, Restoring { since: Instant::now(), from });
            }
        }
        self.open(&ready)
    }

    /// Tries again to start the tasks whose stores another thread of this
    /// process had open; fails if one waits past [`HELD_TIMEOUT`].
    fn start_held(&mut self) -> Result<(), RunError> {
        let held: Vec<u32> = self.held.keys().copied().collect();
        self.start(&held)?;
        if let Some((&i, _)) = self.held.iter().find(|(_, since)| since.elapsed() >= HELD_TIMEOUT) {
            return Err(RunError::TaskHeld(self.all_tasks[i as usize].id));
        }
        Ok(())
    }

    /// Reads a batch of the restoring tasks' changelogs into their stores
    /// (waiting for it only when there is nothing else to do); tasks whose
    /// stores caught up open and start processing.
    fn restore(&mut self, poll_timeout: Duration) -> Result<(), RunError> {
        let log = self.cx.log;
        let wait = if self.owned.is_empty() { poll_timeout } else { Duration::ZERO };
        self.restorer.step(self.cx.options.max_poll_records, wait).map_err(ProcessError::from)?;
        let done = self.restorer.caught_up().map_err(ProcessError::from)?;
        if done.is_empty() {
            return Ok(());
        }
        let mut ready = Vec::new();
        for task in done {
            let stores = self.restorer.remove(log, task).map_err(ProcessError::from)?;
            let Some(i) = self.all_tasks.iter().position(|t| t.id == task) else { continue };
            if let Some(r) = self.restoring.remove(&(i as u32)) {
                let ranges: Vec<String> = stores
                    .iter()
                    .zip(&r.from)
                    .map(|((_, s), from)| format!("{} from offset {from} to {}", s.changelog(), s.restored_to()))
                    .collect();
                tracing::info!(
                    "{}: restored task {task} in {:.1?}: {}",
                    self.cx.app.id,
                    r.since.elapsed(),
                    ranges.join(", ")
                );
            }
            self.pipeline.adopt_stores(task, stores);
            ready.push(i as u32);
        }
        self.open(&ready)?;
        self.reassign()
    }

    /// Opens tasks (restoring their stores) and reads their partitions from
    /// the group's committed offsets.
    fn open(&mut self, tasks: &[u32]) -> Result<(), RunError> {
        let (app, log) = (self.cx.app, self.cx.log);
        let ids: Vec<TaskId> = tasks.iter().map(|&i| self.all_tasks[i as usize].id).collect();
        self.pipeline.open_tasks(
            &ids,
            self.cx.options.state_dir.as_deref(),
            app.cache_max_bytes,
            self.cx.globals,
            log,
        )?;
        self.register(&ids)?;
        for &i in tasks {
            for tp in &self.all_tasks[i as usize].inputs {
                // A group with no committed offset starts at the beginning
                // (Kafka Streams' auto.offset.reset=earliest).
                let offset = log.committed(&app.id, tp)?.unwrap_or(0);
                self.positions.insert(tp.clone(), (offset, false));
            }
            if !self.owned.contains(&i) {
                self.owned.push(i);
            }
        }
        Ok(())
    }

    /// Points the consumer and the interleaving at the owned tasks'
    /// partitions: those it had go on where it was, new ones start at their
    /// positions.
    fn reassign(&mut self) -> Result<(), RunError> {
        self.owned.sort_unstable();
        let tasks: Vec<&Task> = self.owned.iter().map(|&i| &self.all_tasks[i as usize]).collect();
        self.partitions = tasks.iter().flat_map(|t| t.inputs.iter().cloned()).collect();
        self.positions.retain(|tp, _| self.partitions.contains(tp));
        self.inputs.set_tasks(tasks.iter().map(|t| t.inputs.clone()).collect());
        let assignment: Vec<(TopicPartition, u64)> = self
            .partitions
            .iter()
            .map(|tp| {
                let processed = self.positions.get(tp).map_or(0, |(o, _)| *o);
                // Records fetched but not processed yet stay buffered.
                let fetched = self.consumer.position(tp).filter(|_| self.inputs.holds(tp)).unwrap_or(processed);
                (tp.clone(), fetched.max(processed))
            })
            .collect();
        // A new consumer for each assignment: librdkafka 2.12 can fail an
        // assertion when one consumer's assignment changes twice in quick
        // succession (librdkafka issue 5573, fixed in 2.15).
        self.consumer = self.cx.log.consumer()?;
        self.consumer.assign(&assignment)?;
        Ok(())
    }

    fn set_idle(&mut self, idle: bool) {
        if idle != self.marked_idle {
            self.marked_idle = idle;
            if idle {
                self.cx.idle.count.fetch_add(1, Ordering::SeqCst);
            } else {
                self.cx.idle.count.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    fn caught_up(&mut self) -> Result<bool, RunError> {
        if !self.restoring.is_empty() || !self.held.is_empty() {
            return Ok(false);
        }
        for tp in &self.partitions {
            if self.inputs.holds(tp) || self.consumer.behind(tp)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The final commit of a clean stop, and the stores' checkpoints.
    fn finish(&mut self) -> Result<(), RunError> {
        self.commit()?;
        self.purge();
        self.pipeline.checkpoint(self.cx.log)?;
        self.restorer.close_all(self.cx.log).map_err(ProcessError::from)?;
        Ok(())
    }

    /// Stops without committing the batch in progress (a stop came while a
    /// runaway plugin's batch was being run record by record): what it did
    /// is dropped, and its tasks' stores are rebuilt from their changelogs
    /// the next time they open.
    fn abandon(&mut self) -> Result<(), RunError> {
        tracing::warn!("{}: stopped in the middle of a batch; it runs again from the last commit", self.cx.app.id);
        self.producer.abort();
        let owned: Vec<TaskId> = self.owned.iter().map(|&i| self.all_tasks[i as usize].id).collect();
        self.unregister(&self.owned.clone());
        self.pipeline.close_tasks(&owned, false, self.cx.log)?;
        self.owned.clear();
        self.restorer.close_all(self.cx.log).map_err(ProcessError::from)?;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), RunError> {
        if let Err(e) = self.pipeline.flush(&mut *self.producer) {
            let e = RunError::from(e);
            return match refused(&e) {
                Some(why) => self.go_back(&why),
                None => Err(e),
            };
        }
        self.report();
        // Where every fetched record of a partition is processed, its offset
        // goes past what holds no record (Kafka's transaction markers), so
        // that a caught-up group shows no lag.
        for (tp, (offset, moved)) in self.positions.iter_mut() {
            if self.inputs.holds(tp) {
                continue;
            }
            if let Some(p) = self.consumer.position(tp).filter(|p| p > offset) {
                (*offset, *moved) = (p, true);
            }
        }
        let moved: Vec<(TopicPartition, u64)> =
            self.positions.iter().filter(|(_, (_, moved))| *moved).map(|(tp, (o, _))| (tp.clone(), *o)).collect();
        if moved.is_empty() && self.producer.pending() == 0 {
            return Ok(());
        }
        match self.producer.commit(Some(&*self.member), &moved) {
            Ok(()) => {}
            Err(e @ LogError::Fenced { .. }) => return self.go_back(&e.to_string()),
            // The offsets stay marked as moved: the next commit sends them.
            Err(e @ LogError::Rebalancing { .. }) => {
                tracing::debug!("{}: {e}", self.cx.app.id);
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        for (_, (_, m)) in self.positions.iter_mut() {
            *m = false;
        }
        self.cx.stats.commits.fetch_add(1, Ordering::Relaxed);
        if self.last_purge.elapsed() >= PURGE_INTERVAL {
            self.last_purge = Instant::now();
            self.purge();
        }
        Ok(())
    }

    /// Deletes what the group has committed past in the internal topics
    /// this thread reads (repartition topics): nobody reads it again.
    fn purge(&self) {
        let internal = &self.cx.app.topology.internal_topics;
        for (tp, (offset, _)) in &self.positions {
            if *offset > 0
                && internal.iter().any(|t| *t.name == *tp.topic)
                && let Err(e) = self.cx.log.purge(tp, *offset)
            {
                tracing::warn!("{}: cannot purge {tp}: {e}", self.cx.app.id);
            }
        }
    }

    /// After a commit the group refused (its tasks moved on, or it was
    /// thought dead): drops everything since the last commit and opens its
    /// tasks again from there, as Kafka Streams does on `TaskMigrated`.
    /// Tasks that did move are revoked by the change the group sends next.
    fn go_back(&mut self, why: &str) -> Result<(), RunError> {
        tracing::warn!("{}: commit refused ({why}); going back to the last commit", self.cx.app.id);
        self.producer.abort();
        // A fenced producer may be unusable: start it again (with the same
        // transactional id, so a restarted instance fences all of its own).
        self.producer.reset()?;
        let owned = std::mem::take(&mut self.owned);
        self.unregister(&owned);
        let ids: Vec<TaskId> = owned.iter().map(|&i| self.all_tasks[i as usize].id).collect();
        self.pipeline.close_tasks(&ids, false, self.cx.log)?;
        self.positions.clear();
        self.inputs.set_tasks(Vec::new());
        self.start(&owned)?;
        self.reassign()
    }

    fn report(&mut self) {
        let now = self.pipeline.stats();
        let before = std::mem::replace(&mut self.reported, now);
        let stats = self.cx.stats;
        stats.records_out.fetch_add(now.records_out - before.records_out, Ordering::Relaxed);
        stats.skipped.fetch_add(now.skipped - before.skipped, Ordering::Relaxed);
        stats.dead_lettered.fetch_add(now.dead_lettered - before.dead_lettered, Ordering::Relaxed);
        stats.dropped_late.fetch_add(now.dropped_late - before.dropped_late, Ordering::Relaxed);
        self.pipeline.publish_metrics(|m| stats.add_metrics(m));
    }
}

/// Why the log refused this worker's work, if that is what `e` is: its
/// tasks moved on, or its producer was fenced ([`LogError::Fenced`]).
fn refused(e: &RunError) -> Option<String> {
    let fenced = match e {
        RunError::Log(e) | RunError::Process(ProcessError::Log(e)) => e,
        RunError::Process(ProcessError::Store(StoreError::Log(e))) => e,
        _ => return None,
    };
    matches!(fenced, LogError::Fenced { .. }).then(|| fenced.to_string())
}

/// Task names for a log line: `0_1, 1_1`.
fn show(tasks: &[TaskId]) -> String {
    tasks.iter().map(TaskId::to_string).collect::<Vec<_>>().join(", ")
}
