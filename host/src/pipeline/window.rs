//! Windowed aggregations over time windows (tumbling or hopping): count,
//! aggregate and reduce per key and window, as Kafka Streams'
//! `KStreamWindowAggregate`; and what every windowed aggregation folds with
//! ([`Folder`]).
//!
//! Each task keeps its stream time (the largest timestamp this node has
//! seen) as its store's clock. A record updates every window it falls in that
//! is still open (window end + grace > stream time) and is dropped, and
//! counted in `dropped_late`, from each window that has closed: a late record
//! never lands in a newer window. Aggregates live in the node's store under
//! windowed keys (the key, then the window start: [`crate::window`]) and are
//! passed on as the store flushes, with the latest timestamp folded into
//! each window.

use bytes::Bytes;

use crate::plugin::{AGGREGATE_HEADER, FunctionKind, Outcome};
use crate::record::{Header, Record};
use crate::window::{TimeWindows, windowed_key};

use super::ProcessError;
use super::aggregate::{count_into, decode_count, encode_count, fold};
use super::context::{Cx, FailureKind, failure};
use super::operator::{Batch, Emit, Operator};

/// What a windowed aggregation folds with.
#[derive(Clone, Copy)]
pub(crate) enum Folder {
    /// Counts records.
    Count,
    /// A plugin aggregator or reducer.
    Function { kind: FunctionKind, function: u32 },
}

impl Folder {
    /// Folds record `r` into `agg` (`None`: the aggregate's initial value).
    /// `None` if the plugin failed on the record (the error policy has then
    /// been applied to `origin`).
    pub fn fold_one(
        self,
        cx: &mut Cx<'_>,
        r: &Record,
        origin: u32,
        agg: Option<Bytes>,
    ) -> Result<Option<Option<Bytes>>, ProcessError> {
        match self {
            Folder::Count => Ok(Some(Some(encode_count(agg.as_deref().map_or(0, decode_count) + 1)))),
            Folder::Function { kind: FunctionKind::Reducer, .. } if agg.is_none() => Ok(Some(r.value.clone())),
            Folder::Function { kind, function } => {
                let mut call = r.clone();
                if agg.is_some() {
                    call.headers.push(Header { name: AGGREGATE_HEADER.to_owned(), value: agg });
                }
                one_call(cx, function, kind, call, origin)
            }
        }
    }

    /// Merges a session's aggregate into the aggregate merged so far
    /// (`None` before the first session): counts add up, a reducer reduces
    /// them, an aggregator's sessions go to its `merger`.
    pub fn merge(
        self,
        cx: &mut Cx<'_>,
        merger: Option<u32>,
        merged: Option<Bytes>,
        session: Bytes,
        origin: u32,
    ) -> Result<Option<Option<Bytes>>, ProcessError> {
        let call = |agg: Option<Bytes>| {
            let mut r = Record { key: None, value: Some(session.clone()), timestamp: 0, headers: Vec::new() };
            if agg.is_some() {
                r.headers.push(Header { name: AGGREGATE_HEADER.to_owned(), value: agg });
            }
            r
        };
        match (self, merger) {
            (Folder::Count, _) => {
                let sum = merged.as_deref().map_or(0, decode_count) + decode_count(&session);
                Ok(Some(Some(encode_count(sum))))
            }
            (Folder::Function { kind: FunctionKind::Reducer, .. }, _) if merged.is_none() => Ok(Some(Some(session))),
            (Folder::Function { kind: FunctionKind::Reducer, function }, _) => {
                one_call(cx, function, FunctionKind::Reducer, call(merged), origin)
            }
            (Folder::Function { .. }, Some(merger)) => one_call(cx, merger, FunctionKind::Merger, call(merged), origin),
            (Folder::Function { .. }, None) => {
                unreachable!("the topology gives session aggregates a merger")
            }
        }
    }
}

/// Calls `function` over one record for a value; `None` if it failed (the
/// error policy applied to `origin`).
fn one_call(
    cx: &mut Cx<'_>,
    function: u32,
    kind: FunctionKind,
    call: Record,
    origin: u32,
) -> Result<Option<Option<Bytes>>, ProcessError> {
    let mut outcomes = cx.call(function, kind, std::slice::from_ref(&call))?;
    let outcome = outcomes.pop().unwrap_or(Outcome::Value(None));
    cx.recycle(outcomes);
    match outcome {
        Outcome::Value(v) => Ok(Some(v)),
        other => {
            cx.reject(cx.node, origin, FailureKind::Function, failure(other, kind))?;
            Ok(None)
        }
    }
}

/// Aggregates per key and time window.
pub(crate) struct WindowAggregate {
    pub windows: TimeWindows,
    pub folder: Folder,
}

impl Operator for WindowAggregate {
    fn process(&mut self, cx: &mut Cx<'_>, _from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        let node = cx.node;
        let windows = self.windows;
        let mut items = Vec::with_capacity(batch.len());
        let mut time = cx.store(node)?.clock().first().copied().unwrap_or(i64::MIN);
        for (r, origin) in batch.records.into_iter().zip(batch.origins) {
            let Some(key) = r.key.clone() else { continue };
            time = time.max(r.timestamp);
            for start in windows.starts(r.timestamp) {
                if windows.is_closed(start, time) {
                    tracing::debug!(
                        node = %cx.shared.names[node], window_start = start, stream_time = time,
                        "dropping a record for a closed window (end {} + grace {})", start + windows.size, windows.grace
                    );
                    cx.shared.stats.dropped_late += 1;
                    continue;
                }
                let key = windowed_key(&key, start);
                match self.folder {
                    Folder::Count => count_into(cx, node, key, 1, r.timestamp)?,
                    Folder::Function { .. } => items.push((key, r.clone(), origin)),
                }
            }
        }
        cx.store(node)?.set_clock(&[time]);
        if let Folder::Function { kind, function } = self.folder {
            fold(cx, node, kind, function, None, items)?;
        }
        Ok(Emit::Nothing)
    }
}
