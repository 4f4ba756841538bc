//! Range reads of a task store: the cache's unsynced entries of a range
//! merged, in key order, over the local store's.

use bytes::Bytes;

use super::{Entry, StoreError, TaskStore, TimestampedEntry, stamped};

/// The first `limit` entries of a range: `pending` updates (stamped
/// values; `None` or a stamped tombstone deletes), in key order, over the
/// local entries `read_local(n)` returns (the first `n` of the same range,
/// in key order), decoded. One pass merges the two sorted lists.
pub(crate) fn merge_pending(
    pending: Vec<(Bytes, Option<Bytes>)>,
    limit: usize,
    read_local: impl FnOnce(usize) -> Result<Vec<Entry>, StoreError>,
) -> Result<Vec<TimestampedEntry>, StoreError> {
    debug_assert!(pending.windows(2).all(|w| w[0].0 < w[1].0), "pending updates in key order");
    let is_delete = |v: &Option<Bytes>| v.as_deref().is_none_or(stamped::is_delete);
    // Pending deletes may hide local entries: read enough to still fill `limit`.
    let deletes = pending.iter().filter(|(_, v)| is_delete(v)).count();
    let local = read_local(limit.saturating_add(deletes))?;
    let mut out = Vec::with_capacity(limit.min(local.len() + pending.len()));
    let mut local = local.into_iter().peekable();
    let mut pending = pending.into_iter().peekable();
    while out.len() < limit {
        let from_pending = match (local.peek(), pending.peek()) {
            (None, None) => break,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some((l, _)), Some((p, _))) => match l.as_slice().cmp(&p[..]) {
                std::cmp::Ordering::Less => false,
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Equal => {
                    // The pending update replaces the local entry.
                    local.next();
                    true
                }
            },
        };
        if from_pending {
            let Some((key, Some(v))) = pending.next() else { continue };
            if let (Some(value), ts) = stamped::decode_slice(&v) {
                out.push((key.to_vec(), value.to_vec(), ts));
            }
        } else if let Some((key, mut v)) = local.next()
            && let (Some(_), ts) = stamped::decode_slice(&v)
        {
            // The value is the stamped bytes' tail: moved to the front in
            // place.
            v.drain(..stamped::HEADER);
            out.push((key, v, ts));
        }
    }
    Ok(out)
}

/// A scan of one record key's windows: the record key, and the times
/// wanted ([`KeyValueStore::key_range`](super::KeyValueStore::key_range)).
type KeyScan<'a> = (&'a [u8], Option<(i64, i64)>);

impl TaskStore {
    /// The first `limit` entries with `from <= key < to`, cache included, in
    /// key order.
    pub fn range(&mut self, from: Option<&[u8]>, to: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>, StoreError> {
        Ok(self.range_timestamped(from, to, limit)?.into_iter().map(|(k, v, _)| (k, v)).collect())
    }

    /// Like [`TaskStore::range`], with the timestamp of each entry's last
    /// update.
    pub fn range_timestamped(
        &mut self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<TimestampedEntry>, StoreError> {
        self.range_merged(from, to, limit)
    }

    /// The entries of record key `key` in a window store (whose keys are
    /// the record key, then a time suffix: [`super::KeyTime`]) with `from
    /// <= key < to`, cache included, in key order, with the timestamp of
    /// each entry's last update; only those whose keys carry a time within
    /// `times` (inclusive), if given. Entries of other record keys in the
    /// range may come too, from the local store: the caller filters them.
    pub fn key_range_timestamped(
        &mut self,
        key: &[u8],
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        times: Option<(i64, i64)>,
    ) -> Result<Vec<TimestampedEntry>, StoreError> {
        let pending = self.cache.unsynced_of_key(key, from, to);
        self.merge_local(pending, Some((key, times)), from, to, usize::MAX)
    }

    fn range_merged(
        &mut self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<TimestampedEntry>, StoreError> {
        let pending: Vec<(Bytes, Option<Bytes>)> =
            self.cache.unsynced_range(from, to).map(|(k, v)| (k.clone(), v.clone())).collect();
        self.merge_local(pending, None, from, to, limit)
    }

    /// `pending`, the cache's entries of a range, merged over the local
    /// store's; for a scan of one record key's windows, its `(key, times)`
    /// ([`KeyValueStore::key_range`]).
    fn merge_local(
        &self,
        dirty: Vec<(Bytes, Option<Bytes>)>,
        of_key: Option<KeyScan<'_>>,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<TimestampedEntry>, StoreError> {
        let mut dirty = dirty;
        dirty.retain(|(k, _)| !self.is_expired(k));
        let local = &self.local;
        merge_pending(dirty, limit, |n| match of_key {
            Some((key, times)) => local.key_range(key, from, to, n, times),
            None => local.range(from, to, n),
        })
    }
}
