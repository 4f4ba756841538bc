//! Stream-stream joins, as Kafka Streams' `KStreamKStreamJoin` (4.x, with
//! its fix for spurious left/outer results).
//!
//! Each side's records wait in that side's window store for partners from
//! the other side: a left record at `t` joins right records from `t -
//! before` to `t + after`, a right record left records from `t - after` to
//! `t + before`, both bounds inclusive. A joined record has the larger of
//! the two timestamps.
//!
//! In a left (or outer) join a record that finds no partner waits in the
//! *unmatched* store until its window has closed (stream time passed its
//! timestamp + the window on the other side + grace) and is then joined
//! with nothing; a partner arriving in time takes it out of the store first.
//! Stream time is shared by both sides of a task, and the unmatched store is
//! looked at only when a record does not go back in time; what has closed
//! is passed on before the record's own results, in the store's order:
//! timestamp, then right side before left, then key. A record so late that
//! its whole window has already passed is joined with nothing at once.
//!
//! A window store keeps records `before + after + grace` ms after the
//! largest timestamp it has seen; older records are neither stored nor
//! found (Kafka Streams' retention).
//!
//! Layouts (Kafka Streams' where it has one):
//! - a window store's key is the record key, its timestamp (8 bytes) and a
//!   sequence number (4 bytes, big-endian), so records with equal keys and
//!   timestamps are all kept, in arrival order;
//! - an unmatched store's key is the timestamp (8 bytes), the side (1 for
//!   left, 0 for right) and the key; its value is every such record's value
//!   in arrival order, each as a 4-byte big-endian length, the side byte and
//!   the value.
//!
//! Stream time, each store's largest timestamp and the sequence number are
//! the left window store's clock, committed with its changelog: a restart
//! goes on with them (Kafka Streams starts its join's clocks over).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::plugin::JOIN_RIGHT_HEADER;
use crate::record::{Header, Record};
use crate::window::JoinWindows;

use super::ProcessError;
use super::context::Cx;
use super::join::join;
use super::operator::{Batch, Emit, Operator};

const LEFT: usize = 0;
const RIGHT: usize = 1;

/// Joins two streams within a window.
pub(crate) struct StreamStreamJoin {
    pub joiner: u32,
    pub windows: JoinWindows,
    /// Which sides are joined with nothing when they find no partner:
    /// `[left, right]`.
    pub outer: [bool; 2],
    /// The window store of each side.
    pub sides: [usize; 2],
    /// The unmatched store (left and outer joins).
    pub unmatched: Option<usize>,
    /// The left input node; records from the other input are the right
    /// side's.
    pub left_input: usize,
}

/// A task's clocks for the join, kept as the left window store's clock.
#[derive(Debug, Clone, Copy)]
struct JoinTime {
    /// The largest timestamp either side has seen.
    stream: i64,
    /// The smallest timestamp in the unmatched store (as of its last scan,
    /// lowered by every record put in since).
    min_unmatched: i64,
    /// Each side's window store's largest timestamp.
    observed: [i64; 2],
    /// The next sequence number of a window store key.
    seq: u32,
}

impl JoinTime {
    fn from_clock(clock: &[i64]) -> JoinTime {
        match *clock {
            [stream, min_unmatched, left, right, seq] => {
                JoinTime { stream, min_unmatched, observed: [left, right], seq: seq as u32 }
            }
            _ => JoinTime { stream: -1, min_unmatched: i64::MAX, observed: [-1, -1], seq: 0 },
        }
    }

    fn to_clock(self) -> [i64; 5] {
        [self.stream, self.min_unmatched, self.observed[0], self.observed[1], i64::from(self.seq)]
    }
}

/// A join result to make: the left and right values (either may be
/// missing) become the joiner's arguments.
struct Pair {
    key: Option<Bytes>,
    left: Option<Bytes>,
    right: Option<Bytes>,
    timestamp: i64,
    headers: Vec<Header>,
    origin: u32,
}

impl Pair {
    /// The joiner's input record: the left value, the right one in the
    /// [`JOIN_RIGHT_HEADER`].
    fn into_call(self, out: &mut Batch) {
        let mut headers = self.headers;
        if let Some(right) = self.right {
            headers.push(Header { name: JOIN_RIGHT_HEADER.to_owned(), value: Some(right) });
        }
        out.push(Record { key: self.key, value: self.left, timestamp: self.timestamp, headers }, self.origin);
    }
}

/// `[this, other]` as `[left, right]`, for a record of `side`.
fn sides<T>(side: usize, this: T, other: T) -> (T, T) {
    if side == LEFT { (this, other) } else { (other, this) }
}

