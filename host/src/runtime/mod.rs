//! Running an application: tasks, worker threads and commits.
//!
//! As in Kafka Streams, a task is one sub-topology's work on one partition
//! number ([`crate::task`]): task `s_p` reads partition `p` of every source
//! topic of sub-topology `s` that has one. [`run`] creates the internal
//! topics and changelogs, catches up global tables, and starts the worker
//! threads ([`worker`]): members of the application's group, which shares
//! the tasks among the threads of every instance. Each commits its tasks'
//! outputs and input offsets in one transaction every commit interval:
//! after a crash, the application resumes from the last commit with no
//! output lost (exactly-once: none repeated either).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::app::{App, ErrorPolicy};
use crate::log::{Cleanup, Log, LogError, TopicPartition, TopicRole};
use crate::pipeline::stats::{
    AtomicHistogram, E2E_LATENCY_BOUNDS_MS, E2E_LATENCY_BUCKETS, PLUGIN_CALL_BOUNDS_NS, PLUGIN_CALL_BUCKETS,
};
use crate::pipeline::{PipelineMetrics, ProcessError};
use crate::store::{GlobalStore, StoreError, changelog_topic};
use crate::task::{self, Task};

mod standby;
#[cfg(test)]
mod tests;
mod worker;

use worker::{Context, Idle, Worker};

/// How often running applications look for changelogs to compact.
const COMPACT_EVERY: Duration = Duration::from_secs(10);
/// How often the compaction thread checks whether the run is over.
const COMPACT_TICK: Duration = Duration::from_millis(20);
/// The share of a changelog partition written since its last compaction
/// that makes it worth compacting (Kafka's default `min.cleanable.dirty.ratio`).
const COMPACT_DIRTY_RATIO: f64 = 0.5;

/// How often the global-table thread reads new records of its topics.
const GLOBAL_POLL: Duration = Duration::from_millis(20);
use crate::topology::{Op, TopologyError};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Worker threads; `None` takes the application's setting.
    pub threads: Option<usize>,
    /// Stop once every input partition is processed and committed.
    pub until_idle: bool,
    /// Most records one poll returns (one batch through the plugin).
    pub max_poll_records: usize,
    /// Set to stop the run: threads commit what they did and return.
    pub stop: Arc<AtomicBool>,
    /// Where tasks keep their state stores (`<data-dir>/state` for `eddy
    /// run`). Needed only by topologies with stores.
    pub state_dir: Option<PathBuf>,
    /// A fixed wall clock for wall-clock punctuation, `(start, now)` in ms:
    /// the time is `now` for the whole run, and a punctuator runs once if the
    /// clock crossed a multiple of its interval since `start` (the test
    /// driver's clock). `None`: the system clock.
    pub wall_clock: Option<(i64, i64)>,
    /// Where the run makes its tasks' stores readable for interactive
    /// queries, while they run here ([`crate::query`]). `None`: nowhere.
    pub queries: Option<Arc<crate::query::Queryable>>,
}

impl Default for RunOptions {
    /// The app's threads, run until stopped, batches of up to 4096 records.
    fn default() -> Self {
        RunOptions {
            threads: None,
            until_idle: false,
            max_poll_records: 4096,
            stop: Arc::new(AtomicBool::new(false)),
            state_dir: None,
            wall_clock: None,
            queries: None,
        }
    }
}

/// Counters of a run, shared with whoever shows progress.
#[derive(Debug)]
pub struct RunStats {
    /// Records read from source topics.
    pub records_in: AtomicU64,
    /// Records written to sink topics.
    pub records_out: AtomicU64,
    /// Records skipped by the `skip` policy.
    pub skipped: AtomicU64,
    /// Records sent to the dead-letter topic.
    pub dead_lettered: AtomicU64,
    /// Records dropped from windows that had closed (one per window).
    pub dropped_late: AtomicU64,
    /// Commits made.
    pub commits: AtomicU64,
    /// Records each node received, by node index (grown to the topology's
    /// size by the first report; read with [`RunStats::node_records_in`]).
    pub nodes: RwLock<Vec<AtomicU64>>,
    /// How long plugin calls took, in nanoseconds.
    pub plugin_calls: AtomicHistogram<PLUGIN_CALL_BUCKETS>,
    /// Plugin calls that failed (trapped, timed out, ran out of memory).
    pub traps: AtomicU64,
    /// How old records were when sinks sent them out of the app, in ms.
    pub e2e_latency: AtomicHistogram<E2E_LATENCY_BUCKETS>,
}

