//! Session windows (Kafka Streams' `KStreamSessionWindowAggregate`): a
//! session of a key runs from its first record's timestamp to its last
//! one's, and records at most `gap` ms from it join it.
//!
//! A record looks up the key's sessions that end no earlier than `gap` before
//! it and start no later than `gap` after it. With none, it starts a session
//! of its own; otherwise it bridges them: their aggregates are merged (in
//! the store's order, the merger starting from the aggregate's initial
//! value), each merged session is deleted (its tombstone passes on) and the
//! record is folded into one session spanning them all. A record whose
//! session would end before stream time - gap - grace is dropped and counted
//! in `dropped_late`.
//!
//! Sessions live in the node's store under session-windowed keys (the key,
//! then end and start: [`crate::window::session_key`]), so a key's sessions
//! sort by end; each update passes on as the store flushes, with the
//! session's end as its timestamp. The stream time is the store's clock.

use bytes::Bytes;

use crate::window::{SessionWindows, session_key, split_session_key};

use super::ProcessError;
use super::context::Cx;
use super::operator::{Batch, Emit, Operator};
use super::window::Folder;

/// Aggregates per key and session.
pub(crate) struct SessionAggregate {
    pub windows: SessionWindows,
    pub folder: Folder,
    /// An aggregator's merger.
    pub merger: Option<u32>,
}

/// A stored session: its store key, start, end and aggregate.
struct Session {
    key: Bytes,
    start: i64,
    end: i64,
    agg: Bytes,
}

impl Operator for SessionAggregate {
    fn process(&mut self, cx: &mut Cx<'_>, _from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        let node = cx.node;
        let (gap, grace) = (self.windows.gap, self.windows.grace);
        let mut time = cx.store(node)?.clock().first().copied().unwrap_or(i64::MIN);
        for (r, origin) in batch.records.into_iter().zip(batch.origins) {
            let Some(key) = r.key.clone() else { continue };
            let ts = r.timestamp;
            time = time.max(ts);
            let close = time.saturating_sub(grace + gap);
            let sessions = sessions(cx, node, &key, ts - gap, ts + gap)?;
            let (mut start, mut end) = (ts, ts);
            let mut merged = None;
            let mut failed = false;
            for s in &sessions {
                match self.folder.merge(cx, self.merger, merged.take(), s.agg.clone(), origin)? {
                    Some(agg) => merged = agg,
                    None => failed = true,
                }
                (start, end) = (start.min(s.start), end.max(s.end));
            }
            if failed {
                continue;
            }
            if end < close {
                tracing::debug!(
                    node = %cx.shared.names[node], session_start = start, session_end = end, stream_time = time,
                    "dropping a record for a closed session (end + gap {gap} + grace {grace} passed)"
                );
                cx.shared.stats.dropped_late += 1;
                continue;
            }
            let Some(agg) = self.folder.fold_one(cx, &r, origin, merged)? else { continue };
            if (start, end) != (ts, ts) {
                for s in sessions {
                    cx.update(node, s.key, None, s.end)?;
                }
            }
            cx.update(node, session_key(&key, start, end), agg, end)?;
        }
        cx.store(node)?.set_clock(&[time]);
        Ok(Emit::Nothing)
    }
}

/// The sessions of `key` that end at `earliest_end` or later and start at
/// `latest_start` or earlier, by end.
fn sessions(
    cx: &mut Cx<'_>,
    node: usize,
    key: &[u8],
    earliest_end: i64,
    latest_start: i64,
) -> Result<Vec<Session>, ProcessError> {
    let from = session_key(key, 0, earliest_end.max(0));
    // Past every end (ends are never negative, so their first byte is below
    // 0x80).
    let mut to = key.to_vec();
    to.push(0x80);
    let entries = cx.store(node)?.key_range_timestamped(key, Some(&from[..key.len() + 8]), Some(&to), None)?;
    Ok(entries
        .into_iter()
        .filter_map(|(k, agg, _)| {
            let (_, start, end) = split_session_key(&k).filter(|(k, _, _)| *k == key)?;
            (start <= latest_start).then(|| Session { key: Bytes::from(k), start, end, agg: Bytes::from(agg) })
        })
        .collect())
}
