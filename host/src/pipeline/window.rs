//! Windowed aggregations: count, aggregate and reduce per key and time
//! window (tumbling or hopping), as Kafka Streams' `KStreamWindowAggregate`.
//!
//! Each task keeps its stream time (the largest timestamp this node has
//! seen) as its store's clock. A record updates every window it falls in that is still open
//! (window end + grace > stream time) and is dropped, and counted in
//! `dropped_late`, from each window that has closed: a late record never
//! lands in a newer window. Aggregates live in the node's store under
//! windowed keys (the key, then the window start: [`crate::window`]) and are
//! passed on as the store flushes, with the latest timestamp folded into
//! each window.

use crate::plugin::FunctionKind;
use crate::window::{TimeWindows, windowed_key};

use super::ProcessError;
use super::aggregate::{count_into, fold};
use super::context::Cx;
use super::operator::{Batch, Emit, Operator};

/// What a windowed aggregation folds with.
pub(crate) enum Folder {
    /// Counts records.
    Count,
    /// A plugin aggregator or reducer.
    Function { kind: FunctionKind, function: u32 },
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
