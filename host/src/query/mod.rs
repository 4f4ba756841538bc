//! Interactive queries: a running application's state stores, read while it
//! runs (Kafka Streams' interactive queries), by key, by key range and by
//! window, and which task holds a key.
//!
//! A [`Queryable`] belongs to one run ([`crate::runtime::RunOptions::queries`]).
//! It knows every store of the topology ([`StoreInfo`]: kind, sub-topology,
//! serdes) and, for each task running in this process, a reader of each of
//! its stores ([`TaskStoreReader`]): worker threads register a task's
//! readers when it starts processing and take them away when it stops
//! (revoked, lost, gone back to its last commit, or the run ends). A task
//! that is restoring its stores is not registered, so it is never read
//! half-restored.
//!
//! Reads happen on the caller's thread, never through the worker, and see
//! each store **as of its last flush**: the worker flushes every commit
//! interval (100 ms by default), just before it commits, and a flushed
//! update is in that commit's transaction. Updates since (still in the
//! record cache) are not seen; if the commit fails, the worker closes its
//! tasks, their readers go, and the tasks come back restored from what was
//! committed. Different partitions (and stores) may be a commit apart.
//!
//! Keys come as text in the key serde's JSON form (as `eddy store get`
//! takes them) and go to partition `murmur2(key bytes) % tasks`, Kafka's
//! default partitioner over the store's sub-topology's task count. Values
//! come back as JSON by the store's value serde ([`catalog()`] says how a
//! store's serdes are found), optionally cut down to some fields
//! ([`Fields`]). [`http`] serves all of it.

mod catalog;
pub mod directory;
mod error;
mod fields;
pub mod http;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::app::App;
use crate::partition::partition_for_key;
use crate::serdes::{Serde, hex};
use crate::store::{StoreError, TaskStoreReader, TimestampedEntry, decode_version, prefix_end, version_bounds};
use crate::task::{Task, TaskId};
use crate::window::{Windows, session_key, split_session_key, split_windowed_key, windowed_key};

pub use catalog::{InternalStore, StoreInfo, StoreType, catalog};
pub use error::{Fault, QueryError};
pub use fields::{Fields, FieldsError};

/// Entries a page holds unless the query asks for fewer.
pub const DEFAULT_LIMIT: usize = 100;
/// The most entries a page holds.
pub const MAX_LIMIT: usize = 1000;

/// Parameters of a key lookup.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct KeyParams {
    /// Only these fields of a JSON value (`a,b.c`).
    pub fields: Option<String>,
}

/// Parameters of a range scan; keys in the key serde's JSON form. In a
/// window or session store, entries are ordered by key, then window, and
/// the bounds apply to the key: `to=k` leaves out all of `k`'s windows.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RangeParams {
    /// The first key (inclusive).
    pub from: Option<String>,
    /// The key to stop before (exclusive).
    pub to: Option<String>,
    /// Only keys whose serialized bytes start with this.
    pub prefix: Option<String>,
    /// Entries per page: [`DEFAULT_LIMIT`] by default, at most [`MAX_LIMIT`].
    pub limit: Option<String>,
    /// The cursor of the page before ([`Page::next`]).
    pub after: Option<String>,
    /// Only these fields of JSON values.
    pub fields: Option<String>,
}

/// Parameters of a window fetch: times in ms since the epoch.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WindowParams {
    /// The earliest window start (window stores) or session end (session
    /// stores) to return; 0 by default.
    pub from: Option<String>,
    /// The latest window start (or session start) to return; no bound by
    /// default.
    pub to: Option<String>,
    /// Windows per answer: [`DEFAULT_LIMIT`] by default, at most [`MAX_LIMIT`].
    pub limit: Option<String>,
    /// Only these fields of JSON values.
    pub fields: Option<String>,
}

/// A window's bounds, in ms since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    /// Its start (inclusive).
    pub start: i64,
    /// Its end: exclusive for tumbling and hopping windows, inclusive for
    /// sliding windows and sessions (as Kafka Streams has them).
    pub end: i64,
}

/// An entry of a store, as JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Found {
    /// The key (without its window).
    pub key: Value,
    /// The window, in a window or session store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// The value.
    pub value: Value,
    /// The time of its last update (a version's: when it became valid).
    pub timestamp: i64,
}

