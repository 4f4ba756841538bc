//! The record cache: recent entries of a store, in memory.
//!
//! Updates are *dirty* until the next flush and coalesce per key, so a key
//! updated many times between commits is written once. Entries read from the
//! local store, and flushed ones, stay as *clean* entries that serve reads
//! without a RocksDB lookup, until the cache needs their room.

use std::collections::HashMap;

use bytes::Bytes;

#[derive(Debug, Clone)]
struct Entry {
    /// `None` is a delete (dirty) or a known-absent key (clean).
    value: Option<Bytes>,
    dirty: bool,
}

/// Recent entries by key, within a size in bytes. A cache of size 0 keeps
/// nothing: every update flushes at once.
#[derive(Debug)]
pub struct RecordCache {
    entries: HashMap<Bytes, Entry>,
    /// Keys of the dirty entries, in no order.
    dirty: Vec<Bytes>,
    bytes: usize,
    max_bytes: usize,
}

/// Bytes an entry is charged, beyond its key and value.
const ENTRY_OVERHEAD: usize = 64;

fn cost(key: &Bytes, value: &Option<Bytes>) -> usize {
    ENTRY_OVERHEAD + key.len() + value.as_ref().map_or(0, Bytes::len)
}

impl RecordCache {
    /// An empty cache holding up to `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        RecordCache { entries: HashMap::new(), dirty: Vec::new(), bytes: 0, max_bytes }
    }

    /// The cached value of `key`: `Some(None)` if the key is known to be
    /// absent (or deleted), `None` if the cache does not know.
    pub fn get(&self, key: &[u8]) -> Option<&Option<Bytes>> {
        self.entries.get(key).map(|e| &e.value)
    }

    /// Inserts an entry; returns whether the key had a dirty entry already.
    fn insert(&mut self, key: Bytes, value: Option<Bytes>, dirty: bool) -> bool {
        self.bytes += cost(&key, &value);
        match self.entries.insert(key.clone(), Entry { value, dirty }) {
            Some(old) => {
                self.bytes -= cost(&key, &old.value);
                old.dirty
            }
            None => false,
        }
    }

    /// Records an update, replacing any pending one for the key.
    pub fn put(&mut self, key: Bytes, value: Option<Bytes>) {
        if !self.insert(key.clone(), value, true) {
            self.dirty.push(key);
        }
    }

    /// Remembers what the local store holds for `key` (a clean entry). Does
    /// nothing if the cache has no room for it.
    pub fn remember(&mut self, key: Bytes, value: Option<Bytes>) {
        if self.bytes + cost(&key, &value) <= self.max_bytes {
            self.insert(key, value, false);
        }
    }

    /// True when the cache holds more than its size.
    pub fn is_over(&self) -> bool {
        self.bytes > self.max_bytes
    }

    /// True when no update is pending.
    pub fn is_clean(&self) -> bool {
        self.dirty.is_empty()
    }

    /// Pending updates with `from <= key < to` (`None` values are deletes).
    pub fn dirty_range<'a>(
        &'a self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
    ) -> impl Iterator<Item = (&'a Bytes, &'a Option<Bytes>)> + 'a {
        let (from, to) = (from.map(<[u8]>::to_vec), to.map(<[u8]>::to_vec));
        self.dirty
            .iter()
            .filter(move |k| from.as_deref().is_none_or(|f| &k[..] >= f) && to.as_deref().is_none_or(|t| &k[..] < t))
            .filter_map(|k| self.entries.get_key_value(k).map(|(k, e)| (k, &e.value)))
    }

    /// Takes every pending update, in key order; the entries stay, clean.
    /// If the cache is still over its size, clean entries are dropped.
    pub fn drain(&mut self) -> Vec<(Bytes, Option<Bytes>)> {
        let mut updates = Vec::with_capacity(self.dirty.len());
        for k in std::mem::take(&mut self.dirty) {
            if let Some(e) = self.entries.get_mut(&k) {
                e.dirty = false;
                updates.push((k, e.value.clone()));
            }
        }
        updates.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if self.is_over() {
            self.entries.clear();
            self.bytes = 0;
        }
        updates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn coalesces_per_key_and_keeps_flushed_entries_clean() {
        let mut c = RecordCache::new(1000);
        c.put(b("k"), Some(b("1")));
        c.put(b("k"), Some(b("22")));
        c.put(b("j"), None);
        c.remember(b("x"), Some(b("stored")));
        assert_eq!(c.get(b"k"), Some(&Some(b("22"))));
        assert_eq!(c.get(b"x"), Some(&Some(b("stored"))));
        assert_eq!(c.dirty_range(Some(b"k"), None).count(), 1);
        assert!(!c.is_over() && !c.is_clean());
        assert_eq!(c.drain(), [(b("j"), None), (b("k"), Some(b("22")))]);
        assert!(c.is_clean());
        assert_eq!(c.get(b"k"), Some(&Some(b("22"))), "flushed entries still serve reads");
        assert!(c.drain().is_empty());
    }

    #[test]
    fn a_full_cache_flushes_and_forgets() {
        let mut tiny = RecordCache::new(0);
        tiny.remember(b("k"), Some(b("v")));
        assert_eq!(tiny.get(b"k"), None, "no room to remember");
        tiny.put(b("k"), Some(b("v")));
        assert!(tiny.is_over());
        assert_eq!(tiny.drain().len(), 1);
        assert_eq!(tiny.get(b"k"), None);
    }
}
