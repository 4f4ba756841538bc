//! Task stores catching up with their changelogs a batch at a time, on one
//! consumer: a worker restoring a task it was just given goes on processing
//! its other tasks meanwhile, and a standby keeps a warm copy of another
//! instance's stores (Kafka Streams' `num.standby.replicas`).
//!
//! A store here was opened with [`TaskStore::open_unrestored`] and holds its
//! changelog up to [`TaskStore::restored_to`]; everything it gets comes from
//! the changelog (read committed), so it can always be checkpointed where it
//! stands ([`TaskStore::checkpoint_restored`]) and picked up from there.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{StoreError, TaskStore};
use crate::log::{Consumer, Log};
use crate::task::TaskId;

/// The stores of some tasks, each catching up with its changelog.
#[derive(Default)]
pub struct Restorer {
    /// Reads the stores' changelog partitions; none while there are no stores.
    consumer: Option<Box<dyn Consumer>>,
    /// The stores, by task, each with its store id in the pipeline.
    tasks: BTreeMap<TaskId, Vec<(usize, TaskStore)>>,
    /// Each store's changelog end (last stable offset) when its task came:
    /// the task has caught up once it has read that far, as a blocking
    /// restore ([`crate::log::read_to_end`]) does.
    ends: BTreeMap<TaskId, Vec<u64>>,
}

impl Restorer {
    /// True if no task is restoring.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The tasks whose stores are here.
    pub fn tasks(&self) -> impl Iterator<Item = TaskId> + '_ {
        self.tasks.keys().copied()
    }

    /// True if `task`'s stores are here.
    pub fn contains(&self, task: TaskId) -> bool {
        self.tasks.contains_key(&task)
    }

    /// Starts restoring `task`'s stores (store id, store).
    pub fn add(&mut self, log: &dyn Log, task: TaskId, stores: Vec<(usize, TaskStore)>) -> Result<(), StoreError> {
        let ends = stores.iter().map(|(_, s)| log.end_offset(s.changelog())).collect::<Result<Vec<u64>, _>>()?;
        self.ends.insert(task, ends);
        self.tasks.insert(task, stores);
        self.reassign(log)
    }

    /// Takes `task`'s stores out, where they stand.
    pub fn remove(&mut self, log: &dyn Log, task: TaskId) -> Result<Vec<(usize, TaskStore)>, StoreError> {
        let stores = self.tasks.remove(&task).unwrap_or_default();
        self.ends.remove(&task);
        self.reassign(log)?;
        Ok(stores)
    }

    /// Takes `task`'s stores out and closes them with a checkpoint where
    /// they stand, for whoever opens them next in this state directory.
    pub fn close(&mut self, log: &dyn Log, task: TaskId) -> Result<(), StoreError> {
        for (_, mut store) in self.remove(log, task)? {
            store.checkpoint_restored()?;
        }
        Ok(())
    }

    /// Closes every task's stores as [`Restorer::close`] does.
    pub fn close_all(&mut self, log: &dyn Log) -> Result<(), StoreError> {
        let tasks: Vec<TaskId> = self.tasks().collect();
        tasks.into_iter().try_for_each(|task| self.close(log, task))
    }

    /// Reads up to `max` changelog records (waiting up to `timeout` for
    /// the first) into their stores; returns how many it read.
    pub fn step(&mut self, max: usize, timeout: Duration) -> Result<usize, StoreError> {
        let Some(consumer) = self.consumer.as_mut() else { return Ok(0) };
        let mut read = 0;
        for fetched in consumer.poll(max, timeout)? {
            let store = self
                .tasks
                .values_mut()
                .flat_map(|stores| stores.iter_mut())
                .find(|(_, store)| *store.changelog() == fetched.partition);
            if let Some((_, store)) = store {
                read += fetched.records.len();
                store.apply_changelog(fetched.records)?;
            }
        }
        Ok(read)
    }

    /// The tasks whose stores have all read their changelogs up to where
    /// they ended when the task came (transaction markers included).
    pub fn caught_up(&mut self) -> Result<Vec<TaskId>, StoreError> {
        let Some(consumer) = self.consumer.as_mut() else { return Ok(Vec::new()) };
        let mut done = Vec::new();
        for (task, stores) in &self.tasks {
            let ends = self.ends.get(task).map(Vec::as_slice).unwrap_or_default();
            let mut all = true;
            for ((_, store), &end) in stores.iter().zip(ends) {
                let tp = store.changelog();
                // Asking moves the position past records the log deleted.
                consumer.behind(tp)?;
                let at = consumer.position(tp).unwrap_or(0).max(store.restored_to());
                if at < end {
                    all = false;
                    break;
                }
            }
            if all {
                done.push(*task);
            }
        }
        Ok(done)
    }

    /// Points the consumer at every store's changelog partition, from where
    /// the store stands.
    fn reassign(&mut self, log: &dyn Log) -> Result<(), StoreError> {
        if self.tasks.is_empty() {
            self.consumer = None;
            return Ok(());
        }
        let assignment: Vec<_> = self
            .tasks
            .values()
            .flat_map(|stores| stores.iter().map(|(_, s)| (s.changelog().clone(), s.restored_to())))
            .collect();
        // A new consumer for each assignment (see the worker's `reassign`:
        // librdkafka 2.12 issue 5573).
        let mut consumer = log.consumer()?;
        consumer.assign(&assignment)?;
        self.consumer = Some(consumer);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::log::EmbeddedLog;
    use crate::store::{StoreKind, StoreSpec, changelog_topic};

    #[test]
    fn a_task_starts_once_its_stores_read_their_changelogs_to_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path().join("log"), false).unwrap();
        let state = dir.path().join("state");
        let spec = StoreSpec::new("s", StoreKind::Persistent);
        log.create_topic(&changelog_topic("app", "s"), 2).unwrap();
        let (full, empty) = (TaskId { subtopology: 0, partition: 0 }, TaskId { subtopology: 0, partition: 1 });
        // Task 0_0's changelog holds 1000 updates of 10 keys; then its
        // directory is lost (no checkpoint), so all of it must be read.
        let mut store = TaskStore::open(&state, "app", &spec, full, 1 << 20, &log).unwrap();
        let mut out = log.producer().unwrap();
        for i in 0..1000u32 {
            let key = Bytes::from(format!("k{}", i % 10));
            store.put(key, Some(Bytes::from(i.to_string())), i64::from(i), &mut *out).unwrap();
            store.flush(&mut *out).unwrap();
        }
        out.commit(None, &[]).unwrap();
        drop(store);
        let mut restorer = Restorer::default();
        let open = |task| vec![(0, TaskStore::open_unrestored(&state, "app", &spec, task, 0).unwrap())];
        restorer.add(&log, full, open(full)).unwrap();
        restorer.add(&log, empty, open(empty)).unwrap();
        // An empty changelog is caught up at once; the other after its reads.
        assert_eq!(restorer.caught_up().unwrap(), [empty]);
        let mut read = 0;
        while !restorer.caught_up().unwrap().contains(&full) {
            let n = restorer.step(100, std::time::Duration::from_millis(50)).unwrap();
            assert!(n <= 100, "a step reads at most its batch");
            read += n;
            assert!(read <= 1000, "read past the changelog's end");
        }
        assert_eq!(read, 1000);
        let mut stores = restorer.remove(&log, full).unwrap();
        assert_eq!(stores[0].1.get(b"k3").unwrap(), Some(Bytes::from("993")));
        assert_eq!(stores[0].1.restored_to(), 1000);
        assert!(!restorer.contains(full) && restorer.contains(empty));
    }
}
