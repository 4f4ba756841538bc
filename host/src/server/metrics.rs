//! `/metrics` (every tenant, admin token) and `/v1/metrics` (the caller's
//! own apps) in Prometheus' text format, gathered from the deployments'
//! counters at each scrape.
//!
//! Counters and gauges go through a [`Registry`]; the latency histograms are
//! already bucketed by the pipelines ([`Histogram`]), so their families are
//! built by hand ([`HistogramFamily`]) and encoded with the rest.

use std::path::Path;

use prometheus::proto::{self, MetricFamily, MetricType};
use prometheus::{Encoder, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use super::Server;
use super::deploy::RunState;
use crate::pipeline::stats::Histogram;

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounterVec {
    counter_by(registry, name, help, &["tenant", "app"])
}

fn counter_by(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(c.clone())).expect("unique metric");
    c
}

/// A histogram metric family filled from histograms bucketed elsewhere.
struct HistogramFamily {
    family: MetricFamily,
    /// Units of the observations in a second (1e9 for ns): dividing gives
    /// bounds as they are written (0.005, not 0.005000000000000001).
    units_per_second: f64,
}

impl HistogramFamily {
    fn new(name: &str, help: &str, units_per_second: f64) -> Self {
        let mut family = MetricFamily::default();
        family.set_name(name.to_owned());
        family.set_help(help.to_owned());
        family.set_field_type(MetricType::HISTOGRAM);
        HistogramFamily { family, units_per_second }
    }

    /// Adds the metric of `labels` (in name order) with `h`'s buckets, in
    /// seconds.
    fn add<const N: usize>(&mut self, labels: &[(&str, &str)], h: &Histogram<N>) {
        let mut histogram = proto::Histogram::default();
        let buckets = h.bounds().iter().zip(h.cumulative()).map(|(&bound, count)| {
            let mut bucket = proto::Bucket::default();
            bucket.set_upper_bound(bound as f64 / self.units_per_second);
            bucket.set_cumulative_count(count);
            bucket
        });
        histogram.set_bucket(buckets.collect());
        histogram.set_sample_count(h.count());
        histogram.set_sample_sum(h.sum() as f64 / self.units_per_second);
        let labels = labels.iter().map(|(name, value)| {
            let mut pair = proto::LabelPair::default();
            pair.set_name((*name).to_owned());
            pair.set_value((*value).to_owned());
            pair
        });
        let mut metric = proto::Metric::default();
        metric.set_label(labels.collect());
        metric.set_histogram(histogram);
        self.family.mut_metric().push(metric);
    }

    /// The family, if it has a metric (an empty one cannot be encoded).
    fn finish(self) -> Option<MetricFamily> {
        (!self.family.get_metric().is_empty()).then_some(self.family)
    }
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
    let traps = counter(&registry, "eddy_plugin_traps_total", "Plugin calls that failed (trap, timeout, memory).");
    let node_in = counter_by(
        &registry,
        "eddy_node_records_in_total",
        "Records each node of the app's topology received.",
        &["tenant", "app", "node"],
    );
    let mut calls = HistogramFamily::new("eddy_plugin_call_seconds", "How long plugin calls took.", 1e9);
    let mut e2e = HistogramFamily::new(
        "eddy_record_e2e_latency_seconds",
        "Wall-clock time minus record timestamp when a sink sends a record out of the app.",
        1e3,
    );
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
            traps.with_label_values(&labels).inc_by(status.traps);
            for node in &status.nodes {
                node_in.with_label_values(&[name, status.name.as_str(), node.name.as_str()]).inc_by(node.records_in);
            }
            let sorted = [("app", status.name.as_str()), ("tenant", name)];
            calls.add(&sorted, &status.plugin_call_latency);
            e2e.add(&sorted, &status.e2e_latency);
        }
    }
    let mut families = registry.gather();
    families.extend([calls.finish(), e2e.finish()].into_iter().flatten());
    families.sort_by(|a, b| a.name().cmp(b.name()));
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
        tracing::error!("cannot encode metrics: {e}");
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::stats::{E2E_LATENCY_BOUNDS_MS, PLUGIN_CALL_BOUNDS_NS};

    fn encode(families: &[MetricFamily]) -> String {
        let mut out = Vec::new();
        TextEncoder::new().encode(families, &mut out).expect("encodes");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn histograms_are_exposed_in_seconds_with_cumulative_buckets() {
        let mut h = Histogram::new(&PLUGIN_CALL_BOUNDS_NS);
        h.observe(50_000);
        h.observe(2_000_000);
        h.observe(900_000_000);
        let mut family = HistogramFamily::new("eddy_plugin_call_seconds", "How long plugin calls took.", 1e9);
        family.add(&[("app", "a"), ("tenant", "t")], &h);
        let text = encode(&[family.finish().expect("a metric")]);
        for line in [
            "# TYPE eddy_plugin_call_seconds histogram",
            r#"eddy_plugin_call_seconds_bucket{app="a",tenant="t",le="0.0001"} 1"#,
            r#"eddy_plugin_call_seconds_bucket{app="a",tenant="t",le="0.001"} 1"#,
            r#"eddy_plugin_call_seconds_bucket{app="a",tenant="t",le="0.005"} 2"#,
            r#"eddy_plugin_call_seconds_bucket{app="a",tenant="t",le="0.5"} 2"#,
            r#"eddy_plugin_call_seconds_bucket{app="a",tenant="t",le="+Inf"} 3"#,
            r#"eddy_plugin_call_seconds_sum{app="a",tenant="t"} 0.90205"#,
            r#"eddy_plugin_call_seconds_count{app="a",tenant="t"} 3"#,
        ] {
            assert!(text.lines().any(|l| l == line), "no line {line} in\n{text}");
        }
        let mut e2e = HistogramFamily::new("eddy_record_e2e_latency_seconds", "Age.", 1e3);
        let mut h = Histogram::new(&E2E_LATENCY_BOUNDS_MS);
        h.observe(40);
        e2e.add(&[("app", "a"), ("tenant", "t")], &h);
        let text = encode(&[e2e.finish().expect("a metric")]);
        assert!(text.contains(r#"eddy_record_e2e_latency_seconds_bucket{app="a",tenant="t",le="0.05"} 1"#), "{text}");
        assert!(text.contains(r#"eddy_record_e2e_latency_seconds_bucket{app="a",tenant="t",le="0.01"} 0"#), "{text}");
        assert!(HistogramFamily::new("x", "y", 1.0).finish().is_none(), "no metric, no family");
    }
}
