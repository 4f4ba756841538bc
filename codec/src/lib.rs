//! The packed record encoding shared by the Eddy host and the guest SDK.
//!
//! One byte buffer carries a whole batch of records across the WebAssembly
//! boundary (see `wit/plugin.wit` for the grammar). The same record encoding
//! frames records in the embedded log's partition files, so a record is
//! written the same way everywhere.
//!
//! [`Writer`] appends values to a buffer; [`Reader`] reads them back without
//! copying, yielding [`RecordView`]s that borrow from the buffer.
//!
//! ```
//! use eddy_codec::{Reader, Writer};
//! let mut w = Writer::new();
//! w.put_u32(1);
//! w.put_record(42, Some(b"k"), Some(b"v"), &[("trace", Some(b"1".as_slice()))]);
//! let bytes = w.into_inner();
//! let mut r = Reader::new(&bytes);
//! assert_eq!(r.u32().unwrap(), 1);
//! let rec = r.record().unwrap();
//! assert_eq!((rec.timestamp, rec.key, rec.value), (42, Some(&b"k"[..]), Some(&b"v"[..])));
//! assert_eq!(rec.headers().next().unwrap().unwrap().name, "trace");
//! ```
#![no_std]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;

/// Length marker for an absent optional byte string.
pub const NONE_LEN: u32 = u32::MAX;
/// Tag of a successful result in an output batch.
pub const RESULT_OK: u8 = 0;
/// Tag of a failed result in an output batch.
pub const RESULT_ERR: u8 = 1;
/// Tag of a chain result: a filter in the chain dropped the record.
pub const RESULT_DROPPED: u8 = 2;
/// Tag of a chain result: the record passed every step unchanged.
pub const RESULT_UNCHANGED: u8 = 3;
/// Error code: the record is malformed for the function.
pub const ERR_INVALID_RECORD: u8 = 0;
/// Error code: the function failed for another reason.
pub const ERR_FAILED: u8 = 1;

/// Why a buffer could not be decoded: it ended early or held invalid data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset in the buffer where decoding failed.
    pub at: usize,
    /// What was wrong there.
    pub what: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

impl core::error::Error for DecodeError {}

/// A record decoded in place: every byte string borrows from the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// Event time, milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The key, if any.
    pub key: Option<&'a [u8]>,
    /// The value; `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    header_count: u32,
    header_bytes: &'a [u8],
}

/// One header of a [`RecordView`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderView<'a> {
    /// Header name (UTF-8).
    pub name: &'a str,
    /// Header value, if any.
    pub value: Option<&'a [u8]>,
}

impl<'a> RecordView<'a> {
    /// Number of headers the record carries.
    pub fn header_count(&self) -> usize {
        self.header_count as usize
    }

    /// Iterates over the record's headers in order.
    pub fn headers(&self) -> Headers<'a> {
        Headers { reader: Reader::new(self.header_bytes), left: self.header_count }
    }

    /// The first header with this name, if any.
    #[inline]
    pub fn header(&self, name: &str) -> Option<HeaderView<'a>> {
        self.headers().filter_map(Result::ok).find(|h| h.name == name)
    }
}

/// Iterator over the headers of a [`RecordView`].
pub struct Headers<'a> {
    reader: Reader<'a>,
    left: u32,
}

impl<'a> Iterator for Headers<'a> {
    type Item = Result<HeaderView<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some(self.reader.header())
    }
}

/// Reads values from a packed buffer, front to back, without copying.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader positioned at the start of `buf`.
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Current byte position.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// True when every byte has been read.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.error("buffer ends early")),
        }
    }

    fn error(&self, what: &'static str) -> DecodeError {
        DecodeError { at: self.pos, what }
    }

    /// Reads one byte.
    #[inline]
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// Reads a little-endian `u32`.
    #[inline]
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a little-endian `i64`.
    #[inline]
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }

    /// Reads a length-prefixed byte string.
    #[inline]
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u32()?;
        if len == NONE_LEN {
            return Err(self.error("absent byte string where one is required"));
        }
        self.take(len as usize)
    }

    /// Reads an optional length-prefixed byte string.
    #[inline]
    pub fn opt_bytes(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let len = self.u32()?;
        if len == NONE_LEN { Ok(None) } else { self.take(len as usize).map(Some) }
    }

    /// Reads a UTF-8 string.
    #[inline]
    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        let at = self.pos;
        let b = self.bytes()?;
        core::str::from_utf8(b).map_err(|_| DecodeError { at, what: "string is not UTF-8" })
    }

    #[inline]
    fn header(&mut self) -> Result<HeaderView<'a>, DecodeError> {
        Ok(HeaderView { name: self.str()?, value: self.opt_bytes()? })
    }

    /// Reads one record.
    #[inline]
    pub fn record(&mut self) -> Result<RecordView<'a>, DecodeError> {
        let timestamp = self.i64()?;
        let key = self.opt_bytes()?;
        let value = self.opt_bytes()?;
        let header_count = self.u32()?;
        let start = self.pos;
        for _ in 0..header_count {
            self.header()?;
        }
        Ok(RecordView { timestamp, key, value, header_count, header_bytes: &self.buf[start..self.pos] })
    }
}