impl Default for RunStats {
    /// Every counter at zero.
    fn default() -> Self {
        RunStats {
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            dropped_late: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            nodes: RwLock::new(Vec::new()),
            plugin_calls: AtomicHistogram::new(&PLUGIN_CALL_BOUNDS_NS),
            traps: AtomicU64::new(0),
            e2e_latency: AtomicHistogram::new(&E2E_LATENCY_BOUNDS_MS),
        }
    }
}

impl RunStats {
    /// Adds what a worker's pipeline measured since it last reported.
    pub fn add_metrics(&self, m: &PipelineMetrics) {
        let grow = self.nodes.read().unwrap_or_else(|p| p.into_inner()).len() < m.node_records_in.len();
        if grow {
            let mut nodes = self.nodes.write().unwrap_or_else(|p| p.into_inner());
            let n = nodes.len().max(m.node_records_in.len());
            nodes.resize_with(n, || AtomicU64::new(0));
        }
        let nodes = self.nodes.read().unwrap_or_else(|p| p.into_inner());
        for (total, &n) in nodes.iter().zip(&m.node_records_in) {
            if n > 0 {
                total.fetch_add(n, Ordering::Relaxed);
            }
        }
        self.plugin_calls.add(&m.plugin_calls);
        if m.traps > 0 {
            self.traps.fetch_add(m.traps, Ordering::Relaxed);
        }
        self.e2e_latency.add(&m.e2e_latency);
    }

    /// Forgets the per-node counts (the run's topology changed; call while
    /// it is stopped).
    pub fn clear_nodes(&self) {
        self.nodes.write().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Records each node received so far, by node index (`nodes` long).
    pub fn node_records_in(&self, nodes: usize) -> Vec<u64> {
        let counts = self.nodes.read().unwrap_or_else(|p| p.into_inner());
        (0..nodes).map(|i| counts.get(i).map_or(0, |c| c.load(Ordering::Relaxed))).collect()
    }
}

/// What a finished run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunReport {
    /// Records read from source topics.
    pub records_in: u64,
    /// Records written to sink topics.
    pub records_out: u64,
    /// Records skipped by the `skip` policy.
    pub skipped: u64,
    /// Records sent to the dead-letter topic.
    pub dead_lettered: u64,
    /// Records dropped from windows that had closed (one per window).
    pub dropped_late: u64,
    /// Number of tasks.
    pub tasks: usize,
    /// Number of worker threads.
    pub threads: usize,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The topology does not fit the log (a missing topic).
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// Processing stopped on an error.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The topology has stores but no state directory was given.
    #[error("application '{0}' has state stores: give it a state directory")]
    NoStateDir(String),
    /// A changelog topic exists with too few partitions.
    #[error("changelog topic '{topic}' has {partitions} partition(s) but the application has {tasks} task(s)")]
    ChangelogTooSmall {
        /// The topic.
        topic: String,
        /// Its partitions.
        partitions: u32,
        /// Tasks that need one each.
        tasks: usize,
    },
    /// Another worker thread of this process kept a task's stores open for
    /// two minutes after the group gave the task to this one.
    #[error("task {0}: another worker thread of this process still has its stores open after two minutes")]
    TaskHeld(crate::task::TaskId),
    /// A worker thread panicked (a bug in Eddy).
    #[error("worker thread {0} panicked")]
    Panicked(usize),
    /// The two sides of a join read topics with different partition counts,
    /// so equal keys would not meet in one task.
    #[error(
        "join '{node}' is not co-partitioned: its left side reads {left} and its right side reads {right}; give the topics the same number of partitions (or repartition a side)"
    )]
    NotCoPartitioned {
        /// The join node.
        node: String,
        /// The left side's topics with their partition counts.
        left: String,
        /// The right side's (the table's, or the other stream's) topics with
        /// their partition counts.
        right: String,
    },
    /// A global table's store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Each task store's changelog topic with the partitions it needs: one per
