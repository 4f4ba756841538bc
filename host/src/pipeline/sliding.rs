//! Sliding windows, step for step as Kafka Streams'
//! `KStreamSlidingWindowAggregate` (with the backward iteration it uses over
//! its own stores), so the same windows are made and updated in the same
//! order.
//!
//! A window spans `difference` ms, both ends inclusive. Each record gets the
//! window that ends at it (its *left* window: the aggregate of the records
//! up to `difference` before it, plus itself) and, if later records are
//! within `difference` after it, the window that starts just after it (its
//! *right* window, a copy of an existing aggregate). Every existing window
//! that contains the record is updated; the window starting just after the
//! previous record is created when the record falls in it. No window is
//! ever empty. Records earlier than `difference` after the epoch share the
//! window `[0, difference]`.
//!
//! A record whose left window already closed (its end + grace passed stream
//! time) is dropped; an update of a closed window is skipped. Both count in
//! `dropped_late`. Windows live in the node's store under time-windowed keys
//! (the key, then the start), each stamped with the largest timestamp in
//! it, which the updates passed on carry. The stream time is the store's
//! clock.

use std::collections::HashSet;

use bytes::Bytes;

use crate::record::Record;
use crate::window::{SlidingWindows, split_windowed_key, windowed_key};

use super::ProcessError;
use super::context::Cx;
use super::operator::{Batch, Emit, Operator};
use super::window::Folder;

/// Aggregates per key and sliding window.
pub(crate) struct SlidingAggregate {
    pub windows: SlidingWindows,
    pub folder: Folder,
}

/// A window's aggregate and the largest timestamp in it.
type Agg = (Bytes, i64);

/// One record's pass over its key's windows.
struct Step<'a> {
    folder: Folder,
    difference: i64,
    key: &'a [u8],
    record: &'a Record,
    origin: u32,
    /// Windows ending before this are closed.
    close: i64,
}

impl Operator for SlidingAggregate {
    fn process(&mut self, cx: &mut Cx<'_>, _from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        let node = cx.node;
        let (difference, grace) = (self.windows.difference, self.windows.grace);
        let mut time = cx.store(node)?.clock().first().copied().unwrap_or(i64::MIN);
        for (r, origin) in batch.records.iter().zip(batch.origins.iter().copied()) {
            let (Some(key), Some(_)) = (&r.key, &r.value) else { continue };
            let ts = r.timestamp;
            time = time.max(ts);
            let close = time.saturating_sub(grace);
            if ts + difference < close {
                tracing::debug!(
                    node = %cx.shared.names[node], timestamp = ts, stream_time = time,
                    "dropping a record whose sliding window closed (difference {difference} + grace {grace} passed)"
                );
                cx.shared.stats.dropped_late += 1;
                continue;
            }
            let step = Step { folder: self.folder, difference, key, record: r, origin, close };
            if ts < difference { step.early(cx)? } else { step.latest_first(cx)? }
        }
        cx.store(node)?.set_clock(&[time]);
        Ok(Emit::Nothing)
    }
}

