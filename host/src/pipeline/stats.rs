//! What a pipeline measures besides its record counts ([`PipelineMetrics`]):
//! the records each node receives, how long plugin calls take and how many
//! trap, and how old records are when they reach a sink (Kafka Streams'
//! `record-e2e-latency`).
//!
//! The pipeline keeps plain counters, added to once per batch or per call
//! (never an atomic per record); the worker publishes them to the run's
//! shared counters ([`AtomicHistogram`] in
//! [`RunStats`](crate::runtime::RunStats)) when it reports, and the
//! pipeline's start over ([`PipelineMetrics::clear`]).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::plugin::ChainStep;

/// Buckets of [`PLUGIN_CALL_BOUNDS_NS`].
pub const PLUGIN_CALL_BUCKETS: usize = 8;

/// Upper bounds of the plugin call latency buckets, in nanoseconds: 0.1,
/// 0.5, 1, 5, 10, 50, 100 and 500 ms (and past them, +Inf).
pub const PLUGIN_CALL_BOUNDS_NS: [u64; PLUGIN_CALL_BUCKETS] =
    [100_000, 500_000, 1_000_000, 5_000_000, 10_000_000, 50_000_000, 100_000_000, 500_000_000];

/// Buckets of [`E2E_LATENCY_BOUNDS_MS`].
pub const E2E_LATENCY_BUCKETS: usize = 10;

/// Upper bounds of the end-to-end latency buckets, in milliseconds: 1, 5,
/// 10, 50, 100, 500 ms, 1, 5, 30 and 60 s (and past them, +Inf).
pub const E2E_LATENCY_BOUNDS_MS: [u64; E2E_LATENCY_BUCKETS] = [1, 5, 10, 50, 100, 500, 1_000, 5_000, 30_000, 60_000];

/// Plugin call latency, in nanoseconds.
pub type PluginCallHistogram = Histogram<PLUGIN_CALL_BUCKETS>;

/// End-to-end latency at sinks, in milliseconds.
pub type E2eLatencyHistogram = Histogram<E2E_LATENCY_BUCKETS>;

/// A histogram over fixed upper bounds (in whatever unit its observations
/// have): how many observations fell in each bucket, past the last bound,
/// and their sum and count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Histogram<const N: usize> {
    bounds: &'static [u64; N],
    /// Observations per bucket: bucket `i` holds those at most `bounds[i]`
    /// and above `bounds[i - 1]` (not cumulative).
    buckets: [u64; N],
    /// Observations above the last bound.
    over: u64,
    sum: u64,
    count: u64,
}

impl<const N: usize> Histogram<N> {
    /// An empty histogram over `bounds`, which must ascend.
    pub fn new(bounds: &'static [u64; N]) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "bounds ascend");
        Histogram { bounds, buckets: [0; N], over: 0, sum: 0, count: 0 }
    }

    /// Adds one observation of `value`.
    #[inline]
    pub fn observe(&mut self, value: u64) {
        // Most observations are small: a scan from the bottom stops early.
        match self.bounds.iter().position(|&b| value <= b) {
            Some(i) => self.buckets[i] += 1,
            None => self.over += 1,
        }
        self.sum = self.sum.saturating_add(value);
        self.count += 1;
    }

    /// The upper bounds.
    pub fn bounds(&self) -> &'static [u64; N] {
        self.bounds
    }

    /// Observations at most each bound (cumulative, as Prometheus' `le`
    /// buckets); all of them are at most +Inf ([`Histogram::count`]).
    pub fn cumulative(&self) -> [u64; N] {
        let mut total = 0;
        self.buckets.map(|b| {
            total += b;
            total
        })
    }

    /// The sum of the observations.
    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// How many observations there were.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Forgets every observation.
    pub fn clear(&mut self) {
        *self = Histogram::new(self.bounds);
    }
}

/// A [`Histogram`] that threads add to: the run's total of what its
/// pipelines observed.
#[derive(Debug)]
pub struct AtomicHistogram<const N: usize> {
    bounds: &'static [u64; N],
    buckets: [AtomicU64; N],
    over: AtomicU64,
    sum: AtomicU64,
    count: AtomicU64,
}

impl<const N: usize> AtomicHistogram<N> {
    /// An empty histogram over `bounds`.
    pub fn new(bounds: &'static [u64; N]) -> Self {
        AtomicHistogram {
            bounds,
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            over: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Adds every observation of `h` (a histogram over the same bounds).
    pub fn add(&self, h: &Histogram<N>) {
        debug_assert_eq!(self.bounds, h.bounds, "the same buckets");
        if h.count == 0 {
            return;
        }
        for (total, &n) in self.buckets.iter().zip(&h.buckets) {
            if n > 0 {
                total.fetch_add(n, Ordering::Relaxed);
            }
        }
        self.over.fetch_add(h.over, Ordering::Relaxed);
        self.sum.fetch_add(h.sum, Ordering::Relaxed);
        self.count.fetch_add(h.count, Ordering::Relaxed);
    }

    /// What it holds now. (Read while threads add, the parts may be a
    /// report apart: good enough for a scrape.)
    pub fn snapshot(&self) -> Histogram<N> {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Histogram {
            bounds: self.bounds,
            buckets: std::array::from_fn(|i| load(&self.buckets[i])),
            over: load(&self.over),
            sum: load(&self.sum),
            count: load(&self.count),
        }
    }
}

/// What a pipeline measured since its worker last published it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineMetrics {
    /// Records each node received, by node index (a source: the records it
    /// read; a step of a fused chain: the records that reached it).
    pub node_records_in: Vec<u64>,
    /// How long each plugin call took, in nanoseconds.
    pub plugin_calls: PluginCallHistogram,
    /// Plugin calls that failed (a trap, a timeout, the memory limit): the
    /// instance is dropped and the batch runs again record by record, each
    /// failing call counted.
    pub traps: u64,
    /// How old records were when a sink to a topic outside the app (not a
    /// repartition topic) sent them: wall-clock time minus their
    /// timestamp, in milliseconds.
    pub e2e_latency: E2eLatencyHistogram,
}

impl PipelineMetrics {
    /// Nothing measured yet, for a topology of `nodes` nodes.
    pub fn new(nodes: usize) -> Self {
        PipelineMetrics {
            node_records_in: vec![0; nodes],
            plugin_calls: Histogram::new(&PLUGIN_CALL_BOUNDS_NS),
            traps: 0,
            e2e_latency: Histogram::new(&E2E_LATENCY_BOUNDS_MS),
        }
    }

