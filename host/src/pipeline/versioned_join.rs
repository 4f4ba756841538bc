//! The stream-table join with a grace period, as Kafka Streams'
//! `KStreamKTableJoinProcessor` with `Joined#withGracePeriod` (KIP-923):
//! the table is versioned, and stream records wait so that table updates
//! arriving late, out of order, are still seen.
//!
//! Each stream record goes into a buffer store; then every buffered record
//! whose timestamp is at most stream time minus the grace leaves the
//! buffer, oldest first (timestamp, then key, then arrival), and is joined
//! with the table's version valid at its own timestamp. Stream time is the
//! largest timestamp of the stream side (table updates do not move it). A
//! record already older than stream time minus the grace is joined at once,
//! without waiting and without releasing others. Records without a value
//! are dropped; a record without a key is dropped by an inner join and
//! joined at once with no table value by a left join.
//!
//! The buffer survives a crash: its key is the record's timestamp (8 bytes,
//! big-endian, sign bit flipped), key and a sequence number (4 bytes), as
//! Kafka Streams' time-ordered buffer; its value is the record's headers
//! and value. Stream time, the smallest buffered timestamp, the next
//! sequence number and the buffered count are the buffer store's clock,
//! committed with its changelog; a store without one (written before clocks
//! were) finds them from what the buffer holds.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::plugin::JOIN_RIGHT_HEADER;
use crate::record::{Header, Record};
use crate::store::TaskStore;

use super::ProcessError;
use super::context::Cx;
use super::join::{as_of, join};
use super::operator::{Batch, Emit, Operator};

/// Joins a stream with a versioned table after a grace period.
pub(crate) struct GraceJoin {
    /// The versioned table node.
    pub table: usize,
    /// The table's history retention.
    pub history: i64,
    pub joiner: u32,
    /// A record with no table value joins with none instead of being dropped.
    pub left: bool,
    /// How long records wait, in ms of stream time.
    pub grace: i64,
}

/// A task's clocks for the join, kept as the buffer store's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Clock {
    /// The largest timestamp of the stream side.
    stream: i64,
    /// No buffered record is older than this.
    min_buffered: i64,
    /// The next sequence number of a buffer key.
    seq: u32,
    /// Records in the buffer.
    buffered: i64,
}

impl Clock {
    /// The clock the buffer store keeps, or (without one) the one its
    /// contents give.
    fn of(buffer: &mut TaskStore) -> Result<Clock, ProcessError> {
        if let [stream, min_buffered, seq, buffered] = *buffer.clock() {
            return Ok(Clock { stream, min_buffered, seq: seq as u32, buffered });
        }
        let mut clock = Clock { stream: -1, min_buffered: i64::MAX, seq: 0, buffered: 0 };
        for (k, _) in buffer.range(None, None, usize::MAX)? {
            let Some((ts, _, seq)) = decode_key(&k) else { continue };
            clock.stream = clock.stream.max(ts);
            clock.min_buffered = clock.min_buffered.min(ts);
            clock.seq = clock.seq.max((seq + 1) & 0x7FFF_FFFF);
            clock.buffered += 1;
        }
        Ok(clock)
    }

    fn to_clock(self) -> [i64; 4] {
        [self.stream, self.min_buffered, i64::from(self.seq), self.buffered]
    }
}

impl Operator for GraceJoin {
    fn process(&mut self, cx: &mut Cx<'_>, from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        if from == self.table {
            return Ok(Emit::Nothing);
        }
        let node = cx.node;
        let mut clock = Clock::of(cx.store(node)?)?;
        let mut calls = Batch::with_capacity(batch.len());
        for (r, origin) in batch.records.into_iter().zip(batch.origins) {
            if r.value.is_none() {
                continue;
            }
            let Some(key) = r.key.clone() else {
                if self.left {
                    calls.push(r, origin);
                }
                continue;
            };
            if r.timestamp < clock.stream - self.grace {
                // Too late to wait: joined now, as of its time.
                self.lookup(cx, &key, r, origin, &mut calls)?;
                continue;
            }
            clock.stream = clock.stream.max(r.timestamp);
            clock.min_buffered = clock.min_buffered.min(r.timestamp);
            let buffered = buffer_key(r.timestamp, &key, clock.seq);
            clock.seq = (clock.seq + 1) & 0x7FFF_FFFF;
            clock.buffered += 1;
            cx.update(node, buffered, Some(encode_value(&r)), r.timestamp)?;
            let cutoff = clock.stream - self.grace;
            if clock.min_buffered > cutoff {
                continue;
            }
            // Every record whose grace has passed leaves, oldest first.
            let upto = (cutoff as u64 ^ (1 << 63)).wrapping_add(1).to_be_bytes();
            let due = cx.store(node)?.range(None, Some(&upto), usize::MAX)?;
            for (k, v) in due {
                let (Some((ts, key, _)), Some((value, headers))) = (decode_key(&k), decode_value(&v)) else {
                    continue;
                };
                let key = Bytes::copy_from_slice(key);
                cx.update(node, Bytes::from(k), None, ts)?;
                clock.buffered -= 1;
                let record = Record { key: Some(key.clone()), value: Some(value), timestamp: ts, headers };
                self.lookup(cx, &key, record, origin, &mut calls)?;
            }
            clock.min_buffered = if clock.buffered > 0 { cutoff + 1 } else { i64::MAX };
        }
        cx.store(node)?.set_clock(&clock.to_clock());
        Ok(Emit::All(join(cx, self.joiner, calls)?))
    }
}

