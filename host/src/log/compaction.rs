//! Compaction of an embedded log partition: each key's last record kept
//! (with a compaction lag, every record young enough too; with a
//! retention, only records young enough), every kept record at
//! its offset, written to a new generation of the partition's file while
//! commits go on; the records committed meanwhile are copied over under the
//! commit lock.

use super::*;

/// Compacts partition `tp` of `log`, as [`Log::compact`] says.
pub(super) fn compact(
    log: &EmbeddedLog,
    tp: &TopicPartition,
    min_dirty: f64,
    cleanup: Cleanup,
) -> Result<u64, LogError> {
    // The committed bytes of a generation never change, so the partition
    // is read and rewritten without the commit lock; only the records
    // committed meanwhile are copied over under it.
    log.refresh()?;
    let (end_offset, end_bytes, generation, compacted_at, kept_before, cleaned) = {
        let state = log.read_state();
        let p = state.partition(tp)?;
        (p.end_offset, p.end_bytes, p.generation, p.compacted_at, p.kept, p.cleaned.clone())
    };
    // Tombstones below the horizon were kept by a rewrite the delete
    // retention ago: those that are their key's last record go now.
    let now = crate::jsonl::now_ms();
    let horizon = cleanup.delete_retention_ms.map_or(0, |keep| {
        cleaned.iter().filter(|(_, at)| *at <= now.saturating_sub(keep)).map(|(o, _)| *o).max().unwrap_or(0)
    });
    let dirty = end_offset - compacted_at;
    // A background pass (a dirty ratio to wait for) runs only where it pays;
    // one asked for drops whatever it can, and so looks again at what
    // background passes examined and left.
    let background = min_dirty > 0.0;
    if (dirty == 0 && background) || (dirty as f64) < min_dirty * (dirty + kept_before) as f64 {
        return Ok(0);
    }
    let enough = if background { ((kept_before + dirty) / 8).max(1) } else { 1 };
    if !worth_compacting(log, tp, generation, end_bytes, enough, cleanup, horizon)? {
        return examined(log, tp, generation, end_offset, kept_before + dirty);
    }
    // Two passes, as Kafka's log cleaner: the first finds each key's last
    // record, the second copies the kept records' frames as they are.
    let mut last = LastOfKey::default();
    // Which key each record has (an index into `last`), in offset order.
    let mut key_of: Vec<u32> = Vec::new();
    // Superseded records that may still be within the compaction lag.
    let mut young: Vec<(u64, i64)> = Vec::new();
    let mut latest = i64::MIN;
    let mut reader = PartitionReader::new(log, tp.clone(), 0)?;
    if reader.generation != generation {
        return Ok(0);
    }
    while reader.pos < end_bytes {
        reader.visit(4096, end_bytes, u64::MAX, |offset, view, _, _| {
            latest = latest.max(view.timestamp);
            let Some(key) = view.key else {
                key_of.push(NO_KEY);
                return;
            };
            let (i, superseded) = last.insert(key, offset, view.timestamp, view.value.is_none());
            key_of.push(i);
            if let Some(old) = superseded
                && cleanup.min_compaction_lag_ms.is_some_and(|lag| old.1 >= latest.saturating_sub(lag))
            {
                young.push(old);
            }
        })?;
    }
    // (The latest timestamp only grows: a record older than the lag when
    // superseded is older still now.)
    let lag_from = cleanup.min_compaction_lag_ms.map_or(i64::MAX, |lag| latest.saturating_sub(lag));
    let oldest = cleanup.retention_ms.map_or(i64::MIN, |retention| latest.saturating_sub(retention));
    young.retain(|&(_, timestamp)| timestamp >= lag_from && timestamp >= oldest);
    young.sort_unstable();
    let total = key_of.len() as u64;
    // A key's last record stays unless past the retention, or a tombstone
    // past the horizon.
    let keeps = |s: &LastRecord| s.timestamp >= oldest && !(s.tombstone && s.offset < horizon);
    let kept = young.len() as u64 + last.slots.iter().filter(|s| keeps(s)).count() as u64;
    if kept == total {
        // Superseded records all within the compaction lag.
        return examined(log, tp, generation, end_offset, kept);
    }
    let mut w = Writer::with_capacity(1 << 20);
    let mut seek_points: Vec<(u64, u64)> = vec![(0, 0)];
    let (mut next, mut copied, mut young) = (0u64, 0usize, young.into_iter().peekable());
    let mut reader = PartitionReader::new(log, tp.clone(), 0)?;
    if reader.generation != generation {
        return Ok(0);
    }
    let mut i = 0usize;
    while reader.pos < end_bytes {
        reader.visit(4096, end_bytes, u64::MAX, |offset, _, _, frame| {
            let key = key_of.get(i).copied().unwrap_or(NO_KEY);
            i += 1;
            let is_last = last.slots.get(key as usize).is_some_and(|s| s.offset == offset && keeps(s));
            let is_young = young.next_if(|&(o, _)| o == offset).is_some();
            if !(is_last || is_young) {
                return;
            }
            if copied > 0 && copied % COMPACT_SEEK_EVERY == 0 {
                seek_points.push((offset, w.len() as u64));
            }
            if offset != next {
                put_marker(&mut w, offset);
            }
            w.put_raw(frame);
            copied += 1;
            next = offset + 1;
        })?;
    }
    if next != end_offset {
        put_marker(&mut w, end_offset);
    }
    let compacted_len = w.len() as u64;
    seek_points.push((end_offset, compacted_len));
    let old = log.partition_path(&tp.topic, tp.partition, generation);
    let new_generation = generation + 1;
    let path = log.partition_path(&tp.topic, tp.partition, new_generation);
    log.locked(|valid_len| {
        let (now_bytes, now_generation, later_points) = {
            let state = log.read_state();
            let p = state.partition(tp)?;
            let later: Vec<(u64, u64)> = p.seek_points.iter().filter(|(_, pos)| *pos > end_bytes).copied().collect();
            (p.end_bytes, p.generation, later)
        };
        if now_generation != generation {
            return Ok(0); // another process compacted it meanwhile
        }
        // Records committed since the read follow on unchanged.
        let mut tail = Vec::new();
        if now_bytes > end_bytes {
            let mut file = File::open(&old).map_err(io("open", &old))?;
            file.seek(SeekFrom::Start(end_bytes)).map_err(io("seek", &old))?;
            file.take(now_bytes - end_bytes).read_to_end(&mut tail).map_err(io("read", &old))?;
            seek_points.extend(later_points.into_iter().map(|(o, pos)| (o, pos - end_bytes + compacted_len)));
        }
        let mut file = File::create(&path).map_err(io("create", &path))?;
        file.write_all(w.as_slice()).map_err(io("write", &path))?;
        file.write_all(&tail).map_err(io("write", &path))?;
        if log.shared.fsync {
            file.sync_data().map_err(io("sync", &path))?;
        }
        let entry = Entry::Compact {
            topic: tp.topic.to_string(),
            partition: tp.partition,
            generation: new_generation,
            end_bytes: compacted_len + tail.len() as u64,
            seek_points,
            compacted_at: end_offset,
            kept,
            cleaned: cleaned_after(cleaned, horizon, end_offset, now, cleanup),
        };
        log.append_journal(valid_len, &entry)?;
        log.write_state().apply(entry);
        // Readers that have the old file open finish their read, then move on.
        if let Err(e) = fs::remove_file(&old) {
            tracing::warn!("compacted {tp}, but cannot remove {}: {e}", old.display());
        }
        tracing::debug!("compacted {tp}: kept {kept} of {total} records");
        Ok(total - kept)
    })
}

