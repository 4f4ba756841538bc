//! The Kafka log: topics, offsets and transactions on an Apache Kafka
//! cluster, through librdkafka (the `rdkafka` crate).
//!
//! The mapping is one to one with the [`Log`] trait:
//! - topics are created with the admin API; a changelog is
//!   `cleanup.policy=compact` (`compact,delete` with `retention.ms` for a
//!   window store's), a repartition topic keeps its records whatever their
//!   timestamps (`retention.ms=-1`), as Kafka Streams configures them;
//! - a [`Consumer`](super::Consumer) is an assign-only librdkafka consumer
//!   with `isolation.level=read_committed` ([`consumer`]);
//! - a [`Producer`](super::Producer) is idempotent, and transactional when the
//!   application asks for exactly-once: its `commit` sends the consumed
//!   offsets in the transaction, as Kafka Streams' exactly-once v2 does
//!   ([`producer`]);
//! - the broker compacts changelogs itself, so [`Log::compact`] does nothing.

mod consumer;
pub mod group;
mod producer;
pub mod profile;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::{
    Cleanup, Consumer, GroupMember, Log, LogError, Member, Producer, TopicInfo, TopicPartition, TopicRole,
    check_new_topic,
};

/// How long a request to the cluster may take before it fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a created topic may take to show in the cluster's metadata (a
/// busy cluster, just started, has been seen to take over 15 s).
const CREATE_VISIBLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a topic the broker asked does not know is asked about again
/// before it counts as missing: brokers learn of a new topic from the
/// controller one by one, so one may not know a topic another just showed.
const UNKNOWN_TOPIC_SETTLE: Duration = Duration::from_secs(3);

/// What an application's outputs promise when a process fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Guarantee {
    /// Offsets commit after the outputs are acknowledged: after a crash,
    /// records since the last commit are processed (and their outputs
    /// written) again. Kafka Streams' default.
    #[default]
    AtLeastOnce,
    /// Outputs, changelog writes and consumed offsets commit in one Kafka
    /// transaction (Kafka Streams' `exactly_once_v2`); readers with
    /// `isolation.level=read_committed` see each result once.
    #[serde(alias = "exactly-once-v2")]
    ExactlyOnce,
}

/// How to reach a cluster and what producers it hands out.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// `host:port,...` of one or more brokers.
    pub bootstrap_servers: String,
    /// Whether producers are transactional.
    pub guarantee: Guarantee,
    /// The prefix of transactional ids: producer `n` of this log is
    /// `<prefix>-<n>`. Stable across restarts of one instance and unique
    /// among instances, so a restarted instance fences its old producers.
    pub transactional_id_prefix: String,
    /// Replication factor of the topics it creates (-1: the broker's
    /// `default.replication.factor`).
    pub replication_factor: i32,
    /// `min.insync.replicas` of the internal topics it creates (changelogs,
    /// repartition topics), if not the broker's.
    pub min_insync_replicas: Option<i32>,
    /// More librdkafka client properties (`security.protocol`, ...), each
    /// for every client or for one kind.
    pub properties: Vec<ClientProperty>,
    /// Where this instance answers interactive queries (`host:port`), if it
    /// does: its group members are then named `<prefix>@<address>`, so
    /// other instances can send it queries about its tasks.
    pub query_address: Option<String>,
}

impl KafkaOptions {
    /// At-least-once clients of the cluster at `bootstrap_servers`, with
    /// the librdkafka properties of `EDDY_KAFKA_PROPERTIES` (`key=value`
    /// pairs separated by `;`, e.g. `debug=cgrp;producer.linger.ms=20`):
    /// see [`ClientProperty`]. They apply over Eddy's own choices
    /// (batching, fetch sizes, timeouts), except the properties Eddy's
    /// guarantees rest on ([`EDDY_OWNED_PROPERTIES`]): setting one of
    /// those, or an entry that is not `key=value`, is an error naming it.
    pub fn new(bootstrap_servers: &str) -> Result<Self, LogError> {
        let properties = parse_properties(&std::env::var("EDDY_KAFKA_PROPERTIES").unwrap_or_default())?;
        Ok(KafkaOptions {
            bootstrap_servers: bootstrap_servers.to_owned(),
            guarantee: Guarantee::AtLeastOnce,
            transactional_id_prefix: "eddy".to_owned(),
            replication_factor: -1,
            min_insync_replicas: None,
            properties,
            query_address: None,
        })
    }