impl GraceJoin {
    /// Adds the joiner call for `r` with the table's value for `key` as of
    /// the record's timestamp, unless an inner join finds none.
    fn lookup(
        &self,
        cx: &mut Cx<'_>,
        key: &[u8],
        mut r: Record,
        origin: u32,
        calls: &mut Batch,
    ) -> Result<(), ProcessError> {
        match as_of(cx, self.table, self.history, key, r.timestamp)? {
            Some(right) => r.headers.push(Header { name: JOIN_RIGHT_HEADER.to_owned(), value: Some(right) }),
            None if self.left => {}
            None => return Ok(()),
        }
        calls.push(r, origin);
        Ok(())
    }
}

/// The buffer key of a record: timestamp, key, sequence number.
fn buffer_key(timestamp: i64, key: &[u8], seq: u32) -> Bytes {
    let mut b = BytesMut::with_capacity(8 + key.len() + 4);
    b.put_u64(timestamp as u64 ^ (1 << 63));
    b.put_slice(key);
    b.put_u32(seq);
    b.freeze()
}

fn decode_key(k: &[u8]) -> Option<(i64, &[u8], u32)> {
    if k.len() < 12 {
        return None;
    }
    let ts = (u64::from_be_bytes(k[..8].try_into().ok()?) ^ (1 << 63)) as i64;
    let seq = u32::from_be_bytes(k[k.len() - 4..].try_into().ok()?);
    Some((ts, &k[8..k.len() - 4], seq))
}

/// A buffered record's headers (a count, then each name and value with
/// 4-byte lengths, a missing value as length `u32::MAX`) and value.
fn encode_value(r: &Record) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u32(r.headers.len() as u32);
    for h in &r.headers {
        b.put_u32(h.name.len() as u32);
        b.put_slice(h.name.as_bytes());
        match &h.value {
            Some(v) => {
                b.put_u32(v.len() as u32);
                b.put_slice(v);
            }
            None => b.put_u32(u32::MAX),
        }
    }
    b.put_slice(r.value.as_deref().unwrap_or_default());
    b.freeze()
}

fn decode_value(v: &[u8]) -> Option<(Bytes, Vec<Header>)> {
    let mut b = v;
    let take = |b: &mut &[u8], n: usize| -> Option<Bytes> {
        if b.remaining() < n {
            return None;
        }
        let out = Bytes::copy_from_slice(&b[..n]);
        b.advance(n);
        Some(out)
    };
    if b.remaining() < 4 {
        return None;
    }
    let count = b.get_u32();
    let mut headers = Vec::with_capacity(count.min(64) as usize);
    for _ in 0..count {
        if b.remaining() < 4 {
            return None;
        }
        let len = b.get_u32() as usize;
        let name = String::from_utf8(take(&mut b, len)?.to_vec()).ok()?;
        if b.remaining() < 4 {
            return None;
        }
        let value = match b.get_u32() {
            u32::MAX => None,
            len => Some(take(&mut b, len as usize)?),
        };
        headers.push(Header { name, value });
    }
    Some((Bytes::copy_from_slice(b), headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffered_records_keep_their_key_time_headers_and_value() {
        let r = Record { key: Some(Bytes::from("k")), value: Some(Bytes::from("v")), timestamp: 7, headers: vec![] }
            .with_header("h", "x");
        let mut r = r;
        r.headers.push(Header { name: "none".into(), value: None });
        let (value, headers) = decode_value(&encode_value(&r)).unwrap();
        assert_eq!((value, headers), (Bytes::from("v"), r.headers.clone()));
        let k = buffer_key(7, b"key", 3);
        assert_eq!(decode_key(&k), Some((7, &b"key"[..], 3)));
        // Oldest first, then by key, then by arrival.
        let mut keys = [buffer_key(9, b"a", 0), buffer_key(7, b"b", 1), buffer_key(7, b"a", 2), buffer_key(7, b"a", 1)];
        keys.sort();
        let order: Vec<_> = keys.iter().map(|k| decode_key(k).unwrap()).collect();
        assert_eq!(order, [(7, &b"a"[..], 1), (7, &b"a"[..], 2), (7, &b"b"[..], 1), (9, &b"a"[..], 0)]);
    }
}