/// The rewrites a partition remembers after one that went up to
/// `end_offset` at `now`: those whose tombstones may still be there (past
/// the `horizon` it used), and this one. A rewrite is remembered only a
/// sixteenth of the delete retention after the last one remembered, so the
/// list stays short; the tombstones of one not remembered wait for the next
/// remembered, a little longer than they must.
fn cleaned_after(
    cleaned: Vec<(u64, i64)>,
    horizon: u64,
    end_offset: u64,
    now: i64,
    cleanup: Cleanup,
) -> Vec<(u64, i64)> {
    let Some(keep) = cleanup.delete_retention_ms else { return Vec::new() };
    let mut cleaned: Vec<(u64, i64)> = cleaned.into_iter().filter(|(o, _)| *o > horizon).collect();
    if cleaned.last().is_none_or(|(_, at)| now.saturating_sub(*at) >= keep / 16) {
        cleaned.push((end_offset, now));
    }
    cleaned
}

/// A record without a key, which compaction drops.
const NO_KEY: u32 = u32::MAX;

/// The last record of each key in a partition: its offset and timestamp,
/// found by the key's bytes, which are kept once (in one arena), so that
/// reading a record makes no allocation of its own.
#[derive(Default)]
struct LastOfKey {
    hasher: foldhash::fast::RandomState,
    /// Indexes into `slots`, by the key's hash.
    table: hashbrown::HashTable<u32>,
    slots: Vec<LastRecord>,
    keys: Vec<u8>,
}

