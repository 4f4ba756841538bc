//! Host-owned state stores, as processors and punctuators see them.
//!
//! In a component, a [`Store`] calls the host: the store lives in the host
//! (RocksDB or memory, with a record cache and a changelog), and the plugin
//! only reads and writes it during a call. In a native build (a plugin's unit
//! tests) stores are in-memory maps of the current thread, so processor logic
//! can be tested with `cargo test`.

#[cfg(target_arch = "wasm32")]
use crate::Error;
use crate::{IntoValue, Result};

/// Entries a scan asks the host for at a time.
const PAGE: u32 = 512;

/// A state store the calling node declares in its `stores:` list. Opening
/// the same store again during a call is free: handles are kept for the
/// call (a batch) and dropped when it ends.
#[derive(Clone)]
pub struct Store {
    #[cfg(target_arch = "wasm32")]
    handle: std::rc::Rc<crate::bindings::eddy::plugin::state::Store>,
    #[cfg(not(target_arch = "wasm32"))]
    name: String,
}

impl Store {
    /// Opens the store `name`. Fails if the node does not declare it.
    pub fn open(name: &str) -> Result<Store> {
        #[cfg(target_arch = "wasm32")]
        {
            if let Some(store) = OPEN.with(|open| open.borrow().iter().find(|(n, _)| n == name).map(|(_, s)| s.clone()))
            {
                return Ok(store);
            }
            let handle = crate::bindings::eddy::plugin::state::Store::open(name).map_err(Error::failed)?;
            let store = Store { handle: std::rc::Rc::new(handle) };
            OPEN.with(|open| open.borrow_mut().push((name.to_owned(), store.clone())));
            Ok(store)
        }
        #[cfg(not(target_arch = "wasm32"))]
        Ok(Store { name: name.to_owned() })
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        #[cfg(target_arch = "wasm32")]
        return self.handle.get(key);
        #[cfg(not(target_arch = "wasm32"))]
        native::with(&self.name, |m| m.get(key).cloned())
    }

    /// The values of several keys, in order, in one call to the host.
    pub fn get_many(&self, keys: &[&[u8]]) -> Vec<Option<Vec<u8>>> {
        #[cfg(target_arch = "wasm32")]
        return self.handle.get_many(&keys.iter().map(|k| k.to_vec()).collect::<Vec<_>>());
        #[cfg(not(target_arch = "wasm32"))]
        keys.iter().map(|k| self.get(k)).collect()
    }

    /// Sets the value of `key`. Fails on a global table's store (read-only).
    pub fn put(&self, key: &[u8], value: impl IntoValue) -> Result<()> {
        let Some(value) = value.into_value()? else { return self.delete(key) };
        #[cfg(target_arch = "wasm32")]
        return self.handle.put(key, &value).map_err(Error::failed);
        #[cfg(not(target_arch = "wasm32"))]
        native::with(&self.name, |m| {
            m.insert(key.to_vec(), value);
            Ok(())
        })
    }

    /// Removes `key`. Fails on a global table's store.
    pub fn delete(&self, key: &[u8]) -> Result<()> {
        #[cfg(target_arch = "wasm32")]
        return self.handle.delete(key).map_err(Error::failed);
        #[cfg(not(target_arch = "wasm32"))]
        native::with(&self.name, |m| {
            m.remove(key);
            Ok(())
        })
    }

    /// Entries with `from <= key < to` (a missing bound is open), in key
    /// order, fetched from the host a page at a time.
    pub fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Range<'_> {
        Range { store: self, next: from.map(<[u8]>::to_vec), to: to.map(<[u8]>::to_vec), page: Vec::new(), done: false }
    }

    /// Entries whose key starts with `prefix`, in key order.
    pub fn prefix(&self, prefix: &[u8]) -> Range<'_> {
        let end = eddy_codec::prefix_end(prefix);
        self.range(Some(prefix), end.as_deref())
    }

    fn page(&self, from: Option<&[u8]>, to: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        #[cfg(target_arch = "wasm32")]
        return self.handle.range(from, to, limit).into_iter().map(|e| (e.key, e.value)).collect();
        #[cfg(not(target_arch = "wasm32"))]
        native::with(&self.name, |m| {
            m.iter()
                .filter(|(k, _)| from.is_none_or(|f| k.as_slice() >= f) && to.is_none_or(|t| k.as_slice() < t))
                .take(limit as usize)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
    }
}

#[cfg(target_arch = "wasm32")]
thread_local! {
    /// Stores opened during the current call.
    static OPEN: std::cell::RefCell<Vec<(String, Store)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Drops the handles of the call that ends (they are valid only in it).
pub(crate) fn end_call() {
    #[cfg(target_arch = "wasm32")]
    OPEN.with(|open| open.borrow_mut().clear());
}

/// The entries of a scan, in key order.
pub struct Range<'a> {
    store: &'a Store,
    next: Option<Vec<u8>>,
    to: Option<Vec<u8>>,
    page: Vec<(Vec<u8>, Vec<u8>)>,
    done: bool,
}

impl Iterator for Range<'_> {
    type Item = (Vec<u8>, Vec<u8>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.page.is_empty() && !self.done {
            let mut page = self.store.page(self.next.as_deref(), self.to.as_deref(), PAGE);
            self.done = page.len() < PAGE as usize;
            if let Some((last, _)) = page.last() {
                let mut after = last.clone();
                after.push(0);
                self.next = Some(after);
            }
            page.reverse();
            self.page = page;
        }
        self.page.pop()
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::cell::RefCell;
    use std::collections::{BTreeMap, HashMap};

    type Map = BTreeMap<Vec<u8>, Vec<u8>>;

    thread_local! {
        static STORES: RefCell<HashMap<String, Map>> = RefCell::new(HashMap::new());
    }

    pub(super) fn with<T>(name: &str, f: impl FnOnce(&mut Map) -> T) -> T {
        STORES.with(|s| f(s.borrow_mut().entry(name.to_owned()).or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_stores_scan_in_pages() {
        let s = Store::open("test-pages").unwrap();
        for i in 0..1200u32 {
            s.put(&i.to_be_bytes(), i.to_string()).unwrap();
        }
        s.delete(&5u32.to_be_bytes()).unwrap();
        assert_eq!(s.range(None, None).count(), 1199);
        let from = 1000u32.to_be_bytes();
        let keys: Vec<u32> =
            s.range(Some(&from), None).map(|(k, _)| u32::from_be_bytes(k.try_into().unwrap())).collect();
        assert_eq!(keys, (1000..1200).collect::<Vec<_>>());
        assert_eq!(s.prefix(&[0, 0, 1]).count(), 256);
        assert_eq!(s.get(&7u32.to_be_bytes()), Some(b"7".to_vec()));
        assert_eq!(s.get_many(&[&5u32.to_be_bytes(), &6u32.to_be_bytes()]), [None, Some(b"6".to_vec())]);
    }
}
