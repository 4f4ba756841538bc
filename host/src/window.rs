//! Windows: which windows a record's timestamp falls in, when a window
//! closes, and how a windowed key is laid out in stores and topics.
//!
//! Time windows follow Kafka Streams' `TimeWindows`: windows of `size` ms
//! starting every `advance` ms (tumbling when the two are equal), aligned to
//! the epoch, the end exclusive. A window closes once stream time reaches
//! its end plus the grace period; a record for a closed window is dropped,
//! never put into a later one.
//!
//! A windowed key is the key's bytes followed by the window start as 8
//! bytes big-endian, the layout of Kafka's `TimeWindowedSerializer`, so any
//! Kafka client can decode it.

use bytes::{BufMut, Bytes, BytesMut};

/// One day: the least a window store keeps windows, as in Kafka Streams.
pub const MIN_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

/// Windows of a windowed aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    /// Length of a window, in ms.
    pub size: i64,
    /// Distance between window starts, in ms (`size` for tumbling windows).
    pub advance: i64,
    /// How long after its end a window still takes late records, in ms.
    pub grace: i64,
    /// How long the store keeps a window after its start, in ms.
    pub retention: i64,
}

impl TimeWindows {
    /// Tumbling (`advance == size`) or hopping windows; the retention
    /// defaults to size + grace, and at least one day.
    pub fn new(size: i64, advance: i64, grace: i64, retention: Option<i64>) -> Self {
        let retention = retention.unwrap_or_else(|| (size + grace).max(MIN_RETENTION_MS));
        TimeWindows { size, advance, grace, retention }
    }

    /// True for tumbling windows.
    pub fn is_tumbling(&self) -> bool {
        self.size == self.advance
    }

    /// The starts of the windows `timestamp` falls in, in ascending order
    /// (none starts before 0).
    pub fn starts(&self, timestamp: i64) -> impl Iterator<Item = i64> + use<> {
        let first = ((timestamp - self.size + self.advance).max(0) / self.advance) * self.advance;
        let advance = self.advance;
        (0..).map(move |i| first + i * advance).take_while(move |&start| start <= timestamp)
    }

    /// True if the window starting at `start` takes no more records once
    /// stream time is `stream_time`: its end plus grace has been reached.
    pub fn is_closed(&self, start: i64, stream_time: i64) -> bool {
        start + self.size <= stream_time - self.grace
    }
}

/// The window of a stream-stream join (Kafka Streams' `JoinWindows`): a
/// right record joins a left one when `left - before <= right <= left +
/// after` (timestamps in ms, both bounds inclusive). A record waits for
/// partners until stream time passes its timestamp plus the window on the
/// other side plus `grace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindows {
    /// How far a right record may come before the left one, in ms.
    pub before: i64,
    /// How far a right record may come after the left one, in ms.
    pub after: i64,
    /// How long after its window a record still joins late partners, in ms.
    pub grace: i64,
}

impl JoinWindows {
    /// How long the join keeps a record: the whole window plus grace (as
    /// Kafka Streams' join window stores).
    pub fn retention(&self) -> i64 {
        self.before + self.after + self.grace
    }
}

/// A windowed key: `key` then the window start, 8 bytes big-endian.
pub fn windowed_key(key: &[u8], start: i64) -> Bytes {
    let mut b = BytesMut::with_capacity(key.len() + 8);
    b.put_slice(key);
    b.put_i64(start);
    b.freeze()
}

/// A windowed key's key and window start, if it is long enough to be one.
pub fn split_windowed_key(windowed: &[u8]) -> Option<(&[u8], i64)> {
    let at = windowed.len().checked_sub(8)?;
    let (key, start) = windowed.split_at(at);
    Some((key, i64::from_be_bytes(start.try_into().ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_a_timestamp_falls_in() {
        let tumbling = TimeWindows::new(10, 10, 0, None);
        assert_eq!(tumbling.starts(0).collect::<Vec<_>>(), [0]);
        assert_eq!(tumbling.starts(19).collect::<Vec<_>>(), [10]);
        let hopping = TimeWindows::new(10, 5, 0, None);
        assert_eq!(hopping.starts(12).collect::<Vec<_>>(), [5, 10]);
        assert_eq!(hopping.starts(3).collect::<Vec<_>>(), [0], "no window starts before the epoch");
        let five_min = TimeWindows::new(300_000, 60_000, 0, None);
        assert_eq!(five_min.starts(600_000).count(), 5);
        assert_eq!(five_min.retention, MIN_RETENTION_MS);
    }

    #[test]
    fn a_window_closes_at_its_end_plus_grace() {
        let w = TimeWindows::new(10, 10, 90, None);
        assert!(!w.is_closed(100, 199));
        assert!(w.is_closed(100, 200), "[100,110) + 90 of grace closes at stream time 200");
    }

    #[test]
    fn windowed_keys_are_kafkas_time_windowed_layout() {
        let k = windowed_key(b"k", 500);
        assert_eq!(&k[..], b"k\0\0\0\0\0\0\x01\xf4");
        assert_eq!(split_windowed_key(&k), Some((&b"k"[..], 500)));
        assert_eq!(split_windowed_key(b"short"), None);
    }
}
