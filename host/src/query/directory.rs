//! Which instance of an application runs which task, for queries about
//! keys this instance does not hold (Kafka Streams' `queryMetadataForKey`
//! and its `application.server`): every instance that serves queries joins
//! the group as `<instance>@<host:port>`, so the coordinator's description
//! of the group (`Log::members`) says where each task's owner answers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::log::{GroupMember, Log};
use crate::task::TaskId;

/// How long a description of the group is reused.
const FRESH_FOR: Duration = Duration::from_millis(500);

/// The group's members, asked for when needed and kept briefly.
pub struct Directory {
    log: Arc<dyn Log>,
    group: String,
    /// This instance's query address, `host:port`.
    own: String,
    members: Mutex<Option<(Instant, Vec<GroupMember>)>>,
}

/// Where a task runs, as far as the group says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// In this instance.
    Here,
    /// In the instance that answers queries at this address.
    At(String),
    /// Nowhere now (a rebalance), or in an instance that serves no queries.
    Unknown,
}

impl Directory {
    /// A directory of `group` on `log`, for the instance answering at `own`.
    pub fn new(log: Arc<dyn Log>, group: &str, own: String) -> Directory {
        Directory { log, group: group.to_owned(), own, members: Mutex::default() }
    }

    /// This instance's query address.
    pub fn own(&self) -> &str {
        &self.own
    }

    /// Who runs `task`, one of `tasks` (every task, in the group's order).
    pub fn owner(&self, task: TaskId, tasks: &[TaskId]) -> Owner {
        let Some(index) = tasks.iter().position(|t| *t == task) else {
            return Owner::Unknown;
        };
        let mut cached = self.members.lock().unwrap_or_else(|p| p.into_inner());
        if cached.as_ref().is_none_or(|(at, _)| at.elapsed() > FRESH_FOR) {
            match self.log.members(&self.group) {
                Ok(members) => *cached = Some((Instant::now(), members)),
                Err(e) => {
                    tracing::warn!("cannot describe group {}: {e}", self.group);
                    return Owner::Unknown;
                }
            }
        }
        let members = cached.as_ref().map(|(_, m)| m.as_slice()).unwrap_or_default();
        match members.iter().find(|m| m.tasks.contains(&(index as u32))).and_then(GroupMember::query_address) {
            Some(address) if address == self.own => Owner::Here,
            Some(address) => Owner::At(address.to_owned()),
            None => Owner::Unknown,
        }
    }
}
