//! An in-memory store: a sorted map, rebuilt from the changelog on start.
//! The map is shared with the store's readers, behind a lock each write and
//! read takes briefly.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use super::{Entry, KeyValueStore, StoreError, StoreReader};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// A store kept in a `BTreeMap`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: Arc<RwLock<Map>>,
}

/// Reads a [`MemoryStore`]'s map from other threads.
struct MemoryReader(Arc<RwLock<Map>>);

fn get(map: &RwLock<Map>, key: &[u8]) -> Option<Vec<u8>> {
    map.read().unwrap_or_else(|p| p.into_inner()).get(key).cloned()
}

fn range(map: &RwLock<Map>, from: Option<&[u8]>, to: Option<&[u8]>, limit: usize) -> Vec<Entry> {
    let lo = from.map_or(Bound::Unbounded, Bound::Included);
    let hi = to.map_or(Bound::Unbounded, Bound::Excluded);
    if let (Bound::Included(l), Bound::Excluded(h)) = (lo, hi)
        && l >= h
    {
        return Vec::new();
    }
    let map = map.read().unwrap_or_else(|p| p.into_inner());
    map.range::<[u8], _>((lo, hi)).take(limit).map(|(k, v)| (k.clone(), v.clone())).collect()
}

impl KeyValueStore for MemoryStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(get(&self.map, key))
    }

    fn write(&mut self, batch: &[(Bytes, Option<Bytes>)]) -> Result<(), StoreError> {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        for (k, v) in batch {
            match v {
                Some(v) => map.insert(k.to_vec(), v.to_vec()),
                None => map.remove(&k[..]),
            };
        }
        Ok(())
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>, StoreError> {
        Ok(range(&self.map, from, to, limit))
    }

    fn persist(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        self.map.write().unwrap_or_else(|p| p.into_inner()).clear();
        Ok(())
    }

    fn reader(&self) -> Arc<dyn StoreReader> {
        Arc::new(MemoryReader(self.map.clone()))
    }
}

impl StoreReader for MemoryReader {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(get(&self.0, key))
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>, StoreError> {
        Ok(range(&self.0, from, to, limit))
    }
}