/// A key's last record, and where its key is in the arena.
struct LastRecord {
    hash: u64,
    key_at: usize,
    key_len: usize,
    offset: u64,
    timestamp: i64,
    tombstone: bool,
}

impl LastOfKey {
    /// Records that `key`'s latest record is at `offset`: returns the key's
    /// index and the offset and timestamp of the record it supersedes.
    fn insert(&mut self, key: &[u8], offset: u64, timestamp: i64, tombstone: bool) -> (u32, Option<(u64, i64)>) {
        let hash = std::hash::BuildHasher::hash_one(&self.hasher, key);
        let (slots, keys) = (&mut self.slots, &mut self.keys);
        let same = |&i: &u32| {
            let s = &slots[i as usize];
            s.hash == hash && keys[s.key_at..s.key_at + s.key_len] == *key
        };
        match self.table.find(hash, same) {
            Some(&i) => {
                let s = &mut slots[i as usize];
                let old = (s.offset, s.timestamp);
                (s.offset, s.timestamp, s.tombstone) = (offset, timestamp, tombstone);
                (i, Some(old))
            }
            None => {
                let i = slots.len() as u32;
                slots.push(LastRecord { hash, key_at: keys.len(), key_len: key.len(), offset, timestamp, tombstone });
                keys.extend_from_slice(key);
                self.table.insert_unique(hash, i, |&j| slots[j as usize].hash);
                (i, None)
            }
        }
    }
}

/// True if compacting the partition (generation `generation`, up to
/// `end_bytes`) would drop `enough` records superseded by a later record of
/// the same key (the background passes ask for an eighth of the records:
/// enough to pay for rewriting the rest), or any record past the retention.
/// A tombstone below `horizon` counts as one to drop too.
/// Reads keys and timestamps only, hashed, with nothing copied and no
/// record made. Most passes
/// over a window store's changelog, whose keys never repeat but for the
/// store's clock (one record per flush), end here: rewriting a join's
/// changelogs to drop a few clock records took a sixth of the join's CPU.
/// (Two keys whose hashes collide count as a repeat.)
fn worth_compacting(
    log: &EmbeddedLog,
    tp: &TopicPartition,
    generation: u32,
    end_bytes: u64,
    enough: u64,
    cleanup: Cleanup,
    horizon: u64,
) -> Result<bool, LogError> {
    let hasher = foldhash::fast::RandomState::default();
    let mut seen: hashbrown::HashTable<u64> = hashbrown::HashTable::new();
    let (mut earliest, mut latest, mut repeats) = (i64::MAX, i64::MIN, 0u64);
    let mut reader = PartitionReader::new(log, tp.clone(), 0)?;
    if reader.generation != generation {
        return Ok(false);
    }
    while reader.pos < end_bytes && repeats < enough {
        reader.visit(4096, end_bytes, u64::MAX, |offset, view, _, _| {
            earliest = earliest.min(view.timestamp);
            latest = latest.max(view.timestamp);
            let Some(key) = view.key else { return };
            if view.value.is_none() && offset < horizon {
                repeats += 1;
                return;
            }
            let hash = std::hash::BuildHasher::hash_one(&hasher, key);
            match seen.entry(hash, |&h| h == hash, |&h| h) {
                hashbrown::hash_table::Entry::Occupied(_) => repeats += 1,
                hashbrown::hash_table::Entry::Vacant(v) => {
                    v.insert(hash);
                }
            }
        })?;
    }
    if repeats >= enough {
        return Ok(true);
    }
    Ok(cleanup.retention_ms.is_some_and(|retention| earliest < latest.saturating_sub(retention)))
}

/// Records that a pass over partition `tp` up to `end_offset` found
/// little to drop (keys that never repeat, as a join's window store
/// writes, within their retention), `kept` records in all: the next pass
/// waits for as many new records again instead of reading the whole
/// partition every time.
fn examined(
    log: &EmbeddedLog,
    tp: &TopicPartition,
    generation: u32,
    end_offset: u64,
    kept: u64,
) -> Result<u64, LogError> {
    log.locked(|valid_len| {
        if log.read_state().partition(tp)?.generation != generation {
            return Ok(0);
        }
        let entry = Entry::Examined {
            topic: tp.topic.to_string(),
            partition: tp.partition,
            generation,
            compacted_at: end_offset,
            kept,
        };
        log.append_journal(valid_len, &entry)?;
        log.write_state().apply(entry);
        Ok(0)
    })
}
