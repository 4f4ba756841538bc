//! Versioned key-value stores, as Kafka Streams' `VersionedKeyValueStore`
//! (KIP-889): per key, the value valid at each point in time.
//!
//! A [`VersionedStore`] is a view over a [`TaskStore`], so it has the task
//! store's cache, changelog, checkpoint and restore as they are. Each
//! version is an entry of its own, keyed by the user key and the time it
//! became valid, so the changelog holds every version (compaction keeps
//! each one until it is dropped) and a restore brings the history back:
//!
//! - `put(key, value, t)` adds the version valid from `t` until the next
//!   one (replacing a version with the same `t`); an update older than the
//!   latest goes into the history and leaves the latest as it is; a
//!   tombstone (`None`) is a version too;
//! - `get(key)` is the latest version, `get_as_of(key, t)` the version
//!   whose validity interval contains `t`;
//! - the store's stream time is the largest timestamp put; history older
//!   than stream time minus the history retention may be dropped, a put that
//!   old is refused, and a lookup that old sees only a latest version that
//!   is old enough (as Kafka Streams, where the retention doubles as the
//!   grace period of puts).
//!
//! Expired versions go when their key is written, and in a sweep of the
//! whole store each time stream time has moved on by half the retention (at
//! least a minute), as Kafka Streams drops whole segments.
//!
//! Layout: an entry's key is the user key's length (4 bytes, big-endian),
//! the user key, then the version's timestamp (8 bytes, big-endian, sign
//! bit flipped so times sort in order); its value is a byte saying whether
//! the version is a value (1) or a tombstone (0), then the value. The task
//! store stamps the entry with the version's timestamp, which its changelog
//! records carry.
//!
//! Stream time and the time of the last sweep are the task store's clock,
//! committed with its changelog; a store without one takes the latest
//! version's time in it as stream time.

use bytes::{BufMut, Bytes, BytesMut};

use super::{StoreError, TaskStore};
use crate::log::Producer;
use crate::record::Record;

/// A version: the time it became valid and its value (`None`: a tombstone).
pub type Version = (i64, Option<Bytes>);

/// What a [`VersionedStore::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The update is older than stream time minus the history retention:
    /// it was dropped.
    Expired,
    /// The update is the key's latest version now.
    Latest,
    /// The update is older than the key's latest version: it went into the
    /// history only.
    History,
}

/// A task store seen as a versioned store (see the module documentation).
pub struct VersionedStore<'a> {
    store: &'a mut TaskStore,
    history_retention: i64,
    /// The largest timestamp put.
    stream_time: i64,
    /// Stream time at the last sweep for expired versions.
    swept: i64,
}

/// Entries read at a time by a scan of the whole store.
const PAGE: usize = 1024;

impl<'a> VersionedStore<'a> {
    /// Views `store` as a versioned store that keeps history for
    /// `history_retention` ms of stream time. After a crash (no clock)
    /// stream time is found from the versions the store holds.
    pub fn open(store: &'a mut TaskStore, history_retention: i64) -> Result<VersionedStore<'a>, StoreError> {
        let (stream_time, swept) = match *store.clock() {
            [stream_time, swept] => (stream_time, swept),
            _ => {
                let mut latest = -1;
                scan(store, |_, versions| {
                    latest = versions.iter().map(|(ts, _)| *ts).fold(latest, i64::max);
                    Ok(())
                })?;
                store.set_clock(&[latest, latest]);
                (latest, latest)
            }
        };
        Ok(VersionedStore { store, history_retention, stream_time, swept })
    }

    /// The largest timestamp put so far (-1 before the first).
    pub fn stream_time(&self) -> i64 {
        self.stream_time
    }

    /// The time before which history may be gone: stream time minus the
    /// history retention.
    fn cutoff(&self) -> i64 {
        self.stream_time.saturating_sub(self.history_retention)
    }

    /// Puts the version of `key` valid from `timestamp` (`None`: a
    /// tombstone); see [`PutOutcome`].
    pub fn put(
        &mut self,
        key: &[u8],
        value: Option<Bytes>,
        timestamp: i64,
        out: &mut dyn Producer,
    ) -> Result<PutOutcome, StoreError> {
        if timestamp < self.cutoff() {
            return Ok(PutOutcome::Expired);
        }
        self.stream_time = self.stream_time.max(timestamp);
        let mut versions = versions(self.store, key)?;
        let latest = versions.last().is_none_or(|(ts, _)| timestamp >= *ts);
        self.store.put(version_key(key, timestamp), Some(version_value(value.as_deref())), timestamp, out)?;
        match versions.binary_search_by_key(&timestamp, |(ts, _)| *ts) {
            Ok(at) => versions[at].1 = value,
            Err(at) => versions.insert(at, (timestamp, value)),
        }
        prune(self.store, key, &versions, self.cutoff(), out)?;
        if self.stream_time >= self.swept.saturating_add((self.history_retention / 2).max(60_000)) {
            self.sweep(out)?;
        }
        self.store.set_clock(&[self.stream_time, self.swept]);
        Ok(if latest { PutOutcome::Latest } else { PutOutcome::History })
    }

    /// The latest value of `key` and the time it became valid; `None` if
    /// the key has none or its latest version is a tombstone.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<(Bytes, i64)>, StoreError> {
        Ok(versions(self.store, key)?.pop().and_then(|(ts, v)| v.map(|v| (v, ts))))
    }