/// A page of a range scan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    /// Entries in key order.
    pub entries: Vec<Found>,
    /// The `after` that gives the next page; `None` on the last page.
    pub next: Option<String>,
}

/// The windows of a key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowFetch {
    /// The key.
    pub key: Value,
    /// Its windows by start (sessions by end).
    pub windows: Vec<WindowValue>,
    /// The `from` that gives the next windows; `None` if there are no more.
    pub next: Option<i64>,
}

/// One window of a key and its value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowValue {
    /// The window start (inclusive).
    pub start: i64,
    /// The window end (see [`Window::end`]).
    pub end: i64,
    /// The value.
    pub value: Value,
    /// The time of its last update.
    pub timestamp: i64,
}

/// Where a key lives (Kafka Streams' `KeyQueryMetadata`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyMetadata {
    /// The store.
    pub store: String,
    /// The key.
    pub key: Value,
    /// The partition the key belongs to.
    pub partition: u32,
    /// The task that holds it.
    pub task: String,
    /// True if that task is running in this instance now.
    pub hosted_here: bool,
    /// The address of the instance that runs the task, where known (on
    /// Kafka, instances run with `--listen`; `null` on the embedded log).
    pub active_host: Option<String>,
    /// Instances that keep a standby copy, where known.
    pub standby_hosts: Vec<String>,
}

/// A store as `GET /v1/stores` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreDescription {
    /// The store's name.
    pub name: String,
    /// `key-value`, `window`, `session` or `versioned`.
    pub kind: &'static str,
    /// The node that owns it.
    pub node: String,
    /// Its sub-topology.
    pub subtopology: usize,
    /// The serde of its keys.
    pub key_serde: Serde,
    /// The serde of its values.
    pub value_serde: Serde,
    /// Its task count (partitions), once the run has planned its tasks.
    pub partitions: Option<u32>,
    /// The partitions whose tasks run here now.
    pub running_here: Vec<u32>,
    /// For a window or session store: its windows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows: Option<Value>,
}

/// The readers of the tasks running now.
#[derive(Default)]
struct Registry {
    /// Tasks per sub-topology, once the run has planned them.
    partitions: Option<BTreeMap<usize, u32>>,
    /// By store name and partition.
    readers: HashMap<(String, u32), TaskStoreReader>,
    /// Every task, in the order the group numbers them.
    order: Vec<TaskId>,
}

/// The queryable stores of one run of an application (see the module
/// documentation).
pub struct Queryable {
    app: String,
    stores: Vec<StoreInfo>,
    internal: Vec<InternalStore>,
    registry: RwLock<Registry>,
    /// Who runs the tasks not running here (instances on Kafka).
    directory: std::sync::OnceLock<directory::Directory>,
}

impl std::fmt::Debug for Queryable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.stores.iter().map(|s| s.name.as_str()).collect();
        f.debug_struct("Queryable").field("app", &self.app).field("stores", &names).finish_non_exhaustive()
    }
}

impl Queryable {
    /// The stores of `app`, with no task running yet.
    pub fn new(app: &App) -> Arc<Queryable> {
        let (stores, internal) = catalog(&app.topology);
        Arc::new(Queryable {
            app: app.id.clone(),
            stores,
            internal,
            registry: RwLock::default(),
            directory: std::sync::OnceLock::new(),
        })
    }

    /// Lets queries about tasks that run in other instances find them
    /// (set once, before the run; later calls are ignored).
    pub fn set_directory(&self, directory: directory::Directory) {
        let _ = self.directory.set(directory);
    }

    /// The application id.
    pub fn app_id(&self) -> &str {
        &self.app
    }

    /// The queryable stores.
    pub fn stores(&self) -> &[StoreInfo] {
        &self.stores
    }

    /// The queryable stores of sub-topology `subtopology`, whose tasks hold one each.
    pub fn stores_of(&self, subtopology: usize) -> Vec<String> {
        self.stores.iter().filter(|s| s.subtopology == subtopology).map(|s| s.name.clone()).collect()
    }

