//! `/metrics` (every tenant, admin token) and `/v1/metrics` (the caller's
//! own apps) in Prometheus' text format, gathered from the deployments'
//! counters at each scrape.

use std::path::Path;

use prometheus::{Encoder, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use super::Server;
use super::deploy::RunState;

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), &["tenant", "app"]).expect("valid metric");
    registry.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), &["tenant", "app"]).expect("valid metric");
    registry.register(Box::new(g.clone())).expect("unique metric");
    g
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

/// The metrics of every app (or only `tenant`'s), as Prometheus text.
pub fn gather(server: &Server, tenant: Option<&str>) -> String {
    let registry = Registry::new();
    let records_in = counter(&registry, "eddy_records_in_total", "Records read from the app's source topics.");
    let records_out = counter(&registry, "eddy_records_out_total", "Records written to the app's sink topics.");
    let skipped = counter(&registry, "eddy_records_skipped_total", "Records the skip error policy dropped.");
    let dead = counter(&registry, "eddy_records_dead_lettered_total", "Records sent to the dead-letter topic.");
    let late = counter(&registry, "eddy_dropped_late_records_total", "Records dropped from windows that had closed.");
    let lag = gauge(&registry, "eddy_consumer_lag", "Input records not yet processed and committed.");
    let running = gauge(&registry, "eddy_app_running", "1 if the app's threads run, 0 if paused or failed.");
    let failed = gauge(&registry, "eddy_app_failed", "1 if the app stopped on an error.");
    let tasks = gauge(&registry, "eddy_app_tasks", "The app's tasks.");
    let errors = gauge(&registry, "eddy_app_recent_errors", "Errors among the app's recent log lines.");
    let state = gauge(&registry, "eddy_state_bytes", "Bytes of the app's local state stores on disk.");
    for t in server.tenant_runtimes() {
        let name = t.tenant.name.as_str();
        if tenant.is_some_and(|only| only != name) {
            continue;
        }
        for status in t.statuses() {
            let labels = [name, status.name.as_str()];
            records_in.with_label_values(&labels).inc_by(status.records_in);
            records_out.with_label_values(&labels).inc_by(status.records_out);
            skipped.with_label_values(&labels).inc_by(status.skipped);
            dead.with_label_values(&labels).inc_by(status.dead_lettered);
            late.with_label_values(&labels).inc_by(status.dropped_late);
            lag.with_label_values(&labels).set(status.lag.map_or(-1, |l| l as i64));
            running.with_label_values(&labels).set(i64::from(status.state == RunState::Running));
            failed.with_label_values(&labels).set(i64::from(matches!(status.state, RunState::Failed { .. })));
            tasks.with_label_values(&labels).set(status.tasks as i64);
            errors.with_label_values(&labels).set(status.recent_errors as i64);
            let dir = server.dir().join("tenants").join(name).join("state").join(&status.name);
            state.with_label_values(&labels).set(dir_bytes(&dir) as i64);
        }
    }
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&registry.gather(), &mut out) {
        tracing::error!("cannot encode metrics: {e}");
    }
    String::from_utf8(out).unwrap_or_default()
}
