//! The interface between the pipeline and its operators: a batch of records
//! in flight, what an operator passes on, and the [`Operator`] trait.
//!
//! An operator gets a batch from one of its inputs and returns what its
//! children get ([`Emit`]); the pipeline walks the graph. Everything an
//! operator may touch besides its own state (plugin calls, stores, the error
//! policy, the producer) comes through [`Cx`].

use crate::record::Record;

use super::ProcessError;
use super::context::Cx;
use crate::topology::PunctuationTime;

/// Records in flight, each with the index of the input record it came from
/// (for the error policy and dead letters).
#[derive(Default)]
pub(crate) struct Batch {
    pub records: Vec<Record>,
    pub origins: Vec<u32>,
}

impl Batch {
    pub fn with_capacity(n: usize) -> Self {
        Batch { records: Vec::with_capacity(n), origins: Vec::with_capacity(n) }
    }

    pub fn push(&mut self, r: Record, origin: u32) {
        self.records.push(r);
        self.origins.push(origin);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl Clone for Batch {
    fn clone(&self) -> Self {
        Batch { records: self.records.clone(), origins: self.origins.clone() }
    }
}

/// What an operator passes on.
pub(crate) enum Emit {
    /// Nothing (a sink, or an operator whose store passes on its updates
    /// when it flushes).
    Nothing,
    /// A batch for every child of the node.
    All(Batch),
    /// A batch for every child of another node: a fused chain passes on as
    /// its last member.
    As(usize, Batch),
    /// A batch for each of some children (a split's branches, a processor's
    /// named children), in order.
    To(Vec<(usize, Batch)>),
}

/// One node's behaviour. `process` is required; the hooks have defaults.
pub(crate) trait Operator: Send {
    /// Runs over a batch that node `from` passed on (a cogroup tells its
    /// inputs apart by it).
    fn process(&mut self, cx: &mut Cx<'_>, from: usize, batch: Batch) -> Result<Emit, ProcessError>;

    /// A punctuation of `clock` at `time` for the task in `cx`: a processor
    /// runs its punctuator. Called only for nodes with a punctuation schedule.
    fn punctuate(&mut self, _cx: &mut Cx<'_>, _clock: PunctuationTime, _time: i64) -> Result<Emit, ProcessError> {
        Ok(Emit::Nothing)
    }
}

/// Passes records on unchanged: branches, merges, to-stream.
pub(crate) struct Pass;

impl Operator for Pass {
    fn process(&mut self, _cx: &mut Cx<'_>, _from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        Ok(Emit::All(batch))
    }
}
