//! Suppression (Kafka Streams' `KTable#suppress`): a table's updates wait in
//! a buffer store, and only the latest of each key passes on, later.
//!
//! - `until-window-closes`: an update of a window waits until stream time
//!   reaches the window's close time ([`crate::window::Windows::close_time`]),
//!   then the window's final value passes on, once. A window deleted
//!   meanwhile (a session merged into another) passes nothing.
//! - `until-time-limit`: a key's updates wait until stream time is the limit
//!   past the first of them, then its latest value (a tombstone too) passes
//!   on; the next update of the key starts a new wait.
//!
//! After every update, the waits that are over pass on, oldest first (then by
//! key). With a bound (`max-records`, `max-bytes`), a buffer that goes over
//! either passes its oldest keys on early (`emit-early`) or stops the
//! application (`shut-down`, the default, and the only choice for final
//! results).
//!
//! The buffer store holds `0x01`, the wait's order (8 bytes big-endian: the
//! window's close time, or the time the key's wait began) and the key, with
//! the value after a byte that is 1 for a value and 0 for a tombstone; for a
//! time limit, `0x00` and the key hold when the key's wait began. Results pass on and leave the buffer in one commit, through the
//! store's changelog: after a crash the buffer is as of the last commit, and
//! no result is lost or sent twice. The store's clock holds the stream time,
//! the earliest wait's order, and (with a bound) how many keys and bytes wait.

use bytes::{BufMut, Bytes, BytesMut};

use crate::record::Record;
use crate::topology::{BufferBound, Until, WhenFull};

use super::ProcessError;
use super::context::Cx;
use super::operator::{Batch, Emit, Operator};

/// Holds a table's updates back.
pub(crate) struct Suppress {
    pub until: Until,
    pub bound: BufferBound,
}

const WAIT: u8 = 0;
const HELD: u8 = 1;

/// The buffer's state between calls: the store's clock.
struct State {
    stream_time: i64,
    /// The earliest wait's order (`i64::MAX`: nothing waits).
    first: i64,
    records: u64,
    bytes: u64,
}

impl State {
    fn from_clock(clock: &[i64]) -> State {
        match *clock {
            [stream_time, first, records, bytes] => {
                State { stream_time, first, records: records as u64, bytes: bytes as u64 }
            }
            _ => State { stream_time: i64::MIN, first: i64::MIN, records: 0, bytes: 0 },
        }
    }

    fn to_clock(&self) -> [i64; 4] {
        [self.stream_time, self.first, self.records as i64, self.bytes as i64]
    }
}

fn held_key(order: i64, key: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(9 + key.len());
    b.put_u8(HELD);
    b.put_i64(order);
    b.put_slice(key);
    b.freeze()
}

fn wait_key(key: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(1 + key.len());
    b.put_u8(WAIT);
    b.put_slice(key);
    b.freeze()
}

/// A held update's value: 1 and the value, or 0 for a tombstone.
fn held_value(value: Option<&[u8]>) -> Bytes {
    let mut b = BytesMut::with_capacity(1 + value.map_or(0, <[u8]>::len));
    b.put_u8(u8::from(value.is_some()));
    b.put_slice(value.unwrap_or_default());
    b.freeze()
}

/// What a held key costs against `max-bytes`.
fn size(key: &[u8], held: &[u8]) -> u64 {
    (8 + key.len() + held.len().saturating_sub(1)) as u64
}

impl Suppress {
    fn bounded(&self) -> bool {
        self.bound.max_records.is_some() || self.bound.max_bytes.is_some()
    }

    fn over(&self, st: &State) -> bool {
        self.bound.max_records.is_some_and(|m| st.records > m) || self.bound.max_bytes.is_some_and(|m| st.bytes > m)
    }

    /// Holds one update (one without a key, or whose key is not windowed as
    /// the windows say, is left out).
    fn hold(&self, cx: &mut Cx<'_>, st: &mut State, r: &Record) -> Result<(), ProcessError> {
        let node = cx.node;
        let Some(key) = &r.key else { return Ok(()) };
        let bounded = self.bounded();
        let order = match self.until {
            Until::WindowCloses(windows) => match windows.close_time(key) {
                Some(close) => close,
                None => return Ok(()),
            },
            Until::TimeLimit(_) => match cx.store(node)?.get(&wait_key(key))? {
                Some(start) => i64::from_be_bytes(start[..].try_into().unwrap_or_default()),
                None => {
                    let start = r.timestamp;
                    cx.update(node, wait_key(key), Some(Bytes::copy_from_slice(&start.to_be_bytes())), start)?;
                    start
                }
            },
        };
        let k = held_key(order, key);
        let old = if bounded { cx.store(node)?.get(&k)? } else { None };
        if let Some(old) = &old {
            st.records -= 1;
            st.bytes -= size(key, old);
        }
        // A window that is gone passes nothing on; a key's tombstone does.
        let value = match (self.until, &r.value) {
            (Until::WindowCloses(_), None) => None,
            (_, value) => Some(held_value(value.as_deref())),
        };
        if let Some(held) = &value {
            st.records += 1;
            st.bytes += size(key, held);
            st.first = st.first.min(order);
        }
        cx.update(node, k, value, r.timestamp)
    }