impl Operator for StreamStreamJoin {
    fn process(&mut self, cx: &mut Cx<'_>, from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        let side = if from == self.left_input { LEFT } else { RIGHT };
        let other = 1 - side;
        let w = self.windows;
        // How far back and ahead of this side's records the other side's
        // partners may be.
        let (back, ahead) = if side == LEFT { (w.before, w.after) } else { (w.after, w.before) };
        let retention = w.retention();
        let mut t = JoinTime::from_clock(cx.store_at(self.sides[LEFT])?.clock());
        let mut pairs = Vec::new();
        for (r, origin) in batch.records.into_iter().zip(batch.origins) {
            let ts = r.timestamp;
            t.stream = t.stream.max(ts);
            let (key, value) = match (r.key, r.value) {
                (Some(k), Some(v)) => (k, v),
                // A record without a key meets no partner: an outer side
                // joins it with nothing at once.
                (None, Some(v)) if self.outer[side] => {
                    let (left, right) = sides(side, Some(v), None);
                    pairs.push(Pair { key: None, left, right, timestamp: ts, headers: r.headers, origin });
                    continue;
                }
                // Without a value there is nothing to join (Kafka Streams
                // skips such records too).
                _ => continue,
            };
            if let Some(store) = self.unmatched
                && ts == t.stream
            {
                self.pass_on_closed(cx, store, &mut t, ahead, &r.headers, origin, &mut pairs)?;
            }
            let first = (ts - back).max(0).max(t.observed[other] - retention + 1);
            let last = (ts + ahead).max(0);
            let partners = if first <= last { fetch(cx, self.sides[other], &key, first, last)? } else { Vec::new() };
            if partners.is_empty() && self.outer[side] {
                match self.unmatched {
                    Some(store) if last >= t.stream => {
                        t.min_unmatched = t.min_unmatched.min(ts);
                        wait_unmatched(cx, store, side, &key, &value, ts)?;
                    }
                    _ => {
                        let (left, right) = sides(side, Some(value.clone()), None);
                        let headers = r.headers.clone();
                        pairs.push(Pair { key: Some(key.clone()), left, right, timestamp: ts, headers, origin });
                    }
                }
            }
            for (partner_ts, partner) in partners {
                if let Some(store) = self.unmatched {
                    // The partner has found one: it is no longer unmatched.
                    let waiting = unmatched_key(partner_ts, other, &key);
                    if cx.store_at(store)?.get(&waiting)?.is_some() {
                        cx.update_at(store, waiting, None, partner_ts)?;
                    }
                }
                let (left, right) = sides(side, Some(value.clone()), Some(partner));
                let (key, headers) = (Some(key.clone()), r.headers.clone());
                pairs.push(Pair { key, left, right, timestamp: ts.max(partner_ts), headers, origin });
            }
            // The record waits for partners still to come.
            t.observed[side] = t.observed[side].max(ts);
            if ts > t.observed[side] - retention {
                cx.update_at(self.sides[side], window_key(&key, ts, t.seq), Some(value), ts)?;
                t.seq = (t.seq + 1) & 0x7FFF_FFFF;
            }
        }
        cx.store_at(self.sides[LEFT])?.set_clock(&t.to_clock());
        let mut calls = Batch::with_capacity(pairs.len());
        pairs.into_iter().for_each(|p| p.into_call(&mut calls));
        Ok(Emit::All(join(cx, self.joiner, calls)?))
    }
}

impl StreamStreamJoin {
    /// Joins with nothing every unmatched record whose window has closed,
    /// and takes it out of the store (Kafka Streams'
    /// `emitNonJoinedOuterRecords`, step for step, so the same records go
    /// out at the same moments). `ahead` is how far the current side looks
    /// ahead: the quick check before the scan uses it.
    #[allow(clippy::too_many_arguments)]
    fn pass_on_closed(
        &self,
        cx: &mut Cx<'_>,
        store: usize,
        t: &mut JoinTime,
        ahead: i64,
        headers: &[Header],
        origin: u32,
        pairs: &mut Vec<Pair>,
    ) -> Result<(), ProcessError> {
        let grace = self.windows.grace;
        // Wrapping as Kafka Streams' Java arithmetic does: with nothing known
        // to wait (the minimum at its maximum) the check lets the scan run.
        if t.min_unmatched.wrapping_add(ahead + grace) >= t.stream {
            return Ok(());
        }
        t.min_unmatched = i64::MAX;
        let waiting = cx.store_at(store)?.range_timestamped(None, None, usize::MAX)?;
        let mut open = [false, false];
        for (k, list, _) in waiting {
            let Some((ts, side, key)) = split_unmatched_key(&k) else { continue };
            t.min_unmatched = ts;
            if open == [true, true] {
                break;
            }
            // A left record waits for right records up to `after` later, a
            // right one for left records up to `before` later.
            let wait = if side == LEFT { self.windows.after } else { self.windows.before };
            if ts + wait + grace >= t.stream {
                open[side] = true;
                continue;
            }
            for value in decode_list(&list) {
                let (left, right) = sides(side, Some(value), None);
                let key = Some(Bytes::copy_from_slice(key));
                pairs.push(Pair { key, left, right, timestamp: ts, headers: headers.to_vec(), origin });
            }
            cx.update_at(store, Bytes::from(k), None, ts)?;
        }
        Ok(())
    }
}

