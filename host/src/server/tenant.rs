//! One tenant on the server: its embedded log and state directory, its
//! deployed apps, and what it may still do under its quotas. Every
//! operation a tenant's request makes lands here, so nothing it does can
//! name another tenant's objects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::deploy::{Deployment, Status};
use super::meta::{AppRecord, Desired, PluginVersion, Tenant};
use super::{Server, ServerError, valid_name};
use crate::app::{App, AppError};
use crate::jsonl::{LineFormat, now_ms};
use crate::log::kafka::KafkaOptions;
use crate::log::{EmbeddedLog, KafkaLog, Log, LogError, TopicPartition};
use crate::partition::partition_for_key;
use crate::plugin::WasmPlugin;
use crate::plugin::wasm::Limits;
use crate::runtime::{RunError, prepare};

/// Most worker threads one app gets on the server.
const MAX_THREADS: usize = 4;

/// The Kafka cluster a server runs its apps on.
#[derive(Debug, Clone)]
pub struct KafkaBackend {
    /// `host:port,...` of its brokers.
    pub bootstrap_servers: String,
    /// The server's instance id: apps' transactional ids are
    /// `<tenant>.<app>-<instance>-<n>`, stable across restarts.
    pub instance: String,
}

/// A tenant's log, apps and rate budget.
pub struct TenantRuntime {
    /// The tenant, with its quotas.
    pub tenant: Tenant,
    /// The tenant's topics: its own embedded log, or the server's cluster.
    log: Arc<dyn Log>,
    /// Put before the names of its topics and apps on a shared cluster
    /// (`<tenant>.`); empty on its own embedded log.
    prefix: String,
    kafka: Option<KafkaBackend>,
    state_dir: PathBuf,
    apps: Mutex<BTreeMap<String, Deployment>>,
    /// Records it may still produce or consume now, and when that was counted.
    budget: Mutex<(f64, Instant)>,
}

/// A topic as the API lists it.
#[derive(Debug, Serialize)]
pub struct TopicSummary {
    /// Its name.
    pub name: String,
    /// Its partitions.
    pub partitions: u32,
    /// Records written to it (end offsets summed).
    pub records: u64,
}

/// A record as the API returns it from a topic.
#[derive(Debug, Serialize)]
pub struct ConsumedRecord {
    /// Its partition.
    pub partition: u32,
    /// Its offset.
    pub offset: u64,
    /// Key, value, timestamp and headers, rendered by the requested serdes.
    #[serde(flatten)]
    pub record: serde_json::Map<String, serde_json::Value>,
}

fn log_error(e: LogError) -> ServerError {
    match e {
        LogError::UnknownTopic(t) => ServerError::NotFound(format!("no topic '{t}'")),
        LogError::TopicExists { .. } | LogError::InvalidTopic { .. } => ServerError::BadRequest(e.to_string()),
        e => ServerError::Internal(e.to_string()),
    }
}

fn app_error(e: AppError) -> ServerError {
    ServerError::BadRequest(e.to_string())
}

/// An app that does not fit the tenant's log is a bad request.
fn run_error(e: RunError) -> ServerError {
    match e {
        RunError::Log(LogError::UnknownTopic(t)) => ServerError::BadRequest(format!(
            "the app uses topic '{t}', which does not exist: create it first (`eddy --remote topic create {t}`)"
        )),
        RunError::Log(e) => log_error(e),
        e => ServerError::BadRequest(e.to_string()),
    }
}

/// A plugin reference of an app document: `name`, `name@version`, or a file
/// name such as `vitals.wasm` (the plugin uploaded as `vitals`).
fn plugin_reference(reference: &Path) -> Result<(String, Option<u32>), ServerError> {
    let text = reference.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let (name, version) = match text.split_once('@') {
        Some((name, v)) => (name, Some(v.parse::<u32>().map_err(|_| bad_reference(reference))?)),
        None => (text, None),
    };
    let name = name.strip_suffix(".wasm").unwrap_or(name);
    if !valid_name(name) {
        return Err(bad_reference(reference));
    }
    Ok((name.to_owned(), version))
}

