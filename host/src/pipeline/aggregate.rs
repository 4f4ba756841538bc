//! Aggregations of keyed streams and grouped tables into a store: count,
//! and aggregate/reduce/cogroup with plugin functions. Each passes on a
//! key's new aggregate when its store flushes.

use std::collections::HashSet;

use bytes::Bytes;

use crate::plugin::{AGGREGATE_HEADER, FunctionKind, Outcome};
use crate::record::{Header, Record};

use super::context::{Cx, FailureKind, failure};
use super::operator::{Batch, Emit, Operator};
use super::{ProcessError, SUBTRACT_HEADER};

/// Counts records per key (an `i64`, big-endian). Records without a key
/// are dropped; for a grouped table, records marked with
/// [`SUBTRACT_HEADER`] count -1.
pub(crate) struct Count {
    pub subtract: bool,
}

impl Operator for Count {
    fn process(&mut self, cx: &mut Cx<'_>, _from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        let node = cx.node;
        for r in batch.records {
            let delta = if self.subtract && r.header(SUBTRACT_HEADER).is_some() { -1 } else { 1 };
            let Some(key) = r.key else { continue };
            let (count, timestamp) = match cx.store(node)?.get_timestamped(&key)? {
                Some((v, ts)) => (decode_count(&v), ts.max(r.timestamp)),
                None => (0, r.timestamp),
            };
            cx.update(node, key, Some(encode_count(count + delta)), timestamp)?;
        }
        Ok(Emit::Nothing)
    }
}

/// Folds records into one aggregate per key with a plugin aggregator or
/// reducer.
pub(crate) struct Aggregate {
    /// `Aggregator` or `Reducer`.
    pub kind: FunctionKind,
    pub function: u32,
    /// For a grouped table: takes an old value back out.
    pub subtractor: Option<u32>,
    /// For a cogroup: the aggregator of each input node.
    pub cogroup: Vec<(usize, u32)>,
}

/// A count as stores keep it: an `i64`, big-endian (Kafka's `LongSerializer`).
pub(crate) fn encode_count(count: i64) -> Bytes {
    Bytes::copy_from_slice(&count.to_be_bytes())
}

/// A stored count; anything but 8 bytes reads as 0.
pub(crate) fn decode_count(v: &[u8]) -> i64 {
    <[u8; 8]>::try_from(v).map(i64::from_be_bytes).unwrap_or(0)
}

/// Records for one plugin call, with the store key, the timestamp the
/// result takes and the input record of each.
type Calls = (Vec<Record>, Vec<(Bytes, i64, u32)>);

impl Operator for Aggregate {
    /// Records go to the plugin in rounds with at most one record per key,
    /// each carrying its key's current aggregate; a record the function
    /// rejects leaves its key's aggregate as it was. For a grouped table,
    /// records marked with [`SUBTRACT_HEADER`] go to the subtractor.
    fn process(&mut self, cx: &mut Cx<'_>, from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        let (node, kind, subtractor) = (cx.node, self.kind, self.subtractor);
        // A cogroup folds each input with its own aggregator.
        let function = self.cogroup.iter().find(|(input, _)| *input == from).map_or(self.function, |(_, f)| *f);
        let mut pending: Vec<(Record, u32)> =
            batch.records.into_iter().zip(batch.origins).filter(|(r, _)| r.key.is_some()).collect();
        while !pending.is_empty() {
            let mut seen = HashSet::new();
            let (round, later): (Vec<_>, Vec<_>) =
                pending.into_iter().partition(|(r, _)| seen.insert(r.key.clone().expect("keyed")));
            pending = later;
            // Adds and subtracts of this round, each a batch for one function.
            let mut calls: [Calls; 2] = Default::default();
            for (mut r, origin) in round {
                let key = r.key.clone().expect("keyed");
                let subtract = subtractor.is_some() && r.header(SUBTRACT_HEADER).is_some();
                match cx.store(node)?.get_timestamped(&key)? {
                    // Nothing to take a value out of.
                    None if subtract => {}
                    None if kind == FunctionKind::Reducer => cx.update(node, key, r.value, r.timestamp)?,
                    agg => {
                        let mut timestamp = r.timestamp;
                        if let Some((agg, ts)) = agg {
                            timestamp = timestamp.max(ts);
                            r.headers.push(Header { name: AGGREGATE_HEADER.to_owned(), value: Some(agg) });
                        }
                        let call = &mut calls[subtract as usize];
                        call.0.push(r);
                        call.1.push((key, timestamp, origin));
                    }
                }
            }
            for (i, (records, keys)) in calls.into_iter().enumerate() {
                if records.is_empty() {
                    continue;
                }
                let f = if i == 1 { subtractor.expect("subtracts only with a subtractor") } else { function };
                let outcomes = cx.call(f, kind, &records)?;
                for ((key, timestamp, origin), outcome) in keys.into_iter().zip(outcomes) {
                    match outcome {
                        Outcome::Value(v) => cx.update(node, key, v, timestamp)?,
                        other => cx.reject(node, origin, FailureKind::Function, failure(other, kind))?,
                    }
                }
            }
        }
        Ok(Emit::Nothing)
    }
}