    /// The instance's name in the group (every member's `client.id`): the
    /// transactional id prefix, with `@<query address>` where it has one.
    pub fn instance_name(&self) -> String {
        match &self.query_address {
            Some(address) => format!("{}@{address}", self.transactional_id_prefix),
            None => self.transactional_id_prefix.clone(),
        }
    }

    /// The configuration of a `kind` client: the cluster, then Eddy's
    /// settings for it (`eddy`), then the user's properties for it, which
    /// override Eddy's tunable choices.
    fn client_config(&self, kind: ClientKind, eddy: impl FnOnce(&mut ClientConfig)) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        config.set("client.id", "eddy");
        eddy(&mut config);
        for p in self.properties.iter().filter(|p| p.client.is_none_or(|c| c == kind)) {
            config.set(&p.name, &p.value);
        }
        config
    }
}

/// A kind of librdkafka client Eddy makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// Sends records (one per worker thread).
    Producer,
    /// Reads records, restores stores, or is a member of the group.
    Consumer,
    /// Creates and describes topics.
    Admin,
}

/// A librdkafka property the user gave. As in Kafka Streams' client
/// settings, a `producer.`, `consumer.` or `admin.` prefix makes it one
/// kind of client's (librdkafka warns about a property set on a client it
/// is not for, once per client made); without one it is every client's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientProperty {
    /// The kind of client it is for, or `None` for all.
    pub client: Option<ClientKind>,
    /// librdkafka's name of the property, without the prefix.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// The librdkafka properties Eddy sets itself and users may not: its
/// groups, offset commits, isolation, idempotence and transactions are what
/// its processing guarantees rest on, and the cluster comes from
/// `--bootstrap-servers` or the app file.
pub const EDDY_OWNED_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "client.id",
    "group.id",
    "group.instance.id",
    "group.protocol",
    "partition.assignment.strategy",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "isolation.level",
    "enable.partition.eof",
    "allow.auto.create.topics",
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "transactional.id",
];

/// Parses `key=value` pairs separated by `;` (empty entries are allowed),
/// refusing malformed entries and the properties Eddy owns.
fn parse_properties(text: &str) -> Result<Vec<ClientProperty>, LogError> {
    let mut properties = Vec::new();
    for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((k, v)) = entry.split_once('=').map(|(k, v)| (k.trim(), v.trim())).filter(|(k, _)| !k.is_empty())
        else {
            return Err(LogError::Settings(format!(
                "EDDY_KAFKA_PROPERTIES: '{entry}' is not a key=value pair (pairs are separated by ';')"
            )));
        };
        let (client, k) =
            [("producer.", ClientKind::Producer), ("consumer.", ClientKind::Consumer), ("admin.", ClientKind::Admin)]
                .into_iter()
                .find_map(|(prefix, kind)| k.strip_prefix(prefix).map(|name| (Some(kind), name)))
                .unwrap_or((None, k));
        if EDDY_OWNED_PROPERTIES.contains(&k) {
            let instead = match k {
                "bootstrap.servers" | "metadata.broker.list" => {
                    "give the cluster with --bootstrap-servers or the app file's bootstrap-servers"
                }
                _ => "remove it (the app file's processing-guarantee chooses the guarantee)",
            };
            return Err(LogError::Settings(format!(
                "EDDY_KAFKA_PROPERTIES: '{k}' is set by Eddy itself (its groups, offsets and processing \
                 guarantee depend on it): {instead}"
            )));
        }
        properties.push(ClientProperty { client, name: k.to_owned(), value: v.to_owned() });
    }
    Ok(properties)
}

