//! The record cache: recent entries of a store, in memory.
//!
//! Updates are *dirty* until the next flush and coalesce per key, so a key
//! updated many times between commits goes to the changelog once. A flushed
//! entry is in the changelog (which is what makes it durable) but not yet in
//! the local store: it stays *unsynced* and keeps serving reads until the
//! cache needs its room; only then are the unsynced entries written to the
//! local store, in one batch. Entries read from the local store are *clean*.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use bytes::Bytes;

#[derive(Debug, Clone)]
struct Entry {
    /// `None` is a delete (dirty or unsynced) or a known-absent key (clean).
    value: Option<Bytes>,
    /// Not yet flushed (to the changelog and downstream).
    dirty: bool,
    /// Not yet written to the local store. Dirty entries are unsynced too.
    unsynced: bool,
}

/// Recent entries by key, within a size in bytes. A cache of size 0 keeps
/// nothing: every update flushes at once.
#[derive(Debug)]
pub struct RecordCache {
    /// foldhash: several times faster than SipHash on short keys, and
    /// seeded per process.
    entries: HashMap<Bytes, Entry, foldhash::fast::RandomState>,
    /// Keys of the dirty entries, in no order.
    dirty: Vec<Bytes>,
    /// Keys of the unsynced entries (dirty ones included), in no order.
    unsynced: Vec<Bytes>,
    /// The same keys in order, kept from the first range scan on (a store
    /// that is never scanned does not pay for it).
    ordered: Option<BTreeSet<Bytes>>,
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
        RecordCache {
            entries: HashMap::default(),
            dirty: Vec::new(),
            unsynced: Vec::new(),
            ordered: None,
            bytes: 0,
            max_bytes,
        }
    }

    /// The cached value of `key`: `Some(None)` if the key is known to be
    /// absent (or deleted), `None` if the cache does not know.
    pub fn get(&self, key: &[u8]) -> Option<&Option<Bytes>> {
        self.entries.get(key).map(|e| &e.value)
    }

    /// Inserts an entry; returns the flags of the entry it replaces.
    fn insert(&mut self, key: Bytes, value: Option<Bytes>, dirty: bool) -> Option<(bool, bool)> {
        self.bytes += cost(&key, &value);
        let old = self.entries.insert(key.clone(), Entry { value, dirty, unsynced: dirty })?;
        self.bytes -= cost(&key, &old.value);
        Some((old.dirty, old.unsynced))
    }

    /// Records an update, replacing any pending one for the key.
    pub fn put(&mut self, key: Bytes, value: Option<Bytes>) {
        let (was_dirty, was_unsynced) = self.insert(key.clone(), value, true).unwrap_or_default();
        if !was_unsynced {
            if let Some(ordered) = &mut self.ordered {
                ordered.insert(key.clone());
            }
            self.unsynced.push(key.clone());
        }
        if !was_dirty {
            self.dirty.push(key);
        }
    }

    /// Remembers what the local store holds for `key` (a clean entry). Does
    /// nothing if the cache has no room for it, or has the key already.
    pub fn remember(&mut self, key: Bytes, value: Option<Bytes>) {
        if self.bytes + cost(&key, &value) <= self.max_bytes && !self.entries.contains_key(&key) {
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

    /// Updates not yet in the local store with `from <= key < to`, in key
    /// order (`None` values are deletes). The first scan puts the unsynced
    /// keys in an ordered set, kept up to date from then on, so each scan
    /// costs a search of the set.
    pub fn unsynced_range<'a>(
        &'a mut self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
    ) -> impl Iterator<Item = (&'a Bytes, &'a Option<Bytes>)> + 'a {
        let unsynced = &self.unsynced;
        let ordered = self.ordered.get_or_insert_with(|| unsynced.iter().cloned().collect());
        let lower = from.map_or(Bound::Unbounded, Bound::Included);
        let upper = to.map_or(Bound::Unbounded, Bound::Excluded);
        let entries = &self.entries;
        ordered.range::<[u8], _>((lower, upper)).filter_map(|k| entries.get_key_value(k).map(|(k, e)| (k, &e.value)))
    }

    /// Takes every pending update, in the order of their keys' first update
    /// since the last drain; the entries stay, unsynced.
    pub fn drain(&mut self) -> Vec<(Bytes, Option<Bytes>)> {
        let mut updates = Vec::with_capacity(self.dirty.len());
        for k in std::mem::take(&mut self.dirty) {
            if let Some(e) = self.entries.get_mut(&k) {
                e.dirty = false;
                updates.push((k, e.value.clone()));
            }
        }
        updates
    }

    /// Takes the flushed entries not yet in the local store, in key order, to
    /// write them there; they stay as clean entries. Dirty entries stay
    /// unsynced: they are not in the changelog yet.
    pub fn take_unsynced(&mut self) -> Vec<(Bytes, Option<Bytes>)> {
        let mut out = Vec::with_capacity(self.unsynced.len());
        let mut still = Vec::new();
        for k in std::mem::take(&mut self.unsynced) {
            let Some(e) = self.entries.get_mut(&k) else { continue };
            if e.dirty {
                still.push(k);
            } else {
                e.unsynced = false;
                out.push((k, e.value.clone()));
            }
        }
        if let Some(ordered) = &mut self.ordered {
            *ordered = still.iter().cloned().collect();
        }
        self.unsynced = still;
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Drops every entry; call with nothing dirty or unsynced left.
    pub fn clear(&mut self) {
        debug_assert!(self.unsynced.is_empty(), "clearing a cache with unsynced entries");
        self.entries.clear();
        self.bytes = 0;
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
        assert_eq!(c.unsynced_range(Some(b"k"), None).count(), 1);
        assert!(!c.is_over() && !c.is_clean());
        assert_eq!(c.drain(), [(b("k"), Some(b("22"))), (b("j"), None)]);
        assert!(c.is_clean());
        assert_eq!(c.get(b"k"), Some(&Some(b("22"))), "flushed entries still serve reads");
        assert!(c.drain().is_empty());
        assert_eq!(c.unsynced_range(None, None).count(), 2, "flushed, not yet in the local store");
        c.put(b("k"), Some(b("3")));
        assert_eq!(c.take_unsynced(), [(b("j"), None)], "k is dirty again: not synced before its flush");
        assert_eq!(c.drain(), [(b("k"), Some(b("3")))]);
        assert_eq!(c.take_unsynced(), [(b("k"), Some(b("3")))]);
        assert!(c.take_unsynced().is_empty());
        for k in ["e", "b", "d", "a", "c"] {
            c.put(b(k), Some(b(k)));
        }
        let keys: Vec<&[u8]> = c.unsynced_range(Some(b"b"), Some(b"e")).map(|(k, _)| &k[..]).collect();
        assert_eq!(keys, [b"b", b"c", b"d"], "in key order, bounds honoured");
        c.put(b("bb"), None);
        let keys: Vec<&[u8]> = c.unsynced_range(Some(b"b"), Some(b"c")).map(|(k, _)| &k[..]).collect();
        assert_eq!(keys, [&b"b"[..], &b"bb"[..]], "a key added after a scan is found by the next");
    }

    #[test]
    fn a_full_cache_flushes_and_forgets() {
        let mut tiny = RecordCache::new(0);
        tiny.remember(b("k"), Some(b("v")));
        assert_eq!(tiny.get(b"k"), None, "no room to remember");
        tiny.put(b("k"), Some(b("v")));
        assert!(tiny.is_over());
        assert_eq!(tiny.drain().len(), 1);
        assert_eq!(tiny.take_unsynced().len(), 1);
        tiny.clear();
        assert_eq!(tiny.get(b"k"), None);
    }
}
