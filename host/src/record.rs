//! The record type the host moves through topologies and logs.

use bytes::Bytes;
use eddy_codec::{RecordView, Writer};

/// One record of a stream: optional key and value bytes, an event timestamp
/// and headers. Cloning is cheap: the bytes are reference-counted slices.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// The key, if any; it decides the partition.
    pub key: Option<Bytes>,
    /// The value; `None` is a tombstone.
    pub value: Option<Bytes>,
    /// Event time, milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Headers, in order.
    pub headers: Vec<Header>,
}

/// A record header: a name and an optional value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: Option<Bytes>,
}

impl Record {
    /// A record with this key, value and timestamp and no headers.
    pub fn new(key: Option<impl Into<Bytes>>, value: Option<impl Into<Bytes>>, timestamp: i64) -> Self {
        Record { key: key.map(Into::into), value: value.map(Into::into), timestamp, headers: Vec::new() }
    }

    /// Appends the record in the packed encoding.
    pub fn encode(&self, w: &mut Writer) {
        w.put_record_with(self.timestamp, self.key.as_deref(), self.value.as_deref(), self.headers.len(), |w| {
            for h in &self.headers {
                w.put_header(&h.name, h.value.as_deref());
            }
        });
    }

    /// Builds a record from a view into `backing`, sharing its bytes where
    /// the view points into it.
    pub fn from_view(view: &RecordView<'_>, backing: &Bytes) -> Self {
        let share = |s: &[u8]| {
            let base = backing.as_ptr() as usize;
            let at = s.as_ptr() as usize;
            if at >= base && at + s.len() <= base + backing.len() {
                backing.slice_ref(s)
            } else {
                Bytes::copy_from_slice(s)
            }
        };
        Record {
            key: view.key.map(share),
            value: view.value.map(share),
            timestamp: view.timestamp,
            headers: view
                .headers()
                .filter_map(Result::ok)
                .map(|h| Header { name: h.name.to_owned(), value: h.value.map(share) })
                .collect(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header { name: name.to_owned(), value: Some(value.into()) });
        self
    }

    /// The value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|h| h.name == name).and_then(|h| h.value.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_codec::Reader;

    #[test]
    fn round_trips_through_the_codec_sharing_bytes() {
        let rec = Record::new(Some("k"), Some("v"), 9).with_header("h", "x");
        let mut w = Writer::new();
        rec.encode(&mut w);
        let buf = Bytes::from(w.into_inner());
        let back = Record::from_view(&Reader::new(&buf).record().unwrap(), &buf);
        assert_eq!(back, rec);
        let value = back.value.unwrap();
        assert!(buf.as_ptr() <= value.as_ptr() && value.as_ptr() < buf.as_ptr().wrapping_add(buf.len()));
    }
}
