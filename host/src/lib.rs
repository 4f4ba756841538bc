//! The Eddy host: runs topologies whose per-record logic lives in WebAssembly
//! plugins, with Kafka Streams semantics.
//!
//! - [`topology`]: the validated topology IR, from YAML or a plugin's builder.
//! - [`plugin`]: loading plugins ([`plugin::WasmPlugin`]) and calling them in batches.
//! - [`log`]: the log backend trait and the embedded, on-disk backend.
//! - [`app`]: an application file: id, plugin, topology, error policy.
//! - [`task`]: tasks, one per sub-topology and partition.
//! - [`runtime`]: threads running tasks, commits: `eddy run`.
//! - [`store`]: state stores (RocksDB or memory) with a record cache and changelogs.
//! - [`window`]: time windows, grace, and the windowed key layout.
//! - [`testing`]: the broker-free test driver for plugin authors.
//!
//! ```no_run
//! use eddy_host::{app::App, log::EmbeddedLog, runtime::{run, RunOptions}};
//! # fn main() -> anyhow::Result<()> {
//! let app = App::load("vitals.yaml".as_ref())?;
//! let log = EmbeddedLog::open("eddy-data", true)?;
//! let report = run(&app, std::sync::Arc::new(log), RunOptions { until_idle: true, ..Default::default() })?;
//! println!("{} records in, {} out", report.records_in, report.records_out);
//! # Ok(()) }
//! ```

pub mod alloc;
pub mod app;
pub mod interleave;
pub mod jsonl;
pub mod log;
pub mod partition;
pub mod pipeline;
pub mod plugin;
pub mod query;
pub mod record;
pub mod runtime;
pub mod serdes;
pub mod server;
pub mod store;
pub mod task;
pub mod testing;
pub mod topology;
pub mod window;