fn bad_reference(reference: &Path) -> ServerError {
    ServerError::BadRequest(format!(
        "plugin: '{}': name an uploaded plugin as NAME or NAME@VERSION (`eddy plugin list`)",
        reference.display()
    ))
}

impl TenantRuntime {
    /// Opens the tenant's log (its own embedded log under `dir`, or the
    /// server's Kafka cluster) and state directory.
    pub fn open(dir: &Path, tenant: Tenant, kafka: Option<&KafkaBackend>) -> Result<TenantRuntime, ServerError> {
        let (log, prefix): (Arc<dyn Log>, String) = match kafka {
            None => {
                let log = EmbeddedLog::open(dir.join("log"), true).map_err(|e| ServerError::Internal(e.to_string()))?;
                (Arc::new(log), String::new())
            }
            Some(k) => {
                let log = KafkaOptions::new(&k.bootstrap_servers)
                    .and_then(KafkaLog::connect)
                    .map_err(|e| ServerError::Internal(format!("connecting to Kafka: {e}")))?;
                (Arc::new(log), format!("{}.", tenant.name))
            }
        };
        Ok(TenantRuntime {
            budget: Mutex::new((f64::from(tenant.quotas.records_per_second), Instant::now())),
            tenant,
            log,
            prefix,
            kafka: kafka.cloned(),
            state_dir: dir.join("state"),
            apps: Mutex::default(),
        })
    }

    /// The name topic `name` of the tenant has in its log.
    fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The log an app runs on: the tenant's embedded log, or on Kafka a
    /// client of its own (its transactional ids and guarantee).
    fn app_log(&self, app: &App) -> Result<Arc<dyn Log>, ServerError> {
        let Some(kafka) = &self.kafka else { return Ok(self.log.clone()) };
        let mut options = KafkaOptions::new(&kafka.bootstrap_servers)
            .map_err(|e| ServerError::Internal(format!("connecting to Kafka: {e}")))?;
        options.guarantee = app.processing_guarantee;
        options.transactional_id_prefix = format!("{}-{}", app.id, kafka.instance);
        let log = KafkaLog::connect(options).map_err(|e| ServerError::Internal(format!("connecting to Kafka: {e}")))?;
        Ok(Arc::new(log))
    }

    fn name(&self) -> &str {
        &self.tenant.name
    }

    /// Takes `records` from the tenant's rate budget, or refuses.
    fn spend(&self, records: usize) -> Result<(), ServerError> {
        let rate = f64::from(self.tenant.quotas.records_per_second);
        let mut budget = self.budget.lock().unwrap_or_else(|p| p.into_inner());
        let (left, at) = &mut *budget;
        *left = (*left + at.elapsed().as_secs_f64() * rate).min(rate);
        *at = Instant::now();
        if records as f64 > *left {
            let wait = (records as f64 - *left) / rate.max(1.0);
            return Err(ServerError::TooFast(format!(
                "{records} record(s) exceed {} records/s; retry in {:.1} s",
                self.tenant.quotas.records_per_second,
                wait.min(3600.0)
            )));
        }
        *left -= records as f64;
        Ok(())
    }

    /// Uploads a plugin: checks it is a component of the Eddy plugin world
    /// within the size quota, stores it by content, and adds a version
    /// (the same bytes as the latest version add none).
    pub fn upload_plugin(&self, server: &Server, name: &str, bytes: &[u8]) -> Result<PluginVersion, ServerError> {
        if !valid_name(name) {
            return Err(ServerError::BadRequest(format!(
                "plugin name '{name}': use 1 to 64 ASCII letters, digits, '-' and '_'"
            )));
        }
        let max = self.tenant.quotas.max_plugin_bytes;
        if bytes.len() as u64 > max {
            return Err(ServerError::Quota(format!("the plugin has {} bytes; the limit is {max}", bytes.len())));
        }
        let plugin = WasmPlugin::from_bytes(name, bytes, self.limits(Limits::default()))
            .map_err(|e| ServerError::BadRequest(format!("plugin '{name}' is not a valid Eddy plugin: {e}")))?;
        let sha256 = crate::serdes::hex(&Sha256::digest(bytes));
        let versions = server.meta().plugin_versions(self.name(), name)?;
        if let Some(last) = versions.last().filter(|v| v.sha256 == sha256) {
            return Ok(last.clone());
        }
        let path = server.plugin_path(&sha256);
        if !path.exists() {
            let tmp = path.with_extension("tmp");
            let write = || -> std::io::Result<()> {
                let mut f = std::fs::File::create(&tmp)?;
                std::io::Write::write_all(&mut f, bytes)?;
                f.sync_all()?;
                std::fs::rename(&tmp, &path)
            };
            write().map_err(|e| ServerError::Internal(format!("storing plugin {}: {e}", path.display())))?;
        }
        let manifest = crate::plugin::Plugin::manifest(&plugin);
        let version = PluginVersion {
            name: name.to_owned(),
            version: versions.last().map_or(1, |v| v.version + 1),
            sha256,
            size: bytes.len() as u64,
            uploaded_ms: now_ms(),
            functions: manifest.functions.iter().map(|f| (f.name.clone(), f.kind.clone())).collect(),
        };
        server.meta().put_plugin(self.name(), &version)?;
        Ok(version)
    }

