//! The test driver: run an application's topology with its real compiled
//! plugin, without a broker, from a plugin author's own `cargo test` (and from
//! `eddy test`). Kafka Streams' `TopologyTestDriver` is the model.
//!
//! The driver keeps an embedded log in a temporary directory. Piped records
//! are committed to input topics; reading an output topic first processes
//! everything piped so far, so a test reads like a conversation.
//!
//! ```no_run
//! use eddy_host::testing::TestDriver;
//! # fn main() -> anyhow::Result<()> {
//! let mut driver = TestDriver::from_file("vitals.yaml".as_ref())?;
//! driver.pipe_json("vitals", r#"{"key": "p1", "value": {"patient": "p1", "heart_rate": 180, "systolic": 120, "diastolic": 80}}"#)?;
//! let alerts = driver.read_output_json("alerts")?;
//! assert_eq!(alerts[0]["value"]["patient"], "p1");
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::app::{App, AppError};
use crate::jsonl::{LineError, LineFormat};
use crate::log::{EmbeddedLog, Log, LogError, TopicPartition, read_to_end};
use crate::partition::partition_for_key;
use crate::record::Record;
use crate::runtime::{RunError, RunOptions, RunReport, run};
use crate::serdes::Serde;
use crate::store::{ChangelogLayout, committed_contents};
use crate::topology::Op;

