//! Windows: which windows a record's timestamp falls in, when a window
//! closes, and how a windowed key is laid out in stores and topics.
//!
//! Time windows follow Kafka Streams' `TimeWindows`: windows of `size` ms
//! starting every `advance` ms (tumbling when the two are equal), aligned to
//! the epoch, the end exclusive. A window closes once stream time reaches
//! its end plus the grace period; a record for a closed window is dropped,
//! never put into a later one.
//!
//! Sliding windows follow `SlidingWindows`: a window of `difference` ms
//! (both ends inclusive) that ends at each record, and one that starts just
//! after it where later records fall in it; windows with no records never
//! exist. Session windows follow `SessionWindows`: records of a key less than
//! `gap` ms apart share a session, which runs from its first record's
//! timestamp to its last one's (both inclusive).
//!
//! A windowed key is the key's bytes followed by the window start as 8
//! bytes big-endian, the layout of Kafka's `TimeWindowedSerializer` (time
//! and sliding windows), or by the session's end and then start, the layout
//! of `SessionWindowedSerializer`, so any Kafka client can decode it.

use bytes::{BufMut, Bytes, BytesMut};

use crate::store::{KeyTime, Segments};

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

/// Sliding windows of an aggregation (Kafka Streams' `SlidingWindows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindows {
    /// The largest difference between two records' timestamps in one window,
    /// in ms: a window runs from `start` to `start + difference`, inclusive.
    pub difference: i64,
    /// How long after its end a window still takes late records, in ms.
    pub grace: i64,
    /// How long the store keeps a window, in ms.
    pub retention: i64,
}

/// Session windows of an aggregation (Kafka Streams' `SessionWindows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows {
    /// The inactivity gap, in ms: records of a key at most this far apart
    /// belong to one session.
    pub gap: i64,
    /// How long after its end plus the gap a session still takes late
    /// records, in ms.
    pub grace: i64,
    /// How long the store keeps a session, in ms.
    pub retention: i64,
}

/// The windows of a windowed aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Windows {
    /// Tumbling or hopping windows.
    Time(TimeWindows),
    /// Sliding windows.
    Sliding(SlidingWindows),
    /// Session windows.
    Session(SessionWindows),
}

/// How a windowed key carries its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowedKeys {
    /// The key, then the window start ([`windowed_key`]): time and sliding
    /// windows.
    Time,
    /// The key, then the session's end and start ([`session_key`]).
    Session,
}

impl Windows {
    /// How keys carry these windows.
    pub fn keys(&self) -> WindowedKeys {
        match self {
            Windows::Session(_) => WindowedKeys::Session,
            _ => WindowedKeys::Time,
        }
    }

    /// How the aggregation's store is segmented: by window start (time and
    /// sliding windows) or session end, kept for the retention.
    pub fn segments(&self) -> Segments {
        let time = match self {
            Windows::Session(_) => KeyTime::SessionEnd,
            _ => KeyTime::WindowStart,
        };
        Segments { time, retention: self.retention() }
    }

    /// How long the store keeps a window, in ms.
    pub fn retention(&self) -> i64 {
        match self {
            Windows::Time(w) => w.retention,
            Windows::Sliding(w) => w.retention,
            Windows::Session(w) => w.retention,
        }
    }

    /// The stream time at which the window of `windowed` (a windowed key of
    /// these windows) has closed: no record can change it any more. A time
    /// window closes at its end (exclusive) plus grace, a sliding window one
    /// ms after its end (inclusive) plus grace, a session once stream time
    /// is past its end plus gap plus grace.
    pub fn close_time(&self, windowed: &[u8]) -> Option<i64> {
        match self {
            Windows::Time(w) => split_windowed_key(windowed).map(|(_, start)| start + w.size + w.grace),
            Windows::Sliding(w) => split_windowed_key(windowed).map(|(_, start)| start + w.difference + 1 + w.grace),
            Windows::Session(w) => split_session_key(windowed).map(|(_, _, end)| end + w.gap + w.grace + 1),
        }
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

/// A session-windowed key: `key`, then the session's end and start, each 8
/// bytes big-endian.
pub fn session_key(key: &[u8], start: i64, end: i64) -> Bytes {
    let mut b = BytesMut::with_capacity(key.len() + 16);
    b.put_slice(key);
    b.put_i64(end);
    b.put_i64(start);
    b.freeze()
}

/// A session-windowed key's key, start and end, if it is long enough to be
/// one.
pub fn split_session_key(windowed: &[u8]) -> Option<(&[u8], i64, i64)> {
    let at = windowed.len().checked_sub(16)?;
    let (key, window) = windowed.split_at(at);
    let end = i64::from_be_bytes(window[..8].try_into().ok()?);
    let start = i64::from_be_bytes(window[8..].try_into().ok()?);
    Some((key, start, end))
}

/// The key of a windowed key laid out as `keys` says, if it is one.
pub fn unwindowed(windowed: &[u8], keys: WindowedKeys) -> Option<&[u8]> {
    match keys {
        WindowedKeys::Time => split_windowed_key(windowed).map(|(k, _)| k),
        WindowedKeys::Session => split_session_key(windowed).map(|(k, _, _)| k),
    }
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
        let k = session_key(b"k", 5, 300);
        assert_eq!(&k[..], b"k\0\0\0\0\0\0\x01\x2c\0\0\0\0\0\0\0\x05", "end before start");
        assert_eq!(split_session_key(&k), Some((&b"k"[..], 5, 300)));
        assert_eq!(unwindowed(&k, WindowedKeys::Session), Some(&b"k"[..]));
    }

    #[test]
    fn windows_close_as_kafka_streams_closes_them() {
        let time = Windows::Time(TimeWindows::new(10, 10, 5, None));
        assert_eq!(time.close_time(&windowed_key(b"k", 100)), Some(115), "end 110 (exclusive) + grace");
        let sliding = Windows::Sliding(SlidingWindows { difference: 10, grace: 5, retention: 0 });
        assert_eq!(sliding.close_time(&windowed_key(b"k", 100)), Some(116), "end 110 (inclusive) + 1 + grace");
        let session = Windows::Session(SessionWindows { gap: 10, grace: 5, retention: 0 });
        assert_eq!(session.close_time(&session_key(b"k", 90, 100)), Some(116), "past end + gap + grace");
    }
}