    /// The queryable store `name`.
    pub fn store(&self, name: &str) -> Result<&StoreInfo, QueryError> {
        if let Some(info) = self.stores.iter().find(|s| s.name == name) {
            return Ok(info);
        }
        let stores = match self.stores.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ") {
            names if names.is_empty() => "none".to_owned(),
            names => names,
        };
        Err(match self.internal.iter().find(|s| s.name == name) {
            Some(s) => QueryError::NotQueryable { store: name.to_owned(), what: s.what.clone(), stores },
            None => QueryError::UnknownStore { app: self.app.clone(), store: name.to_owned(), stores },
        })
    }

    fn registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|p| p.into_inner())
    }

    fn registry_mut(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the run's tasks, so that keys find their partitions.
    pub fn set_tasks(&self, tasks: &[Task]) {
        let mut partitions = BTreeMap::new();
        for t in tasks {
            let n = partitions.entry(t.id.subtopology).or_insert(0);
            *n = (*n).max(t.id.partition + 1);
        }
        let mut registry = self.registry_mut();
        registry.partitions = Some(partitions);
        registry.order = tasks.iter().map(|t| t.id).collect();
    }

    /// The task count of `store`'s sub-topology, once the run planned it.
    pub fn partitions(&self, store: &StoreInfo) -> Option<u32> {
        self.registry().partitions.as_ref()?.get(&store.subtopology).copied().filter(|&n| n > 0)
    }

    /// Makes the stores of `task`, which starts processing, readable
    /// (readers of stores that are not queryable are ignored).
    pub fn register(&self, task: TaskId, readers: Vec<(String, TaskStoreReader)>) {
        let mut registry = self.registry_mut();
        for (name, reader) in readers {
            if self.stores.iter().any(|s| s.name == name && s.subtopology == task.subtopology) {
                registry.readers.insert((name, task.partition), reader);
            }
        }
    }

    /// Takes the readers of `tasks`, which stop processing, away.
    pub fn unregister(&self, tasks: &[TaskId]) {
        let mut registry = self.registry_mut();
        for task in tasks {
            for info in self.stores.iter().filter(|s| s.subtopology == task.subtopology) {
                registry.readers.remove(&(info.name.clone(), task.partition));
            }
        }
    }

    /// Every queryable store, with its partitions and those running here.
    pub fn describe(&self) -> Vec<StoreDescription> {
        let registry = self.registry();
        self.stores
            .iter()
            .map(|s| {
                let mut running_here: Vec<u32> =
                    registry.readers.keys().filter(|(name, _)| *name == s.name).map(|(_, p)| *p).collect();
                running_here.sort_unstable();
                StoreDescription {
                    name: s.name.clone(),
                    kind: s.kind.name(),
                    node: s.node.clone(),
                    subtopology: s.subtopology,
                    key_serde: s.key_serde,
                    value_serde: s.value_serde,
                    partitions: registry.partitions.as_ref().and_then(|p| p.get(&s.subtopology).copied()),
                    running_here,
                    windows: match s.kind {
                        StoreType::Window(w) | StoreType::Session(w) => Some(describe_windows(w)),
                        _ => None,
                    },
                }
            })
            .collect()
    }

    /// The value of `key` in `store` (a key-value or versioned store: a
    /// versioned store's latest version).
    pub fn get(&self, store: &str, key: &str, params: &KeyParams) -> Result<Found, QueryError> {
        let info = self.store(store)?;
        let fields = fields_of(info, params.fields.as_deref())?;
        if let StoreType::Window(_) | StoreType::Session(_) = info.kind {
            return Err(unsupported(info, "look its keys up with /windows/{key}"));
        }
        let bytes = key_bytes(info, key)?;
        let reader = self.reader(info, self.partition(info, &bytes)?)?;
        let failed = |source| failed(info, source);
        let not_found = || QueryError::NotFound { store: info.name.clone(), key: key.to_owned() };
        let (value, timestamp) = match info.kind {
            StoreType::Versioned { .. } => {
                let (from, to) = version_bounds(&bytes);
                let versions = reader.range(Some(&from), Some(&to), usize::MAX).map_err(failed)?;
                let latest = versions.last().and_then(|(k, v, _)| decode_version(k, v));
                match latest {
                    Some((_, ts, Some(value))) => (value, ts),
                    _ => return Err(not_found()),
                }
            }
            _ => reader.get(&bytes).map_err(failed)?.ok_or_else(not_found)?,
        };
        Ok(Found {
            key: info.key_serde.to_json(&bytes),
            window: None,
            value: render_value(info, &value, fields.as_ref()),
            timestamp,
        })
    }

    /// A page of `store`'s entries over all its partitions, in key order.
    pub fn range(&self, store: &str, params: &RangeParams) -> Result<Page, QueryError> {
        let info = self.store(store)?;
        let fields = fields_of(info, params.fields.as_deref())?;
        if let StoreType::Versioned { .. } = info.kind {
            return Err(unsupported(info, "look its keys up with /keys/{key}"));
        }
        let limit = limit_of(params.limit.as_deref())?;
        let mut lower = params.from.as_deref().map(|k| key_bytes(info, k)).transpose()?.map(|b| b.to_vec());
        let mut upper = params.to.as_deref().map(|k| key_bytes(info, k)).transpose()?.map(|b| b.to_vec());
        if let Some(prefix) = params.prefix.as_deref() {
            let prefix = prefix_bytes(info, prefix)?;
            lower = lower.max(Some(prefix.clone()));
            upper = match (upper, prefix_end(&prefix)) {
                (Some(u), Some(e)) => Some(u.min(e)),
                (u, e) => u.or(e),
            };
        }
        if let Some(after) = params.after.as_deref() {
            let mut past = unhex(after).ok_or_else(|| {
                QueryError::BadRequest(format!("after {after:?}: not a cursor (pass a page's `next` as it is)"))
            })?;
            past.push(0);
            lower = lower.max(Some(past));
        }
        if let (Some(l), Some(u)) = (&lower, &upper)
            && l >= u
        {
            return Ok(Page { entries: Vec::new(), next: None });
        }
        let count = self.partitions(info).ok_or_else(|| QueryError::Starting { app: self.app.clone() })?;
        let readers = (0..count).map(|p| self.reader(info, p)).collect::<Result<Vec<_>, _>>()?;
        let mut entries = Vec::new();
        for reader in readers {
            let page = reader.range(lower.as_deref(), upper.as_deref(), limit + 1);
            entries.extend(page.map_err(|source| failed(info, source))?);
        }
        // A key lives in one partition: the pages only interleave.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let next = (entries.len() > limit).then(|| hex(&entries[limit - 1].0));
        entries.truncate(limit);
        let entries = entries.iter().map(|e| render(info, e, fields.as_ref())).collect();
        Ok(Page { entries, next })
    }

    /// The windows of `key` in a window store that start from `from` to `to`
    /// (both inclusive: Kafka Streams' `WindowStore#fetch(key, from, to)`),
    /// or the sessions of `key` in a session store that end at `from` or
    /// later and start at `to` or earlier (`SessionStore#findSessions`).
    pub fn windows(&self, store: &str, key: &str, params: &WindowParams) -> Result<WindowFetch, QueryError> {
        let info = self.store(store)?;
        let fields = fields_of(info, params.fields.as_deref())?;
        let session = match info.kind {
            StoreType::Window(_) => false,
            StoreType::Session(_) => true,
            _ => return Err(unsupported(info, "look its keys up with /keys/{key}")),
        };
        let time = |name: &str, value: Option<&str>, default: i64| match value {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map_err(|_| QueryError::BadRequest(format!("{name} {v:?}: give a time in ms since the epoch"))),
        };
        let (from, to) = (time("from", params.from.as_deref(), 0)?, time("to", params.to.as_deref(), i64::MAX)?);
        let limit = limit_of(params.limit.as_deref())?;
        let bytes = key_bytes(info, key)?;
        let key_json = info.key_serde.to_json(&bytes);
        if from > to || to < 0 {
            return Ok(WindowFetch { key: key_json, windows: Vec::new(), next: None });
        }
        let reader = self.reader(info, self.partition(info, &bytes)?)?;
        // Times are never negative, so the key's entries all sort below the
        // key followed by 0x80.
        let past_key = [&bytes[..], &[0x80]].concat();
        let (lower, upper) = if session {
            let lower = session_key(&bytes, 0, from.max(0));
            (lower[..bytes.len() + 8].to_vec(), past_key)
        } else {
            let upper = if to == i64::MAX { past_key } else { windowed_key(&bytes, to + 1).to_vec() };
            (windowed_key(&bytes, from.max(0)).to_vec(), upper)
        };
        let window_of = |k: &[u8]| -> Option<(i64, i64)> {
            if session {
                let (inner, start, end) = split_session_key(k)?;
                (inner == &bytes[..] && start <= to && end >= from).then_some((start, end))
            } else {
                let (inner, start) = split_windowed_key(k)?;
                (inner == &bytes[..]).then(|| (start, window_end(info.kind, start, start)))
            }
        };
        let entries = scan(&reader, lower, &upper, limit + 1, |k| window_of(k).is_some())
            .map_err(|source| failed(info, source))?;
        let mut windows: Vec<WindowValue> = entries
            .iter()
            .filter_map(|(k, v, ts)| {
                let (start, end) = window_of(k)?;
                Some(WindowValue { start, end, value: render_value(info, v, fields.as_ref()), timestamp: *ts })
            })
            .collect();
        let next = (windows.len() > limit).then(|| {
            let last = &windows[limit - 1];
            // Sessions of a key never overlap: their ends order them too.
            if session { last.end + 1 } else { last.start + 1 }
        });
        windows.truncate(limit);
        Ok(WindowFetch { key: key_json, windows, next })
    }

    /// Where `key` of `store` lives (Kafka Streams' `queryMetadataForKey`).
    pub fn metadata(&self, store: &str, key: &str) -> Result<KeyMetadata, QueryError> {
        let info = self.store(store)?;
        let bytes = key_bytes(info, key)?;
        let partition = self.partition(info, &bytes)?;
        let hosted_here = self.registry().readers.contains_key(&(info.name.clone(), partition));
        let task = TaskId { subtopology: info.subtopology, partition };
        let active_host = match (&self.directory.get(), hosted_here) {
            (Some(d), true) => Some(d.own().to_owned()),
            (Some(d), false) => match d.owner(task, &self.registry().order) {
                directory::Owner::At(address) => Some(address),
                directory::Owner::Here | directory::Owner::Unknown => None,
            },
            (None, _) => None,
        };
        Ok(KeyMetadata {
            store: info.name.clone(),
            key: info.key_serde.to_json(&bytes),
            partition,
            task: task.to_string(),
            hosted_here,
            active_host,
            standby_hosts: Vec::new(),
        })
    }

    /// The partition `key` (serialized) belongs to in `info`'s sub-topology.
    fn partition(&self, info: &StoreInfo, key: &[u8]) -> Result<u32, QueryError> {
        let count = self.partitions(info).ok_or_else(|| QueryError::Starting { app: self.app.clone() })?;
        Ok(partition_for_key(key, count))
    }

    /// The reader of `info` in the task of `partition`, if it runs here.
    fn reader(&self, info: &StoreInfo, partition: u32) -> Result<TaskStoreReader, QueryError> {
        let found = self.registry().readers.get(&(info.name.clone(), partition)).cloned();
        let task = TaskId { subtopology: info.subtopology, partition };
        found.ok_or_else(|| match self.directory.get().map(|d| d.owner(task, &self.registry().order)) {
            Some(directory::Owner::At(address)) => QueryError::Elsewhere { store: info.name.clone(), task, address },
            _ => QueryError::NotRunning { store: info.name.clone(), task },
        })
    }
}