/// task of the store's sub-topology.
fn changelogs(app: &App, tasks: &[Task]) -> Vec<(String, u32, Cleanup)> {
    let of = task::subtopology_of(&app.topology);
    app.topology
        .stores()
        .into_iter()
        .map(|(node, spec)| {
            let count = tasks.iter().filter(|t| Some(t.id.subtopology) == of[node]).count();
            (changelog_topic(&app.id, &spec.name), count as u32, spec.changelog_cleanup())
        })
        .collect()
}

/// Deletes what an app keeps in the log besides its input and output
/// topics, as Kafka Streams' application reset tool does: its changelog and
/// repartition topics and its group's committed offsets. Run it with the app
/// stopped; a later run of the same app starts over from nothing.
pub fn delete_internal_state(app: &App, log: &dyn Log) -> Result<(), RunError> {
    let mut topics: Vec<String> =
        app.topology.stores().iter().map(|(_, spec)| changelog_topic(&app.id, &spec.name)).collect();
    topics.extend(app.topology.internal_topics.iter().map(|t| t.name.clone()));
    log.delete_topics(&topics)?;
    log.delete_group(&app.id)?;
    Ok(())
}

/// Creates missing repartition topics with the partitions they ask for, as
/// many as the topics they are co-partitioned with, or as many as the largest
/// user source topic, so they do not change the task count.
fn create_internal_topics(app: &App, log: &dyn Log) -> Result<(), RunError> {
    let topology = &app.topology;
    let internal = &topology.internal_topics;
    let partitions_of = |topic: &str| -> Result<u32, RunError> {
        Ok(log.partitions(topic)?.ok_or_else(|| LogError::UnknownTopic(topic.to_owned()))?)
    };
    let mut partitions = 1;
    for topic in topology.source_topics().into_iter().filter(|t| !internal.iter().any(|i| i.name == *t)) {
        partitions = partitions.max(partitions_of(topic)?);
    }
    for topic in internal {
        let count = match (topic.partitions, &topic.copartition) {
            (Some(p), _) => p,
            (None, Some(node)) => {
                // The topics upstream come first: an internal one among them
                // exists by now.
                let node = topology.nodes.iter().position(|n| n.name == *node).expect("the builder names a node");
                let mut count = 1;
                for t in task::source_topics_upstream(topology, node) {
                    count = count.max(partitions_of(&t)?);
                }
                count
            }
            (None, None) => partitions,
        };
        match log.create_topic_as(&topic.name, count, TopicRole::Repartition) {
            Ok(()) | Err(LogError::TopicExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Checks that both sides of every join read topics with one partition
/// count, as Kafka Streams does before it runs.
fn check_copartitioned(app: &App, log: &dyn Log) -> Result<(), RunError> {
    let topology = &app.topology;
    for n in &topology.nodes {
        if !matches!(n.op, Op::StreamTableJoin { .. } | Op::TableTableJoin { .. } | Op::StreamStreamJoin { .. }) {
            continue;
        }
        let mut sides = Vec::new();
        for &input in &n.inputs {
            let mut counts = Vec::new();
            for topic in task::source_topics_upstream(topology, input) {
                let p = log.partitions(&topic)?.ok_or_else(|| LogError::UnknownTopic(topic.clone()))?;
                counts.push((topic, p));
            }
            sides.push(counts);
        }
        let all: Vec<u32> = sides.iter().flatten().map(|(_, p)| *p).collect();
        if all.windows(2).any(|w| w[0] != w[1]) {
            let show = |side: &[(String, u32)]| {
                side.iter().map(|(t, p)| format!("'{t}' ({p} partitions)")).collect::<Vec<_>>().join(", ")
            };
            return Err(RunError::NotCoPartitioned {
                node: n.name.clone(),
                left: show(&sides[0]),
                right: sides.get(1).map(|s| show(s)).unwrap_or_default(),
            });
        }
    }
    Ok(())
}

/// Runs `app` on `log` until stopped (or idle, with `until_idle`).
pub fn run(app: &App, log: Arc<dyn Log>, options: RunOptions) -> Result<RunReport, RunError> {
    run_with_stats(app, log, options, Arc::new(RunStats::default()))
}

/// Like [`run`], updating `stats` as it goes (for a progress display).
pub fn run_with_stats(
    app: &App,
    log: Arc<dyn Log>,
    options: RunOptions,
    stats: Arc<RunStats>,
) -> Result<RunReport, RunError> {
    create_internal_topics(app, &*log)?;
    app.topology.check_topics(&*log)?;
    check_copartitioned(app, &*log)?;
    if app.error_policy == ErrorPolicy::DeadLetter {
        match log.create_topic(&app.dead_letter_topic, 1) {
            Ok(()) => tracing::info!("created dead-letter topic '{}'", app.dead_letter_topic),
            Err(LogError::TopicExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let tasks = task::plan(&app.topology, &*log)?;
    let stores = app.topology.stores();
    let global_tables = app.topology.global_tables();
    let state_dir = match &options.state_dir {
        Some(dir) => Some(dir.as_path()),
        None if stores.is_empty() && global_tables.is_empty() => None,
        None => return Err(RunError::NoStateDir(app.id.clone())),
    };
    // Global tables catch up with their topics before any task runs.
    let mut globals = Vec::new();
    for (_, topic, spec) in global_tables {
        let dir = state_dir.expect("checked above");
        globals.push(Arc::new(GlobalStore::open(dir, &app.id, &spec.name, topic, spec.kind, &*log)?));
    }
    let changelogs = changelogs(app, &tasks);
    for (topic, needed, cleanup) in &changelogs {
        // Created, or found with the partitions it has (asking first would
        // wait, on Kafka, to be sure a missing topic is missing).
        let partitions = match log.create_topic_as(topic, (*needed).max(1), TopicRole::Changelog(*cleanup)) {
            Ok(()) => (*needed).max(1),
            Err(LogError::TopicExists { partitions, .. }) => partitions,
            Err(e) => return Err(e.into()),
        };
        if partitions < *needed {
            return Err(RunError::ChangelogTooSmall { topic: topic.clone(), partitions, tasks: *needed as usize });
        }
    }
    let threads = options.threads.unwrap_or(app.threads).clamp(1, tasks.len().max(1));
    // Where the log has no group coordinator, thread i owns every
    // `threads`-th task from i; on Kafka the coordinator shares them.
    let mut per_thread: Vec<Vec<u32>> = vec![Vec::new(); threads];
    for i in 0..tasks.len() {
        per_thread[i % threads].push(i as u32);
    }
    let all_tasks = &tasks;
    let first_error: Arc<Mutex<Option<RunError>>> = Arc::default();
    let idle = Idle {
        count: std::sync::atomic::AtomicUsize::new(0),
        threads,
        partitions: tasks.iter().flat_map(|t| t.inputs.iter().cloned()).collect(),
    };
    let idle = &idle;
    let workers_done = AtomicBool::new(false);
    let standbys = standby::Standbys::default();
    let changelogs: Vec<(TopicPartition, Cleanup)> = changelogs
        .iter()
        .flat_map(|(topic, n, cleanup)| (0..*n).map(move |p| (TopicPartition::new(topic, p), *cleanup)))
        .collect();
    // The run's threads log in the caller's span (the server's
    // `deployment` span names the app whose lines they are).
    let span = &tracing::Span::current();
    std::thread::scope(|scope| {
        if !changelogs.is_empty() {
            // Changelogs are compacted as they grow, as Kafka's log cleaner
            // does, so a restore after a crash reads each key about once.
            let (log, stop, done, changelogs) = (log.clone(), options.stop.clone(), &workers_done, &changelogs);
            let compactor = std::thread::Builder::new().name("eddy-compact".into()).spawn_scoped(scope, move || {
                let _entered = span.enter();
                let mut last = Instant::now();
                while !stop.load(Ordering::SeqCst) && !done.load(Ordering::SeqCst) {
                    std::thread::sleep(COMPACT_TICK);
                    if last.elapsed() < COMPACT_EVERY {
                        continue;
                    }
                    last = Instant::now();
                    for (tp, cleanup) in changelogs {
                        if let Err(e) = log.compact(tp, COMPACT_DIRTY_RATIO, *cleanup) {
                            tracing::warn!("cannot compact {tp}: {e}");
                        }
                    }
                }
            });
            if let Err(e) = compactor {
                tracing::warn!("cannot start the changelog compaction thread: {e}");
            }
        }
        if app.num_standby_replicas > 0
            && let Some(state_dir) = options.state_dir.as_deref()
        {
            let (log, stop, done, standbys) = (log.clone(), options.stop.clone(), &workers_done, &standbys);
            let keeper = std::thread::Builder::new().name("eddy-standby".into()).spawn_scoped(scope, move || {
                let _entered = span.enter();
                standby::keep(app, &*log, state_dir, all_tasks, standbys, &stop, done);
            });
            if let Err(e) = keeper {
                tracing::warn!("cannot start the standby replicas' thread: {e}");
            }
        }
        if !globals.is_empty() {
            let (log, globals, stop, first_error, done) =
                (log.clone(), &globals, options.stop.clone(), first_error.clone(), &workers_done);
            let updater = std::thread::Builder::new().name("eddy-global".into()).spawn_scoped(scope, move || {
                let _entered = span.enter();
                while !stop.load(Ordering::SeqCst) && !done.load(Ordering::SeqCst) {
                    std::thread::sleep(GLOBAL_POLL);
                    for g in globals {
                        if let Err(e) = g.catch_up(&*log) {
                            stop.store(true, Ordering::SeqCst);
                            first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e.into());
                            return;
                        }
                    }
                }
            });
            if updater.is_err() {
                options.stop.store(true, Ordering::SeqCst);
            }
        }
        let handles: Vec<_> = per_thread
            .into_iter()
            .enumerate()
            .map(|(i, local)| {
                let (log, options, stats, first_error) =
                    (log.clone(), options.clone(), stats.clone(), first_error.clone());
                let thread = std::thread::Builder::new().name(format!("eddy-worker-{i}"));
                let (globals, standbys) = (&globals, &standbys);
                let handle = thread.spawn_scoped(scope, move || {
                    let _entered = span.enter();
                    let context =
                        Context { app, log: &*log, options: &options, stats: &stats, idle, globals, standbys };
                    let result = Worker::new(context, all_tasks, &local).and_then(|mut w| w.run());
                    if let Err(e) = result {
                        options.stop.store(true, Ordering::SeqCst);
                        first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                    }
                });
                handle.map_err(|_| RunError::Panicked(i))
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            let joined = h.map(|h| h.join().is_ok()).unwrap_or(false);
            if !joined {
                {
                    options.stop.store(true, Ordering::SeqCst);
                    first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(RunError::Panicked(i));
                }
            }
        }
        workers_done.store(true, Ordering::SeqCst);
    });
    // A global store always holds exactly what its recorded offsets say.
    for g in &globals {
        g.checkpoint()?;
    }
    if let Some(e) = first_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(e);
    }
    Ok(RunReport {
        records_in: stats.records_in.load(Ordering::Relaxed),
        records_out: stats.records_out.load(Ordering::Relaxed),
        skipped: stats.skipped.load(Ordering::Relaxed),
        dead_lettered: stats.dead_lettered.load(Ordering::Relaxed),
        dropped_late: stats.dropped_late.load(Ordering::Relaxed),
        tasks: tasks.len(),
        threads,
    })
}

/// Checks `app` against `log` as [`run`] does before it starts (its topics
/// exist, joined topics are co-partitioned; internal topics are created),
/// and returns its tasks: what a server checks before it deploys an app.
pub fn prepare(app: &App, log: &dyn Log) -> Result<Vec<Task>, RunError> {
    create_internal_topics(app, log)?;
    app.topology.check_topics(log)?;
    check_copartitioned(app, log)?;
    Ok(task::plan(&app.topology, log)?)
}

/// Records not yet processed and committed by `app`'s group, summed over its
/// input partitions.
pub fn lag(app: &App, log: &dyn Log) -> Result<u64, RunError> {
    let mut lag = 0;
    for task in task::plan(&app.topology, log)? {
        for tp in task.inputs {
            let end = log.end_offset(&tp)?;
            lag += end.saturating_sub(log.committed(&app.id, &tp)?.unwrap_or(0));
        }
    }
    Ok(lag)
}