/// A window store key: the key, the timestamp, the sequence number.
fn window_key(key: &[u8], ts: i64, seq: u32) -> Bytes {
    let mut b = BytesMut::with_capacity(key.len() + 12);
    b.put_slice(key);
    b.put_i64(ts);
    b.put_u32(seq);
    b.freeze()
}

/// The records of window store `store` with `key` and a timestamp from
/// `first` to `last`, in timestamp and then arrival order.
fn fetch(cx: &mut Cx<'_>, store: usize, key: &[u8], first: i64, last: i64) -> Result<Vec<(i64, Bytes)>, ProcessError> {
    let (from, to) = (window_key(key, first, 0), window_key(key, last.saturating_add(1), 0));
    let (from, to) = (Some(&from[..key.len() + 8]), Some(&to[..key.len() + 8]));
    let entries = cx.store_at(store)?.key_range_timestamped(key, from, to, Some((first, last)))?;
    // Another key that starts with this one may sort in between.
    Ok(entries
        .into_iter()
        .filter(|(k, _, _)| k.len() == key.len() + 12 && k.starts_with(key))
        .map(|(_, v, ts)| (ts, Bytes::from(v)))
        .collect())
}

/// An unmatched store key: timestamp, side (1 left, 0 right), key.
fn unmatched_key(ts: i64, side: usize, key: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(9 + key.len());
    b.put_i64(ts);
    b.put_u8(u8::from(side == LEFT));
    b.put_slice(key);
    b.freeze()
}

fn split_unmatched_key(k: &[u8]) -> Option<(i64, usize, &[u8])> {
    let ts = i64::from_be_bytes(k.get(..8)?.try_into().ok()?);
    let side = if *k.get(8)? == 1 { LEFT } else { RIGHT };
    Some((ts, side, &k[9..]))
}

/// Adds a record to the unmatched store's list for its timestamp, side and
/// key.
fn wait_unmatched(
    cx: &mut Cx<'_>,
    store: usize,
    side: usize,
    key: &[u8],
    value: &[u8],
    ts: i64,
) -> Result<(), ProcessError> {
    let k = unmatched_key(ts, side, key);
    let mut list = BytesMut::new();
    if let Some(existing) = cx.store_at(store)?.get(&k)? {
        list.put_slice(&existing);
    }
    list.put_u32(value.len() as u32 + 1);
    list.put_u8(u8::from(side == LEFT));
    list.put_slice(value);
    cx.update_at(store, k, Some(list.freeze()), ts)
}

/// The values of an unmatched store list (a truncated tail is ignored).
fn decode_list(mut list: &[u8]) -> Vec<Bytes> {
    let mut values = Vec::new();
    while list.len() >= 4 {
        let len = list.get_u32() as usize;
        if len == 0 || len > list.len() {
            break;
        }
        values.push(Bytes::copy_from_slice(&list[1..len]));
        list.advance(len);
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmatched_keys_sort_by_time_then_right_before_left() {
        let mut keys = [unmatched_key(5, LEFT, b"a"), unmatched_key(5, RIGHT, b"b"), unmatched_key(4, LEFT, b"z")];
        keys.sort();
        let split: Vec<_> = keys.iter().map(|k| split_unmatched_key(k).unwrap()).collect();
        assert_eq!(split, [(4, LEFT, &b"z"[..]), (5, RIGHT, &b"b"[..]), (5, LEFT, &b"a"[..])]);
    }

    #[test]
    fn window_keys_sort_by_key_time_and_arrival() {
        let k = window_key(b"k", 7, 3);
        assert_eq!(&k[..], b"k\0\0\0\0\0\0\0\x07\0\0\0\x03");
        assert!(window_key(b"k", 7, 4) > k && window_key(b"k", 8, 0) > window_key(b"k", 7, 9));
    }
}
