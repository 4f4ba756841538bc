//! Records as plugin functions see them (borrowed) and produce them (owned).

use eddy_codec::{HeaderView, Reader, RecordView, Writer};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// An input record, borrowed from the batch the host sent. Cheap to pass
/// around; copy what you keep with [`Record::to_owned_record`].
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    view: RecordView<'a>,
}

impl<'a> Record<'a> {
    pub(crate) fn new(view: RecordView<'a>) -> Self {
        Record { view }
    }

    /// The key bytes, if the record has a key.
    pub fn key(&self) -> Option<&'a [u8]> {
        self.view.key
    }

    /// The value bytes; `None` is a tombstone.
    pub fn value(&self) -> Option<&'a [u8]> {
        self.view.value
    }

    /// Event time in milliseconds since the Unix epoch.
    pub fn timestamp(&self) -> i64 {
        self.view.timestamp
    }

    /// The key as UTF-8 text; an error if absent or not UTF-8.
    pub fn key_str(&self) -> Result<&'a str> {
        let key = self.key().ok_or_else(|| Error::invalid("record has no key"))?;
        Ok(std::str::from_utf8(key)?)
    }

    /// The value as UTF-8 text; an error if absent or not UTF-8.
    pub fn value_str(&self) -> Result<&'a str> {
        let value = self.value().ok_or_else(|| Error::invalid("record has no value"))?;
        Ok(std::str::from_utf8(value)?)
    }

    /// The value parsed as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        let value = self.value().ok_or_else(|| Error::invalid("record has no value"))?;
        Ok(serde_json::from_slice(value)?)
    }

    /// The key parsed as JSON into `T`.
    pub fn key_json<T: DeserializeOwned>(&self) -> Result<T> {
        let key = self.key().ok_or_else(|| Error::invalid("record has no key"))?;
        Ok(serde_json::from_slice(key)?)
    }

    /// The value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.view.header(name).and_then(|h| h.value)
    }

    /// All headers, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + 'a {
        self.view.headers().filter_map(|h| h.ok()).map(|h: HeaderView<'a>| (h.name, h.value))
    }

    /// A copy of this record that the function can change and return.
    pub fn to_owned_record(&self) -> OwnedRecord {
        OwnedRecord {
            key: self.key().map(<[u8]>::to_vec),
            value: self.value().map(<[u8]>::to_vec),
            timestamp: Some(self.timestamp()),
            headers: self.headers().map(|(n, v)| (n.to_owned(), v.map(<[u8]>::to_vec))).collect(),
        }
    }
}

/// A record a function produces (from `map` or `flat-map`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnedRecord {
    /// The key, if any.
    pub key: Option<Vec<u8>>,
    /// The value; `None` is a tombstone.
    pub value: Option<Vec<u8>>,
    /// Event time; `None` keeps the input record's timestamp.
    pub timestamp: Option<i64>,
    /// Headers, in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl OwnedRecord {
    /// A record with this key and value, keeping the input's timestamp.
    pub fn new(key: impl IntoValue, value: impl IntoValue) -> Result<Self> {
        Ok(OwnedRecord { key: key.into_value()?, value: value.into_value()?, ..Default::default() })
    }

    /// Sets the event time.
    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), Some(value.into())));
        self
    }

    pub(crate) fn write(&self, w: &mut Writer, input_timestamp: i64) {
        w.put_record_with(
            self.timestamp.unwrap_or(input_timestamp),
            self.key.as_deref(),
            self.value.as_deref(),
            self.headers.len(),
            |w| {
                for (name, value) in &self.headers {
                    w.put_header(name, value.as_deref());
                }
            },
        );
    }

    /// Encodes the record so that a [`Record`] can borrow it: how a plugin's
    /// native unit tests call its functions.
    ///
    /// ```
    /// use eddy_sdk::OwnedRecord;
    /// let enc = OwnedRecord::new("k", "hello").unwrap().with_timestamp(5).encode();
    /// assert_eq!(enc.record().value_str().unwrap(), "hello");
    /// ```
    pub fn encode(&self) -> EncodedRecord {
        let mut w = Writer::new();
        self.write(&mut w, 0);
        EncodedRecord(w.into_inner())
    }
}

/// An [`OwnedRecord`] in the packed encoding; [`EncodedRecord::record`] views it.
#[derive(Debug, Clone)]
pub struct EncodedRecord(Vec<u8>);

impl EncodedRecord {
    /// The record, borrowed.
    ///
    /// # Panics
    /// Never for a value made by [`OwnedRecord::encode`].
    pub fn record(&self) -> Record<'_> {
        Record::new(Reader::new(&self.0).record().expect("OwnedRecord::encode writes a valid record"))
    }
}

/// Something a function may return as a key or value: bytes, text, JSON, or
/// `None` (a null key, or a tombstone value).
pub trait IntoValue {
    /// The bytes, or `None` for an absent key or value.
    fn into_value(self) -> Result<Option<Vec<u8>>>;
}

impl IntoValue for Vec<u8> {
    fn into_value(self) -> Result<Option<Vec<u8>>> {
        Ok(Some(self))
    }
}

impl IntoValue for &[u8] {
    fn into_value(self) -> Result<Option<Vec<u8>>> {
        Ok(Some(self.to_vec()))
    }
}

impl IntoValue for String {
    fn into_value(self) -> Result<Option<Vec<u8>>> {
        Ok(Some(self.into_bytes()))
    }
}

impl IntoValue for &str {
    fn into_value(self) -> Result<Option<Vec<u8>>> {
        Ok(Some(self.as_bytes().to_vec()))
    }
}

impl<T: IntoValue> IntoValue for Option<T> {
    fn into_value(self) -> Result<Option<Vec<u8>>> {
        match self {
            Some(v) => v.into_value(),
            None => Ok(None),
        }
    }
}

/// Wraps a serializable value to return it as JSON bytes.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoValue for Json<T> {
    fn into_value(self) -> Result<Option<Vec<u8>>> {
        serde_json::to_vec(&self.0).map(Some).map_err(|e| Error::failed(format!("JSON encoding: {e}")))
    }
}
