//! A deployed app on the server: its run thread, started and stopped as
//! the app is deployed, paused, resumed, upgraded or deleted, with its
//! counters, its state (running, paused, failed and why) and its queries.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use serde::Serialize;

use super::logs::{self, LogBuffer};
use super::meta::{AppRecord, Desired};
use crate::app::App;
use crate::log::Log;
use crate::pipeline::stats::{E2eLatencyHistogram, PluginCallHistogram};
use crate::query::Queryable;
use crate::runtime::{RunOptions, RunStats, lag, run_with_stats};

/// Where a deployment stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum RunState {
    /// Its threads are running.
    Running,
    /// Stopped on request, with its state and offsets committed.
    Paused,
    /// Stopped by an error (the app's error policy was `fail`, or the log or
    /// a store failed); resume runs it again from its last commit.
    Failed {
        /// The error, with its causes.
        error: String,
    },
}

/// What `GET /v1/apps/{app}` and `eddy app status` show.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The app's name.
    pub name: String,
    /// The plugin and version it runs.
    pub plugin: String,
    /// The plugin version.
    pub plugin_version: u32,
    /// Run or keep paused.
    pub desired: Desired,
    /// Where it stands.
    #[serde(flatten)]
    pub state: RunState,
    /// Tasks (sub-topology x partition).
    pub tasks: usize,
    /// Worker threads.
    pub threads: usize,
    /// Records read since the server started it.
    pub records_in: u64,
    /// Records written to its sink topics.
    pub records_out: u64,
    /// Records its error policy skipped.
    pub skipped: u64,
    /// Records sent to its dead-letter topic.
    pub dead_lettered: u64,
    /// Records dropped from windows that had closed.
    pub dropped_late: u64,
    /// Records of its inputs not yet processed and committed.
    pub lag: Option<u64>,
    /// Records in per second, over the last few seconds.
    pub records_per_second: f64,
    /// Errors among its recent log lines.
    pub recent_errors: usize,
    /// Its state stores.
    pub stores: Vec<String>,
    /// Each node of its topology with the records it received.
    pub nodes: Vec<NodeStatus>,
    /// Plugin calls made (one per operator per batch, more when a batch
    /// trapped and ran again record by record).
    pub plugin_calls: u64,
    /// Milliseconds spent in plugin calls.
    pub plugin_ms_total: f64,
    /// Plugin calls that failed: a trap, a timeout, the memory limit.
    pub traps: u64,
    /// How long plugin calls took (ns), for `/metrics`.
    #[serde(skip)]
    pub plugin_call_latency: PluginCallHistogram,
    /// How old records were when sinks sent them out of the app (ms), for
    /// `/metrics`.
    #[serde(skip)]
    pub e2e_latency: E2eLatencyHistogram,
}

/// A node of an app's topology and what it received.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// The node's name, as in the topology's graph.
    pub name: String,
    /// Records it received since the server started the app (a source: the
    /// records it read).
    pub records_in: u64,
    /// Records in per second, over the last few seconds.
    pub records_per_second: f64,
}

/// Records-in rates, measured over a few seconds.
struct Rates {
    /// When the counts below were taken.
    at: Instant,
    /// The app's records in then.
    records_in: u64,
    /// Each node's records in then.
    nodes: Vec<u64>,
    /// The app's rate since the measurement before.
    rate: f64,
    /// Each node's.
    node_rates: Vec<f64>,
}

impl Rates {
    /// Takes `records_in` and `nodes` as the counts now; after a second or
    /// more since the last measurement, measures the rates anew.
    fn update(&mut self, records_in: u64, nodes: &[u64]) {
        if self.node_rates.len() != nodes.len() {
            self.node_rates = vec![0.0; nodes.len()];
        }
        let elapsed = self.at.elapsed().as_secs_f64();
        if elapsed < 1.0 {
            return;
        }
        let per_second = |now: u64, before: u64| now.saturating_sub(before) as f64 / elapsed;
        self.rate = per_second(records_in, self.records_in);
        for (i, (&now, rate)) in nodes.iter().zip(&mut self.node_rates).enumerate() {
            *rate = per_second(now, self.nodes.get(i).copied().unwrap_or(0));
        }
        (self.at, self.records_in, self.nodes) = (Instant::now(), records_in, nodes.to_vec());
    }
}

/// A deployed app and, while it runs, its thread.
pub struct Deployment {
    /// What the metadata says about it.
    pub record: AppRecord,
    /// The loaded app.
    pub app: App,
    /// Its task count.
    pub tasks: usize,
    /// `tenant/app`: names its log buffer and metrics.
    pub key: String,
    /// Its counters, kept across pauses.
    pub stats: Arc<RunStats>,
    /// Its recent log lines.
    pub logs: Arc<LogBuffer>,
    /// The current run's queryable stores.
    pub queries: Arc<Queryable>,
    log: Arc<dyn Log>,
    state_dir: PathBuf,
    state: Arc<Mutex<RunState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Records in, in all and per node, a few seconds ago and the rates since.
    rates: Mutex<Rates>,
}

impl Deployment {
    /// A deployment of `app`, not yet started.
    pub fn new(
        key: String,
        record: AppRecord,
        app: App,
        tasks: usize,
        log: Arc<dyn Log>,
        state_dir: PathBuf,
    ) -> Deployment {
        Deployment {
            queries: Queryable::new(&app),
            logs: logs::buffer(&key),
            key,
            record,
            app,
            tasks,
            stats: Arc::default(),
            log,
            state_dir,
            state: Arc::new(Mutex::new(RunState::Paused)),
            stop: Arc::new(AtomicBool::new(true)),
            thread: None,
            rates: Mutex::new(Rates {
                at: Instant::now(),
                records_in: 0,
                nodes: Vec::new(),
                rate: 0.0,
                node_rates: Vec::new(),
            }),
        }
    }

