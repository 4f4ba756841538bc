//! Sub-topologies: the parts of a topology connected by node edges and
//! shared stores, which only internal (repartition) topics link. As in Kafka
//! Streams, each is the unit that tasks are made of.

use super::{Op, Topology};

/// One sub-topology: nodes connected to each other, reading user topics or
/// repartition topics the topology writes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubTopology {
    /// Its number: sub-topologies are numbered in the order of their first
    /// node.
    pub id: usize,
    /// Its nodes, in topology order.
    pub nodes: Vec<usize>,
}

impl Topology {
    /// The sub-topologies, numbered from 0. Global tables belong to none:
    /// every instance keeps a full copy of them.
    pub fn subtopologies(&self) -> Vec<SubTopology> {
        let mut parent: Vec<usize> = (0..self.nodes.len()).collect();
        fn root(parent: &mut [usize], mut i: usize) -> usize {
            while parent[i] != i {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            i
        }
        fn union(parent: &mut [usize], a: usize, b: usize) {
            let (ra, rb) = (root(parent, a), root(parent, b));
            parent[ra.max(rb)] = ra.min(rb);
        }
        for (i, n) in self.nodes.iter().enumerate() {
            for &input in &n.inputs {
                union(&mut parent, i, input);
            }
        }
        // Processors that share a store run in the same task (global tables'
        // stores are not task stores: every task reads them).
        let stores = self.stores();
        for (i, n) in self.nodes.iter().enumerate() {
            let Op::Process { stores: used, .. } = &n.op else { continue };
            for s in used {
                if let Some((owner, _)) = stores.iter().find(|(_, o)| o.name == s.name) {
                    union(&mut parent, i, *owner);
                }
            }
        }
        let mut subtopologies: Vec<SubTopology> = Vec::new();
        let mut by_root: Vec<Option<usize>> = vec![None; self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            if matches!(n.op, Op::GlobalTable { .. }) {
                continue;
            }
            let r = root(&mut parent, i);
            let id = *by_root[r].get_or_insert_with(|| {
                subtopologies.push(SubTopology { id: subtopologies.len(), nodes: Vec::new() });
                subtopologies.len() - 1
            });
            subtopologies[id].nodes.push(i);
        }
        subtopologies
    }
}
