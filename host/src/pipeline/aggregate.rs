//! Aggregations of keyed streams and grouped tables into a store: count,
//! and aggregate/reduce/cogroup with plugin functions. Each passes on a
//! key's new aggregate when its store flushes.

use std::collections::{HashMap, HashSet};

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
            count_into(cx, node, key, delta, r.timestamp)?;
        }
        Ok(Emit::Nothing)
    }
}

/// Adds `delta` to the count at `key` of the node's store, an update at
/// `timestamp` (the count keeps the latest timestamp it has seen).
pub(crate) fn count_into(
    cx: &mut Cx<'_>,
    node: usize,
    key: Bytes,
    delta: i64,
    timestamp: i64,
) -> Result<(), ProcessError> {
    cx.update_with(node, key, |current| {
        let (count, timestamp) = match current {
            Some((v, ts)) => (decode_count(&v), ts.max(timestamp)),
            None => (0, timestamp),
        };
        (Some(encode_count(count + delta)), timestamp)
    })
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

/// Records for one plugin call, with the position, store key, result
/// timestamp and input record of each.
type Calls = (Vec<Record>, Vec<(usize, Bytes, i64, u32)>);

impl Operator for Aggregate {
    /// Folds each keyed record into its key's aggregate ([`fold`]).
    fn process(&mut self, cx: &mut Cx<'_>, from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        // A cogroup folds each input with its own aggregator.
        let function = self.cogroup.iter().find(|(input, _)| *input == from).map_or(self.function, |(_, f)| *f);
        let items = batch
            .records
            .into_iter()
            .zip(batch.origins)
            .filter_map(|(r, origin)| Some((r.key.clone()?, r, origin)))
            .collect();
        fold(cx, cx.node, self.kind, function, self.subtractor, items)?;
        Ok(Emit::Nothing)
    }
}

/// Folds records into the aggregates of the node's store, each `(store key,
/// record, origin)` into the aggregate at its store key. Records go to the
/// plugin in rounds with at most one record per store key, each carrying the
/// current aggregate in the [`AGGREGATE_HEADER`]; a record the function
/// rejects leaves the aggregate as it was. With a `subtractor`, records
/// marked with [`SUBTRACT_HEADER`] go to it instead. An aggregate keeps the
/// latest timestamp of the records folded into it.
///
/// The store is updated in the order of `items`, one update per record (as
/// if each record were processed alone, as Kafka Streams does), whatever
/// rounds the calls took.
pub(crate) fn fold(
    cx: &mut Cx<'_>,
    node: usize,
    kind: FunctionKind,
    function: u32,
    subtractor: Option<u32>,
    items: Vec<(Bytes, Record, u32)>,
) -> Result<(), ProcessError> {
    // Each key's aggregate as the records folded so far left it.
    let mut latest: HashMap<Bytes, Option<(Bytes, i64)>> = HashMap::new();
    // The update each record makes, by its position in `items`.
    let mut updates: Vec<Option<(Bytes, Option<Bytes>, i64)>> = vec![None; items.len()];
    let mut pending: Vec<(usize, Bytes, Record, u32)> =
        items.into_iter().enumerate().map(|(i, (key, r, origin))| (i, key, r, origin)).collect();
    while !pending.is_empty() {
        let mut seen = HashSet::new();
        let (round, later): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(_, key, _, _)| seen.insert(key.clone()));
        pending = later;
        // Adds and subtracts of this round, each a batch for one function.
        let mut calls: [Calls; 2] = Default::default();
        for (i, key, mut r, origin) in round {
            let subtract = subtractor.is_some() && r.header(SUBTRACT_HEADER).is_some();
            let current = match latest.get(&key) {
                Some(agg) => agg.clone(),
                None => cx.store(node)?.get_timestamped(&key)?,
            };
            match current {
                // Nothing to take a value out of.
                None if subtract => {}
                None if kind == FunctionKind::Reducer => {
                    latest.insert(key.clone(), r.value.clone().map(|v| (v, r.timestamp)));
                    updates[i] = Some((key, r.value, r.timestamp));
                }
                agg => {
                    let mut timestamp = r.timestamp;
                    if let Some((agg, ts)) = agg {
                        timestamp = timestamp.max(ts);
                        r.headers.push(Header { name: AGGREGATE_HEADER.to_owned(), value: Some(agg) });
                    }
                    let call = &mut calls[subtract as usize];
                    call.0.push(r);
                    call.1.push((i, key, timestamp, origin));
                }
            }
        }
        for (c, (records, keys)) in calls.into_iter().enumerate() {
            if records.is_empty() {
                continue;
            }
            let f = if c == 1 { subtractor.expect("subtracts only with a subtractor") } else { function };
            let outcomes = cx.call(f, kind, &records)?;
            for ((i, key, timestamp, origin), outcome) in keys.into_iter().zip(outcomes) {
                match outcome {
                    Outcome::Value(v) => {
                        latest.insert(key.clone(), v.clone().map(|v| (v, timestamp)));
                        updates[i] = Some((key, v, timestamp));
                    }
                    other => cx.reject(node, origin, FailureKind::Function, failure(other, kind))?,
                }
            }
        }
    }
    for (key, value, timestamp) in updates.into_iter().flatten() {
        cx.update(node, key, value, timestamp)?;
    }
    Ok(())
}
