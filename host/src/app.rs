//! Application files: what `eddy run` and `eddy test` run.
//!
//! ```yaml
//! application-id: vitals          # names the consumer group (and, later, state)
//! plugin: vitals.wasm             # relative to this file
//! threads: 2                      # worker threads (default 1)
//! commit-interval-ms: 100         # how often outputs and offsets commit
//! error-policy: dead-letter       # fail (default) | skip | dead-letter
//! dead-letter-topic: vitals-dlq   # default: <application-id>-dlq
//! cache-max-bytes: 10485760       # record cache for all stores (default 10 MiB; 0: off)
//! bootstrap-servers: 127.0.0.1:9092   # run on this Kafka cluster (default: the embedded log)
//! processing-guarantee: exactly-once  # on Kafka: at-least-once (default) | exactly-once
//! profile: production             # on Kafka: development (default: warn) | production (refuse)
//! num-standby-replicas: 1         # on Kafka: warm copies of each task's stores on other instances (default 0)
//! topology: [...]                 # optional when the plugin builds one
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::log::check_topic_name;
use crate::log::kafka::Guarantee;
use crate::log::kafka::profile::Profile;
use crate::plugin::wasm::Limits;
use crate::plugin::{Plugin, PluginError, WasmPlugin};
use crate::topology::{NodeDoc, Topology, TopologyError};

/// What happens to a record that a plugin function rejects (or traps on), or
/// that fails to deserialize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorPolicy {
    /// Stop the application; nothing after the last commit is kept.
    #[default]
    Fail,
    /// Log the record and the error, count it, and go on.
    Skip,
    /// Write the input record, with the error in its headers, to the
    /// dead-letter topic, and go on.
    DeadLetter,
}

/// The application file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct AppDoc {
    application_id: String,
    plugin: PathBuf,
    #[serde(default)]
    threads: Option<usize>,
    #[serde(default)]
    commit_interval_ms: Option<u64>,
    #[serde(default)]
    error_policy: ErrorPolicy,
    #[serde(default)]
    dead_letter_topic: Option<String>,
    #[serde(default)]
    call_timeout_ms: Option<u64>,
    #[serde(default)]
    memory_limit_mb: Option<usize>,
    #[serde(default)]
    cache_max_bytes: Option<usize>,
    #[serde(default)]
    bootstrap_servers: Option<String>,
    #[serde(default)]
    processing_guarantee: Guarantee,
    #[serde(default)]
    profile: Profile,
    #[serde(default)]
    num_standby_replicas: u32,
    #[serde(default)]
    topology: Option<Vec<NodeDoc>>,
}

/// Why an application cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid application document.
    #[error("{path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column where known.
        problem: String,
    },
    /// The plugin could not be loaded.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The topology is invalid.
    #[error("{path}: {source}")]
    Topology {
        /// The application file.
        path: PathBuf,
        /// What is wrong.
        source: Box<TopologyError>,
    },
}

/// Resolves an application document's `plugin:` reference to a loaded
/// plugin, given the limits the document asks for.
pub type PluginLoader<'a> = dyn Fn(&Path, Limits) -> Result<WasmPlugin, AppError> + 'a;

/// A loaded application: a plugin and a topology checked against it.
#[derive(Clone)]
pub struct App {
    /// Application id: the consumer group and the prefix of internal topics.
    pub id: String,
    /// The plugin.
    pub plugin: Arc<dyn Plugin>,
    /// The topology, checked against the plugin's functions.
    pub topology: Topology,
    /// Worker threads.
    pub threads: usize,
    /// How often outputs and input offsets commit.
    pub commit_interval: Duration,
    /// What happens to records that fail.
    pub error_policy: ErrorPolicy,
    /// Where `dead-letter` writes.
    pub dead_letter_topic: String,
    /// Bytes of record cache for all the stores of one instance (0 turns
    /// caching off: every update is written and sent on at once).
    pub cache_max_bytes: usize,
    /// The Kafka cluster the application runs on, if not the embedded log.
    pub bootstrap_servers: Option<String>,
    /// What outputs promise on Kafka (the embedded log always commits
    /// outputs and offsets together).
    pub processing_guarantee: Guarantee,
    /// How strictly it checks a Kafka cluster's durability before it runs.
    pub profile: Profile,
    /// How many other instances keep a warm copy of each task's stores, so
    /// a task that moves to one of them starts without a full restore
    /// (Kafka Streams' `num.standby.replicas`).
    pub num_standby_replicas: u32,
}

impl App {
    /// Loads an application file and its plugin, and checks the topology.
    pub fn load(path: &Path) -> Result<App, AppError> {
        let text = std::fs::read_to_string(path).map_err(|source| AppError::Read { path: path.to_owned(), source })?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_owned();
        App::parse(&text, path, &|plugin: &Path, limits| Ok(WasmPlugin::load(&dir.join(plugin), limits)?))
    }

