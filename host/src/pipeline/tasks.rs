//! A pipeline's tasks: opening them (and their stores, restored here or
//! elsewhere), closing them, and checkpointing their stores.

use std::path::Path;
use std::sync::Arc;

use super::{Pipeline, ProcessError};
use crate::log::Log;
use crate::store::{GlobalStore, StoreSpec, TaskStore, TaskStoreReader};
use crate::task::TaskId;

impl Pipeline {
    /// Opens (and restores) the stores of `tasks`, joining the tasks it
    /// has, and gives processors the global tables' stores. Each new store's
    /// cache gets an even share of `cache_bytes` over the stores of all its
    /// tasks. Without a state directory, only tasks without stores can run.
    pub fn open_tasks(
        &mut self,
        tasks: &[TaskId],
        state_dir: Option<&Path>,
        cache_bytes: usize,
        globals: &[Arc<GlobalStore>],
        log: &dyn Log,
    ) -> Result<(), ProcessError> {
        for task in tasks {
            if !self.tasks.contains(task) {
                self.tasks.push(*task);
            }
        }
        let stores = &mut self.shared.stores;
        stores.globals = globals.iter().map(|g| (g.name().to_owned(), g.clone())).collect();
        let of_task = |task: &TaskId| stores.subtopology.iter().filter(|s| **s == Some(task.subtopology)).count();
        let count = self.tasks.iter().map(of_task).sum::<usize>().max(1);
        for &task in tasks {
            for (id, (spec, _)) in stores.specs.iter().enumerate() {
                if stores.subtopology[id] != Some(task.subtopology) || stores.open.contains_key(&(task.partition, id)) {
                    continue;
                }
                let Some(state_dir) = state_dir else {
                    return Err(ProcessError::NoStore(spec.name.clone(), task.partition));
                };
                let store = TaskStore::open(state_dir, &self.app_id, spec, task, cache_bytes / count, log)?;
                stores.open.insert((task.partition, id), store);
            }
        }
        // Every store a processor names is its own or a global table's.
        for (node, name) in &self.global_uses {
            if !stores.globals.contains_key(name) {
                return Err(ProcessError::UnknownStore { node: self.shared.names[*node].clone(), store: name.clone() });
            }
        }
        Ok(())
    }

    /// Opens `task`'s stores without restoring them (see
    /// [`crate::store::restore`]), with their share of `cache_bytes`; give
    /// them back with [`Pipeline::adopt_stores`] once they caught up.
    pub fn open_stores(
        &self,
        task: TaskId,
        state_dir: &Path,
        cache_bytes: usize,
    ) -> Result<Vec<(usize, TaskStore)>, ProcessError> {
        let stores = &self.shared.stores;
        let of_task = |t: &TaskId| stores.subtopology.iter().filter(|s| **s == Some(t.subtopology)).count();
        let count = (self.tasks.iter().map(of_task).sum::<usize>() + of_task(&task)).max(1);
        // All or none: opening a store drops its checkpoint, so one opened
        // and closed again because another is held would restore in full.
        let mine: Vec<(usize, &StoreSpec)> = (stores.specs.iter().enumerate())
            .filter(|(id, _)| stores.subtopology[*id] == Some(task.subtopology))
            .map(|(id, (spec, _))| (id, spec))
            .collect();
        for (_, spec) in &mine {
            TaskStore::check_free(state_dir, &self.app_id, spec, task)?;
        }
        let mut open = Vec::new();
        for (id, spec) in mine {
            open.push((id, TaskStore::open_unrestored(state_dir, &self.app_id, spec, task, cache_bytes / count)?));
        }
        Ok(open)
    }

    /// Takes `task`'s stores, restored elsewhere: [`Pipeline::open_tasks`]
    /// then finds them open.
    pub fn adopt_stores(&mut self, task: TaskId, stores: Vec<(usize, TaskStore)>) {
        for (id, store) in stores {
            self.shared.stores.open.insert((task.partition, id), store);
        }
    }

    /// Closes `tasks`, whose work is committed (`clean`: their stores record
    /// a clean stop) or must be dropped (not `clean`: their stores are
    /// rebuilt from their changelogs when they open again).
    pub fn close_tasks(&mut self, tasks: &[TaskId], clean: bool, log: &dyn Log) -> Result<(), ProcessError> {
        let subtopology_of = &self.subtopology_of;
        let closing = |partition: u32, node: usize| {
            tasks.iter().any(|t| t.partition == partition && subtopology_of[node] == Some(t.subtopology))
        };
        self.tasks.retain(|t| !tasks.contains(t));
        self.stream_time.retain(|&(p, node), _| !closing(p, node));
        self.next_punctuation.retain(|&(p, node), _| !closing(p, node));
        let stores = &mut self.shared.stores;
        let ids: Vec<(u32, usize)> = stores
            .open
            .keys()
            .filter(|(p, id)| tasks.iter().any(|t| t.partition == *p && stores.subtopology[*id] == Some(t.subtopology)))
            .copied()
            .collect();
        for key in ids {
            if let Some(mut store) = stores.open.remove(&key)
                && clean
            {
                store.checkpoint(log)?;
            }
        }
        Ok(())
    }

    /// Readers, for other threads, of the stores named `names` that `task`
    /// has open (see [`TaskStoreReader`]).
    pub fn readers(&mut self, task: TaskId, names: &[String]) -> Result<Vec<(String, TaskStoreReader)>, ProcessError> {
        let stores = &mut self.shared.stores;
        let mut readers = Vec::new();
        for (id, (spec, _)) in stores.specs.iter().enumerate() {
            if stores.subtopology[id] != Some(task.subtopology) || !names.contains(&spec.name) {
                continue;
            }
            if let Some(store) = stores.open.get_mut(&(task.partition, id)) {
                readers.push((spec.name.clone(), store.reader()?));
            }
        }
        Ok(readers)
    }

    /// Records a clean stop in every store. Call after the final commit.
    pub fn checkpoint(&mut self, log: &dyn Log) -> Result<(), ProcessError> {
        for store in self.shared.stores.open.values_mut() {
            store.checkpoint(log)?;
        }
        Ok(())
    }
}