/// Up to `want` entries from `lower` (inclusive) to `upper` (exclusive)
/// that `keep` keeps, read a page at a time.
fn scan(
    reader: &TaskStoreReader,
    mut lower: Vec<u8>,
    upper: &[u8],
    want: usize,
    keep: impl Fn(&[u8]) -> bool,
) -> Result<Vec<TimestampedEntry>, StoreError> {
    let mut out = Vec::new();
    while out.len() < want && lower.as_slice() < upper {
        let page = reader.range(Some(&lower), Some(upper), want)?;
        let full = page.len() == want;
        if let Some((last, _, _)) = page.last() {
            lower = [&last[..], &[0]].concat();
        }
        out.extend(page.into_iter().filter(|(k, _, _)| keep(k)));
        if !full {
            break;
        }
    }
    out.truncate(want);
    Ok(out)
}

/// The end of the window starting at `start` in a store of `kind`
/// (`end` is a session's own).
fn window_end(kind: StoreType, start: i64, end: i64) -> i64 {
    match kind {
        StoreType::Window(Windows::Time(w)) => start.saturating_add(w.size),
        StoreType::Window(Windows::Sliding(w)) => start.saturating_add(w.difference),
        _ => end,
    }
}

/// A store's windows as JSON.
fn describe_windows(windows: Windows) -> Value {
    match windows {
        Windows::Time(w) => json!({
            "type": if w.is_tumbling() { "tumbling" } else { "hopping" },
            "size_ms": w.size, "advance_ms": w.advance, "grace_ms": w.grace, "retention_ms": w.retention,
        }),
        Windows::Sliding(w) => json!({
            "type": "sliding", "difference_ms": w.difference, "grace_ms": w.grace, "retention_ms": w.retention,
        }),
        Windows::Session(w) => json!({
            "type": "session", "gap_ms": w.gap, "grace_ms": w.grace, "retention_ms": w.retention,
        }),
    }
}

