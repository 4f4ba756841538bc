//! Stateless operators over streams: filter, the transforms (map,
//! map-values, flat-map, flat-map-values, select-key, peek), split, and
//! fused chains of one-in-one-out operators.
//!
//! Consecutive one-in-one-out plugin operators (filters, map, map-values,
//! select-key, peek), each the only reader of the one before, are fused: the
//! chain runs in one plugin call per batch ([`Chain`]), and errors still name
//! the node whose function failed.

use std::sync::Arc;

use crate::plugin::{ChainOutcome, ChainStep, FunctionKind, Outcome};
use crate::record::Record;
use crate::topology::{Op, Topology};

use super::ProcessError;
use super::context::{Cx, FailureKind, failure};
use super::operator::{Batch, Emit, Operator};

/// Keeps records for which a predicate holds (or, negated, does not).
pub(crate) struct Filter {
    pub function: u32,
    pub negate: bool,
}

impl Operator for Filter {
    fn process(&mut self, cx: &mut Cx<'_>, _from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        let mut outcomes = cx.call(self.function, FunctionKind::Predicate, &batch.records)?;
        let mut kept = Batch::with_capacity(batch.len());
        let mut failures = Vec::new();
        for ((r, origin), outcome) in batch.records.into_iter().zip(batch.origins).zip(outcomes.drain(..)) {
            match outcome {
                Outcome::Keep(k) if k != self.negate => kept.push(r, origin),
                Outcome::Keep(_) => {}
                other => failures.push((origin, failure(other, FunctionKind::Predicate))),
            }
        }
        cx.recycle(outcomes);
        cx.reject_all(failures)?;
        Ok(Emit::All(kept))
    }
}

/// Calls a plugin function that transforms records; which output it gives
/// depends on the kind.
pub(crate) struct Transform {
    pub kind: FunctionKind,
    pub function: u32,
}

impl Operator for Transform {
    fn process(&mut self, cx: &mut Cx<'_>, _from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        let kind = self.kind;
        let mut outcomes = cx.call(self.function, kind, &batch.records)?;
        let mut next = Batch::with_capacity(batch.len());
        let mut failures = Vec::new();
        for ((mut r, origin), outcome) in batch.records.into_iter().zip(batch.origins).zip(outcomes.drain(..)) {
            match (kind, outcome) {
                (FunctionKind::Map, Outcome::Record(new)) => next.push(new, origin),
                (FunctionKind::MapValues, Outcome::Value(v)) => {
                    r.value = v;
                    next.push(r, origin);
                }
                (FunctionKind::SelectKey, Outcome::Key(k)) => {
                    r.key = k;
                    next.push(r, origin);
                }
                (FunctionKind::FlatMap, Outcome::Records(rs)) => rs.into_iter().for_each(|new| next.push(new, origin)),
                (FunctionKind::FlatMapValues, Outcome::Values(vs)) => {
                    for v in vs {
                        next.push(Record { value: v, ..r.clone() }, origin);
                    }
                }
                (FunctionKind::Peek, Outcome::Done) => next.push(r, origin),
                (_, other) => failures.push((origin, failure(other, kind))),
            }
        }
        cx.recycle(outcomes);
        cx.reject_all(failures)?;
        Ok(Emit::All(next))
    }
}

/// Routes each record to the first branch whose predicate holds.
pub(crate) struct Split {
    /// Branch nodes with their predicate; `None` takes the rest.
    pub branches: Vec<(usize, Option<u32>)>,
}

impl Operator for Split {
    fn process(&mut self, cx: &mut Cx<'_>, _from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        let mut routed = Vec::with_capacity(self.branches.len());
        let mut rest = batch;
        for &(branch, predicate) in &self.branches {
            let Some(function) = predicate else {
                routed.push((branch, std::mem::take(&mut rest)));
                break;
            };
            if rest.is_empty() {
                break;
            }
            let mut outcomes = cx.call(function, FunctionKind::Predicate, &rest.records)?;
            let mut taken = Batch::default();
            let mut left = Batch::default();
            let mut failures = Vec::new();
            for ((r, origin), outcome) in rest.records.into_iter().zip(rest.origins).zip(outcomes.drain(..)) {
                match outcome {
                    Outcome::Keep(true) => taken.push(r, origin),
                    Outcome::Keep(false) => left.push(r, origin),
                    other => failures.push((origin, failure(other, FunctionKind::Predicate))),
                }
            }
            cx.recycle(outcomes);
            cx.reject_all(failures)?;
            routed.push((branch, taken));
            rest = left;
        }
        Ok(Emit::To(routed))
    }
}