/// A log on a Kafka cluster.
pub struct KafkaLog {
    options: KafkaOptions,
    admin: AdminClient<DefaultClientContext>,
    /// Metadata and end offsets (a `read_committed` consumer in no group).
    meta: BaseConsumer,
    /// A consumer per group, for committed offsets.
    groups: Mutex<HashMap<String, Arc<BaseConsumer>>>,
    /// Runs the admin client's futures.
    runtime: tokio::runtime::Runtime,
    /// Producers handed out, for transactional ids.
    producers: AtomicU32,
}

/// A topic created (by this client or another) that the cluster's metadata
/// still does not show after [`CREATE_VISIBLE_TIMEOUT`].
fn not_visible(name: &str) -> LogError {
    LogError::Kafka {
        op: format!("waiting for the new topic {name} to show in the cluster's metadata"),
        source: KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut),
    }
}

/// Wraps a client error with what was being done.
fn kafka(op: impl Into<String>) -> impl FnOnce(KafkaError) -> LogError {
    let op = op.into();
    move |source| LogError::Kafka { op, source }
}

/// Sends `request` again while it fails with an error a moving leader or
/// coordinator causes (a broker restarting, a leader election: see
/// [`is_transient`]), for up to [`REQUEST_TIMEOUT`]; any other error, or the
/// last one, is wrapped with `op`.
fn retry<T>(op: impl Into<String>, request: impl FnMut() -> KafkaResult<T>) -> Result<T, LogError> {
    retrying(request).map_err(kafka(op))
}

/// [`retry`], returning the client's own error, for callers that classify it.
fn retrying<T>(mut request: impl FnMut() -> KafkaResult<T>) -> KafkaResult<T> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut pause = Duration::from_millis(50);
    loop {
        match request() {
            Err(e) if is_transient(&e) && Instant::now() + pause < deadline => {
                tracing::debug!("{e}; retrying in {pause:?}");
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            result => return result,
        }
    }
}

/// True for errors that go away once the cluster has moved a partition's
/// leader or a coordinator to a live broker: worth sending the request again.
fn is_transient(e: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    if let KafkaError::Transaction(e) = e {
        return e.is_retriable();
    }
    matches!(
        e.rdkafka_error_code(),
        Some(
            NotLeaderForPartition
                | LeaderNotAvailable
                | PreferredLeaderNotAvailable
                | FencedLeaderEpoch
                | UnknownLeaderEpoch
                | OffsetNotAvailable
                | NotCoordinator
                | CoordinatorLoadInProgress
                | CoordinatorNotAvailable
                | NotEnoughReplicas
                | NotEnoughReplicasAfterAppend
                | KafkaStorageError
                | NetworkException
                | RequestTimedOut
                | BrokerTransportFailure
                | AllBrokersDown
                | OperationTimedOut
        )
    )
}

