//! End-to-end tests: the `eddy` binary and the test driver with real compiled
//! plugins on a real embedded log. One binary, one module per topic.

#![allow(clippy::unwrap_used)]

mod bad_input;
mod conformance;
mod crash;
mod driver;
mod fk_join;
mod kafka;
mod orders;
mod pipeline;
mod processor;
mod query;
mod repartition;
mod scaffold;
mod server;
mod sessions;
mod state;
mod tables;
mod versioned;
mod windows;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The longest any one `eddy` command of a test may take (a run with
/// `--until-idle` over a few hundred thousand records included), so that a
/// hang fails the test with what it was waiting for instead of stalling CI.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(180);

/// Waits for `child` until `deadline`, collecting its output; past the
/// deadline, kills it and fails the test naming `what` it was waiting for.
pub fn wait_bounded(mut child: Child, what: &str, deadline: Duration) -> Output {
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for a child process") {
            break status;
        }
        if started.elapsed() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let (out, err) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
            panic!(
                "{what}: still running after {} s, killed\n--- stdout\n{}\n--- stderr\n{}",
                deadline.as_secs(),
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output { status, stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() }
}

/// The `eddy` binary cargo built next to this test.
pub fn eddy_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let bin = exe.parent().and_then(Path::parent).expect("target/<profile>/deps").join("eddy");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (scripts/test.sh)",
        bin.display()
    );
    bin
}

/// A fresh data directory and helpers to run `eddy` on it, on the embedded
/// log or on the test Kafka cluster.
pub struct Env {
    /// Holds the temporary directory.
    pub dir: tempfile::TempDir,
    /// The Kafka cluster every command uses (`--bootstrap-servers`), if any.
    pub bootstrap: Option<String>,
    /// Prefixed to topic names and application ids on Kafka, so that tests
    /// sharing the cluster do not share topics.
    namespace: String,
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

impl Env {
    /// A fresh temporary directory.
    pub fn new() -> Env {
        Env { dir: tempfile::tempdir().expect("temp dir"), bootstrap: None, namespace: String::new() }
    }

    /// A fresh temporary directory whose commands run on the test Kafka
    /// broker ([`kafka::bootstrap`]), with topic names of its own.
    pub fn kafka() -> Env {
        Env::on_kafka(kafka::bootstrap())
    }

    /// Like [`Env::kafka`], on the three-broker test cluster
    /// ([`kafka::cluster_bootstrap`]), for tests that stop brokers.
    pub fn kafka_cluster() -> Env {
        Env::on_kafka(kafka::cluster_bootstrap())
    }

    fn on_kafka(bootstrap: String) -> Env {
        static ENVS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = ENVS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
            bootstrap: Some(bootstrap),
            namespace: format!("t{}-{n}-{}-", std::process::id(), nanos % 1_000_000),
        }
    }

