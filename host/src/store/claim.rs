//! One owner per task store directory within a process.
//!
//! When a task moves between two worker threads of one instance (the group
//! took it from a thread it thought dead, and gave it to another), or from
//! the standby thread to a worker, the new owner may try to open its store
//! before the old one has closed it. A [`DirClaim`] turns that into
//! [`StoreError::Held`] instead of a failure on RocksDB's lock: the new
//! owner never blocks on it (the old owner may be waiting to learn from its
//! group that the task moved), and tries again later (see the worker's
//! `held` tasks).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::StoreError;

static CLAIMED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// A store directory this thread owns until the claim is dropped.
#[derive(Debug)]
pub struct DirClaim {
    dir: PathBuf,
}

impl DirClaim {
    /// Claims `dir`; [`StoreError::Held`] while another thread of this
    /// process holds it.
    pub fn take(dir: &Path) -> Result<DirClaim, StoreError> {
        let mut claimed = CLAIMED.lock().unwrap_or_else(|p| p.into_inner());
        if claimed.get_or_insert_with(HashSet::new).insert(dir.to_owned()) {
            Ok(DirClaim { dir: dir.to_owned() })
        } else {
            Err(StoreError::Held(dir.to_owned()))
        }
    }

    /// Whether another thread of this process holds `dir` now.
    pub fn is_held(dir: &Path) -> bool {
        CLAIMED.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|set| set.contains(dir))
    }
}

impl Drop for DirClaim {
    fn drop(&mut self) {
        let mut claimed = CLAIMED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = claimed.as_mut() {
            set.remove(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_has_one_claim_at_a_time() {
        let dir = std::env::temp_dir().join("eddy-claim-test");
        let first = DirClaim::take(&dir).unwrap();
        assert!(DirClaim::is_held(&dir));
        let second = std::thread::spawn({
            let dir = dir.clone();
            move || DirClaim::take(&dir).map(drop)
        });
        assert!(matches!(second.join().unwrap(), Err(StoreError::Held(d)) if d == dir));
        drop(first);
        assert!(!DirClaim::is_held(&dir));
        assert!(DirClaim::take(&dir).is_ok());
    }
}