/// Why a test driver call failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The application could not be loaded.
    #[error(transparent)]
    App(#[from] AppError),
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Processing failed (under the `fail` policy, for instance).
    #[error(transparent)]
    Run(#[from] RunError),
    /// An input line is not a record.
    #[error(transparent)]
    Line(#[from] LineError),
    /// A store could not be read.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The temporary directory could not be made.
    #[error("cannot create a temporary directory: {0}")]
    TempDir(std::io::Error),
}

/// Runs one application against a private embedded log.
pub struct TestDriver {
    app: App,
    log: EmbeddedLog,
    _dir: tempfile::TempDir,
    /// The wall clock: timestamps of records piped without one, and the
    /// clock of wall-clock punctuation.
    now: i64,
    /// The wall clock when processing last ran.
    processed_at: i64,
    /// Next offset to read per output partition.
    read: HashMap<TopicPartition, u64>,
    formats: HashMap<String, LineFormat>,
    last_report: RunReport,
    /// Counts summed over every processing so far.
    totals: RunReport,
}

impl TestDriver {
    /// A driver for the application file at `path`.
    pub fn from_file(path: &Path) -> Result<TestDriver, DriverError> {
        TestDriver::new(App::load(path)?)
    }

    /// A driver for a loaded application. Every topic the topology reads or
    /// writes is created with one partition; call [`TestDriver::create_topic`]
    /// first for more.
    pub fn new(app: App) -> Result<TestDriver, DriverError> {
        let dir = tempfile::tempdir().map_err(DriverError::TempDir)?;
        let log = EmbeddedLog::open(dir.path(), false)?;
        let mut formats = HashMap::new();
        for node in &app.topology.nodes {
            match &node.op {
                Op::Source { topics, key_serde, value_serde, .. } => {
                    for t in topics {
                        let format = LineFormat { key: *key_serde, value: *value_serde, windowed: None };
                        formats.entry(t.clone()).or_insert(format);
                    }
                }
                Op::Sink { topic, key_serde, value_serde } => {
                    let format = LineFormat { key: *key_serde, value: *value_serde, windowed: node.windowed };
                    formats.insert(topic.clone(), format);
                }
                _ => {}
            }
        }
        Ok(TestDriver {
            app,
            log,
            _dir: dir,
            now: 0,
            processed_at: 0,
            read: HashMap::new(),
            formats,
            last_report: RunReport::default(),
            totals: RunReport::default(),
        })
    }

    /// The driver's embedded log.
    pub fn log(&self) -> &EmbeddedLog {
        &self.log
    }

    /// Creates a topic with `partitions` partitions (before piping into it).
    pub fn create_topic(&mut self, name: &str, partitions: u32) -> Result<(), DriverError> {
        Ok(self.log.create_topic(name, partitions)?)
    }

    fn ensure_topic(&self, name: &str) -> Result<u32, DriverError> {
        if let Some(n) = self.log.partitions(name)? {
            return Ok(n);
        }
        match self.log.create_topic(name, 1) {
            Ok(()) | Err(LogError::TopicExists { .. }) => Ok(self.log.partitions(name)?.unwrap_or(1)),
            Err(e) => Err(e.into()),
        }
    }

    fn ensure_topics(&self) -> Result<(), DriverError> {
        // Internal topics are the runtime's to create, sized to the sources.
        let internal = &self.app.topology.internal_topics;
        for topic in self.formats.keys().filter(|t| !internal.iter().any(|i| &i.name == *t)) {
            self.ensure_topic(topic)?;
        }
        Ok(())
    }

    /// The format of a topic's lines: its source or sink serdes, else bytes.
    pub fn format(&self, topic: &str) -> LineFormat {
        self.formats.get(topic).copied().unwrap_or_default()
    }

    /// Pipes one record into `topic`. A record without a timestamp gets the
    /// driver's clock.
    pub fn pipe(&mut self, topic: &str, mut record: Record, timestamp: Option<i64>) -> Result<(), DriverError> {
        record.timestamp = timestamp.unwrap_or(self.now);
        self.pipe_records(topic, vec![record])
    }

    /// Pipes records into `topic` in one commit, partitioned by key.
    pub fn pipe_records(&mut self, topic: &str, records: Vec<Record>) -> Result<(), DriverError> {
        let partitions = self.ensure_topic(topic)?;
        let mut producer = self.log.producer()?;
        for (i, r) in records.into_iter().enumerate() {
            let p = r.key.as_deref().map_or(i as u32 % partitions, |k| partition_for_key(k, partitions));
            producer.send(&TopicPartition::new(topic, p), r)?;
        }
        producer.commit(None, &[])?;
        Ok(())
    }

    /// Pipes one JSON line (`{"key": ..., "value": ..., "timestamp": ...}`),
    /// encoded with the serdes of the source that reads `topic`.
    pub fn pipe_json(&mut self, topic: &str, line: &str) -> Result<(), DriverError> {
        let record = self.format(topic).parse(1, line, self.now)?;
        self.pipe_records(topic, vec![record])
    }

    /// Pipes a file of JSON lines into `topic`; blank lines are skipped.
    pub fn pipe_json_lines(&mut self, topic: &str, text: &str) -> Result<usize, DriverError> {
        let format = self.format(topic);
        let mut records = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if !line.trim().is_empty() {
                records.push(format.parse(i + 1, line, self.now)?);
            }
        }
        let n = records.len();
        self.pipe_records(topic, records)?;
        Ok(n)
    }

    /// Pipes JSON lines that each name their topic (`{"topic": "orders",
    /// "key": ..., "value": ..., "timestamp": ...}`) and processes them in
    /// that order, as Kafka Streams' `TopologyTestDriver` does: each run of
    /// consecutive lines for one topic is piped and processed before the
    /// next. Returns the number of records.
    pub fn pipe_interleaved(&mut self, text: &str) -> Result<usize, DriverError> {
        let mut segment: Option<(String, Vec<Record>)> = None;
        let mut n = 0;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let mut obj = crate::jsonl::object(i + 1, line)?;
            let Some(Value::String(topic)) = obj.remove("topic") else {
                return Err(LineError {
                    line: i + 1,
                    problem: "name the record's topic: {\"topic\": \"orders\", ...}".into(),
                }
                .into());
            };
            let record = self.format(&topic).parse_object(i + 1, obj, self.now)?;
            n += 1;
            match &mut segment {
                Some((t, records)) if *t == topic => records.push(record),
                _ => {
                    if let Some((t, records)) = segment.replace((topic, vec![record])) {
                        self.pipe_records(&t, records)?;
                        self.process()?;
                    }
                }
            }
        }
        if let Some((t, records)) = segment {
            self.pipe_records(&t, records)?;
            self.process()?;
        }
        Ok(n)
    }

    /// Moves the driver's wall clock forward. The next processing runs each
    /// wall-clock punctuator once if the clock crossed a multiple of its
    /// interval since the last processing.
    pub fn advance_time(&mut self, by: Duration) {
        self.now += by.as_millis() as i64;
    }

    /// The driver's wall clock, ms since the epoch (starts at 0).
    pub fn now(&self) -> i64 {
        self.now
    }

    /// Processes everything piped so far and commits it.
    pub fn process(&mut self) -> Result<RunReport, DriverError> {
        self.ensure_topics()?;
        let options = RunOptions {
            until_idle: true,
            state_dir: Some(self._dir.path().join("state")),
            wall_clock: Some((self.processed_at, self.now)),
            ..Default::default()
        };
        let report = run(&self.app, Arc::new(self.log.clone()), options)?;
        self.processed_at = self.now;
        self.last_report = report;
        let t = &mut self.totals;
        t.records_in += report.records_in;
        t.records_out += report.records_out;
        t.skipped += report.skipped;
        t.dead_lettered += report.dead_lettered;
        t.dropped_late += report.dropped_late;
        (t.tasks, t.threads) = (report.tasks, report.threads);
        Ok(report)
    }

    /// What every processing so far did, summed (tasks and threads: the
    /// last one's).
    pub fn totals(&self) -> RunReport {
        self.totals
    }

    /// What the last [`TestDriver::process`] did.
    pub fn last_report(&self) -> RunReport {
        self.last_report
    }

    /// Processes pending input, then returns the records written to `topic`
    /// since the last read, partition by partition.
    pub fn read_output(&mut self, topic: &str) -> Result<Vec<Record>, DriverError> {
        self.process()?;
        let partitions = self.ensure_topic(topic)?;
        let mut out = Vec::new();
        let from: Vec<(TopicPartition, u64)> = (0..partitions)
            .map(|p| {
                let tp = TopicPartition::new(topic, p);
                let start = self.read.get(&tp).copied().unwrap_or(0);
                (tp, start)
            })
            .collect();
        let next = read_to_end(&self.log, &from, |fetched| {
            out.extend(fetched.into_iter().flat_map(|f| f.records).map(|r| r.record));
            Ok::<_, DriverError>(())
        })?;
        for ((tp, _), next) in from.into_iter().zip(next) {
            self.read.insert(tp, next);
        }
        Ok(out)
    }

    /// Like [`TestDriver::read_output`], each record shown as a JSON object
    /// with the topic's serdes (the sink's, for an output topic).
    pub fn read_output_json(&mut self, topic: &str) -> Result<Vec<Value>, DriverError> {
        let format = self.format(topic);
        Ok(self.read_output(topic)?.iter().map(|r| Value::Object(format.render(r))).collect())
    }

    /// The topics the application writes, in topology order.
    pub fn output_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = Vec::new();
        for node in &self.app.topology.nodes {
            if let Op::Sink { topic, .. } = &node.op
                && !topics.contains(topic)
            {
                topics.push(topic.clone());
            }
        }
        if self.app.error_policy == crate::app::ErrorPolicy::DeadLetter {
            topics.push(self.app.dead_letter_topic.clone());
        }
        topics
    }

    /// Processes pending input, then returns the committed contents of a
    /// store, keys in order.
    pub fn store(&mut self, name: &str) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, DriverError> {
        self.process()?;
        let stores = self.app.topology.stores();
        let spec = stores.iter().find(|(_, spec)| spec.name == name);
        let layout = spec.map_or(ChangelogLayout::Plain, |(_, spec)| spec.changelog_layout());
        Ok(committed_contents(&self.log, &self.app.id, name, layout)?)
    }

    /// Sets the format used to show `topic` (for topics no node describes).
    pub fn set_format(&mut self, topic: &str, key: Serde, value: Serde) {
        self.formats.insert(topic.to_owned(), LineFormat { key, value, windowed: None });
    }
}