    /// Parses an application document (`origin` names it in errors) whose
    /// `plugin:` reference `load_plugin` resolves, given the limits the
    /// document asks for: `eddy run` reads a file next to the document, the
    /// server a plugin its tenant uploaded.
    pub fn parse(text: &str, origin: &Path, load_plugin: &PluginLoader<'_>) -> Result<App, AppError> {
        let invalid = |problem: String| AppError::Invalid { path: origin.to_owned(), problem };
        let mut doc: AppDoc = serde_yaml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let defaults = Limits::default();
        let limits = Limits {
            memory_bytes: doc.memory_limit_mb.map_or(defaults.memory_bytes, |mb| mb << 20),
            call_timeout: doc.call_timeout_ms.map_or(defaults.call_timeout, Duration::from_millis),
        };
        let plugin = load_plugin(&doc.plugin, limits)?;
        let topology = match doc.topology.take() {
            Some(nodes) => Topology::parse(nodes),
            None => match &plugin.manifest().topology {
                Some(json) => Topology::from_json(json),
                None => {
                    return Err(invalid(format!(
                        "no topology: add a `topology:` section, or build one in the plugin ({} has none)",
                        doc.plugin.display()
                    )));
                }
            },
        }
        .map_err(|source| AppError::Topology { path: origin.to_owned(), source: Box::new(source) })?;
        App::new(doc, Arc::new(plugin), topology).map_err(|e| match e {
            AppError::Invalid { problem, .. } => invalid(problem),
            AppError::Topology { source, .. } => AppError::Topology { path: origin.to_owned(), source },
            other => other,
        })
    }

    /// The `plugin:` reference of an application document, without loading
    /// anything (the server checks it names an uploaded plugin).
    pub fn plugin_reference(text: &str, origin: &Path) -> Result<(String, PathBuf), AppError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "kebab-case")]
        struct Head {
            application_id: String,
            plugin: PathBuf,
        }
        let head: Head = serde_yaml::from_str(text)
            .map_err(|e| AppError::Invalid { path: origin.to_owned(), problem: e.to_string() })?;
        Ok((head.application_id, head.plugin))
    }

    /// Builds an application from a plugin and topology already in hand
    /// (benchmarks and tests use this with a [`crate::plugin::NativePlugin`]).
    pub fn from_parts(
        id: &str,
        plugin: Arc<dyn Plugin>,
        topology: Topology,
        error_policy: ErrorPolicy,
    ) -> Result<App, AppError> {
        let doc = AppDoc {
            application_id: id.to_owned(),
            plugin: PathBuf::new(),
            threads: None,
            commit_interval_ms: None,
            error_policy,
            dead_letter_topic: None,
            call_timeout_ms: None,
            memory_limit_mb: None,
            cache_max_bytes: None,
            bootstrap_servers: None,
            processing_guarantee: Guarantee::default(),
            profile: Profile::default(),
            num_standby_replicas: 0,
            topology: None,
        };
        App::new(doc, plugin, topology)
    }

    /// Puts the application in the namespace `prefix` on a shared cluster:
    /// its id (so its group, internal topics and changelogs), every topic it
    /// reads and writes, and its dead-letter topic get the prefix (the
    /// server gives each tenant its own, `<tenant>.`).
    pub fn namespace(&mut self, prefix: &str) {
        self.id = format!("{prefix}{}", self.id);
        self.dead_letter_topic = format!("{prefix}{}", self.dead_letter_topic);
        self.topology.prefix_topics(prefix);
    }

    fn new(doc: AppDoc, plugin: Arc<dyn Plugin>, mut topology: Topology) -> Result<App, AppError> {
        topology.qualify_internal_topics(&doc.application_id);
        let invalid = |problem: String| AppError::Invalid { path: PathBuf::from("(application)"), problem };
        check_topic_name(&doc.application_id).map_err(|_| {
            invalid(format!(
                "application-id '{}': use only ASCII letters, digits, '.', '_' and '-'",
                doc.application_id
            ))
        })?;
        topology
            .check_functions(plugin.manifest())
            .map_err(|source| AppError::Topology { path: PathBuf::new(), source: Box::new(source) })?;
        let threads = doc.threads.unwrap_or(1);
        if threads == 0 || threads > 256 {
            return Err(invalid(format!("threads: {threads}; use 1 to 256")));
        }
        let dead_letter_topic = doc.dead_letter_topic.unwrap_or_else(|| format!("{}-dlq", doc.application_id));
        check_topic_name(&dead_letter_topic).map_err(|e| invalid(format!("dead-letter-topic: {e}")))?;
        Ok(App {
            id: doc.application_id,
            plugin,
            topology,
            threads,
            commit_interval: Duration::from_millis(doc.commit_interval_ms.unwrap_or(100).max(1)),
            error_policy: doc.error_policy,
            dead_letter_topic,
            cache_max_bytes: doc.cache_max_bytes.unwrap_or(10 << 20),
            bootstrap_servers: doc.bootstrap_servers.filter(|s| !s.trim().is_empty()),
            processing_guarantee: doc.processing_guarantee,
            profile: doc.profile,
            num_standby_replicas: doc.num_standby_replicas,
        })
    }
}
