//! The record cache: recent entries of a store, in memory.
//!
//! Updates are *dirty* until the next flush and coalesce per key, so a key
//! updated many times between commits goes to the changelog once. A flushed
//! entry is in the changelog (which is what makes it durable) but not yet in
//! the local store: it stays *unsynced* and keeps serving reads until the
//! cache needs its room; only then are the unsynced entries written to the
//! local store, in one batch, and the cache starts over empty
//! ([`RecordCache::evict`]). Entries read from the local store are *clean*.
//!
//! Entries live in one vector, in the order they came, with a hash table of
//! their positions beside it: the dirty and unsynced lists are positions, so
//! an update stores its key once, and eviction moves entries out instead of
//! copying them.

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::ops::Bound;

use bytes::Bytes;
use hashbrown::HashTable;
use smallvec::SmallVec;

#[derive(Debug, Clone)]
struct Entry {
    key: Bytes,
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
    /// Every entry, in the order its key first came since the cache was last
    /// emptied.
    entries: Vec<Entry>,
    /// Positions in `entries`, by key. foldhash: several times faster than
    /// SipHash on short keys, and seeded per process.
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    /// Positions of the dirty entries, in the order of their first update
    /// since the last drain.
    dirty: Vec<u32>,
    /// Positions of the unsynced entries (dirty ones included), in no order.
    unsynced: Vec<u32>,
    /// The unsynced keys in order, with their positions, kept from the
    /// first range scan on (a store that is never scanned does not pay for
    /// it). Keys are copied in: short ones compare without a pointer chase.
    ordered: Option<BTreeMap<OrderedKey, u32>>,
    bytes: usize,
    max_bytes: usize,
}

/// A key in the ordered index: window store keys fit inline.
type OrderedKey = SmallVec<[u8; 32]>;

/// Bytes an entry is charged, beyond its key and value.
const ENTRY_OVERHEAD: usize = 64;

fn cost(key: &[u8], value: &Option<Bytes>) -> usize {
    ENTRY_OVERHEAD + key.len() + value.as_ref().map_or(0, Bytes::len)
}

