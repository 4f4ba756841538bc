//! Joins. A stream-table join (Kafka Streams' `KStreamKTableJoin`) looks
//! each stream record's key up in the table's store as it is at that moment
//! (in a versioned table: the version valid at the record's timestamp) and
//! calls the plugin joiner with both values; the output keeps the stream
//! record's key and timestamp. Updates of the table produce nothing. (With a
//! grace period, records wait first: `versioned_join`.) Stream
//! records without a value are dropped; without a key, an inner join drops
//! them and a left join joins them with no table value (as Kafka Streams
//! does since 3.7).
//!
//! A table-table join (`KTableKTable{Inner,Left,Outer}Join`) runs on an
//! update of either side: it joins the update with the other table's
//! current value for the key (inner: both present; left: the left one;
//! outer: either) with the larger of their timestamps. The join keeps
//! the keys that have a result in its own store, so a key whose result goes
//! away gets one tombstone, and a delete of a key with no result gets none.
//!
//! A global-table join (`KStreamGlobalKTableJoin`) maps each record to the
//! global table's key with a plugin key mapper (or takes its own key) and
//! looks it up in the instance's full copy of the table; a record that maps
//! to no key is dropped, in a left join too.

use bytes::Bytes;

use crate::plugin::{FunctionKind, JOIN_RIGHT_HEADER, Outcome};
use crate::record::{Header, Record};
use crate::store::VersionedStore;
use crate::topology::JoinKind;

use super::ProcessError;
use super::context::{Cx, failure};
use super::operator::{Batch, Emit, Operator};

/// Joins a stream with a table.
pub(crate) struct StreamTableJoin {
    /// The table node, whose store is read.
    pub table: usize,
    /// For a versioned table, its history retention: records are looked
    /// up as of their timestamp.
    pub history: Option<i64>,
    pub joiner: u32,
    /// A record with no table value joins with none instead of being dropped.
    pub left: bool,
}

impl Operator for StreamTableJoin {
    fn process(&mut self, cx: &mut Cx<'_>, from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        if from == self.table {
            return Ok(Emit::Nothing);
        }
        let mut calls = Batch::with_capacity(batch.len());
        for (mut r, origin) in batch.records.into_iter().zip(batch.origins) {
            if r.value.is_none() {
                continue;
            }
            let right = match (&r.key, self.history) {
                (Some(key), Some(history)) => as_of(cx, self.table, history, key, r.timestamp)?,
                (Some(key), None) => cx.store(self.table)?.get(key)?,
                (None, _) if self.left => None,
                (None, _) => continue,
            };
            if right.is_none() && !self.left {
                continue;
            }
            if let Some(right) = right {
                r.headers.push(Header { name: JOIN_RIGHT_HEADER.to_owned(), value: Some(right) });
            }
            calls.push(r, origin);
        }
        Ok(Emit::All(join(cx, self.joiner, calls)?))
    }
}

/// The value of `key` in the versioned table `table` as of `timestamp`.
pub(super) fn as_of(
    cx: &mut Cx<'_>,
    table: usize,
    history: i64,
    key: &[u8],
    timestamp: i64,
) -> Result<Option<Bytes>, ProcessError> {
    let mut store = VersionedStore::open(cx.store(table)?, history)?;
    Ok(store.get_as_of(key, timestamp)?.map(|(v, _)| v))
}

/// Calls the joiner over records that carry their right value in the
/// [`JOIN_RIGHT_HEADER`] and passes on the joined records: the left
/// record's key, timestamp and headers with the joined value.
pub(super) fn join(cx: &mut Cx<'_>, joiner: u32, calls: Batch) -> Result<Batch, ProcessError> {
    let mut joined = Batch::with_capacity(calls.len());
    for (record, origin) in join_each(cx, joiner, calls)?.into_iter().flatten() {
        joined.push(record, origin);
    }
    Ok(joined)
}

/// Like [`join`], one result per call in order: `None` where the joiner
/// failed (the error policy has been applied to the record).
fn join_each(cx: &mut Cx<'_>, joiner: u32, calls: Batch) -> Result<Vec<Option<(Record, u32)>>, ProcessError> {
    if calls.is_empty() {
        return Ok(Vec::new());
    }
    let outcomes = cx.call(joiner, FunctionKind::Joiner, &calls.records)?;
    let mut joined = Vec::with_capacity(calls.len());
    let mut failures = Vec::new();
    for ((r, origin), outcome) in calls.records.into_iter().zip(calls.origins).zip(outcomes) {
        match outcome {
            Outcome::Value(value) => {
                let headers = r.headers.into_iter().filter(|h| h.name != JOIN_RIGHT_HEADER).collect();
                joined.push(Some((Record { key: r.key, value, timestamp: r.timestamp, headers }, origin)));
            }
            other => {
                failures.push((origin, failure(other, FunctionKind::Joiner)));
                joined.push(None);
            }
        }
    }
    cx.reject_all(failures)?;
    Ok(joined)
}