    /// The value of `key` valid at `as_of` (the latest version from `as_of`
    /// or before) and the time it became valid; `None` if there is none or
    /// it is a tombstone. Before the retained history only a latest version
    /// that old is seen.
    pub fn get_as_of(&mut self, key: &[u8], as_of: i64) -> Result<Option<(Bytes, i64)>, StoreError> {
        let versions = versions(self.store, key)?;
        let found = if as_of < self.cutoff() {
            versions.last().filter(|(ts, _)| *ts <= as_of)
        } else {
            versions.iter().rev().find(|(ts, _)| *ts <= as_of)
        };
        Ok(found.and_then(|(ts, v)| v.clone().map(|v| (v, *ts))))
    }

    /// Every key's versions, in key order (for tests and tools).
    pub fn all(&mut self) -> Result<Vec<(Bytes, Vec<Version>)>, StoreError> {
        let mut all = Vec::new();
        scan(self.store, |key, versions| {
            all.push((Bytes::copy_from_slice(key), versions.to_vec()));
            Ok(())
        })?;
        Ok(all)
    }

    /// Drops the expired versions of every key.
    fn sweep(&mut self, out: &mut dyn Producer) -> Result<(), StoreError> {
        let cutoff = self.cutoff();
        let mut expired = Vec::new();
        scan(self.store, |key, versions| {
            expired.extend(expired_versions(versions, cutoff).map(|ts| version_key(key, ts)));
            Ok(())
        })?;
        for k in expired {
            let ts = decode_key(&k).map_or(0, |(_, ts)| ts);
            self.store.put(k, None, ts, out)?;
        }
        self.swept = self.stream_time;
        Ok(())
    }
}

/// The times of the versions no lookup can see any more: those whose next
/// version became valid at `cutoff` or before, and a latest tombstone from
/// `cutoff` or before.
fn expired_versions(versions: &[Version], cutoff: i64) -> impl Iterator<Item = i64> + '_ {
    versions.iter().enumerate().filter_map(move |(i, (ts, value))| {
        let expired = match versions.get(i + 1) {
            Some((next, _)) => *next <= cutoff,
            None => value.is_none() && *ts <= cutoff,
        };
        expired.then_some(*ts)
    })
}

/// Deletes the expired versions of `key`.
fn prune(
    store: &mut TaskStore,
    key: &[u8],
    versions: &[Version],
    cutoff: i64,
    out: &mut dyn Producer,
) -> Result<(), StoreError> {
    for ts in expired_versions(versions, cutoff).collect::<Vec<_>>() {
        store.put(version_key(key, ts), None, ts, out)?;
    }
    Ok(())
}

/// The versions of `key`, oldest first.
fn versions(store: &mut TaskStore, key: &[u8]) -> Result<Vec<Version>, StoreError> {
    let from = version_key(key, i64::MIN);
    let mut to = BytesMut::from(&version_key(key, i64::MAX)[..]);
    to.put_u8(0);
    let entries = store.range(Some(&from), Some(&to), usize::MAX)?;
    Ok(entries.into_iter().filter_map(|(k, v)| Some((decode_key(&k)?.1, decode_value(&v)?))).collect())
}

