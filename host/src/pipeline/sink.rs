//! Sinks: records checked against the sink's serdes and sent to a topic,
//! partitioned by key (Kafka's default partitioner) or round robin, or to
//! the partition an internal record names in its [`PARTITION_HEADER`] (a
//! foreign-key join's answers go back to the task that asked). A sink to a
//! topic outside the app measures how old its records are (wall-clock time
//! minus their timestamp: Kafka Streams' `record-e2e-latency`).

use crate::log::TopicPartition;
use crate::partition::partition_for_key;
use crate::serdes::Serde;
use crate::window::{WindowedKeys, unwindowed};

use super::context::{Cx, FailureKind, check};
use super::operator::{Batch, Emit, Operator};
use super::{PARTITION_HEADER, ProcessError};

/// Writes records to a topic.
pub(crate) struct Sink {
    pub partitions: Vec<TopicPartition>,
    pub key: Serde,
    pub value: Serde,
    /// The partition of the last record without a key.
    pub next: u32,
    /// How keys carry a window, if they do: the key serde checks the key
    /// without it.
    pub windowed: Option<WindowedKeys>,
    /// True for a topic outside the app (not a repartition topic): the
    /// records' end-to-end latency is measured here.
    pub terminal: bool,
}

impl Operator for Sink {
    fn process(&mut self, cx: &mut Cx<'_>, _from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        // One clock read per batch: every record's latency is taken from it.
        let now = if self.terminal { crate::jsonl::now_ms() } else { i64::MIN };
        for (mut r, origin) in batch.records.into_iter().zip(batch.origins) {
            let named = r.header(PARTITION_HEADER).and_then(|p| <[u8; 4]>::try_from(p).ok()).map(u32::from_be_bytes);
            if named.is_some() {
                r.headers.retain(|h| h.name != PARTITION_HEADER);
            }
            let key = match (&r.key, self.windowed) {
                (Some(k), Some(keys)) => unwindowed(k, keys),
                (k, _) => k.as_deref(),
            };
            let checked = check(self.key, key, "key").and_then(|()| check(self.value, r.value.as_deref(), "value"));
            if let Err(e) = checked {
                cx.reject(cx.node, origin, FailureKind::Serialization, e)?;
                continue;
            }
            let n = self.partitions.len() as u32;
            let p = match (&r.key, named) {
                (_, Some(p)) => p % n,
                (Some(k), None) => partition_for_key(k, n),
                (None, None) => {
                    self.next = (self.next + 1) % n;
                    self.next
                }
            };
            let timestamp = r.timestamp;
            cx.out.send(&self.partitions[p as usize], r)?;
            cx.shared.stats.records_out += 1;
            if self.terminal {
                // A record stamped in the future is 0 ms old.
                cx.shared.metrics.e2e_latency.observe(now.saturating_sub(timestamp).max(0) as u64);
            }
        }
        Ok(Emit::Nothing)
    }
}