impl KafkaLog {
    /// Connects to the cluster and checks that it answers.
    pub fn connect(options: KafkaOptions) -> Result<KafkaLog, LogError> {
        let servers = options.bootstrap_servers.clone();
        let admin: AdminClient<DefaultClientContext> = options
            .client_config(ClientKind::Admin, |_| ())
            .create()
            .map_err(kafka(format!("connecting to {servers}")))?;
        let meta: BaseConsumer =
            consumer::config(&options).create().map_err(kafka(format!("connecting to {servers}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| LogError::Io {
            op: "start the admin runtime",
            path: Default::default(),
            source: e,
        })?;
        meta.fetch_metadata(None, REQUEST_TIMEOUT).map_err(kafka(format!("reaching the cluster at {servers}")))?;
        Ok(KafkaLog { options, admin, meta, groups: Mutex::default(), runtime, producers: AtomicU32::new(0) })
    }

    /// The consumer that reads `group`'s committed offsets.
    fn group(&self, group: &str) -> Result<Arc<BaseConsumer>, LogError> {
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = groups.get(group) {
            return Ok(c.clone());
        }
        let consumer: BaseConsumer = consumer::config(&self.options)
            .set("group.id", group)
            .create()
            .map_err(kafka(format!("creating a consumer of group {group}")))?;
        let consumer = Arc::new(consumer);
        groups.insert(group.to_owned(), consumer.clone());
        Ok(consumer)
    }

    /// Topic configs for a role, as Kafka Streams sets them.
    fn configs(role: TopicRole) -> Vec<(&'static str, String)> {
        match role {
            TopicRole::Plain => Vec::new(),
            TopicRole::Changelog(cleanup) => {
                let mut configs = match cleanup.retention_ms {
                    None => vec![("cleanup.policy", "compact".to_owned())],
                    Some(ms) => vec![("cleanup.policy", "compact,delete".to_owned()), ("retention.ms", ms.to_string())],
                };
                if let Some(lag) = cleanup.min_compaction_lag_ms {
                    configs.push(("min.compaction.lag.ms", lag.to_string()));
                }
                if let Some(ms) = cleanup.delete_retention_ms {
                    configs.push(("delete.retention.ms", ms.to_string()));
                }
                configs
            }
            TopicRole::Repartition => vec![
                ("cleanup.policy", "delete".to_owned()),
                ("retention.ms", "-1".to_owned()),
                ("segment.bytes", (50 << 20).to_string()),
            ],
        }
    }

    /// A topic's partition count as the broker that answers knows it; `None`
    /// when that broker does not know the topic.
    fn partitions_as_one_broker_sees(&self, topic: &str) -> Result<Option<u32>, LogError> {
        let metadata = retry(format!("reading the metadata of topic {topic}"), || {
            self.meta.fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        })?;
        let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else { return Ok(None) };
        match t.error() {
            None => Ok(Some(t.partitions().len() as u32).filter(|&n| n > 0)),
            Some(e) if RDKafkaErrorCode::from(e) == RDKafkaErrorCode::UnknownTopicOrPartition => Ok(None),
            // A topic just created may have no leaders yet: it exists.
            Some(e) if RDKafkaErrorCode::from(e) == RDKafkaErrorCode::LeaderNotAvailable => {
                Ok(Some(t.partitions().len() as u32).filter(|&n| n > 0))
            }
            Some(e) => Err(LogError::Kafka {
                op: format!("reading the metadata of topic {topic}"),
                source: KafkaError::MetadataFetch(e.into()),
            }),
        }
    }
}

/// The first error among an admin deletion's results, except `absent`
/// (what was to be deleted was not there).
fn deleted(
    results: Vec<Result<String, (String, RDKafkaErrorCode)>>,
    absent: RDKafkaErrorCode,
    what: &str,
) -> Result<(), LogError> {
    match results.into_iter().find_map(|r| r.err().filter(|(_, code)| *code != absent)) {
        Some((name, code)) => {
            Err(LogError::Kafka { op: format!("deleting {what} {name}"), source: KafkaError::AdminOp(code) })
        }
        None => Ok(()),
    }
}

impl Log for KafkaLog {
    fn create_topic_as(&self, name: &str, partitions: u32, role: TopicRole) -> Result<(), LogError> {
        check_new_topic(name, partitions)?;
        let mut configs = Self::configs(role);
        if let Some(isr) = self.options.min_insync_replicas.filter(|_| role != TopicRole::Plain) {
            configs.push(("min.insync.replicas", isr.to_string()));
        }
        let mut topic =
            NewTopic::new(name, partitions as i32, TopicReplication::Fixed(self.options.replication_factor));
        for (k, v) in &configs {
            topic = topic.set(k, v);
        }
        let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let results = self
            .runtime
            .block_on(self.admin.create_topics([&topic], &options))
            .map_err(kafka(format!("creating topic {name}")))?;
        for result in results {
            match result {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    // Created a moment ago by another instance, it may not
                    // show in the metadata yet.
                    let deadline = Instant::now() + CREATE_VISIBLE_TIMEOUT;
                    let partitions = loop {
                        match self.partitions_as_one_broker_sees(name)? {
                            Some(n) => break n,
                            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                            None => return Err(not_visible(name)),
                        }
                    };
                    return Err(LogError::TopicExists { name: name.to_owned(), partitions });
                }
                Err((_, code)) => {
                    return Err(LogError::Kafka {
                        op: format!("creating topic {name}"),
                        source: KafkaError::AdminOp(code),
                    });
                }
            }
        }
        // The topic is usable once every partition shows in the metadata.
        let deadline = Instant::now() + CREATE_VISIBLE_TIMEOUT;
        while self.partitions_as_one_broker_sees(name)? != Some(partitions) {
            if Instant::now() >= deadline {
                return Err(not_visible(name));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn topics(&self) -> Result<Vec<TopicInfo>, LogError> {
        let metadata = retry("listing topics", || self.meta.fetch_metadata(None, REQUEST_TIMEOUT))?;
        let mut topics: Vec<TopicInfo> = metadata
            .topics()
            .iter()
            .filter(|t| !t.name().starts_with("__") && t.error().is_none())
            .map(|t| TopicInfo { name: t.name().to_owned(), partitions: t.partitions().len() as u32 })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    fn partitions(&self, topic: &str) -> Result<Option<u32>, LogError> {
        let settled = Instant::now() + UNKNOWN_TOPIC_SETTLE;
        loop {
            match self.partitions_as_one_broker_sees(topic)? {
                None if Instant::now() < settled => std::thread::sleep(Duration::from_millis(100)),
                answer => return Ok(answer),
            }
        }
    }

    fn end_offset(&self, tp: &TopicPartition) -> Result<u64, LogError> {
        // A read_committed consumer's watermark query returns the last
        // stable offset.
        let (_, high) = retry(format!("reading the end offset of {tp}"), || {
            self.meta.fetch_watermarks(&tp.topic, tp.partition as i32, REQUEST_TIMEOUT)
        })?;
        Ok(high.max(0) as u64)
    }

    fn committed(&self, group: &str, tp: &TopicPartition) -> Result<Option<u64>, LogError> {
        let consumer = self.group(group)?;
        let mut list = TopicPartitionList::new();
        list.add_partition(&tp.topic, tp.partition as i32);
        let committed = retry(format!("reading group {group}'s offset of {tp}"), || {
            consumer.committed_offsets(list.clone(), REQUEST_TIMEOUT)
        })?;
        Ok(committed.find_partition(&tp.topic, tp.partition as i32).and_then(|e| match e.offset() {
            Offset::Offset(o) if o >= 0 => Some(o as u64),
            _ => None,
        }))
    }

    fn consumer(&self) -> Result<Box<dyn Consumer>, LogError> {
        Ok(Box::new(consumer::KafkaConsumer::new(&self.options)?))
    }

    fn producer(&self) -> Result<Box<dyn Producer>, LogError> {
        let transactional_id = match self.options.guarantee {
            Guarantee::AtLeastOnce => None,
            Guarantee::ExactlyOnce => {
                let n = self.producers.fetch_add(1, Ordering::SeqCst);
                Some(format!("{}-{n}", self.options.transactional_id_prefix))
            }
        };
        Ok(Box::new(producer::KafkaProducer::new(&self.options, transactional_id)?))
    }

    /// Joins the group as [`group`] describes (creating its tasks topic
    /// the first time); `local` is for logs without a coordinator.
    fn join(&self, group: &str, tasks: u32, _local: &[u32]) -> Result<Box<dyn Member>, LogError> {
        let topic = group::tasks_topic(group);
        match self.create_topic_as(&topic, tasks.max(1), TopicRole::Repartition) {
            Ok(()) | Err(LogError::TopicExists { .. }) => {}
            Err(e) => return Err(e),
        }
        match self.partitions(&topic)? {
            Some(n) if tasks == 0 || n == tasks => {}
            Some(n) if n == tasks => {}
            Some(n) => {
                return Err(LogError::InvalidTopic {
                    name: topic,
                    reason: format!(
                        "it has {n} partition(s) for the application's tasks, which are now {tasks}: the partition counts of its input topics changed since it first ran"
                    ),
                });
            }
            None => return Err(LogError::UnknownTopic(topic)),
        }
        Ok(Box::new(group::KafkaMember::join(&self.options, group)?))
    }

    fn members(&self, group: &str) -> Result<Vec<GroupMember>, LogError> {
        group::members(&self.meta, group, REQUEST_TIMEOUT)
    }

    fn instance(&self) -> Option<String> {
        Some(self.options.instance_name())
    }

    fn purge(&self, tp: &TopicPartition, before: u64) -> Result<(), LogError> {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&tp.topic, tp.partition as i32, Offset::Offset(before as i64))
            .map_err(kafka(format!("purging {tp}")))?;
        let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let result = self.runtime.block_on(self.admin.delete_records(&list, &options));
        let deleted = result.map_err(kafka(format!("purging {tp} before offset {before}")))?;
        match deleted.elements().first().map(|e| e.error()) {
            Some(Err(e)) => Err(LogError::Kafka { op: format!("purging {tp} before offset {before}"), source: e }),
            _ => Ok(()),
        }
    }

    fn delete_topics(&self, names: &[String]) -> Result<(), LogError> {
        if names.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let results = self
            .runtime
            .block_on(self.admin.delete_topics(&names, &options))
            .map_err(kafka(format!("deleting topics {}", names.join(", "))))?;
        deleted(results, RDKafkaErrorCode::UnknownTopicOrPartition, "topic")
    }

    fn delete_group(&self, group: &str) -> Result<(), LogError> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner()).remove(group);
        let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let results = self
            .runtime
            .block_on(self.admin.delete_groups(&[group], &options))
            .map_err(kafka(format!("deleting group {group}")))?;
        deleted(results, RDKafkaErrorCode::GroupIdNotFound, "group")?;
        self.delete_topics(&[group::tasks_topic(group)])
    }

