//! Standby replicas (`num-standby-replicas`): warm copies of other
//! instances' task stores, kept up to date from the changelogs, so that a
//! task that moves here (its instance died or left) starts from where its
//! copy stands instead of restoring its whole changelog.
//!
//! Kafka Streams' assignor places standbys; Eddy's group hands out active
//! tasks only (see [`crate::log::kafka::group`]), so each instance places
//! its own from the group's description, all by one rule: the instances in
//! name order form a ring, and the `n` instances after a task's owner keep
//! its standbys. Every instance reads the same description, so they agree
//! without talking, and never keep a standby of a task they run.
//!
//! One thread per instance keeps them. A worker of this instance that is
//! given a task marks it active ([`Standbys::active`]); the standby thread
//! then closes its copy with a checkpoint where it stands, and the worker
//! (which tries again while the copy is open, see [`StoreError::Held`])
//! opens it and restores only the rest. Likewise a copy waits for a worker
//! here that is still closing the task.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::app::App;
use crate::log::{GroupMember, Log};
use crate::store::restore::Restorer;
use crate::store::{StoreError, TaskStore};
use crate::task::{self, Task, TaskId};

/// How often the group's description is read again.
const REFRESH: Duration = Duration::from_secs(1);
/// How long one round waits for changelog records.
const POLL: Duration = Duration::from_millis(100);
/// Changelog records read per round.
const BATCH: usize = 8192;

/// What the standby thread and the workers of one instance share.
#[derive(Default)]
pub(super) struct Standbys {
    /// Tasks this instance's workers own or are restoring: never kept as
    /// standbys here.
    pub active: Mutex<BTreeSet<u32>>,
}

impl Standbys {
    /// Marks `task` as run by a worker here (or no longer).
    pub fn set_active(&self, task: u32, active: bool) {
        let mut set = self.active.lock().unwrap_or_else(|p| p.into_inner());
        if active {
            set.insert(task);
        } else {
            set.remove(&task);
        }
    }

    fn active(&self) -> BTreeSet<u32> {
        self.active.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The tasks instance `me` keeps standbys of, given the group's members:
/// for each owned task, the `replicas` instances after its owner's in the
/// ring of instance names.
pub(super) fn placed_here(members: &[GroupMember], me: &str, replicas: u32) -> BTreeSet<u32> {
    let instances: Vec<&str> =
        members.iter().map(|m| m.instance.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
    let Some(mine) = instances.iter().position(|i| *i == me) else { return BTreeSet::new() };
    let n = instances.len();
    let mut here = BTreeSet::new();
    for m in members {
        let Some(owner) = instances.iter().position(|i| *i == m.instance) else { continue };
        // How far after the owner this instance is in the ring (0: it is the owner).
        let distance = (mine + n - owner) % n;
        if distance >= 1 && distance <= replicas as usize {
            here.extend(m.tasks.iter().copied());
        }
    }
    here
}

/// Keeps this instance's standbys until `stop` or `done`: reads the group's
/// description every [`REFRESH`], opens and closes standby stores to match,
/// and reads their changelogs. A failure is logged and retried: standbys
/// only save time.
pub(super) fn keep(
    app: &App,
    log: &dyn Log,
    state_dir: &std::path::Path,
    all_tasks: &[Task],
    shared: &Standbys,
    stop: &AtomicBool,
    done: &AtomicBool,
) {
    let Some(me) = log.instance() else { return };
    let mut restorer = Restorer::default();
    let mut placed = BTreeSet::new();
    let mut refreshed: Option<Instant> = None;
    let mut warned = BTreeSet::new();
    while !stop.load(Ordering::SeqCst) && !done.load(Ordering::SeqCst) {
        if refreshed.is_none_or(|at| at.elapsed() >= REFRESH) {
            refreshed = Some(Instant::now());
            match log.members(&app.id) {
                Ok(members) => placed = placed_here(&members, &me, app.num_standby_replicas),
                Err(e) => tracing::debug!("{}: cannot read the group to place standbys: {e}", app.id),
            }
        }
        let wanted: BTreeSet<TaskId> =
            placed.difference(&shared.active()).filter_map(|&i| all_tasks.get(i as usize).map(|t| t.id)).collect();
        let result = update(app, log, state_dir, &mut restorer, &wanted);
        if let Err(e) = result {
            // Once per distinct error, so a lasting problem does not flood the log.
            if warned.insert(e.to_string()) {
                tracing::warn!("{}: standby replicas: {e}", app.id);
            }
            std::thread::sleep(POLL);
        }
    }
    if let Err(e) = restorer.close_all(log) {
        tracing::warn!("{}: closing standby replicas: {e}", app.id);
    }
}

/// One round: closes standbys no longer wanted (with a checkpoint), opens
/// new ones, and reads a batch of their changelogs.
fn update(
    app: &App,
    log: &dyn Log,
    state_dir: &std::path::Path,
    restorer: &mut Restorer,
    wanted: &BTreeSet<TaskId>,
) -> Result<(), StoreError> {
    let held: Vec<TaskId> = restorer.tasks().collect();
    for task in held.iter().filter(|t| !wanted.contains(t)) {
        restorer.close(log, *task)?;
        tracing::info!("{}: dropped the standby of task {task}", app.id);
    }
    let new: Vec<TaskId> = wanted.iter().copied().filter(|t| !restorer.contains(*t)).collect();
    for task in new {
        let specs = task::stores_of(&app.topology, task.subtopology);
        if let Err(e) = specs.iter().try_for_each(|(_, spec)| TaskStore::check_free(state_dir, &app.id, spec, task)) {
            tracing::debug!("{}: standby of task {task} waits: {e}", app.id);
            continue;
        }
        let stores = (specs.into_iter())
            .map(|(id, spec)| Ok((id, TaskStore::open_unrestored(state_dir, &app.id, spec, task, 0)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        if !stores.is_empty() {
            restorer.add(log, task, stores)?;
            tracing::info!("{}: keeping a standby of task {task}", app.id);
        }
    }
    if restorer.is_empty() {
        std::thread::sleep(POLL);
    } else {
        restorer.step(BATCH, POLL)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(instance: &str, tasks: &[u32]) -> GroupMember {
        GroupMember { instance: instance.to_owned(), tasks: tasks.to_vec() }
    }

    #[test]
    fn standbys_go_to_the_next_instances_in_the_ring() {
        // Two threads of instance a, one each of b and c.
        let members = [member("a", &[0, 1]), member("a", &[2]), member("b", &[3]), member("c", &[4, 5])];
        assert_eq!(placed_here(&members, "b", 1), BTreeSet::from([0, 1, 2]));
        assert_eq!(placed_here(&members, "c", 1), BTreeSet::from([3]));
        assert_eq!(placed_here(&members, "a", 1), BTreeSet::from([4, 5]));
        assert_eq!(placed_here(&members, "a", 2), BTreeSet::from([3, 4, 5]));
        // More replicas than other instances: every other instance keeps one.
        assert_eq!(placed_here(&members, "c", 5), BTreeSet::from([0, 1, 2, 3]));
        // An instance not (yet) in the group keeps none.
        assert!(placed_here(&members, "d", 1).is_empty());
    }
}