    /// Swaps the app it runs (an upgrade; call while stopped).
    pub fn replace(&mut self, app: App, tasks: usize, log: Arc<dyn Log>) {
        let names = |a: &App| a.topology.nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>();
        if names(&self.app) != names(&app) {
            // Per-node counts are by node index: a new topology starts them over.
            self.stats.clear_nodes();
        }
        self.app = app;
        self.tasks = tasks;
        self.log = log;
    }

    /// Starts its run thread (a no-op if it runs). The run resumes from the
    /// app's committed offsets and restored stores.
    pub fn start(&mut self) -> std::io::Result<()> {
        if self.thread.as_ref().is_some_and(|t| !t.is_finished()) {
            return Ok(());
        }
        self.join();
        let stop = Arc::new(AtomicBool::new(false));
        self.queries = Queryable::new(&self.app);
        let options = RunOptions {
            state_dir: Some(self.state_dir.clone()),
            stop: stop.clone(),
            queries: Some(self.queries.clone()),
            ..RunOptions::default()
        };
        let (app, log, stats, state) = (self.app.clone(), self.log.clone(), self.stats.clone(), self.state.clone());
        let (span, tasks) = (logs::span(&self.key), self.tasks);
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = RunState::Running;
        let thread = std::thread::Builder::new().name(format!("eddy-app-{}", self.record.name)).spawn(move || {
            let _entered = span.entered();
            tracing::info!("started {} ({tasks} task(s))", app.id);
            let result = run_with_stats(&app, log, options, stats);
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            *state = match result {
                Ok(_) => RunState::Paused,
                Err(e) => {
                    let mut error = e.to_string();
                    let mut source = std::error::Error::source(&e);
                    while let Some(s) = source {
                        error.push_str(&format!(": {s}"));
                        source = s.source();
                    }
                    tracing::error!("stopped: {error}");
                    RunState::Failed { error }
                }
            };
        });
        match thread {
            Ok(t) => {
                self.stop = stop;
                self.thread = Some(t);
                Ok(())
            }
            Err(e) => {
                *self.state.lock().unwrap_or_else(|p| p.into_inner()) =
                    RunState::Failed { error: format!("cannot start a thread: {e}") };
                Err(e)
            }
        }
    }

    /// Stops its run: the threads commit what they did, checkpoint their
    /// stores and return. Blocks until they have.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.join();
    }

    /// Stops its run and deletes its changelog and repartition topics and
    /// its committed offsets, for good: an app deployed later under the
    /// same name starts from nothing.
    pub fn remove(&mut self) -> Result<(), crate::runtime::RunError> {
        self.stop();
        crate::runtime::delete_internal_state(&self.app, &*self.log)
    }

    fn join(&mut self) {
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            *self.state.lock().unwrap_or_else(|p| p.into_inner()) =
                RunState::Failed { error: "the run thread panicked".into() };
        }
    }

    /// Where it stands.
    pub fn state(&self) -> RunState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether its threads are running.
    pub fn is_running(&self) -> bool {
        self.state() == RunState::Running
    }

    /// Records in per second, measured over the last few seconds.
    pub fn records_per_second(&self) -> f64 {
        self.rates().0
    }

    /// Records in per second, in all and per node (by index), measured over
    /// the last few seconds; with each node's records in.
    fn rates(&self) -> (f64, Vec<f64>, Vec<u64>) {
        let nodes = self.stats.node_records_in(self.app.topology.nodes.len());
        let mut rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        rates.update(self.stats.records_in.load(Ordering::Relaxed), &nodes);
        (rates.rate, rates.node_rates.clone(), nodes)
    }

    /// Its status, with the lag read from the log.
    pub fn status(&self) -> Status {
        let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let (records_per_second, node_rates, node_records) = self.rates();
        let nodes = self.app.topology.nodes.iter().zip(node_records).zip(node_rates);
        let nodes = nodes
            .map(|((n, records_in), records_per_second)| NodeStatus {
                name: n.name.clone(),
                records_in,
                records_per_second,
            })
            .collect();
        let plugin_call_latency = self.stats.plugin_calls.snapshot();
        Status {
            name: self.record.name.clone(),
            plugin: self.record.plugin.clone(),
            plugin_version: self.record.plugin_version,
            desired: self.record.desired,
            state: self.state(),
            tasks: self.tasks,
            threads: self.app.threads,
            records_in: load(&self.stats.records_in),
            records_out: load(&self.stats.records_out),
            skipped: load(&self.stats.skipped),
            dead_lettered: load(&self.stats.dead_lettered),
            dropped_late: load(&self.stats.dropped_late),
            lag: lag(&self.app, &*self.log).ok(),
            records_per_second,
            recent_errors: self.logs.count("ERROR"),
            stores: self.app.topology.stores().into_iter().map(|(_, s)| s.name.clone()).collect(),
            nodes,
            plugin_calls: plugin_call_latency.count(),
            plugin_ms_total: plugin_call_latency.sum() as f64 / 1e6,
            traps: load(&self.stats.traps),
            plugin_call_latency,
            e2e_latency: self.stats.e2e_latency.snapshot(),
        }
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        self.stop();
    }
}
