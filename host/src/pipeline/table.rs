//! Operators over tables (changelogs of updates per key, where a record
//! without a value deletes its key): a table's filter and map-values,
//! materializing a table in a store, re-keying a table's updates for a
//! grouped aggregation, and the updates of a versioned table.

use std::collections::HashMap;

use bytes::Bytes;

use crate::plugin::{FunctionKind, Outcome};
use crate::record::Record;
use crate::store::{PutOutcome, VersionedStore};

use super::context::{Cx, failure};
use super::operator::{Batch, Emit, Operator};
use super::{ProcessError, SUBTRACT_HEADER};

/// A filter or map-values of a table: a tombstone passes on without a call,
/// and an update the filter drops becomes a tombstone for its key, so
/// downstream tables forget the key too.
pub(crate) struct TableStep {
    pub function: u32,
    /// `Predicate` (a filter) or `MapValues`.
    pub kind: FunctionKind,
    /// For a filter: drop the updates for which it holds.
    pub negate: bool,
}

impl Operator for TableStep {
    fn process(&mut self, cx: &mut Cx<'_>, _from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        let live: Vec<Record> = batch.records.iter().filter(|r| r.value.is_some()).cloned().collect();
        let mut outcomes =
            if live.is_empty() { Vec::new() } else { cx.call(self.function, self.kind, &live)? }.into_iter();
        let mut next = Batch::with_capacity(batch.len());
        let mut failures = Vec::new();
        for (mut r, origin) in batch.records.into_iter().zip(batch.origins) {
            if r.value.is_none() {
                next.push(r, origin);
                continue;
            }
            match outcomes.next() {
                Some(Outcome::Keep(keep)) => {
                    if keep == self.negate {
                        r.value = None;
                    }
                    next.push(r, origin);
                }
                Some(Outcome::Value(v)) => {
                    r.value = v;
                    next.push(r, origin);
                }
                other => failures.push((origin, failure(other.unwrap_or(Outcome::Done), self.kind))),
            }
        }
        cx.reject_all(failures)?;
        Ok(Emit::All(next))
    }
}

/// Keeps a table's latest value per key in the node's store; the store
/// passes on its updates as it flushes. Records without a key are dropped.
pub(crate) struct Materialize;

impl Operator for Materialize {
    fn process(&mut self, cx: &mut Cx<'_>, _from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        for r in batch.records {
            let Some(key) = r.key else { continue };
            cx.update(cx.node, key, r.value, r.timestamp)?;
        }
        Ok(Emit::Nothing)
    }
}

/// Re-keys a table's updates for aggregation: for each update, the key's
/// old value (from this node's store) under its old group key, marked as a
/// subtract, then the new value under its new group key. An update whose
/// new group key cannot be computed is rejected and changes nothing.
pub(crate) struct TableGroupBy {
    /// The select-key function.
    pub function: u32,
}

impl Operator for TableGroupBy {
    fn process(&mut self, cx: &mut Cx<'_>, _from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        let node = cx.node;
        // Old values, seeing this batch's earlier updates of the same key.
        let mut latest: HashMap<Bytes, Option<Bytes>> = HashMap::new();
        let mut olds = Vec::with_capacity(batch.len());
        for r in &batch.records {
            let Some(key) = &r.key else {
                olds.push(None);
                continue;
            };
            let old = match latest.get(key) {
                Some(v) => v.clone(),
                None => cx.store(node)?.get(key)?,
            };
            latest.insert(key.clone(), r.value.clone());
            olds.push(old);
        }
        // One select-key call for the olds and the news.
        let mut calls = Vec::with_capacity(batch.len() * 2);
        for (r, old) in batch.records.iter().zip(&olds) {
            if let Some(old) = old {
                calls.push(Record { value: Some(old.clone()), ..r.clone() }.with_header(SUBTRACT_HEADER, "1"));
            }
            if r.key.is_some() && r.value.is_some() {
                calls.push(r.clone());
            }
        }
        let mut keys =
            if calls.is_empty() { Vec::new() } else { cx.call(self.function, FunctionKind::SelectKey, &calls)? }
                .into_iter()
                .zip(calls);
        let mut next = Batch::with_capacity(batch.len() * 2);
        let mut failures = Vec::new();
        for ((r, old), origin) in batch.records.into_iter().zip(olds).zip(batch.origins) {
            let Some(key) = r.key.clone() else { continue };
            let subtract = if old.is_some() { keys.next() } else { None };
            let add = if r.value.is_some() { keys.next() } else { None };
            let rekeyed = |(outcome, mut record): (Outcome, Record)| match outcome {
                Outcome::Key(k) => {
                    record.key = k;
                    Ok(record)
                }
                other => Err(failure(other, FunctionKind::SelectKey)),
            };
            let add = match add.map(rekeyed).transpose() {
                Ok(add) => add,
                Err(e) => {
                    failures.push((origin, e));
                    continue;
                }
            };
            // The old value went in under a key computed the same way; if
            // that fails now there is nothing to take it out of.
            if let Some(Ok(subtract)) = subtract.map(rekeyed)
                && subtract.key.is_some()
            {
                next.push(subtract, origin);
            }
            if let Some(add) = add.filter(|a| a.key.is_some()) {
                next.push(add, origin);
            }
            cx.update(node, key, r.value, r.timestamp)?;
        }
        cx.reject_all(failures)?;
        Ok(Emit::All(next))
    }
}

/// Puts a versioned table's updates (read from its topic) into the table
/// node's versioned store and returns the ones that are now their key's
/// latest version, to pass on at once. As in Kafka Streams' `KTableSource`
/// over a versioned store, an update older than its key's latest goes into
/// the history only, and one older than the history retention is dropped;
/// neither is passed on. A versioned store has no record cache in Kafka
/// Streams, so its updates are not coalesced either. Records without a key
/// are dropped.
pub(crate) fn versioned_updates(
    cx: &mut Cx<'_>,
    node: usize,
    history_retention: i64,
    batch: Batch,
) -> Result<Batch, ProcessError> {
    let (store, out) = cx.store_with_out(node)?;
    let mut store = VersionedStore::open(store, history_retention)?;
    let mut latest = Batch::with_capacity(batch.len());
    for (r, origin) in batch.records.into_iter().zip(batch.origins) {
        let Some(key) = &r.key else { continue };
        match store.put(key, r.value.clone(), r.timestamp, out)? {
            PutOutcome::Latest => latest.push(r, origin),
            PutOutcome::History => {
                tracing::debug!("out-of-order update of a versioned table at {}: kept in its history", r.timestamp);
            }
            PutOutcome::Expired => {
                tracing::warn!(
                    "update of a versioned table at {} is older than its history retention: dropped",
                    r.timestamp
                );
            }
        }
    }
    Ok(latest)
}
