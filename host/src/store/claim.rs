//! One owner per task store directory within a process.
//!
//! When a task moves between two worker threads of one instance (the group
//! took it from a thread it thought dead, and gave it to another), the new
//! owner may open its store before the old one has closed it. A
//! [`DirClaim`] makes the new owner wait for the old one instead of failing
//! on RocksDB's lock.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::StoreError;

/// How long an owner waits for another thread of its process to let go.
const CLAIM_TIMEOUT: Duration = Duration::from_secs(120);

static CLAIMED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
static RELEASED: Condvar = Condvar::new();

/// A store directory this thread owns until the claim is dropped.
#[derive(Debug)]
pub struct DirClaim {
    dir: PathBuf,
}

impl DirClaim {
    /// Claims `dir`, waiting while another thread of this process holds it.
    pub fn take(dir: &Path) -> Result<DirClaim, StoreError> {
        let deadline = Instant::now() + CLAIM_TIMEOUT;
        let mut claimed = CLAIMED.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let set = claimed.get_or_insert_with(HashSet::new);
            if set.insert(dir.to_owned()) {
                return Ok(DirClaim { dir: dir.to_owned() });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StoreError::Held(dir.to_owned()));
            }
            claimed = RELEASED.wait_timeout(claimed, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

impl Drop for DirClaim {
    fn drop(&mut self) {
        let mut claimed = CLAIMED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = claimed.as_mut() {
            set.remove(&self.dir);
        }
        RELEASED.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_waits_for_the_first_to_go() {
        let dir = std::env::temp_dir().join("eddy-claim-test");
        let first = DirClaim::take(&dir).unwrap();
        let waiter = std::thread::spawn({
            let dir = dir.clone();
            move || {
                let started = Instant::now();
                let _second = DirClaim::take(&dir).unwrap();
                started.elapsed()
            }
        });
        std::thread::sleep(Duration::from_millis(100));
        drop(first);
        assert!(waiter.join().unwrap() >= Duration::from_millis(90));
    }
}
