//! Plugin processors and their punctuators: records in, records forwarded to
//! named children, with the node's stores held apart for the call
//! ([`StoreAccess`]) so a record that fails or traps leaves no write behind.

use crate::plugin::{FunctionKind, Outcome};
use crate::record::Record;
use crate::store::{SlotStore, StoreAccess};
use crate::topology::PunctuationTime;

use super::ProcessError;
use super::context::{Cx, FailureKind, failure};
use super::operator::{Batch, Emit, Operator};

/// Runs a plugin processor with the node's stores.
pub(crate) struct Processor {
    pub function: u32,
    /// The node's stores by name: a task store's id, or `None` for a global
    /// table's.
    pub slots: Vec<(String, Option<usize>)>,
    /// The punctuator function, if any.
    pub punctuator: Option<u32>,
}

impl Operator for Processor {
    fn process(&mut self, cx: &mut Cx<'_>, _from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        self.run(cx, self.function, FunctionKind::Processor, batch)
    }

    /// Calls the punctuator with the punctuation record of `cx.input` (no key
    /// or value; its timestamp is the punctuation time and its
    /// `eddy.punctuation` header names the clock).
    fn punctuate(&mut self, cx: &mut Cx<'_>, _clock: PunctuationTime, _time: i64) -> Result<Emit, ProcessError> {
        let Some(function) = self.punctuator else { return Ok(Emit::Nothing) };
        let batch = Batch { records: cx.input.records.iter().map(|r| r.record.clone()).collect(), origins: vec![0] };
        self.run(cx, function, FunctionKind::Punctuator, batch)
    }
}

impl Processor {
    /// Runs `function` over a batch with the node's stores for the task. If
    /// any record fails or traps, the batch's store writes and outputs are
    /// dropped and each record runs again alone, so a failed record changes
    /// nothing.
    fn run(&mut self, cx: &mut Cx<'_>, function: u32, kind: FunctionKind, batch: Batch) -> Result<Emit, ProcessError> {
        let mut access = self.take_access(cx)?;
        let result = self.run_with(cx, function, kind, batch, &mut access);
        self.return_access(cx, access);
        result
    }

    /// Moves the node's stores for the task into a [`StoreAccess`].
    fn take_access(&self, cx: &mut Cx<'_>) -> Result<StoreAccess, ProcessError> {
        let mut access = StoreAccess::default();
        for (name, id) in &self.slots {
            let store = match id {
                Some(id) => match cx.shared.stores.open.remove(&(cx.task, *id)) {
                    Some(s) => SlotStore::Task(s),
                    None => {
                        let error = ProcessError::NoStore(cx.shared.names[cx.node].clone(), cx.task);
                        self.return_access(cx, access);
                        return Err(error);
                    }
                },
                None => match cx.shared.stores.globals.get(name) {
                    Some(g) => SlotStore::Global(g.clone()),
                    None => {
                        let error =
                            ProcessError::UnknownStore { node: cx.shared.names[cx.node].clone(), store: name.clone() };
                        self.return_access(cx, access);
                        return Err(error);
                    }
                },
            };
            access.push(name, store);
        }
        Ok(access)
    }

    /// Puts the task stores of `access` back.
    fn return_access(&self, cx: &mut Cx<'_>, access: StoreAccess) {
        for ((_, id), store) in self.slots.iter().zip(access.into_stores()) {
            if let (Some(id), SlotStore::Task(s)) = (id, store) {
                cx.shared.stores.open.insert((cx.task, *id), s);
            }
        }
    }

    fn run_with(
        &mut self,
        cx: &mut Cx<'_>,
        function: u32,
        kind: FunctionKind,
        batch: Batch,
        access: &mut StoreAccess,
    ) -> Result<Emit, ProcessError> {
        let mut outcomes = Vec::with_capacity(batch.len());
        let whole = cx.shared.instance()?.process(function, kind, &batch.records, access, &mut outcomes);
        if let Some(e) = access.take_failure() {
            return Err(e.into());
        }
        let forwards: Option<Vec<_>> = match whole {
            Ok(()) => outcomes.into_iter().map(|o| routes(cx, o).ok()).collect(),
            Err(_) => {
                cx.shared.drop_instance();
                None
            }
        };
        let mut routed = Routed::new(&cx.shared.children[cx.node]);
        if let Some(forwards) = forwards {
            let latest = batch.records.iter().map(|r| r.timestamp).max().unwrap_or(0);
            access.settle(latest, cx.out)?;
            for (records, origin) in forwards.into_iter().zip(batch.origins) {
                routed.add(records, origin);
            }
            return Ok(routed.emit());
        }
        access.discard();
        for (r, origin) in batch.records.into_iter().zip(batch.origins) {
            let mut one = Vec::with_capacity(1);
            let result = cx.shared.instance()?.process(function, kind, std::slice::from_ref(&r), access, &mut one);
            if let Some(e) = access.take_failure() {
                return Err(e.into());
            }
            let forwards = match result {
                Ok(()) => match one.pop() {
                    Some(outcome) => routes(cx, outcome),
                    None => Err("no result".to_owned()),
                },
                Err(e) => {
                    cx.shared.drop_instance();
                    Err(e.to_string())
                }
            };
            match forwards {
                Ok(records) => {
                    access.settle(r.timestamp, cx.out)?;
                    routed.add(records, origin);
                }
                Err(e) => {
                    access.discard();
                    cx.reject(cx.node, origin, FailureKind::Function, e)?;
                }
            }
        }
        Ok(routed.emit())
    }
}

/// Where a processor's records go: each with the child it is for (`None`
/// for every child), or why the outcome is a failure.
fn routes(cx: &Cx<'_>, outcome: Outcome) -> Result<Vec<(Option<usize>, Record)>, String> {
    let records = match outcome {
        Outcome::Forward(records) => records,
        other => return Err(failure(other, FunctionKind::Processor)),
    };
    let (names, children) = (&cx.shared.names, &cx.shared.children[cx.node]);
    records
        .into_iter()
        .map(|(child, record)| match child {
            None => Ok((None, record)),
            Some(name) => match children.iter().find(|&&c| names[c] == name) {
                Some(&c) => Ok((Some(c), record)),
                None => {
                    let listed: Vec<&str> = children.iter().map(|&c| names[c].as_str()).collect();
                    Err(format!(
                        "forwarded to '{name}', which is not a child of node '{}'; its children are: {}",
                        names[cx.node],
                        if listed.is_empty() { "none".to_owned() } else { listed.join(", ") }
                    ))
                }
            },
        })
        .collect()
}

/// A processor's forwarded records gathered into one batch per child.
struct Routed {
    children: Vec<usize>,
    batches: Vec<Batch>,
}

impl Routed {
    fn new(children: &[usize]) -> Self {
        Routed { children: children.to_vec(), batches: children.iter().map(|_| Batch::default()).collect() }
    }

    fn add(&mut self, records: Vec<(Option<usize>, Record)>, origin: u32) {
        for (child, record) in records {
            match child {
                Some(c) => {
                    let i = self.children.iter().position(|&x| x == c).expect("routed to a child");
                    self.batches[i].push(record, origin);
                }
                None => self.batches.iter_mut().for_each(|b| b.push(record.clone(), origin)),
            }
        }
    }

    fn emit(self) -> Emit {
        Emit::To(self.children.into_iter().zip(self.batches).collect())
    }
}