    /// Another instance's directory on the same cluster, with the same
    /// topic names: for several `eddy run` processes of one application.
    pub fn sibling(&self) -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
            bootstrap: self.bootstrap.clone(),
            namespace: self.namespace.clone(),
        }
    }

    /// The name a test's topic (or application id) `name` has in this
    /// environment: itself on the embedded log, namespaced on Kafka.
    pub fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.namespace)
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The last `lines` lines of the log of the instance [`Env::spawn`]
    /// started here (`eddy-run.log`).
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.path("eddy-run.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(lines).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// The embedded log's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.path("data")
    }

    /// `eddy --data-dir <dir> args...`, its output whatever the exit status.
    pub fn eddy_output(&self, args: &[&str]) -> Output {
        let child = self
            .command()
            .args(args)
            .env("EDDY_CACHE_DIR", cache_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running eddy");
        wait_bounded(child, &format!("eddy {}", args.join(" ")), COMMAND_DEADLINE)
    }

    /// `eddy --data-dir <dir> [--bootstrap-servers ...]`.
    fn command(&self) -> Command {
        let mut command = Command::new(eddy_bin());
        command.arg("--data-dir").arg(self.data_dir());
        if let Some(servers) = &self.bootstrap {
            command.arg("--bootstrap-servers").arg(servers);
        }
        command
    }

    /// `eddy` that must succeed; returns stdout.
    pub fn eddy(&self, args: &[&str]) -> String {
        let out = self.eddy_output(args);
        assert!(
            out.status.success(),
            "eddy {args:?} failed\n--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// `eddy` that must fail; returns stderr.
    pub fn eddy_fails(&self, args: &[&str]) -> String {
        let out = self.eddy_output(args);
        assert!(
            !out.status.success(),
            "eddy {args:?} should have failed; stdout:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).expect("UTF-8 output")
    }

    /// Starts `eddy run APP` (without `--until-idle`) in the background; its
    /// stderr goes to `eddy-run.log` in the directory.
    pub fn spawn_run(&self, app: &Path) -> Child {
        self.spawn(&["run", app.to_str().expect("UTF-8 path")])
    }

    /// Starts `eddy ARGS...` in the background; its stderr goes to
    /// `eddy-run.log` in the directory.
    pub fn spawn(&self, args: &[&str]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("eddy-run.log"))
            .expect("opening eddy-run.log");
        self.command()
            .args(args)
            .env("EDDY_CACHE_DIR", cache_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting eddy run")
    }

    /// Stops a background `eddy run` with SIGTERM (a clean stop: final commit
    /// and checkpoints) and returns its output, with the run's log as stderr;
    /// fails the test if it does not exit within a minute.
    pub fn terminate(&self, child: Child) -> Output {
        // SAFETY: kill only sends a signal to the child we started.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let mut out = wait_bounded(child, "eddy run after SIGTERM", Duration::from_secs(60));
        out.stderr = std::fs::read(self.path("eddy-run.log")).unwrap_or_default();
        out
    }

    /// Starts `eddy run APP` and kills it with SIGKILL once `progress()`
    /// reaches `target` (or after a minute).
    pub fn run_then_kill(&self, app: &Path, progress: impl Fn() -> u64, target: u64) {
        let mut child = self.spawn_run(app);
        let deadline = Instant::now() + Duration::from_secs(60);
        while progress() < target && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().expect("killing eddy run");
        wait_bounded(child, "eddy run after SIGKILL", Duration::from_secs(30));
    }

    /// Writes a file in the directory.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("writing a test file");
        path
    }

    /// Writes `text` (JSON lines) to a file and produces it to `topic` with
    /// the given serde arguments.
    pub fn produce(&self, topic: &str, text: &str, serdes: &[&str]) {
        let file = self.write(&format!("{topic}-input.jsonl"), text);
        let mut args = vec!["produce", topic, "--file", file.to_str().expect("UTF-8 path")];
        args.extend_from_slice(serdes);
        self.eddy(&args);
    }

    /// All records of a topic as JSON objects (partition, offset, key, value,
    /// ...), up to its end when the call starts.
    pub fn consume_all(&self, topic: &str, serdes: &[&str]) -> Vec<Value> {
        let mut args = vec!["consume", topic, "--from-beginning", "--until-end"];
        args.extend_from_slice(serdes);
        self.eddy(&args).lines().map(|l| serde_json::from_str(l).expect("consume prints JSON lines")).collect()
    }
}

/// One compiled-component cache for all tests of this run.
pub fn cache_dir() -> PathBuf {
    std::env::temp_dir().join("eddy-test-cache")
}

/// Fields of a JSON record without its position, for order-free comparison.
pub fn key_value(v: &Value) -> (Value, Value) {
    (v["key"].clone(), v["value"].clone())
}

/// Writes an application file in `env` for `plugin` with the given body.
pub fn app_file(env: &Env, name: &str, plugin: &str, body: &str) -> PathBuf {
    env.write(name, &format!("plugin: {plugin}\n{body}"))
}