impl Step<'_> {
    /// The key's windows starting from `first` to `last`, by start.
    fn windows(&self, cx: &mut Cx<'_>, first: i64, last: i64) -> Result<Vec<(i64, Agg)>, ProcessError> {
        let (from, to) = (windowed_key(self.key, first), windowed_key(self.key, last + 1));
        let entries = cx.store(cx.node)?.key_range_timestamped(self.key, Some(&from), Some(&to), None)?;
        Ok(entries
            .into_iter()
            .filter_map(|(k, v, ts)| {
                let (key, start) = split_windowed_key(&k)?;
                (key == self.key).then(|| (start, (Bytes::from(v), ts)))
            })
            .collect())
    }

    /// Folds the record into the window at `start` whose aggregate is `agg`
    /// (`None`: a new window, from the initial aggregate), unless the window
    /// has closed.
    fn update(&self, cx: &mut Cx<'_>, start: i64, agg: Option<Agg>) -> Result<(), ProcessError> {
        if start + self.difference < self.close {
            cx.shared.stats.dropped_late += 1;
            return Ok(());
        }
        let ts = self.record.timestamp;
        let (agg, stamp) = match agg {
            Some((agg, stamp)) => (Some(agg), stamp.max(ts)),
            None => (None, ts),
        };
        if let Some(new) = self.folder.fold_one(cx, self.record, self.origin, agg)? {
            cx.update(cx.node, windowed_key(self.key, start), new, stamp)?;
        }
        Ok(())
    }

    /// Puts a copy of `agg` as the record's right window.
    fn right_window(&self, cx: &mut Cx<'_>, (agg, stamp): Agg) -> Result<(), ProcessError> {
        cx.update(cx.node, windowed_key(self.key, self.record.timestamp + 1), Some(agg), stamp)
    }

    /// A record at `difference` or later (Kafka Streams' `processReverse`,
    /// which it uses with its own stores): the key's windows from the latest
    /// start back.
    fn latest_first(&self, cx: &mut Cx<'_>) -> Result<(), ProcessError> {
        let (ts, difference) = (self.record.timestamp, self.difference);
        let mut starts = HashSet::new();
        let (mut left, mut right) = (None, None);
        let (mut left_made, mut right_made) = (false, false);
        let mut previous = None;
        for (start, agg) in self.windows(cx, (ts - 2 * difference).max(0), ts + 1)?.into_iter().rev() {
            starts.insert(start);
            let end = start + difference;
            if start == ts + 1 {
                right_made = true;
            } else if end > ts {
                if right.is_none() {
                    right = Some(agg.clone());
                }
                self.update(cx, start, Some(agg))?;
            } else if end == ts {
                left_made = true;
                let latest = agg.1;
                self.update(cx, start, Some(agg))?;
                if latest < ts {
                    previous = Some(latest);
                } else {
                    // A record at this very time made every window already.
                    return Ok(());
                }
            } else {
                previous = Some(agg.1);
                left = Some(agg);
                break;
            }
        }
        if let Some(previous) = previous {
            let start = previous + 1;
            if !starts.contains(&start) && start + difference >= ts {
                self.update(cx, start, None)?;
            }
        }
        if !left_made {
            let agg = match (previous, left) {
                (Some(previous), Some((agg, _))) if ts - difference <= previous => Some((agg, ts)),
                _ => None,
            };
            self.update(cx, ts - difference, agg)?;
        }
        if let Some(right) = right.filter(|(_, stamp)| !right_made && *stamp > ts) {
            self.right_window(cx, right)?;
        }
        Ok(())
    }

    /// A record before `difference` (Kafka Streams' `processEarly`): its
    /// left window is `[0, difference]`.
    fn early(&self, cx: &mut Cx<'_>) -> Result<(), ProcessError> {
        let ts = self.record.timestamp;
        let mut starts = HashSet::new();
        let (mut combined, mut right) = (None, None);
        let mut right_made = false;
        let mut previous = None;
        for (start, agg) in self.windows(cx, 0, ts + 1)? {
            starts.insert(start);
            if start == 0 {
                if agg.1 < ts {
                    previous = Some(agg.1);
                }
                combined = Some(agg);
            } else if start <= ts {
                right = Some(agg.clone());
                self.update(cx, start, Some(agg))?;
            } else if start == ts + 1 {
                right_made = true;
            }
        }
        if right.is_none() {
            right = combined.clone().filter(|(_, stamp)| *stamp > ts);
        }
        if let Some(right) = right.filter(|(_, stamp)| !right_made && *stamp > ts) {
            self.right_window(cx, right)?;
        }
        if let Some(previous) = previous
            && !starts.contains(&(previous + 1))
        {
            self.update(cx, previous + 1, None)?;
        }
        self.update(cx, 0, combined)
    }
}
