//! The record cache: dirty updates per key, coalesced until the next flush.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

/// Updates not yet flushed, by key; `None` is a pending delete. Sized in
/// bytes; a cache of size 0 holds nothing, so every update flushes at once.
#[derive(Debug)]
pub struct RecordCache {
    entries: BTreeMap<Bytes, Option<Bytes>>,
    bytes: usize,
    max_bytes: usize,
}

/// Bytes an entry is charged, beyond its key and value.
const ENTRY_OVERHEAD: usize = 64;

impl RecordCache {
    /// An empty cache holding up to `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        RecordCache { entries: BTreeMap::new(), bytes: 0, max_bytes }
    }

    fn cost(key: &Bytes, value: &Option<Bytes>) -> usize {
        ENTRY_OVERHEAD + key.len() + value.as_ref().map_or(0, Bytes::len)
    }

    /// The pending update of `key`, if any (`Some(None)` is a pending delete).
    pub fn get(&self, key: &[u8]) -> Option<&Option<Bytes>> {
        self.entries.get(key)
    }

    /// Records an update, replacing any pending one for the key.
    pub fn put(&mut self, key: Bytes, value: Option<Bytes>) {
        self.bytes += Self::cost(&key, &value);
        if let Some(old) = self.entries.insert(key.clone(), value) {
            self.bytes -= Self::cost(&key, &old);
        }
    }

    /// True when the cache holds more than its size.
    pub fn is_over(&self) -> bool {
        self.bytes > self.max_bytes
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Pending updates with `from <= key < to`.
    pub fn range<'a>(
        &'a self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
    ) -> impl Iterator<Item = (&'a Bytes, &'a Option<Bytes>)> + 'a {
        let lo = from.map_or(Bound::Unbounded, |f| Bound::Included(Bytes::copy_from_slice(f)));
        let hi = to.map_or(Bound::Unbounded, |t| Bound::Excluded(Bytes::copy_from_slice(t)));
        let empty = matches!((&lo, &hi), (Bound::Included(l), Bound::Excluded(h)) if l >= h);
        let range = if empty { None } else { Some(self.entries.range((lo, hi))) };
        range.into_iter().flatten()
    }

    /// Takes every pending update, in key order.
    pub fn drain(&mut self) -> Vec<(Bytes, Option<Bytes>)> {
        self.bytes = 0;
        std::mem::take(&mut self.entries).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesces_per_key_and_tracks_size() {
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        let mut c = RecordCache::new(1000);
        c.put(b("k"), Some(b("1")));
        c.put(b("k"), Some(b("22")));
        c.put(b("j"), None);
        assert_eq!(c.get(b"k"), Some(&Some(b("22"))));
        assert_eq!(c.range(Some(b"k"), None).count(), 1);
        assert!(!c.is_over());
        assert_eq!(c.drain(), [(b("j"), None), (b("k"), Some(b("22")))]);
        assert!(c.is_empty());
        let mut tiny = RecordCache::new(0);
        tiny.put(b("k"), Some(b("v")));
        assert!(tiny.is_over());
    }
}