    /// The tenant's limits applied to what an app asks for.
    fn limits(&self, asked: Limits) -> Limits {
        let q = &self.tenant.quotas;
        Limits {
            memory_bytes: asked.memory_bytes.min((q.memory_mb as usize) << 20),
            call_timeout: asked.call_timeout.min(Duration::from_millis(q.call_timeout_ms)),
        }
    }

    /// Loads an app document against the tenant's plugins: `version` pins
    /// the plugin version, else the document's reference decides (latest
    /// when it names none).
    fn load(&self, server: &Server, document: &str, version: Option<u32>) -> Result<(App, String, u32), ServerError> {
        let (id, reference) = App::plugin_reference(document, Path::new("app")).map_err(app_error)?;
        if !valid_name(&id) {
            return Err(ServerError::BadRequest(format!(
                "application-id '{id}': on the server use 1 to 64 ASCII letters, digits, '-' and '_'"
            )));
        }
        let (name, asked) = plugin_reference(&reference)?;
        let versions = server.meta().plugin_versions(self.name(), &name)?;
        let chosen = match version.or(asked) {
            Some(v) => versions.iter().find(|p| p.version == v),
            None => versions.last(),
        }
        .ok_or_else(|| {
            ServerError::NotFound(format!(
                "no plugin '{name}'{}: upload it with `eddy plugin upload`",
                version.or(asked).map(|v| format!(" version {v}")).unwrap_or_default()
            ))
        })?
        .clone();
        let bytes = std::fs::read(server.plugin_path(&chosen.sha256))
            .map_err(|e| ServerError::Internal(format!("reading plugin {name}@{}: {e}", chosen.version)))?;
        let label = format!("{}/{name}@{}", self.name(), chosen.version);
        let loader = |_: &Path, asked: Limits| Ok(WasmPlugin::from_bytes(&label, &bytes, self.limits(asked))?);
        let mut app = App::parse(document, Path::new(&format!("app {id}")), &loader).map_err(app_error)?;
        app.threads = app.threads.min(MAX_THREADS);
        if !self.prefix.is_empty() {
            app.namespace(&self.prefix);
        }
        if app.bootstrap_servers.is_some() {
            return Err(ServerError::BadRequest(
                "bootstrap-servers: apps on this server run on its own log; remove the setting".into(),
            ));
        }
        Ok((app, name, chosen.version))
    }