/// Calls `f` with each key and its versions, keys in the store's order.
fn scan(
    store: &mut TaskStore,
    mut f: impl FnMut(&[u8], &[Version]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut from: Option<Vec<u8>> = None;
    let mut key: Option<Vec<u8>> = None;
    let mut versions = Vec::new();
    loop {
        let page = store.range(from.as_deref(), None, PAGE)?;
        let Some((last, _)) = page.last() else { break };
        let mut next = last.clone();
        next.push(0);
        let full = page.len() == PAGE;
        for (k, v) in page {
            let (Some((user_key, ts)), Some(value)) = (decode_key(&k), decode_value(&v)) else { continue };
            if key.as_deref() != Some(user_key) {
                if let Some(done) = key.take() {
                    f(&done, &versions)?;
                }
                versions.clear();
                key = Some(user_key.to_vec());
            }
            versions.push((ts, value));
        }
        if !full {
            break;
        }
        from = Some(next);
    }
    if let Some(done) = key {
        f(&done, &versions)?;
    }
    Ok(())
}

/// The entry key of `key`'s version from `timestamp`.
pub(crate) fn version_key(key: &[u8], timestamp: i64) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + key.len() + 8);
    b.put_u32(key.len() as u32);
    b.put_slice(key);
    b.put_u64(timestamp as u64 ^ (1 << 63));
    b.freeze()
}

/// The entry keys that hold `key`'s versions: from (inclusive) and to
/// (exclusive), for readers of a versioned store.
pub(crate) fn version_bounds(key: &[u8]) -> (Bytes, Bytes) {
    let mut to = BytesMut::from(&version_key(key, i64::MAX)[..]);
    to.put_u8(0);
    (version_key(key, i64::MIN), to.freeze())
}

/// A versioned store's entry as a reader sees it: the user key, the time the
/// version became valid and its value (`None`: a tombstone); `None` if the
/// entry is not a version.
pub(crate) fn decode_version<'k>(k: &'k [u8], v: &[u8]) -> Option<(&'k [u8], i64, Option<Bytes>)> {
    let (key, ts) = decode_key(k)?;
    Some((key, ts, decode_value(v)?))
}

/// The changelog record of a flushed entry (key, value and the timestamp
/// its update was made at), in Kafka Streams' layout: the user key, the
/// version's value (`None`: a tombstone) and the time it became valid.
/// `None` for a deleted entry (an expired version), which is not logged:
/// Kafka Streams' changelog would read it as a tombstone.
pub(crate) fn changelog_record(entry: &Record) -> Option<Record> {
    let entry_key = entry.key.as_ref()?;
    let (key, ts) = decode_key(entry_key)?;
    let value = decode_value(entry.value.as_deref()?)?;
    Some(Record { key: Some(entry_key.slice_ref(key)), value, timestamp: ts, headers: Vec::new() })
}

/// The entry (key and value) a changelog record in Kafka Streams' layout
/// restores: the version of `key` valid from `timestamp`.
pub(crate) fn entry_of_changelog(key: &[u8], value: Option<&[u8]>, timestamp: i64) -> (Bytes, Option<Bytes>) {
    (version_key(key, timestamp), Some(version_value(value)))
}

/// The user key and timestamp of an entry key.
fn decode_key(k: &[u8]) -> Option<(&[u8], i64)> {
    let len = u32::from_be_bytes(k.get(..4)?.try_into().ok()?) as usize;
    if k.len() != 4 + len + 8 {
        return None;
    }
    let ts = u64::from_be_bytes(k[4 + len..].try_into().ok()?) ^ (1 << 63);
    Some((&k[4..4 + len], ts as i64))
}

fn version_value(value: Option<&[u8]>) -> Bytes {
    let mut b = BytesMut::with_capacity(1 + value.map_or(0, <[u8]>::len));
    b.put_u8(value.is_some() as u8);
    if let Some(v) = value {
        b.put_slice(v);
    }
    b.freeze()
}

/// A version's value: `Some(None)` for a tombstone, `None` if the bytes are
/// not a version.
fn decode_value(v: &[u8]) -> Option<Option<Bytes>> {
    match v.first()? {
        0 => Some(None),
        _ => Some(Some(Bytes::copy_from_slice(&v[1..]))),
    }
}

#[cfg(test)]
#[path = "versioned_tests.rs"]
mod tests;