/// Joins a stream with a global table.
pub(crate) struct GlobalTableJoin {
    /// The global table's store.
    pub store: String,
    /// Maps a record to the table's key; `None`: the record's key.
    pub key_mapper: Option<u32>,
    pub joiner: u32,
    /// A record with no table value joins with none instead of being dropped.
    pub left: bool,
}

impl Operator for GlobalTableJoin {
    fn process(&mut self, cx: &mut Cx<'_>, _from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        let mut batch = batch;
        // Records without a value are dropped before the key mapper sees them.
        let live: Vec<usize> = (0..batch.len()).filter(|&i| batch.records[i].value.is_some()).collect();
        let keys: Vec<Option<Bytes>> = match self.key_mapper {
            None => live.iter().map(|&i| batch.records[i].key.clone()).collect(),
            Some(mapper) => {
                let records: Vec<Record> = live.iter().map(|&i| batch.records[i].clone()).collect();
                let mut keys = Vec::with_capacity(records.len());
                let mut failures = Vec::new();
                for (&i, outcome) in live.iter().zip(cx.call(mapper, FunctionKind::SelectKey, &records)?) {
                    match outcome {
                        Outcome::Key(k) => keys.push(k),
                        other => {
                            failures.push((batch.origins[i], failure(other, FunctionKind::SelectKey)));
                            keys.push(None);
                        }
                    }
                }
                cx.reject_all(failures)?;
                keys
            }
        };
        let Some(table) = cx.shared.stores.globals.get(&self.store).cloned() else {
            return Err(ProcessError::UnknownStore {
                node: cx.shared.names[cx.node].clone(),
                store: self.store.clone(),
            });
        };
        let mut calls = Batch::with_capacity(live.len());
        for (&i, key) in live.iter().zip(keys) {
            let Some(key) = key else { continue };
            let right = table.get(&key)?;
            if right.is_none() && !self.left {
                continue;
            }
            let mut r = std::mem::replace(&mut batch.records[i], Record::new(None::<String>, None::<String>, 0));
            if let Some(right) = right {
                r.headers.push(Header { name: JOIN_RIGHT_HEADER.to_owned(), value: Some(right) });
            }
            calls.push(r, batch.origins[i]);
        }
        Ok(Emit::All(join(cx, self.joiner, calls)?))
    }
}

/// Joins two tables.
pub(crate) struct TableTableJoin {
    pub left: usize,
    pub right: usize,
    pub joiner: u32,
    pub kind: JoinKind,
}

impl Operator for TableTableJoin {
    fn process(&mut self, cx: &mut Cx<'_>, from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        let node = cx.node;
        let mut calls = Batch::with_capacity(batch.len());
        let mut out = Batch::with_capacity(batch.len());
        // Per update, in order: a joined record to come from the joiner, or
        // a tombstone now.
        let mut plan = Vec::with_capacity(batch.len());
        for (r, origin) in batch.records.into_iter().zip(batch.origins) {
            let Some(key) = r.key.clone() else { continue };
            // The updated side as this update left it (its store may hold
            // later updates of the batch already), the other as it is now.
            let update = r.value.clone().map(|v| (v, r.timestamp));
            let (left, right) = if from == self.left {
                (update, cx.store(self.right)?.get_timestamped(&key)?)
            } else {
                (cx.store(self.left)?.get_timestamped(&key)?, update)
            };
            let timestamp =
                [left.as_ref(), right.as_ref()].into_iter().flatten().map(|(_, ts)| *ts).fold(r.timestamp, i64::max);
            let joins = match self.kind {
                JoinKind::Inner => left.is_some() && right.is_some(),
                JoinKind::Left => left.is_some(),
                JoinKind::Outer => left.is_some() || right.is_some(),
            };
            if joins {
                let mut call =
                    Record { key: Some(key.clone()), value: left.map(|(v, _)| v), timestamp, headers: Vec::new() };
                if let Some((right, _)) = right {
                    call.headers.push(Header { name: JOIN_RIGHT_HEADER.to_owned(), value: Some(right) });
                }
                calls.push(call, origin);
                plan.push(None);
            } else if cx.store(node)?.get(&key)?.is_some() {
                cx.update(node, key.clone(), None, timestamp)?;
                plan.push(Some((Record { key: Some(key), value: None, timestamp, headers: Vec::new() }, origin)));
            }
        }
        // One result per call, in order: a failed call leaves its update out.
        let mut joined = join_each(cx, self.joiner, calls)?.into_iter();
        for step in plan {
            let (record, origin) = match step {
                Some(tombstone) => tombstone,
                None => match joined.next().flatten() {
                    Some(j) => j,
                    None => continue,
                },
            };
            if let (Some(key), Some(_)) = (&record.key, &record.value) {
                cx.update(node, key.clone(), Some(Bytes::new()), record.timestamp)?;
            }
            out.push(record, origin);
        }
        Ok(Emit::All(out))
    }
}
