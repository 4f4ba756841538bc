//! End-to-end tests: the `eddy` binary and the test driver with real compiled
//! plugins on a real embedded log. One binary, one module per topic.

#![allow(clippy::unwrap_used)]

mod bad_input;
mod crash;
mod driver;
mod pipeline;
mod processor;
mod scaffold;
mod state;
mod tables;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

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

/// A fresh data directory and helpers to run `eddy` on it.
pub struct Env {
    /// Holds the temporary directory.
    pub dir: tempfile::TempDir,
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

impl Env {
    /// A fresh temporary directory.
    pub fn new() -> Env {
        Env { dir: tempfile::tempdir().expect("temp dir") }
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The embedded log's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.path("data")
    }

    /// `eddy --data-dir <dir> args...`, its output whatever the exit status.
    pub fn eddy_output(&self, args: &[&str]) -> Output {
        Command::new(eddy_bin())
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .env("EDDY_CACHE_DIR", cache_dir())
            .output()
            .expect("running eddy")
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

    /// Starts `eddy run APP` (without `--until-idle`) in the background.
    pub fn spawn_run(&self, app: &Path) -> std::process::Child {
        Command::new(eddy_bin())
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("run")
            .arg(app)
            .env("EDDY_CACHE_DIR", cache_dir())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting eddy run")
    }

    /// Starts `eddy run APP` and kills it with SIGKILL once `progress()`
    /// reaches `target` (or after a minute).
    pub fn run_then_kill(&self, app: &Path, progress: impl Fn() -> u64, target: u64) {
        let mut child = self.spawn_run(app);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while progress() < target && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        child.kill().expect("killing eddy run");
        child.wait().expect("reaping eddy run");
    }

    /// Writes a file in the directory.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("writing a test file");
        path
    }

    /// All records of a topic as JSON objects (partition, offset, key, value, ...).
    pub fn consume_all(&self, topic: &str, serdes: &[&str]) -> Vec<Value> {
        let mut args = vec!["consume", topic, "--from-beginning", "--timeout-ms", "300"];
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