    /// Passes on held keys, oldest first: every one whose order is at most
    /// `up_to`, or (with `None`) as many as it takes for the buffer to fit
    /// its bound. Updates `st.first`.
    fn release(
        &self,
        cx: &mut Cx<'_>,
        st: &mut State,
        origin: u32,
        out: &mut Batch,
        up_to: Option<i64>,
    ) -> Result<(), ProcessError> {
        let node = cx.node;
        let (to, limit) = match up_to {
            Some(order) => (held_key(order.saturating_add(1), &[]), usize::MAX),
            None => (Bytes::from_static(&[HELD + 1]), 64),
        };
        // Nothing is held before the earliest wait: the scans start there,
        // past the deletes of the keys passed on before (which a RocksDB
        // iterator would otherwise step over, one by one, until compacted).
        let from = if st.first >= 0 { held_key(st.first, &[]) } else { Bytes::from_static(&[HELD]) };
        loop {
            let held = cx.store(node)?.range_timestamped(Some(&from), Some(&to), limit)?;
            let done = held.len() < limit;
            for (k, v, timestamp) in held {
                if up_to.is_none() && !self.over(st) {
                    break;
                }
                let key = Bytes::copy_from_slice(&k[9..]);
                if self.bounded() {
                    st.records = st.records.saturating_sub(1);
                    st.bytes = st.bytes.saturating_sub(size(&key, &v));
                }
                let value = (v.first() == Some(&1)).then(|| Bytes::copy_from_slice(&v[1..]));
                cx.update(node, Bytes::from(k), None, timestamp)?;
                if let Until::TimeLimit(_) = self.until {
                    cx.update(node, wait_key(&key), None, timestamp)?;
                }
                out.push(Record { key: Some(key), value, timestamp, headers: Vec::new() }, origin);
            }
            if done || (up_to.is_none() && !self.over(st)) {
                break;
            }
        }
        // The oldest key still held (past those just passed on).
        let from = up_to.map_or(from, |order| held_key(order.saturating_add(1), &[]));
        let next = cx.store(node)?.range(Some(&from), Some(&[HELD + 1]), 1)?;
        st.first = next.first().map_or(i64::MAX, |(k, _)| i64::from_be_bytes(k[1..9].try_into().unwrap_or_default()));
        Ok(())
    }
}

impl Operator for Suppress {
    fn process(&mut self, cx: &mut Cx<'_>, _from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        let node = cx.node;
        let mut st = State::from_clock(cx.store(node)?.clock());
        let mut out = Batch::default();
        for (r, origin) in batch.records.into_iter().zip(batch.origins) {
            st.stream_time = st.stream_time.max(r.timestamp);
            self.hold(cx, &mut st, &r)?;
            // Waits that end at stream time or before are over: windows
            // that closed, keys first held a time limit ago.
            let expiry = match self.until {
                Until::WindowCloses(_) => st.stream_time,
                Until::TimeLimit(limit) => st.stream_time.saturating_sub(limit),
            };
            // (Orders are never negative: times before the epoch hold nothing.)
            if expiry >= 0 && st.first <= expiry {
                self.release(cx, &mut st, origin, &mut out, Some(expiry))?;
            }
            if self.over(&st) {
                match self.bound.when_full {
                    WhenFull::EmitEarly => self.release(cx, &mut st, origin, &mut out, None)?,
                    WhenFull::ShutDown => {
                        let bound = [
                            self.bound.max_records.map(|m| format!("{m} keys")),
                            self.bound.max_bytes.map(|m| format!("{m} bytes")),
                        ];
                        return Err(ProcessError::BufferFull {
                            node: cx.shared.names[node].clone(),
                            records: st.records,
                            bytes: st.bytes,
                            bound: bound.into_iter().flatten().collect::<Vec<_>>().join(", "),
                        });
                    }
                }
            }
        }
        cx.store(node)?.set_clock(&st.to_clock());
        Ok(Emit::All(out))
    }
}