impl RecordCache {
    /// An empty cache holding up to `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        RecordCache {
            entries: Vec::new(),
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            dirty: Vec::new(),
            unsynced: Vec::new(),
            ordered: None,
            bytes: 0,
            max_bytes,
        }
    }

    /// The position of `key`'s entry.
    fn find(&self, key: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        self.index.find(hash, |&i| self.entries[i as usize].key[..] == *key).copied()
    }

    /// The cached value of `key`: `Some(None)` if the key is known to be
    /// absent (or deleted), `None` if the cache does not know.
    pub fn get(&self, key: &[u8]) -> Option<&Option<Bytes>> {
        self.find(key).map(|i| &self.entries[i as usize].value)
    }

    /// Adds an entry for a key the cache does not hold; returns its position.
    fn push(&mut self, key: Bytes, value: Option<Bytes>, dirty: bool) -> u32 {
        let i = u32::try_from(self.entries.len()).expect("a cache holds fewer than 2^32 entries");
        self.bytes += cost(&key, &value);
        let hash = self.hasher.hash_one(&key[..]);
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index.insert_unique(hash, i, |&j| hasher.hash_one(&entries[j as usize].key[..]));
        self.entries.push(Entry { key, value, dirty, unsynced: dirty });
        i
    }

    /// Records an update, replacing any pending one for the key.
    pub fn put(&mut self, key: Bytes, value: Option<Bytes>) {
        let (i, was_dirty, was_unsynced) = match self.find(&key) {
            Some(i) => {
                let e = &mut self.entries[i as usize];
                self.bytes += cost(&key, &value);
                self.bytes -= cost(&e.key, &e.value);
                let flags = (e.dirty, e.unsynced);
                (e.dirty, e.unsynced) = (true, true);
                e.value = value;
                (i, flags.0, flags.1)
            }
            None => (self.push(key, value, true), false, false),
        };
        if !was_unsynced {
            if let Some(ordered) = &mut self.ordered {
                ordered.insert(OrderedKey::from_slice(&self.entries[i as usize].key), i);
            }
            self.unsynced.push(i);
        }
        if !was_dirty {
            self.dirty.push(i);
        }
    }

    /// Remembers what the local store holds for `key` (a clean entry). Does
    /// nothing if the cache has no room for it, or has the key already.
    pub fn remember(&mut self, key: Bytes, value: Option<Bytes>) {
        if self.bytes + cost(&key, &value) <= self.max_bytes && self.find(&key).is_none() {
            self.push(key, value, false);
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
        let (unsynced, entries) = (&self.unsynced, &self.entries);
        let ordered = self.ordered.get_or_insert_with(|| ordered_index(entries, unsynced));
        let lower = from.map_or(Bound::Unbounded, Bound::Included);
        let upper = to.map_or(Bound::Unbounded, Bound::Excluded);
        ordered.range::<[u8], _>((lower, upper)).map(move |(_, &i)| {
            let e = &entries[i as usize];
            (&e.key, &e.value)
        })
    }

    /// Takes every pending update, in the order of their keys' first update
    /// since the last drain; the entries stay, unsynced.
    pub fn drain(&mut self) -> Vec<(Bytes, Option<Bytes>)> {
        let mut updates = Vec::with_capacity(self.dirty.len());
        for i in std::mem::take(&mut self.dirty) {
            let e = &mut self.entries[i as usize];
            e.dirty = false;
            updates.push((e.key.clone(), e.value.clone()));
        }
        updates
    }

    /// Copies the flushed entries not yet in the local store, to write them
    /// there; they stay as clean entries. Dirty entries stay unsynced: they
    /// are not in the changelog yet.
    pub fn take_unsynced(&mut self) -> Vec<(Bytes, Option<Bytes>)> {
        let mut out = Vec::with_capacity(self.unsynced.len());
        let mut still = Vec::new();
        for i in std::mem::take(&mut self.unsynced) {
            let e = &mut self.entries[i as usize];
            if e.dirty {
                still.push(i);
            } else {
                e.unsynced = false;
                out.push((e.key.clone(), e.value.clone()));
            }
        }
        if let Some(ordered) = &mut self.ordered {
            *ordered = ordered_index(&self.entries, &still);
        }
        self.unsynced = still;
        out
    }

    /// Empties the cache, which holds nothing dirty (flush first), and
    /// returns the entries not yet in the local store, to write them there.
    /// They move out: nothing is copied.
    pub fn evict(&mut self) -> Vec<(Bytes, Option<Bytes>)> {
        debug_assert!(self.dirty.is_empty(), "evicting a cache with dirty entries");
        let out = self.entries.drain(..).filter(|e| e.unsynced).map(|e| (e.key, e.value)).collect();
        self.index.clear();
        self.unsynced.clear();
        self.ordered = None;
        self.bytes = 0;
        out
    }
}

/// The ordered index of the entries at `positions`.
fn ordered_index(entries: &[Entry], positions: &[u32]) -> BTreeMap<OrderedKey, u32> {
    positions.iter().map(|&i| (OrderedKey::from_slice(&entries[i as usize].key), i)).collect()
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
        assert_eq!(c.get(b"k"), Some(&Some(b("3"))), "synced entries stay, clean");
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
    fn eviction_moves_out_what_the_local_store_lacks_and_empties_the_cache() {
        let mut c = RecordCache::new(1000);
        c.remember(b("clean"), Some(b("stored")));
        c.put(b("a"), Some(b("1")));
        c.put(b("b"), None);
        assert_eq!(c.drain().len(), 2);
        let _ = c.unsynced_range(None, None).count();
        let mut evicted = c.evict();
        evicted.sort();
        assert_eq!(evicted, [(b("a"), Some(b("1"))), (b("b"), None)], "clean entries are not written again");
        assert_eq!((c.get(b"a"), c.get(b"clean")), (None, None));
        assert_eq!(c.unsynced_range(None, None).count(), 0, "the ordered keys went too");
        c.put(b("a"), Some(b("2")));
        assert_eq!(c.get(b"a"), Some(&Some(b("2"))), "the cache works on after an eviction");
        assert_eq!(c.drain(), [(b("a"), Some(b("2")))]);
    }

    #[test]
    fn a_full_cache_flushes_and_forgets() {
        let mut tiny = RecordCache::new(0);
        tiny.remember(b("k"), Some(b("v")));
        assert_eq!(tiny.get(b"k"), None, "no room to remember");
        tiny.put(b("k"), Some(b("v")));
        assert!(tiny.is_over());
        assert_eq!(tiny.drain().len(), 1);
        assert_eq!(tiny.evict().len(), 1);
        assert!(!tiny.is_over());
        assert_eq!(tiny.get(b"k"), None);
    }
}
