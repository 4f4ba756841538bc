//! An in-memory store: a sorted map, rebuilt from the changelog on start.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

use super::{Entry, KeyValueStore, StoreError};

/// A store kept in a `BTreeMap`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl KeyValueStore for MemoryStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map.get(key).cloned())
    }

    fn write(&mut self, batch: &[(Bytes, Option<Bytes>)]) -> Result<(), StoreError> {
        for (k, v) in batch {
            match v {
                Some(v) => self.map.insert(k.to_vec(), v.to_vec()),
                None => self.map.remove(&k[..]),
            };
        }
        Ok(())
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>, StoreError> {
        let lo = from.map_or(Bound::Unbounded, |f| Bound::Included(f.to_vec()));
        let hi = to.map_or(Bound::Unbounded, |t| Bound::Excluded(t.to_vec()));
        if let (Bound::Included(l), Bound::Excluded(h)) = (&lo, &hi)
            && l >= h
        {
            return Ok(Vec::new());
        }
        Ok(self.map.range((lo, hi)).take(limit).map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    fn persist(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        self.map.clear();
        Ok(())
    }
}
