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
//!
//! Range scans over the unsynced entries use one of two indexes, each kept
//! up to date from its first scan on: an ordered one for any range, and,
//! for a window store (whose keys are a record key, then a fixed-length
//! time suffix), one by record key, for the scans of one key's windows
//! that joins and session and sliding windows make
//! ([`RecordCache::unsynced_of_key`]).

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
    /// For a window store: the unsynced entries by record key.
    by_key: Option<KeyIndex>,
    bytes: usize,
    max_bytes: usize,
}

/// A key's place in a [`RecordCache`] (or its absence), valid until the
/// cache changes.
#[derive(Debug)]
pub struct CacheSlot(Option<u32>);

/// A key in the ordered index: window store keys fit inline.
type OrderedKey = SmallVec<[u8; 32]>;

/// The unsynced entries of a window store by record key: the positions of
/// each key's entries, under the hash of the key (keys whose hashes collide
/// share a list; a scan compares the keys themselves).
#[derive(Debug)]
struct KeyIndex {
    /// The length of the time suffix after the record key.
    suffix: usize,
    /// Filled from the first scan on.
    lists: Option<HashTable<(u64, SmallVec<[u32; 3]>)>>,
}

impl KeyIndex {
    /// The record key of `key`, a window store key.
    fn record_key<'k>(&self, key: &'k [u8]) -> &'k [u8] {
        &key[..key.len().saturating_sub(self.suffix)]
    }

    fn add(&mut self, hasher: &foldhash::fast::RandomState, key: &[u8], i: u32) {
        if self.lists.is_none() {
            return;
        }
        let hash = hasher.hash_one(self.record_key(key));
        let Some(lists) = &mut self.lists else { return };
        match lists.find_mut(hash, |(h, _)| *h == hash) {
            Some((_, list)) => list.push(i),
            None => {
                lists.insert_unique(hash, (hash, smallvec::smallvec![i]), |(h, _)| *h);
            }
        }
    }

    /// Rebuilds the lists (if kept) from the unsynced `positions`.
    fn rebuild(&mut self, hasher: &foldhash::fast::RandomState, entries: &[Entry], positions: &[u32]) {
        let Some(lists) = &mut self.lists else { return };
        lists.clear();
        for &i in positions {
            self.add(hasher, &entries[i as usize].key, i);
        }
    }
}

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
            by_key: None,
            bytes: 0,
            max_bytes,
        }
    }

    /// An empty cache of a window store, whose keys end in a time suffix
    /// of `suffix` bytes after the record key (see [`crate::store::KeyTime`]).
    pub fn windowed(max_bytes: usize, suffix: usize) -> Self {
        RecordCache { by_key: Some(KeyIndex { suffix, lists: None }), ..RecordCache::new(max_bytes) }
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
        let slot = self.slot(&key);
        self.put_in(slot, key, value);
    }

    /// Where `key`'s entry is, looked up once for a read and the update
    /// that follows it ([`RecordCache::value_in`], [`RecordCache::put_in`]).
    pub fn slot(&self, key: &[u8]) -> CacheSlot {
        CacheSlot(self.find(key))
    }

    /// The cached value in `slot`, as [`RecordCache::get`].
    pub fn value_in(&self, slot: &CacheSlot) -> Option<&Option<Bytes>> {
        slot.0.map(|i| &self.entries[i as usize].value)
    }

    /// Records an update of the key `slot` was taken for, as
    /// [`RecordCache::put`]; the cache must not have changed since.
    pub fn put_in(&mut self, slot: CacheSlot, key: Bytes, value: Option<Bytes>) {
        debug_assert!(slot.0.is_none_or(|i| self.entries[i as usize].key == key), "a slot of another key");
        let (i, was_dirty, was_unsynced) = match slot.0 {
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
            if let Some(by_key) = &mut self.by_key {
                by_key.add(&self.hasher, &self.entries[i as usize].key, i);
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

    /// The bytes the cache holds, as it counts them.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The bytes the cache may hold.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
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

    /// The unsynced entries with record key `key` (a window store's keys
    /// are the record key, then the time suffix) and `from <= key < to`, in
    /// key order. Other stores scan the range, whatever record key its
    /// entries have.
    pub fn unsynced_of_key(
        &mut self,
        key: &[u8],
        from: Option<&[u8]>,
        to: Option<&[u8]>,
    ) -> Vec<(Bytes, Option<Bytes>)> {
        let within = |k: &[u8]| from.is_none_or(|f| k >= f) && to.is_none_or(|t| k < t);
        let Some(by_key) = &mut self.by_key else {
            return self.unsynced_range(from, to).map(|(k, v)| (k.clone(), v.clone())).collect();
        };
        if by_key.lists.is_none() {
            by_key.lists = Some(HashTable::new());
            by_key.rebuild(&self.hasher, &self.entries, &self.unsynced);
        }
        let hash = self.hasher.hash_one(key);
        let Some((_, list)) = by_key.lists.as_ref().and_then(|l| l.find(hash, |(h, _)| *h == hash)) else {
            return Vec::new();
        };
        let mut found: Vec<(Bytes, Option<Bytes>)> = list
            .iter()
            .map(|&i| &self.entries[i as usize])
            .filter(|e| by_key.record_key(&e.key) == key && within(&e.key))
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect();
        found.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        found
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
        if let Some(by_key) = &mut self.by_key {
            by_key.rebuild(&self.hasher, &self.entries, &still);
        }
        self.unsynced = still;
        out
    }

    /// Drops the entries whose keys `forget` picks, without writing them
    /// anywhere (a window store's entries past retention, which no read
    /// sees any more); the cache holds nothing dirty (flush first). Returns
    /// the keys of the dropped entries the local store lacked.
    pub fn forget(&mut self, mut forget: impl FnMut(&[u8]) -> bool) -> Vec<Bytes> {
        debug_assert!(self.dirty.is_empty(), "forgetting entries of a cache with dirty entries");
        if !self.entries.iter().any(|e| forget(&e.key)) {
            return Vec::new();
        }
        let mut dropped = Vec::new();
        let mut kept = Vec::with_capacity(self.entries.len());
        for e in self.entries.drain(..) {
            if !forget(&e.key) {
                kept.push(e);
            } else if e.unsynced {
                dropped.push(e.key);
            }
        }
        self.entries = kept;
        self.index.clear();
        self.unsynced.clear();
        self.bytes = 0;
        let (entries, hasher) = (&self.entries, &self.hasher);
        for (i, e) in entries.iter().enumerate() {
            let i = i as u32;
            self.index
                .insert_unique(hasher.hash_one(&e.key[..]), i, |&j| hasher.hash_one(&entries[j as usize].key[..]));
            if e.unsynced {
                self.unsynced.push(i);
            }
            self.bytes += cost(&e.key, &e.value);
        }
        if self.ordered.is_some() {
            self.ordered = Some(ordered_index(&self.entries, &self.unsynced));
        }
        if let Some(by_key) = &mut self.by_key {
            by_key.rebuild(&self.hasher, &self.entries, &self.unsynced);
        }
        dropped
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
        if let Some(by_key) = &mut self.by_key {
            by_key.rebuild(&self.hasher, &[], &[]);
        }
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
    fn forgotten_entries_leave_without_a_trace() {
        let mut c = RecordCache::new(1000);
        c.remember(b("old-clean"), Some(b("stored")));
        for k in ["old-a", "new-b", "old-c", "new-d"] {
            c.put(b(k), Some(b(k)));
        }
        c.drain();
        assert_eq!(c.unsynced_range(None, None).count(), 4);
        let mut dropped = c.forget(|k| k.starts_with(b"old"));
        dropped.sort();
        assert_eq!(dropped, [b("old-a"), b("old-c")], "only what the local store lacked is reported");
        assert_eq!((c.get(b"old-a"), c.get(b"old-clean")), (None, None));
        assert_eq!(c.get(b"new-d"), Some(&Some(b("new-d"))));
        let keys: Vec<&[u8]> = c.unsynced_range(None, None).map(|(k, _)| &k[..]).collect();
        assert_eq!(keys, [&b"new-b"[..], &b"new-d"[..]], "the ordered index follows");
        c.put(b("new-b"), Some(b("2")));
        assert_eq!(c.drain(), [(b("new-b"), Some(b("2")))], "positions are right after the move");
        let mut evicted = c.evict();
        evicted.sort();
        assert_eq!(evicted, [(b("new-b"), Some(b("2"))), (b("new-d"), Some(b("new-d")))]);
        assert!(!c.is_over());
    }

    #[test]
    fn a_window_cache_finds_one_keys_windows() {
        let wk = |k: &str, t: i64| Bytes::from([k.as_bytes(), &t.to_be_bytes()].concat());
        let mut c = RecordCache::windowed(10_000, 8);
        for (k, t) in [("a", 5), ("ab", 1), ("a", 1), ("b", 3), ("a", 9)] {
            c.put(wk(k, t), Some(b(k)));
        }
        let starts = |c: &mut RecordCache, key: &str, from: i64, to: i64| -> Vec<i64> {
            let (from, to) = (wk(key, from), wk(key, to));
            c.unsynced_of_key(key.as_bytes(), Some(&from), Some(&to))
                .iter()
                .map(|(k, _)| i64::from_be_bytes(k[k.len() - 8..].try_into().unwrap()))
                .collect()
        };
        assert_eq!(starts(&mut c, "a", 0, 100), [1, 5, 9], "in key order, not another key's ('ab')");
        assert_eq!(starts(&mut c, "a", 2, 9), [5], "within the bounds");
        c.put(wk("a", 7), None);
        assert_eq!(starts(&mut c, "a", 0, 100), [1, 5, 7, 9], "a key added after a scan is found by the next");
        c.drain();
        let synced = c.take_unsynced();
        assert_eq!(synced.len(), 6);
        assert!(starts(&mut c, "a", 0, 100).is_empty(), "synced entries are the local store's to find");
        c.put(wk("a", 2), Some(b("x")));
        c.drain();
        let _ = c.forget(|k| k.starts_with(b"b"));
        assert_eq!(starts(&mut c, "a", 0, 100), [2], "after entries moved");
        assert_eq!(c.evict().len(), 1);
        assert!(starts(&mut c, "a", 0, 100).is_empty());
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