    /// An app's name as the tenant knows it (its id without the namespace).
    fn app_name<'a>(&self, app: &'a App) -> &'a str {
        app.id.strip_prefix(&self.prefix).unwrap_or(&app.id)
    }

    /// Checks an app against the tenant's log and quotas; returns its tasks.
    fn admit(&self, app: &App, log: &dyn Log, replacing: Option<&str>) -> Result<usize, ServerError> {
        let tasks = prepare(app, log).map_err(run_error)?.len();
        let apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
        let others = apps.values().filter(|d| Some(d.record.name.as_str()) != replacing);
        let (count, used) = others.fold((0, 0), |(n, t), d| (n + 1, t + d.tasks));
        let q = &self.tenant.quotas;
        if replacing.is_none() && count >= q.max_apps as usize {
            return Err(ServerError::Quota(format!("the tenant has {count} app(s); the limit is {}", q.max_apps)));
        }
        if used + tasks > q.max_tasks as usize {
            return Err(ServerError::Quota(format!(
                "the app has {tasks} task(s) and the tenant's other apps {used}; the limit is {}",
                q.max_tasks
            )));
        }
        Ok(tasks)
    }

    fn deployment(&self, record: AppRecord, app: App, tasks: usize, log: Arc<dyn Log>) -> Deployment {
        let key = format!("{}/{}", self.name(), record.name);
        Deployment::new(key, record, app, tasks, log, self.state_dir.clone())
    }

    /// Deploys a new app and starts it.
    pub fn deploy(&self, server: &Server, document: &str, version: Option<u32>) -> Result<Status, ServerError> {
        let (app, plugin, plugin_version) = self.load(server, document, version)?;
        let name = self.app_name(&app).to_owned();
        if server.meta().app(self.name(), &name)?.is_some() {
            return Err(ServerError::Conflict(format!(
                "app '{name}' is deployed; use `eddy app upgrade` to change its plugin, or delete it first"
            )));
        }
        let log = self.app_log(&app)?;
        let tasks = self.admit(&app, &*log, None)?;
        let record = AppRecord {
            name,
            document: document.to_owned(),
            plugin,
            plugin_version,
            desired: Desired::Running,
            deployed_ms: now_ms(),
        };
        server.meta().put_app(self.name(), &record)?;
        let mut deployment = self.deployment(record, app, tasks, log);
        deployment.start().map_err(|e| ServerError::Internal(format!("starting the app: {e}")))?;
        let status = deployment.status();
        self.apps.lock().unwrap_or_else(|p| p.into_inner()).insert(status.name.clone(), deployment);
        Ok(status)
    }

    /// Loads an app the metadata has, and runs it if it should run (at start).
    pub fn resume_deployment(&self, server: &Server, record: AppRecord) -> Result<(), ServerError> {
        let (app, _, _) = self.load(server, &record.document, Some(record.plugin_version))?;
        let log = self.app_log(&app)?;
        let tasks = prepare(&app, &*log).map_err(run_error)?.len();
        let mut deployment = self.deployment(record, app, tasks, log);
        if deployment.record.desired == Desired::Running {
            deployment.start().map_err(|e| ServerError::Internal(format!("starting the app: {e}")))?;
        }
        self.apps.lock().unwrap_or_else(|p| p.into_inner()).insert(deployment.record.name.clone(), deployment);
        Ok(())
    }

    /// Runs `f` on the app `name`.
    fn with_app<T>(
        &self,
        name: &str,
        f: impl FnOnce(&mut Deployment) -> Result<T, ServerError>,
    ) -> Result<T, ServerError> {
        let mut apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
        let d = apps.get_mut(name).ok_or_else(|| ServerError::NotFound(format!("no app '{name}'")))?;
        f(d)
    }

    /// The statuses of every app.
    pub fn statuses(&self) -> Vec<Status> {
        self.apps.lock().unwrap_or_else(|p| p.into_inner()).values().map(Deployment::status).collect()
    }

    /// The app `name`'s status.
    pub fn status(&self, name: &str) -> Result<Status, ServerError> {
        self.with_app(name, |d| Ok(d.status()))
    }

    /// Runs `f` with the app's deployment (queries, topology, logs).
    pub fn inspect<T>(&self, name: &str, f: impl FnOnce(&Deployment) -> T) -> Result<T, ServerError> {
        self.with_app(name, |d| Ok(f(d)))
    }

    /// Pauses (`run` false) or resumes an app; the choice survives restarts.
    pub fn set_running(&self, server: &Server, name: &str, run: bool) -> Result<Status, ServerError> {
        self.with_app(name, |d| {
            d.record.desired = if run { Desired::Running } else { Desired::Paused };
            server.meta().put_app(self.name(), &d.record)?;
            if run {
                d.start().map_err(|e| ServerError::Internal(format!("starting the app: {e}")))?;
            } else {
                d.stop();
            }
            Ok(d.status())
        })
    }

    /// Stops and forgets an app with its state directory, its changelog and
    /// repartition topics and its committed offsets. Its input and output
    /// topics stay.
    pub fn delete(&self, server: &Server, name: &str) -> Result<(), ServerError> {
        let removed = self.apps.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
        let Some(mut d) = removed else { return Err(ServerError::NotFound(format!("no app '{name}'"))) };
        d.stop();
        server.meta().delete_app(self.name(), name)?;
        d.remove().map_err(|e| ServerError::Internal(format!("deleting app {name}'s internal topics: {e}")))?;
        super::logs::forget(&d.key);
        let dir = self.state_dir.join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| ServerError::Internal(format!("removing its state: {e}")))?;
        }
        Ok(())
    }

    /// Swaps an app's plugin for `plugin` (a version of its plugin, or
    /// another plugin: `name` or `name@version`) and, if given, its document
    /// for `document` (same application id), keeping its stores and
    /// committed offsets: the old run stops cleanly (commits, checkpoints)
    /// and the new one resumes from there. Refused if the new topology would
    /// leave one of the app's stores behind.
    pub fn upgrade(
        &self,
        server: &Server,
        name: &str,
        plugin: Option<&str>,
        document: Option<&str>,
    ) -> Result<Status, ServerError> {
        let (current, old_document, old_plugin) =
            self.with_app(name, |d| Ok((d.app.clone(), d.record.document.clone(), d.record.clone())))?;
        let mut document = document.unwrap_or(&old_document).to_owned();
        let (id, reference) = App::plugin_reference(&document, Path::new("app")).map_err(app_error)?;
        if id != name {
            return Err(ServerError::BadRequest(format!(
                "the new document's application-id is '{id}', not '{name}': deploy it as a new app instead"
            )));
        }
        // A new document alone keeps the plugin version the app runs.
        let mut version = match plugin_reference(&reference)? {
            (plugin, None) if plugin == old_plugin.plugin => Some(old_plugin.plugin_version),
            _ => None,
        };
        if let Some(plugin) = plugin {
            let (reference, v) = plugin_reference(Path::new(plugin))?;
            document = replace_plugin(&document, &reference)?;
            version = v;
        }
        let (app, plugin_name, plugin_version) = self.load(server, &document, version)?;
        let kept: Vec<String> = app.topology.stores().into_iter().map(|(_, s)| s.name.clone()).collect();
        let orphaned: Vec<String> =
            current.topology.stores().into_iter().map(|(_, s)| s.name.clone()).filter(|s| !kept.contains(s)).collect();
        if !orphaned.is_empty() {
            return Err(ServerError::Conflict(format!(
                "the new plugin's topology has no store {}: upgrading would orphan its state; deploy it as a new app instead",
                orphaned.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ")
            )));
        }
        let log = self.app_log(&app)?;
        let tasks = self.admit(&app, &*log, Some(name))?;
        self.with_app(name, |d| {
            d.stop();
            d.record.document = document;
            d.record.plugin = plugin_name;
            d.record.plugin_version = plugin_version;
            server.meta().put_app(self.name(), &d.record)?;
            d.replace(app, tasks, log);
            if d.record.desired == Desired::Running {
                d.start().map_err(|e| ServerError::Internal(format!("starting the app: {e}")))?;
            }
            tracing::info!("tenant {}: upgraded {name} to {}@{}", self.name(), d.record.plugin, plugin_version);
            Ok(d.status())
        })
    }

    /// Stops every app (server shutdown), keeping what should run.
    pub fn stop_all(&self) {
        for d in self.apps.lock().unwrap_or_else(|p| p.into_inner()).values_mut() {
            d.stop();
        }
    }

    /// The tenant's topics.
    pub fn topics(&self) -> Result<Vec<TopicSummary>, ServerError> {
        let mut out = Vec::new();
        for t in self.log.topics().map_err(log_error)? {
            let Some(name) = t.name.strip_prefix(&self.prefix) else { continue };
            let mut records = 0;
            for p in 0..t.partitions {
                records += self.log.end_offset(&TopicPartition::new(&t.name, p)).map_err(log_error)?;
            }
            out.push(TopicSummary { name: name.to_owned(), partitions: t.partitions, records });
        }
        Ok(out)
    }

    /// Creates a topic.
    pub fn create_topic(&self, name: &str, partitions: u32) -> Result<(), ServerError> {
        if partitions == 0 || partitions > 64 {
            return Err(ServerError::BadRequest(format!("partitions: {partitions}; use 1 to 64")));
        }
        match self.log.create_topic(&self.topic(name), partitions) {
            Err(LogError::TopicExists { .. }) => Err(ServerError::Conflict(format!("topic '{name}' exists"))),
            other => other.map_err(log_error),
        }
    }

    /// Writes JSON lines (`{"key":..,"value":..,"timestamp":..,"headers":{..}}`)
    /// to a topic, partitioned by key; returns how many.
    pub fn produce(&self, name: &str, format: &LineFormat, lines: &str) -> Result<usize, ServerError> {
        let topic = &self.topic(name);
        let partitions = self.log.partitions(topic).map_err(log_error)?.ok_or_else(|| {
            ServerError::NotFound(format!("no topic '{name}'; create it with `eddy --remote topic create {name}`"))
        })?;
        let mut records = Vec::new();
        for (i, line) in lines.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let record =
                format.parse(i + 1, line, now_ms()).map_err(|e| ServerError::BadRequest(format!("record {e}")))?;
            records.push(record);
        }
        self.spend(records.len())?;
        let count = records.len();
        let mut producer = self.log.producer().map_err(log_error)?;
        for (i, record) in records.into_iter().enumerate() {
            let p = record.key.as_ref().map_or(i as u32 % partitions, |k| partition_for_key(k, partitions));
            producer.send(&TopicPartition::new(topic, p), record).map_err(log_error)?;
        }
        producer.commit(None, &[]).map_err(log_error)?;
        Ok(count)
    }

    /// Up to `limit` records of a topic from `offset` in each partition.
    pub fn consume(
        &self,
        name: &str,
        format: &LineFormat,
        offset: u64,
        limit: usize,
    ) -> Result<Vec<ConsumedRecord>, ServerError> {
        let topic = &self.topic(name);
        let partitions = self
            .log
            .partitions(topic)
            .map_err(log_error)?
            .ok_or_else(|| ServerError::NotFound(format!("no topic '{name}'")))?;
        let mut ends = BTreeMap::new();
        let mut assignment = Vec::new();
        for p in 0..partitions {
            let tp = TopicPartition::new(topic, p);
            let end = self.log.end_offset(&tp).map_err(log_error)?;
            if offset < end {
                ends.insert(p, end);
                assignment.push((tp, offset));
            }
        }
        let mut out = Vec::new();
        if assignment.is_empty() {
            return Ok(out);
        }
        let mut consumer = self.log.consumer().map_err(log_error)?;
        consumer.assign(&assignment).map_err(log_error)?;
        let deadline = Instant::now() + Duration::from_secs(2);
        while out.len() < limit && !ends.is_empty() && Instant::now() < deadline {
            for f in consumer.poll(limit - out.len(), Duration::from_millis(50)).map_err(log_error)? {
                let p = f.partition.partition;
                for r in f.records {
                    if ends.get(&p).is_some_and(|&end| r.offset + 1 >= end) {
                        ends.remove(&p);
                    }
                    out.push(ConsumedRecord { partition: p, offset: r.offset, record: format.render(&r.record) });
                }
            }
        }
        out.truncate(limit);
        self.spend(out.len())?;
        Ok(out)
    }
}

/// The app document with its `plugin:` line naming `reference`.
fn replace_plugin(document: &str, reference: &str) -> Result<String, ServerError> {
    let mut doc: serde_yaml::Value =
        serde_yaml::from_str(document).map_err(|e| ServerError::Internal(format!("stored document: {e}")))?;
    let map = doc.as_mapping_mut().ok_or_else(|| ServerError::Internal("stored document is not a mapping".into()))?;
    map.insert("plugin".into(), reference.into());
    serde_yaml::to_string(&doc).map_err(|e| ServerError::Internal(e.to_string()))
}