/// Fused operators: one plugin call runs every step over each record.
pub(crate) struct Chain {
    pub steps: Arc<[ChainStep]>,
    /// The node of each step.
    pub nodes: Arc<[usize]>,
}

impl Operator for Chain {
    fn process(&mut self, cx: &mut Cx<'_>, _from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        let outcomes = cx.call_chain(&self.steps, &batch.records)?;
        let n = batch.len();
        let mut next = Batch::with_capacity(n);
        // What reached each step, for the per-node counts.
        let (mut dropped, mut failed) = (0, Vec::new());
        for ((r, origin), outcome) in batch.records.into_iter().zip(batch.origins).zip(outcomes) {
            match outcome {
                ChainOutcome::Passed(None) => next.push(r, origin),
                ChainOutcome::Passed(Some(new)) => next.push(new, origin),
                ChainOutcome::Dropped => dropped += 1,
                ChainOutcome::Failed { step, error } => {
                    failed.push(step);
                    let node = self.nodes.get(step as usize).copied().unwrap_or(cx.node);
                    cx.reject(node, origin, FailureKind::Function, error.to_string())?;
                }
            }
        }
        cx.shared.metrics.chain_received(&self.steps, &self.nodes, n, dropped, &failed);
        let tail = *self.nodes.last().expect("a chain has steps");
        Ok(Emit::As(tail, next))
    }
}

/// The chains to fuse: each maximal run of two or more fusable operators,
/// each the only reader of the one before, as (first node, steps, nodes).
/// `index` gives a function's index in the plugin's manifest.
pub(crate) fn chains(topology: &Topology, index: impl Fn(&str) -> u32) -> Vec<(usize, Vec<ChainStep>, Vec<usize>)> {
    let nodes = &topology.nodes;
    let children = topology.children();
    let step = |i: usize| match &nodes[i].op {
        // A table's filter or map-values treats tombstones apart.
        _ if nodes[i].table => None,
        Op::Filter { function, negate } => {
            Some(ChainStep { function: index(function), kind: FunctionKind::Predicate, negate: *negate })
        }
        Op::Transform { kind, function } if kind.chains() => {
            Some(ChainStep { function: index(function), kind: *kind, negate: false })
        }
        _ => None,
    };
    let links = |from: usize| match children[from].as_slice() {
        [only] if nodes[*only].inputs.len() == 1 && step(*only).is_some() => Some(*only),
        _ => None,
    };
    let mut chains = Vec::new();
    for (head, node) in nodes.iter().enumerate() {
        if step(head).is_none() {
            continue;
        }
        // A node that continues its input's chain is fused from there.
        if let [input] = node.inputs.as_slice()
            && step(*input).is_some()
            && links(*input) == Some(head)
        {
            continue;
        }
        let mut members = vec![head];
        while let Some(next) = links(*members.last().expect("not empty")) {
            members.push(next);
        }
        if members.len() >= 2 {
            let steps: Vec<ChainStep> = members.iter().map(|&m| step(m).expect("fusable")).collect();
            chains.push((head, steps, members));
        }
    }
    chains
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuses_linear_runs_of_one_to_one_operators() {
        let topology = Topology::from_json(
            r#"[{"name": "in", "source": ["in"]},
                {"name": "a", "filter": "p"}, {"name": "b", "map-values": "m"},
                {"name": "c", "flat-map": "f"},
                {"name": "d", "filter-not": "p"}, {"name": "e", "map-values": "m"},
                {"name": "s", "split": [{"branch": "x", "predicate": "p"}, {"branch": "y"}]},
                {"name": "g", "from": "x", "map-values": "m"}, {"name": "out", "to": "out"},
                {"name": "h", "from": "y", "map-values": "m"}, {"name": "i", "filter": "p"},
                {"name": "j", "from": "i", "to": "out"}, {"name": "k", "from": "i", "map-values": "m"}]"#,
        )
        .unwrap();
        let name = |i: usize| topology.nodes[i].name.clone();
        let got: Vec<(String, Vec<String>, Vec<bool>)> = chains(&topology, |_| 0)
            .into_iter()
            .map(|(head, steps, nodes)| {
                (name(head), nodes.into_iter().map(name).collect(), steps.iter().map(|s| s.negate).collect())
            })
            .collect();
        // a+b fuse; c (flat-map) does not; d+e fuse; g is alone; h+i fuse but
        // not k, because i has two readers.
        let expected = [
            ("a".to_owned(), vec!["a".to_owned(), "b".to_owned()], vec![false, false]),
            ("d".to_owned(), vec!["d".to_owned(), "e".to_owned()], vec![true, false]),
            ("h".to_owned(), vec!["h".to_owned(), "i".to_owned()], vec![false, false]),
        ];
        assert_eq!(got, expected);
    }
}