/// A store of `info` failed to read.
fn failed(info: &StoreInfo, source: StoreError) -> QueryError {
    QueryError::Store { store: info.name.clone(), source: Box::new(source) }
}

fn unsupported(info: &StoreInfo, hint: &str) -> QueryError {
    QueryError::Unsupported { store: info.name.clone(), kind: info.kind.name(), hint: hint.to_owned() }
}

/// The serialized form of `key`, given in the key serde's JSON form: JSON
/// text is read as JSON, anything else as a string; for a string serde, a
/// key that is not a JSON string is its text as it is (`42` is `"42"`).
pub fn key_bytes(info: &StoreInfo, key: &str) -> Result<Bytes, QueryError> {
    let value = match serde_json::from_str::<Value>(key) {
        Ok(Value::String(s)) => Value::String(s),
        Ok(v) if info.key_serde != Serde::String => v,
        _ => Value::String(key.to_owned()),
    };
    info.key_serde.from_json(&value).map_err(|e| QueryError::BadKey {
        store: info.name.clone(),
        key: key.to_owned(),
        why: format!("{} (the store's keys are {})", e.0, info.key_serde),
    })
}

/// The bytes a `prefix` asks keys to start with: for a JSON key serde the
/// text as it is (a prefix of a JSON document is rarely JSON), otherwise as
/// a key.
fn prefix_bytes(info: &StoreInfo, prefix: &str) -> Result<Vec<u8>, QueryError> {
    match info.key_serde {
        Serde::Json => Ok(prefix.as_bytes().to_vec()),
        Serde::I64 => Err(QueryError::BadRequest(format!(
            "prefix: store '{}' has i64 keys, which have no useful prefixes; use from and to",
            info.name
        ))),
        _ => Ok(key_bytes(info, prefix)?.to_vec()),
    }
}