    /// Counts `n` records received by `node`.
    #[inline]
    pub fn received(&mut self, node: usize, n: usize) {
        if let Some(c) = self.node_records_in.get_mut(node) {
            *c += n as u64;
        }
    }

    /// Counts what reached each step after the first of a fused chain over
    /// `nodes` that took `n` records: `dropped` were dropped by a filter
    /// step and `failed` failed at the steps listed. The plugin does not say
    /// which filter dropped a record, so drops are put on the chain's first
    /// filter (exact for a chain with one filter; with several, the steps
    /// between them show fewer than they got).
    pub fn chain_received(&mut self, steps: &[ChainStep], nodes: &[usize], n: usize, dropped: usize, failed: &[u32]) {
        let first_filter = steps.iter().position(|s| s.kind == crate::plugin::FunctionKind::Predicate);
        for (i, &node) in nodes.iter().enumerate().skip(1) {
            let failed_before = failed.iter().filter(|&&s| (s as usize) < i).count();
            let dropped_before = if first_filter.is_some_and(|f| f < i) { dropped } else { 0 };
            self.received(node, n.saturating_sub(failed_before + dropped_before));
        }
    }

    /// Starts over (after the worker published the counts), keeping the
    /// node count.
    pub fn clear(&mut self) {
        self.node_records_in.iter_mut().for_each(|c| *c = 0);
        self.plugin_calls.clear();
        self.traps = 0;
        self.e2e_latency.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::FunctionKind;

    #[test]
    fn observations_land_in_the_first_bucket_whose_bound_they_do_not_pass() {
        let mut h = Histogram::new(&E2E_LATENCY_BOUNDS_MS);
        for v in [0, 1, 2, 5, 6, 60_000, 60_001, u64::MAX] {
            h.observe(v);
        }
        // <=1: 0, 1; <=5: 2, 5; <=10: 6; ... <=60000: 60000; +Inf: two more.
        assert_eq!(h.cumulative(), [2, 4, 5, 5, 5, 5, 5, 5, 5, 6]);
        assert_eq!(h.count(), 8);
        assert_eq!(h.sum(), u64::MAX, "the sum saturates");
        h.clear();
        assert_eq!((h.cumulative(), h.count(), h.sum()), ([0; E2E_LATENCY_BUCKETS], 0, 0));
    }

    #[test]
    fn plugin_call_buckets_are_in_nanoseconds() {
        let mut h = Histogram::new(&PLUGIN_CALL_BOUNDS_NS);
        h.observe(50_000); // 0.05 ms
        h.observe(700_000); // 0.7 ms
        h.observe(2_000_000_000); // 2 s
        assert_eq!(h.cumulative(), [1, 1, 2, 2, 2, 2, 2, 2]);
        assert_eq!((h.count(), h.sum()), (3, 2_000_750_000));
    }

    #[test]
    fn atomic_histograms_add_up_what_pipelines_publish() {
        let shared = AtomicHistogram::new(&PLUGIN_CALL_BOUNDS_NS);
        let mut a = Histogram::new(&PLUGIN_CALL_BOUNDS_NS);
        a.observe(10);
        a.observe(600_000_000);
        shared.add(&a);
        let mut b = Histogram::new(&PLUGIN_CALL_BOUNDS_NS);
        b.observe(200_000);
        shared.add(&b);
        shared.add(&Histogram::new(&PLUGIN_CALL_BOUNDS_NS));
        let total = shared.snapshot();
        assert_eq!(total.cumulative(), [1, 2, 2, 2, 2, 2, 2, 2]);
        assert_eq!((total.count(), total.sum()), (3, 600_200_010));
    }

    #[test]
    fn a_chain_counts_what_reaches_each_step() {
        let step = |kind| ChainStep { function: 0, kind, negate: false };
        // map-values, filter, select-key over nodes 3, 4, 5.
        let steps = [step(FunctionKind::MapValues), step(FunctionKind::Predicate), step(FunctionKind::SelectKey)];
        let mut m = PipelineMetrics::new(6);
        // 10 records: one fails in the map, 3 are filtered out, one fails at
        // the select-key.
        m.chain_received(&steps, &[3, 4, 5], 10, 3, &[0, 2]);
        // The head's count is the pipeline's; the filter got 9, the
        // select-key 6.
        assert_eq!(m.node_records_in, [0, 0, 0, 0, 9, 6]);
        m.received(3, 10);
        m.clear();
        assert_eq!(m.node_records_in, [0; 6]);
    }
}
