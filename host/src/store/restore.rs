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
