//! The `eddy` commands: argument parsing and what each command does.

mod plugin;
mod remote;

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use eddy_host::app::App;
use eddy_host::jsonl::{LineFormat, now_ms};
use eddy_host::log::kafka::KafkaOptions;
use eddy_host::log::kafka::profile::{PRODUCTION_MIN_ISR, PRODUCTION_REPLICAS, Profile};
use eddy_host::log::{EmbeddedLog, KafkaLog, Log, TopicPartition};
use eddy_host::partition::partition_for_key;
use eddy_host::record::Record;
use eddy_host::runtime::{RunOptions, RunStats, lag, run_with_stats};
use eddy_host::serdes::Serde;
use eddy_host::store::{ChangelogLayout, committed_contents};
use eddy_host::testing::TestDriver;
use eddy_host::window::WindowedKeys;
use serde_json::Value;

/// Eddy: Kafka Streams semantics for WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "eddy", version, about, long_about = None)]
pub struct Cli {
    /// Where the embedded log keeps its data.
    #[arg(long, global = true, env = "EDDY_DATA_DIR", default_value = "./eddy-data")]
    data_dir: PathBuf,
    /// Use the Kafka cluster at these brokers (`host:port,...`) instead of
    /// the embedded log. For `run`, this overrides the application's
    /// `bootstrap-servers`; state stores stay under --data-dir.
    #[arg(long, global = true, env = "EDDY_BOOTSTRAP_SERVERS", value_name = "HOST:PORT,...")]
    bootstrap_servers: Option<String>,
    /// `topic`, `produce` and `consume` act on the Eddy server of your
    /// `eddy login` profile instead.
    #[arg(long, global = true, env = "EDDY_REMOTE")]
    remote: bool,
    /// Log more (or set EDDY_LOG, e.g. EDDY_LOG=debug).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create and list topics.
    #[command(subcommand)]
    Topic(TopicCommand),
    /// Write records to a topic from JSON lines.
    Produce(ProduceArgs),
    /// Print a topic's records as JSON lines.
    Consume(ConsumeArgs),
    /// Run an application (on the embedded log, or on Kafka).
    Run(RunArgs),
    /// Print an application's topology as Kafka Streams' `Topology#describe()`
    /// does: sub-topologies, sources, processors, stores, sinks, and the
    /// repartition topics added and why.
    Describe {
        /// The application file.
        app: PathBuf,
        /// `text` (Kafka Streams' layout) or `dot` (a Graphviz graph: `eddy
        /// describe app.yaml --format dot | dot -Tsvg > topology.svg`).
        #[arg(long, default_value = "text", value_parser = ["text", "dot"])]
        format: String,
    },
    /// Run an application in memory on input files and print its outputs.
    Test(TestArgs),
    /// Create, build and inspect plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Read an application's state stores (committed contents, from their changelogs).
    #[command(subcommand)]
    Store(StoreCommand),
    /// Run the multi-tenant Eddy server (REST API, web console, metrics).
    Server(remote::ServerArgs),
    /// Save a profile (server URL and token) for the commands that use a server.
    Login {
        /// The server's URL, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        server: String,
        /// Your API token.
        #[arg(long, env = "EDDY_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Manage tenants and tokens on a server (admin token).
    #[command(subcommand)]
    Admin(remote::AdminCommand),
    /// Deploy and manage apps on the server of your profile.
    #[command(subcommand)]
    App(remote::AppCommand),
    /// Look up a key in a running app's store (interactive query).
    Query {
        /// The app (on the server of your profile).
        app: String,
        /// Store name.
        store: String,
        /// The key, in the key serde's JSON form (text for string keys).
        key: String,
        /// Only these fields of a JSON value (`a,b.c`).
        #[arg(long)]
        fields: Option<String>,
        /// Ask `eddy run --listen` at this URL instead of the server.
        #[arg(long)]
        url: Option<String>,
    },
}

impl SerdeArgs {
    /// The serdes as the server's query string.
    fn query_string(&self) -> String {
        format!("key-serde={}&value-serde={}", self.key_serde, self.value_serde)
    }
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Print the value of one key.
    Get {
        /// Application id.
        app: String,
        /// Store name.
        store: String,
        /// The key, in the key serde's JSON form (text for string and bytes).
        key: String,
        #[command(flatten)]
        serdes: SerdeArgs,
    },
    /// Print every entry, in key order, as JSON lines (a window store's
    /// with `--windowed` or `--windowed session`: each key with its window).
    Scan {
        /// Application id.
        app: String,
        /// Store name.
        store: String,
        /// Only keys starting with these bytes.
        #[arg(long)]
        prefix: Option<String>,
        #[command(flatten)]
        serdes: SerdeArgs,
    },
}

#[derive(Debug, Subcommand)]
enum TopicCommand {
    /// Create a topic.
    Create {
        /// Topic name.
        name: String,
        /// Number of partitions.
        #[arg(long, short, default_value_t = 1)]
        partitions: u32,
        /// Succeed if the topic exists already.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// List topics with their partition counts and record counts.
    List {
        /// Only topics whose names start with this.
        prefix: Option<String>,
    },
}

/// How keys and values are read and shown.
#[derive(Debug, Args)]
struct SerdeArgs {
    /// Key format: bytes, string, json or i64.
    #[arg(long, default_value = "bytes")]
    key_serde: Serde,
    /// Value format: bytes, string, json or i64.
    #[arg(long, default_value = "bytes")]
    value_serde: Serde,
    /// Keys are windowed (a windowed aggregation's output): `time` (the
    /// default: the key, then the window start as 8 bytes big-endian, Kafka's
    /// `TimeWindowedSerializer` layout) shows the key and its `window-start`;
    /// `session` (the key, then the session's end and start, Kafka's
    /// `SessionWindowedSerializer` layout) its `window-start` and `window-end`.
    #[arg(long, value_name = "LAYOUT", num_args = 0..=1, default_missing_value = "time")]
    windowed: Option<WindowedLayout>,
}

/// How a windowed key carries its window, for `--windowed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum WindowedLayout {
    /// Time and sliding windows: the window start.
    Time,
    /// Session windows: the session's end and start.
    Session,
}

impl SerdeArgs {
    fn format(&self) -> LineFormat {
        let windowed = self.windowed.map(|w| match w {
            WindowedLayout::Time => WindowedKeys::Time,
            WindowedLayout::Session => WindowedKeys::Session,
        });
        LineFormat { key: self.key_serde, value: self.value_serde, windowed }
    }
}

#[derive(Debug, Args)]
struct ProduceArgs {
    /// The topic to write to.
    topic: String,
    /// Read lines from this file instead of stdin.
    #[arg(long, short)]
    file: Option<PathBuf>,
    /// Take each line as the value (no key), instead of a JSON object
    /// `{"key": ..., "value": ..., "timestamp": ..., "headers": {...}}`.
    /// A blank line is then an empty value, as with Kafka's console
    /// producer; without it, blank lines are skipped and counted.
    #[arg(long)]
    value_only: bool,
    #[command(flatten)]
    serdes: SerdeArgs,
}

#[derive(Debug, Args)]
struct ConsumeArgs {
    /// The topic to read.
    topic: String,
    /// Start at the first record instead of the end.
    #[arg(long)]
    from_beginning: bool,
    /// Stop after this many records.
    #[arg(long)]
    max: Option<u64>,
    /// Stop when no record arrives for this long, counted from the start and
    /// then from the last record printed: under a steady producer it never
    /// fires (use --until-end for a bounded read).
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Stop at the end offsets the topic's partitions have when the command
    /// starts (as kcat's -e): a bounded read of what is there now.
    #[arg(long, short = 'e')]
    until_end: bool,
    #[command(flatten)]
    serdes: SerdeArgs,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The application file.
    app: PathBuf,
    /// Exit once all input is processed and committed.
    #[arg(long)]
    until_idle: bool,
    /// Worker threads (default: the application's `threads`).
    #[arg(long)]
    threads: Option<usize>,
    /// Serve interactive queries of the app's state stores over HTTP at this
    /// address (`127.0.0.1:8080`; port 0 picks a free one), while it runs:
    /// `GET /v1/stores`, `/v1/stores/{store}/keys/{key}`, `.../range`,
    /// `.../windows/{key}`, `.../metadata/{key}`.
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
struct TestArgs {
    /// The application file.
    app: PathBuf,
    /// Input records: TOPIC=FILE.jsonl, one JSON object per line. Repeatable.
    #[arg(long = "input", short, value_name = "TOPIC=FILE")]
    inputs: Vec<String>,
    /// Input records of several topics in one file, each line naming its
    /// topic (`{"topic": "orders", "key": ..., "value": ...}`), processed in
    /// file order as Kafka Streams' TopologyTestDriver does. After --input.
    #[arg(long, value_name = "FILE")]
    interleaved: Option<PathBuf>,
}

impl Cli {
    /// True for `eddy server`, which logs at info and keeps apps' log lines.
    pub fn is_server(&self) -> bool {
        matches!(self.command, Command::Server(_))
    }
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let data_dir = cli.data_dir;
    let bootstrap = cli.bootstrap_servers.filter(|s| !s.trim().is_empty());
    let open = || -> Result<Arc<dyn Log>> {
        Ok(match &bootstrap {
            Some(servers) => Arc::new(connect(KafkaOptions::new(servers)?)?),
            None => Arc::new(open_embedded(&data_dir)?),
        })
    };
    if cli.remote {
        match cli.command {
            Command::Topic(TopicCommand::Create { name, partitions, if_not_exists }) => {
                remote::create_topic(&name, partitions, if_not_exists)?
            }
            Command::Topic(TopicCommand::List { prefix }) => remote::list_topics(&prefix.unwrap_or_default())?,
            Command::Produce(args) => {
                remote::produce(&args.topic, remote::read_input(args.file.as_deref())?, &args.serdes.query_string())?
            }
            Command::Consume(args) => remote::consume(&args.topic, args.max, &args.serdes.query_string())?,
            _ => bail!("--remote applies to `topic`, `produce` and `consume`"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    match cli.command {
        Command::Server(args) => remote::serve(args, bootstrap)?,
        Command::Login { server, token } => remote::login(&server, &token)?,
        Command::Admin(cmd) => remote::admin(cmd)?,
        Command::App(cmd) => remote::app(cmd)?,
        Command::Query { app, store, key, fields, url } => {
            remote::query(url.as_deref(), &app, &store, &key, fields.as_deref())?
        }
        Command::Topic(TopicCommand::Create { name, partitions, if_not_exists }) => {
            let log = open()?;
            match log.create_topic(&name, partitions) {
                Ok(()) => println!("created topic {name} with {partitions} partition(s)"),
                Err(eddy_host::log::LogError::TopicExists { .. }) if if_not_exists => {}
                Err(e) => return Err(e.into()),
            }
        }
        Command::Topic(TopicCommand::List { prefix }) => {
            let log = open()?;
            let prefix = prefix.unwrap_or_default();
            for t in log.topics()?.into_iter().filter(|t| t.name.starts_with(&prefix)) {
                let mut records = 0;
                for p in 0..t.partitions {
                    records += log.end_offset(&TopicPartition::new(&t.name, p))?;
                }
                println!("{}\tpartitions={}\trecords={records}", t.name, t.partitions);
            }
        }
        Command::Produce(args) => produce(&*open()?, args)?,
        Command::Consume(args) => consume(&*open()?, args)?,
        Command::Run(args) => run_app(bootstrap, &data_dir, args)?,
        Command::Describe { app, format } => {
            let topology = App::load(&app)?.topology;
            print!("{}", if format == "dot" { topology.describe_dot() } else { topology.describe() });
        }
        Command::Test(args) => test_app(args)?,
        Command::Plugin(cmd) => plugin::run(cmd)?,
        Command::Store(StoreCommand::Get { app, store, key, serdes }) => {
            let contents = store_contents(&*open()?, &app, &store, serdes.windowed)?;
            let key_value = serde_json::from_str(&key).unwrap_or(Value::String(key.clone()));
            let key_bytes = serdes.key_serde.from_json(&key_value).with_context(|| format!("key {key}"))?;
            match contents.get(&key_bytes[..]) {
                Some(v) => println!("{}", serdes.value_serde.to_json(v)),
                None => {
                    eprintln!("key {key} is not in store {store} of application {app}");
                    return Ok(ExitCode::from(1));
                }
            }
        }
        Command::Store(StoreCommand::Scan { app, store, prefix, serdes }) => {
            let contents = store_contents(&*open()?, &app, &store, serdes.windowed)?;
            let prefix = prefix.unwrap_or_default();
            let format = serdes.format();
            for (k, v) in contents.range(prefix.as_bytes().to_vec()..) {
                if !k.starts_with(prefix.as_bytes()) {
                    break;
                }
                // A window store's keys show their window with --windowed.
                let record = Record::new(Some(k.clone()), Some(v.clone()), 0);
                let mut line = format.render(&record);
                line.remove("timestamp");
                println!("{}", Value::Object(line));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The embedded log in `data_dir`.
fn open_embedded(data_dir: &Path) -> Result<EmbeddedLog> {
    EmbeddedLog::open(data_dir, true).with_context(|| format!("opening the data directory {}", data_dir.display()))
}

/// The Kafka cluster `options` names.
fn connect(options: KafkaOptions) -> Result<KafkaLog> {
    let servers = options.bootstrap_servers.clone();
    KafkaLog::connect(options).with_context(|| format!("connecting to the Kafka cluster at {servers}"))
}

/// The committed contents of a store, with a hint when it has no changelog;
/// with `--windowed time`, a time-window store's, whose changelog keys carry
/// Kafka Streams' sequence number.
fn store_contents(
    log: &dyn Log,
    app: &str,
    store: &str,
    windowed: Option<WindowedLayout>,
) -> Result<std::collections::BTreeMap<Vec<u8>, Vec<u8>>> {
    let topic = eddy_host::store::changelog_topic(app, store);
    if log.partitions(&topic)?.is_none() {
        bail!(
            "application '{app}' has no store '{store}' (no changelog topic '{topic}'; `eddy topic list` shows the changelogs); a global table's store has none: read its topic with `eddy consume`"
        );
    }
    let layout =
        if windowed == Some(WindowedLayout::Time) { ChangelogLayout::WindowSequence } else { ChangelogLayout::Plain };
    Ok(committed_contents(log, app, store, layout)?)
}

fn produce(log: &dyn Log, args: ProduceArgs) -> Result<()> {
    let partitions = log.partitions(&args.topic)?.with_context(|| {
        format!(
            "topic '{}' does not exist; create it with `eddy topic create {} --partitions N`",
            args.topic, args.topic
        )
    })?;
    let input: Box<dyn BufRead> = match &args.file {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let format = args.serdes.format();
    let mut producer = log.producer()?;
    let (mut count, mut blank, mut round_robin) = (0u64, 0u64, 0u32);
    for (i, line) in input.lines().enumerate() {
        let line = line.context("reading input")?;
        if !args.value_only && line.trim().is_empty() {
            blank += 1;
            continue;
        }
        let record = if args.value_only {
            format.parse_value_only(i + 1, &line, now_ms())?
        } else {
            format.parse(i + 1, &line, now_ms())?
        };
        let p = match &record.key {
            Some(k) => partition_for_key(k, partitions),
            None => {
                round_robin = (round_robin + 1) % partitions;
                round_robin
            }
        };
        producer.send(&TopicPartition::new(&args.topic, p), record)?;
        count += 1;
        if producer.pending() >= 10_000 {
            producer.commit(None, &[])?;
        }
    }
    producer.commit(None, &[])?;
    let skipped = if blank > 0 { format!(" (skipped {blank} blank line(s))") } else { String::new() };
    eprintln!("produced {count} record(s) to {}{skipped}", args.topic);
    Ok(())
}

fn consume(log: &dyn Log, args: ConsumeArgs) -> Result<()> {
    let partitions = log.partitions(&args.topic)?.with_context(|| format!("topic '{}' does not exist", args.topic))?;
    let mut assignment = Vec::new();
    // With --until-end: the end offset of each partition not yet reached.
    let mut ends: BTreeMap<u32, u64> = BTreeMap::new();
    for p in 0..partitions {
        let tp = TopicPartition::new(&args.topic, p);
        let end = log.end_offset(&tp)?;
        let from = if args.from_beginning { 0 } else { end };
        if from < end {
            ends.insert(p, end);
        }
        assignment.push((tp, from));
    }
    let mut consumer = log.consumer()?;
    consumer.assign(&assignment)?;
    let format = args.serdes.format();
    let timeout = args.timeout_ms.map(Duration::from_millis);
    let mut last_record = Instant::now();
    let mut printed = 0u64;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    loop {
        // A partition is read to its end once the consumer is past it (on
        // Kafka, past a transaction marker that holds no record).
        ends.retain(|&p, end| consumer.position(&TopicPartition::new(&args.topic, p)).is_none_or(|at| at < *end));
        if args.max.is_some_and(|m| printed >= m) || (args.until_end && ends.is_empty()) {
            break;
        }
        let left = args.max.map_or(4096, |m| (m - printed).min(4096)) as usize;
        let fetched = consumer.poll(left, Duration::from_millis(100))?;
        if fetched.is_empty() {
            if timeout.is_some_and(|t| last_record.elapsed() >= t) {
                break;
            }
            continue;
        }
        last_record = Instant::now();
        for f in fetched {
            let p = f.partition.partition;
            for r in f.records {
                if args.until_end && ends.get(&p).is_none_or(|&end| r.offset >= end) {
                    continue;
                }
                let mut obj = serde_json::Map::new();
                obj.insert("partition".into(), Value::from(f.partition.partition));
                obj.insert("offset".into(), Value::from(r.offset));
                obj.extend(format.render(&r.record));
                writeln!(out, "{}", Value::Object(obj))?;
                printed += 1;
            }
        }
        out.flush()?;
    }
    Ok(())
}

fn run_app(bootstrap: Option<String>, data_dir: &Path, args: RunArgs) -> Result<()> {
    let app = App::load(&args.app)?;
    // Interactive queries see the stores of the tasks running here.
    let queries = args.listen.map(|_| eddy_host::query::Queryable::new(&app));
    let server = match (args.listen, &queries) {
        (Some(addr), Some(queries)) => {
            let server = eddy_host::query::http::Server::start(addr, queries.clone())?;
            eprintln!("listening on http://{}", server.local_addr());
            Some(server)
        }
        _ => None,
    };
    let query_address = server.as_ref().map(|s| s.local_addr().to_string());
    let (log, _instance): (Arc<dyn Log>, _) = match bootstrap.or_else(|| app.bootstrap_servers.clone()) {
        Some(servers) => {
            let mut options = KafkaOptions::new(&servers)?;
            options.query_address = query_address.clone();
            options.guarantee = app.processing_guarantee;
            options.transactional_id_prefix = format!("{}-{}", app.id, instance_id(data_dir, &app.id)?);
            if app.profile == Profile::Production {
                options.replication_factor = PRODUCTION_REPLICAS;
                options.min_insync_replicas = Some(PRODUCTION_MIN_ISR);
            }
            let log = connect(options)?;
            let problems = log.durability_problems(app.processing_guarantee)?;
            if !problems.is_empty() {
                let list = problems.iter().map(|p| format!("\n  - {p}")).collect::<String>();
                if app.profile == Profile::Production {
                    bail!(
                        "application {}: the production profile needs a cluster that survives a broker's loss:{list}\n(use `profile: development` to run anyway)",
                        app.id
                    );
                }
                eprintln!(
                    "warning: {} (development profile): this cluster would not survive a broker's loss:{list}",
                    app.id
                );
            }
            (Arc::new(log), None)
        }
        None => {
            let log = open_embedded(data_dir)?;
            let lock = lock_app(&log, &app.id)?;
            (Arc::new(log), Some(lock))
        }
    };
    // Other instances run the tasks this one does not: queries go there.
    if let (Some(queries), Some(address)) = (&queries, query_address) {
        queries.set_directory(eddy_host::query::directory::Directory::new(log.clone(), &app.id, address));
    }
    let stats = Arc::new(RunStats::default());
    let options = RunOptions {
        threads: args.threads,
        until_idle: args.until_idle,
        state_dir: Some(data_dir.join("state")),
        queries,
        ..Default::default()
    };
    // Ctrl-C or SIGTERM: stop cleanly (commit, checkpoint stores). Killing
    // the process is safe too, but then stores restore from their changelogs.
    let stop = options.stop.clone();
    ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;
    let started = Instant::now();
    let progress = Progress::start(app.clone(), log.clone(), stats.clone(), options.stop.clone());
    let result = run_with_stats(&app, log.clone(), options, stats.clone());
    progress.finish();
    if let Some(server) = server {
        server.stop();
    }
    let report = result.with_context(|| format!("application {} ({})", app.id, args.app.display()))?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{}: {} record(s) in, {} out, {} skipped, {} dead-lettered, {} dropped late; {} task(s) on {} thread(s); {:.0} records/s; lag {}",
        app.id,
        report.records_in,
        report.records_out,
        report.skipped,
        report.dead_lettered,
        report.dropped_late,
        report.tasks,
        report.threads,
        report.records_in as f64 / secs.max(1e-9),
        lag(&app, &*log)?
    );
    Ok(())
}

/// This instance's id for application `app`: random at its first run, then
/// kept in `<data-dir>/state/<app>/instance-id`, so a restarted instance has
/// the same transactional ids (and fences its predecessor's producers).
fn instance_id(data_dir: &Path, app: &str) -> Result<String> {
    use std::hash::BuildHasher;
    let dir = data_dir.join("state").join(app);
    let path = dir.join("instance-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(id.to_owned());
        }
    }
    let seed = (std::time::SystemTime::now(), std::process::id());
    let id = format!("{:016x}", std::collections::hash_map::RandomState::new().hash_one(seed));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(&path, &id).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

/// Holds `<data-dir>/apps/<id>.lock` for the run, so that two instances of
/// one application do not process the same partitions twice.
fn lock_app(log: &EmbeddedLog, id: &str) -> Result<std::fs::File> {
    let dir = log.dir().join("apps");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{id}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            bail!("application '{id}' is already running on {} (lock {})", log.dir().display(), path.display())
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

/// Throughput and lag while `eddy run` runs: a spinner on a terminal, else
/// a log line every [`SUMMARY_INTERVAL`] (at `info`, shown with `-v`; like
/// Kafka Streams' `log.summary.interval.ms`).
struct Progress {
    done: Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

/// How often a run without a terminal logs its progress.
const SUMMARY_INTERVAL: Duration = Duration::from_secs(30);

impl Progress {
    fn start(app: App, log: Arc<dyn Log>, stats: Arc<RunStats>, stop: Arc<std::sync::atomic::AtomicBool>) -> Progress {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let bar = indicatif::ProgressBar::new_spinner();
        let every = if bar.is_hidden() { SUMMARY_INTERVAL } else { Duration::from_millis(500) };
        if bar.is_hidden() && !tracing::enabled!(tracing::Level::INFO) {
            return Progress { done, handle: None };
        }
        let finished = done.clone();
        let handle = std::thread::spawn(move || {
            let (mut last_in, mut last_at) = (0u64, Instant::now());
            let running = || !finished.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst);
            while running() {
                std::thread::sleep(Duration::from_millis(100));
                if last_at.elapsed() < every {
                    continue;
                }
                let records_in = stats.records_in.load(Ordering::Relaxed);
                let rate = (records_in - last_in) as f64 / last_at.elapsed().as_secs_f64();
                (last_in, last_at) = (records_in, Instant::now());
                let lag = lag(&app, &*log).map_or_else(|_| "?".to_owned(), |l| l.to_string());
                let line = format!(
                    "{}: {records_in} in, {} out, {rate:.0} records/s, {} commits, lag {lag}",
                    app.id,
                    stats.records_out.load(Ordering::Relaxed),
                    stats.commits.load(Ordering::Relaxed)
                );
                if bar.is_hidden() {
                    tracing::info!("{line}");
                } else {
                    bar.set_message(line);
                    bar.tick();
                }
            }
            bar.finish_and_clear();
        });
        Progress { done, handle: Some(handle) }
    }

    fn finish(self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle {
            let _ = h.join();
        }
    }
}

fn test_app(args: TestArgs) -> Result<()> {
    let mut driver = TestDriver::from_file(&args.app)?;
    for input in &args.inputs {
        let (topic, file) =
            input.split_once('=').with_context(|| format!("--input {input}: expected TOPIC=FILE.jsonl"))?;
        let text = std::fs::read_to_string(Path::new(file)).with_context(|| format!("reading {file}"))?;
        let n = driver.pipe_json_lines(topic, &text).with_context(|| format!("in {file}"))?;
        tracing::info!("piped {n} record(s) from {file} into {topic}");
    }
    if let Some(file) = &args.interleaved {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let n = driver.pipe_interleaved(&text).with_context(|| format!("in {}", file.display()))?;
        tracing::info!("piped {n} record(s) from {} in file order", file.display());
    }
    let mut outputs = BTreeMap::new();
    for topic in driver.output_topics() {
        outputs.insert(topic.clone(), driver.read_output_json(&topic)?);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for topic in driver.output_topics() {
        for mut v in outputs.remove(&topic).unwrap_or_default() {
            if let Value::Object(m) = &mut v {
                let mut with_topic = serde_json::Map::new();
                with_topic.insert("topic".into(), Value::from(topic.clone()));
                with_topic.append(m);
                v = Value::Object(with_topic);
            }
            writeln!(out, "{v}")?;
        }
    }
    let r = driver.totals();
    eprintln!(
        "{} record(s) in, {} out, {} skipped, {} dead-lettered, {} dropped late",
        r.records_in, r.records_out, r.skipped, r.dead_lettered, r.dropped_late
    );
    Ok(())
}
