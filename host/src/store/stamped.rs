//! How a task store keeps a value, in its cache and local storage: the
//! update's timestamp (8 bytes, big-endian), a byte saying whether it is a
//! value (1) or a delete (0), then the value.

use bytes::{BufMut, Bytes, BytesMut};

/// Bytes before the value: the timestamp and a presence flag.
pub const HEADER: usize = 9;

/// `value` (`None`: a delete) stamped with its update's `timestamp`.
pub fn encode(value: Option<&[u8]>, timestamp: i64) -> Bytes {
    let mut b = BytesMut::with_capacity(HEADER + value.map_or(0, <[u8]>::len));
    b.put_i64(timestamp);
    b.put_u8(value.is_some() as u8);
    if let Some(v) = value {
        b.put_slice(v);
    }
    b.freeze()
}

/// True for a stamped delete (or bytes too short to be stamped), as
/// [`decode`] reads it.
pub fn is_delete(b: &[u8]) -> bool {
    decode_slice(b).0.is_none()
}

/// [`decode`], the value borrowed.
pub fn decode_slice(b: &[u8]) -> (Option<&[u8]>, i64) {
    if b.len() < HEADER {
        return (None, 0);
    }
    let timestamp = i64::from_be_bytes(b[..8].try_into().expect("8 bytes"));
    ((b[8] == 1).then(|| &b[HEADER..]), timestamp)
}

/// The value (`None` for a delete) and its timestamp; bytes too short to
/// be stamped read as a delete at time 0.
pub fn decode(b: &Bytes) -> (Option<Bytes>, i64) {
    let (value, timestamp) = decode_slice(b);
    (value.map(|v| b.slice_ref(v)), timestamp)
}

/// What a read of a stamped entry (`None`: no entry) returns: its value
/// and timestamp, or `None` for a delete.
pub fn present(stamped: Option<Bytes>) -> Option<(Bytes, i64)> {
    match decode(&stamped?) {
        (Some(v), ts) => Some((v, ts)),
        (None, _) => None,
    }
}