/// Appends values to a packed buffer.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer { buf: Vec::new() }
    }

    /// An empty writer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Writer { buf: Vec::with_capacity(capacity) }
    }

    /// Wraps an existing buffer (cleared first), to reuse its allocation.
    pub fn reuse(mut buf: Vec<u8>) -> Self {
        buf.clear();
        Writer { buf }
    }

    /// Bytes written so far.
    #[inline]
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True if nothing was written.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes written so far.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// Gives back the buffer.
    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    /// The bytes it can hold before it grows.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Drops everything written after the first `len` bytes (to undo a
    /// partly written result).
    #[inline]
    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    /// Overwrites the `u32` at byte `at` (for counts known only at the end).
    ///
    /// # Panics
    /// If fewer than four bytes were written after `at`.
    #[inline]
    pub fn patch_u32(&mut self, at: usize, v: u32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// Appends one byte.
    #[inline]
    pub fn put_u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Appends a little-endian `u32`.
    #[inline]
    pub fn put_u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a little-endian `i64`.
    #[inline]
    pub fn put_i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a length-prefixed byte string.
    ///
    /// # Panics
    /// If `b` is 4 GiB or longer (no record may be).
    #[inline]
    pub fn put_bytes(&mut self, b: &[u8]) {
        let len = u32::try_from(b.len()).ok().filter(|&l| l != NONE_LEN);
        self.put_u32(len.expect("byte strings are shorter than 4 GiB"));
        self.buf.extend_from_slice(b);
    }

    /// Appends bytes as they are, without a length (a piece encoded
    /// elsewhere, such as a stored frame being copied).
    #[inline]
    pub fn put_raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Appends an optional length-prefixed byte string.
    #[inline]
    pub fn put_opt_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            Some(b) => self.put_bytes(b),
            None => self.put_u32(NONE_LEN),
        }
    }

    /// Appends a record whose headers are given as name/value pairs.
    pub fn put_record<N: AsRef<str>>(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(N, Option<&[u8]>)],
    ) {
        self.put_record_with(timestamp, key, value, headers.len(), |w| {
            for (name, value) in headers {
                w.put_header(name.as_ref(), *value);
            }
        });
    }

    /// Appends a record; `headers` must append exactly `header_count` headers
    /// with [`Writer::put_header`].
    #[inline]
    pub fn put_record_with(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        header_count: usize,
        headers: impl FnOnce(&mut Writer),
    ) {
        self.buf.reserve(24 + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len));
        self.put_i64(timestamp);
        self.put_opt_bytes(key);
        self.put_opt_bytes(value);
        self.put_u32(u32::try_from(header_count).unwrap_or(u32::MAX));
        headers(self);
    }

    /// Appends one header; only valid inside [`Writer::put_record_with`].
    #[inline]
    pub fn put_header(&mut self, name: &str, value: Option<&[u8]>) {
        self.put_bytes(name.as_bytes());
        self.put_opt_bytes(value);
    }

    /// Appends a copy of a decoded record.
    #[inline]
    pub fn put_view(&mut self, r: &RecordView<'_>) {
        self.put_view_with(r, r.key, r.value);
    }

    /// Appends a copy of a decoded record with another key and value.
    #[inline]
    pub fn put_view_with(&mut self, r: &RecordView<'_>, key: Option<&[u8]>, value: Option<&[u8]>) {
        self.put_i64(r.timestamp);
        self.put_opt_bytes(key);
        self.put_opt_bytes(value);
        self.put_u32(r.header_count);
        self.buf.extend_from_slice(r.header_bytes);
    }

    /// Appends an error result to an output batch.
    #[inline]
    pub fn put_error(&mut self, code: u8, message: &str) {
        self.put_u8(RESULT_ERR);
        self.put_u8(code);
        self.put_bytes(message.as_bytes());
    }
}

/// The smallest key greater than every key that starts with `prefix` (the
/// exclusive end of a prefix scan), or `None` if there is none (an empty
/// prefix, or one of only 0xFF bytes).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn record_round_trips_with_absent_parts() {
        let mut w = Writer::new();
        w.put_record::<&str>(-5, None, Some(b""), &[]);
        w.put_record(7, Some(b"key"), None, &[("a", None), ("b", Some(&b"x"[..]))]);
        let buf = w.into_inner();
        let mut r = Reader::new(&buf);
        let a = r.record().unwrap();
        assert_eq!((a.timestamp, a.key, a.value, a.header_count()), (-5, None, Some(&b""[..]), 0));
        let b = r.record().unwrap();
        assert_eq!((b.timestamp, b.key, b.value), (7, Some(&b"key"[..]), None));
        let hs: Vec<_> = b.headers().map(Result::unwrap).collect();
        assert_eq!(hs, [HeaderView { name: "a", value: None }, HeaderView { name: "b", value: Some(b"x") }]);
        assert_eq!(b.header("b").unwrap().value, Some(&b"x"[..]));
        assert!(r.is_empty());
    }

    #[test]
    fn copies_a_view_exactly() {
        let mut w = Writer::new();
        w.put_record(1, Some(b"k"), Some(b"v"), &[("h", Some(&b"1"[..]))]);
        let buf = w.into_inner();
        let view = Reader::new(&buf).record().unwrap();
        let mut copy = Writer::new();
        copy.put_view(&view);
        assert_eq!(copy.as_slice(), &buf[..]);
    }

    #[test]
    fn truncated_buffers_are_errors_not_panics() {
        let mut w = Writer::new();
        w.put_record(1, Some(b"key"), Some(b"value"), &[("h", Some(&b"1"[..]))]);
        let buf = w.into_inner();
        for cut in 0..buf.len() {
            assert!(Reader::new(&buf[..cut]).record().is_err(), "cut at {cut}");
        }
        let mut huge = Writer::new();
        huge.put_i64(0);
        huge.put_u32(u32::MAX - 1);
        assert_eq!(Reader::new(huge.as_slice()).record().unwrap_err().what, "buffer ends early");
    }
}