/// Bytes from lowercase or uppercase hex.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// The page size asked for.
fn limit_of(limit: Option<&str>) -> Result<usize, QueryError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n.min(MAX_LIMIT)),
            _ => Err(QueryError::BadRequest(format!("limit {text:?}: give a number from 1 to {MAX_LIMIT}"))),
        },
    }
}

/// The selection `fields` asks for, for a store with JSON values.
fn fields_of(info: &StoreInfo, fields: Option<&str>) -> Result<Option<Fields>, QueryError> {
    let Some(spec) = fields else { return Ok(None) };
    if info.value_serde != Serde::Json {
        return Err(QueryError::BadRequest(format!(
            "fields: store '{}' has {} values; fields select parts of JSON values",
            info.name, info.value_serde
        )));
    }
    Ok(Some(Fields::parse(spec)?))
}

/// A value as JSON, cut down to `fields`.
fn render_value(info: &StoreInfo, value: &[u8], fields: Option<&Fields>) -> Value {
    let json = info.value_serde.to_json(value);
    match fields {
        Some(f) => f.select(json),
        None => json,
    }
}

/// A stored entry as JSON: its key split from its window, as the store's
/// kind lays keys out.
fn render(info: &StoreInfo, (key, value, timestamp): &TimestampedEntry, fields: Option<&Fields>) -> Found {
    let split = match info.kind {
        StoreType::Window(_) => {
            split_windowed_key(key).map(|(k, start)| (k, start, window_end(info.kind, start, start)))
        }
        StoreType::Session(_) => split_session_key(key),
        _ => None,
    };
    let (key, window) = match split {
        Some((inner, start, end)) => (inner, Some(Window { start, end })),
        None => (&key[..], None),
    };
    Found { key: info.key_serde.to_json(key), window, value: render_value(info, value, fields), timestamp: *timestamp }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
