//! Suppression until a window closes (Kafka Streams'
//! `suppress(untilWindowCloses(...))`): a windowed table's updates wait in
//! a buffer store until stream time reaches their window's end plus grace;
//! then the window's final value is passed on, once.
//!
//! The buffer is a task store keyed by window end (8 bytes big-endian) then
//! windowed key, so the closed windows are one range scan from the start, in
//! end order. A final result is passed on and deleted from the buffer in the
//! same commit, through the store's changelog: after a crash the buffer
//! comes back as of the last commit, and no result is lost or sent twice.

use bytes::{BufMut, Bytes, BytesMut};

use crate::record::Record;
use crate::window::{TimeWindows, split_windowed_key};

use super::ProcessError;
use super::context::Cx;
use super::operator::{Batch, Emit, Operator};

/// Holds a windowed table's updates until their windows close. Its stream
/// time (the largest timestamp of the updates it has seen) is its store's
/// clock.
pub(crate) struct Suppress {
    pub windows: TimeWindows,
}

fn buffer_key(end: i64, windowed: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(8 + windowed.len());
    b.put_i64(end);
    b.put_slice(windowed);
    b.freeze()
}

impl Operator for Suppress {
    fn process(&mut self, cx: &mut Cx<'_>, _from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        let node = cx.node;
        let mut last_origin = None;
        let mut time = cx.store(node)?.clock().first().copied();
        for (r, origin) in batch.records.into_iter().zip(batch.origins) {
            let Some((_, start)) = r.key.as_deref().and_then(split_windowed_key) else { continue };
            time = Some(time.map_or(r.timestamp, |t| t.max(r.timestamp)));
            let key = buffer_key(start + self.windows.size, r.key.as_deref().unwrap_or_default());
            cx.update(node, key, r.value, r.timestamp)?;
            last_origin = Some(origin);
        }
        let (Some(origin), Some(time)) = (last_origin, time) else {
            return Ok(Emit::Nothing);
        };
        cx.store(node)?.set_clock(&[time]);
        // Windows whose end + grace <= stream time have closed (and none
        // ends at or before 0).
        let limit = time - self.windows.grace + 1;
        if limit <= 0 {
            return Ok(Emit::Nothing);
        }
        let bound = buffer_key(limit, &[]);
        let closed = cx.store(node)?.range_timestamped(None, Some(&bound), usize::MAX)?;
        let mut finals = Batch::with_capacity(closed.len());
        for (key, value, timestamp) in closed {
            let record = Record {
                key: Some(Bytes::copy_from_slice(&key[8..])),
                value: Some(Bytes::from(value)),
                timestamp,
                headers: Vec::new(),
            };
            finals.push(record, origin);
            cx.update(node, Bytes::from(key), None, timestamp)?;
        }
        Ok(Emit::All(finals))
    }
}
