//! What a processor or punctuator call may touch: the stores its node
//! declares, as one task sees them, with the call's writes held apart until
//! the call has succeeded.
//!
//! Reads see the call's own writes first. [`StoreAccess::settle`] applies the
//! writes to the task stores; [`StoreAccess::discard`] drops them, so a record
//! that fails or traps leaves no half-applied update behind.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use super::{Entry, GlobalStore, StoreError, TaskStore};
use crate::log::Producer;

/// A store a call can use.
// Task stores move in and out for every call: boxing them would allocate
// each time, for an enum that lives only as long as the call.
#[allow(clippy::large_enum_variant)]
pub enum SlotStore {
    /// A task's store, moved in for the call.
    Task(TaskStore),
    /// A global table's store: read-only.
    Global(Arc<GlobalStore>),
}

/// One declared store with the call's pending writes.
pub struct Slot {
    name: String,
    store: SlotStore,
    pending: BTreeMap<Bytes, Option<Bytes>>,
}

/// The stores of one call, in the order the node declares them.
#[derive(Default)]
pub struct StoreAccess {
    slots: Vec<Slot>,
    failure: Option<StoreError>,
}

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The store is a global table's copy.
    #[error("store '{0}' is a global table: it is read-only (write to its topic instead)")]
    ReadOnly(String),
    /// No such slot.
    #[error("no store number {0} is open")]
    NoSlot(u32),
}

impl StoreAccess {
    /// Adds a store under `name`.
    pub fn push(&mut self, name: &str, store: SlotStore) {
        self.slots.push(Slot { name: name.to_owned(), store, pending: BTreeMap::new() });
    }

    /// The slot number of store `name`, if the call has it.
    pub fn open(&self, name: &str) -> Option<u32> {
        self.slots.iter().position(|s| s.name == name).map(|i| i as u32)
    }

    /// The names of the stores, for error messages.
    pub fn names(&self) -> Vec<&str> {
        self.slots.iter().map(|s| s.name.as_str()).collect()
    }

    /// The value of `key` in slot `slot`, the call's own writes included.
    pub fn get(&mut self, slot: u32, key: &[u8]) -> Result<Option<Bytes>, StoreError> {
        let Some(s) = self.slots.get_mut(slot as usize) else { return Ok(None) };
        if let Some(v) = s.pending.get(key) {
            return Ok(v.clone());
        }
        match &mut s.store {
            SlotStore::Task(t) => t.get(key),
            SlotStore::Global(g) => g.get(key),
        }
    }

    /// Puts (`Some`) or deletes (`None`) `key` in slot `slot`, pending until
    /// [`StoreAccess::settle`].
    pub fn put(&mut self, slot: u32, key: Bytes, value: Option<Bytes>) -> Result<(), WriteError> {
        let s = self.slots.get_mut(slot as usize).ok_or(WriteError::NoSlot(slot))?;
        if let SlotStore::Global(_) = s.store {
            return Err(WriteError::ReadOnly(s.name.clone()));
        }
        s.pending.insert(key, value);
        Ok(())
    }

    /// The first `limit` entries of slot `slot` with `from <= key < to`, the
    /// call's own writes included.
    pub fn range(
        &mut self,
        slot: u32,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let Some(s) = self.slots.get_mut(slot as usize) else { return Ok(Vec::new()) };
        let in_range = |k: &[u8]| from.is_none_or(|f| k >= f) && to.is_none_or(|t| k < t);
        let pending: Vec<(&Bytes, &Option<Bytes>)> = s.pending.iter().filter(|(k, _)| in_range(k)).collect();
        let deletes = pending.iter().filter(|(_, v)| v.is_none()).count();
        let wanted = limit.saturating_add(deletes);
        let stored = match &mut s.store {
            SlotStore::Task(t) => t.range(from, to, wanted)?,
            SlotStore::Global(g) => g.range(from, to, wanted)?,
        };
        if pending.is_empty() {
            return Ok(stored);
        }
        let mut merged: BTreeMap<Vec<u8>, Option<Vec<u8>>> = stored.into_iter().map(|(k, v)| (k, Some(v))).collect();
        for (k, v) in pending {
            merged.insert(k.to_vec(), v.as_ref().map(|v| v.to_vec()));
        }
        Ok(merged.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).take(limit).collect())
    }

    /// Remembers that a store failed during the call (the plugin sees a trap;
    /// the caller stops with this error).
    pub fn fail(&mut self, e: StoreError) {
        self.failure.get_or_insert(e);
    }

    /// The store failure of the call, if any.
    pub fn take_failure(&mut self) -> Option<StoreError> {
        self.failure.take()
    }

    /// Drops the pending writes.
    pub fn discard(&mut self) {
        for s in &mut self.slots {
            s.pending.clear();
        }
    }

    /// Applies the pending writes to the task stores (their caches; a full
    /// cache flushes to the local store and the changelog in `out`), as
    /// updates made at `timestamp` (the latest record of the call).
    pub fn settle(&mut self, timestamp: i64, out: &mut dyn Producer) -> Result<(), StoreError> {
        for s in &mut self.slots {
            let pending = std::mem::take(&mut s.pending);
            if let SlotStore::Task(t) = &mut s.store {
                for (k, v) in pending {
                    // A processor's store passes nothing downstream: the
                    // processor forwards what it wants itself.
                    t.put(k, v, timestamp, out)?;
                }
            }
        }
        Ok(())
    }

    /// Takes the stores back, in the order they were pushed.
    pub fn into_stores(self) -> impl Iterator<Item = SlotStore> {
        self.slots.into_iter().map(|s| s.store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{EmbeddedLog, Log};
    use crate::store::StoreKind;
    use crate::task::TaskId;

    #[test]
    fn reads_see_pending_writes_and_discard_drops_them() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path().join("log"), false).unwrap();
        log.create_topic("app-s-changelog", 1).unwrap();
        let store = TaskStore::open(
            &dir.path().join("state"),
            "app",
            &crate::store::StoreSpec::new("s", StoreKind::InMemory),
            TaskId { subtopology: 0, partition: 0 },
            1 << 20,
            &log,
        )
        .unwrap();
        let mut access = StoreAccess::default();
        access.push("s", SlotStore::Task(store));
        let slot = access.open("s").unwrap();
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        let mut out = log.producer().unwrap();
        access.put(slot, b("a"), Some(b("1"))).unwrap();
        access.put(slot, b("b"), Some(b("2"))).unwrap();
        access.settle(0, &mut *out).unwrap();
        access.put(slot, b("a"), None).unwrap();
        access.put(slot, b("c"), Some(b("3"))).unwrap();
        assert_eq!(access.get(slot, b"a").unwrap(), None);
        let keys = |e: Vec<Entry>| e.into_iter().map(|(k, _)| String::from_utf8(k).unwrap()).collect::<Vec<_>>();
        assert_eq!(keys(access.range(slot, None, None, 10).unwrap()), ["b", "c"]);
        assert_eq!(keys(access.range(slot, None, None, 1).unwrap()), ["b"]);
        access.discard();
        assert_eq!(access.get(slot, b"a").unwrap(), Some(b("1")));
        assert_eq!(keys(access.range(slot, Some(b"a"), Some(b"b"), 10).unwrap()), ["a"]);
        assert_eq!(access.open("nope"), None);
    }
}