    /// The broker's log cleaner compacts changelogs (`cleanup.policy=compact`).
    fn compact(&self, _tp: &TopicPartition, _min_dirty: f64, _cleanup: Cleanup) -> Result<u64, LogError> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_properties_tune_their_clients_but_cannot_touch_the_guarantees() {
        let parsed =
            parse_properties(" producer.linger.ms = 20 ;consumer.fetch.wait.max.ms=10;; debug=cgrp,topic ;").unwrap();
        let property =
            |client, name: &str, value: &str| ClientProperty { client, name: name.to_owned(), value: value.to_owned() };
        assert_eq!(
            parsed,
            [
                property(Some(ClientKind::Producer), "linger.ms", "20"),
                property(Some(ClientKind::Consumer), "fetch.wait.max.ms", "10"),
                property(None, "debug", "cgrp,topic"),
            ]
        );
        let mut options = KafkaOptions::new("127.0.0.1:1").unwrap();
        options.properties = parsed;
        // Over Eddy's own choice for the kind of client, and only there.
        let consumer = consumer::config(&options);
        assert_eq!(consumer.get("fetch.wait.max.ms"), Some("10"));
        assert_eq!(consumer.get("isolation.level"), Some("read_committed"));
        assert_eq!(consumer.get("linger.ms"), None);
        assert_eq!(consumer.get("debug"), Some("cgrp,topic"));
        let admin = options.client_config(ClientKind::Admin, |_| ());
        assert_eq!((admin.get("linger.ms"), admin.get("debug")), (None, Some("cgrp,topic")));
        assert_eq!(options.client_config(ClientKind::Producer, |_| ()).get("linger.ms"), Some("20"));

        for (text, named) in [
            ("linger.ms=5;isolation.level=read_uncommitted", "'isolation.level' is set by Eddy"),
            ("consumer.isolation.level=read_uncommitted", "'isolation.level' is set by Eddy"),
            ("bootstrap.servers=elsewhere:9092", "'bootstrap.servers' is set by Eddy"),
            ("producer.enable.idempotence=false", "'enable.idempotence' is set by Eddy"),
            ("linger.ms", "'linger.ms' is not a key=value pair"),
            ("=5", "'=5' is not a key=value pair"),
        ] {
            let error = parse_properties(text).unwrap_err().to_string();
            assert!(error.starts_with("EDDY_KAFKA_PROPERTIES: ") && error.contains(named), "{text}: {error}");
        }
    }
}
