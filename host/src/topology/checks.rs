//! Checks of a whole translated topology: each topic is read by one node,
//! and each store belongs to one node (processors may share theirs and read
//! global tables').

use std::collections::HashMap;

use super::{Node, Op, TopologyError};

/// A topic is read by one node, as in Kafka Streams: its partitions belong
/// to the tasks of one sub-topology.
pub(super) fn check_topics_read_once(nodes: &[Node]) -> Result<(), TopologyError> {
    let mut readers: HashMap<&str, &str> = HashMap::new();
    for n in nodes {
        let topics: Vec<&str> = match &n.op {
            Op::Source { topics, .. } => topics.iter().map(String::as_str).collect(),
            Op::GlobalTable { topic, .. } => vec![topic.as_str()],
            _ => continue,
        };
        for topic in topics {
            if let Some(other) = readers.insert(topic, &n.name) {
                return Err(TopologyError::BadNode {
                    node: n.name.clone(),
                    problem: format!(
                        "topic '{topic}' is read by node '{other}' too: read each topic once and take several branches from that node"
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Each store belongs to one node, except that processors may share their
/// stores and use global tables' stores.
pub(super) fn check_store_names(nodes: &[Node]) -> Result<(), TopologyError> {
    let mut owners: HashMap<&str, &Node> = HashMap::new();
    let bad = |node: &Node, problem: String| TopologyError::BadNode { node: node.name.clone(), problem };
    for n in nodes {
        if matches!(n.op, Op::Process { .. }) {
            continue;
        }
        for store in n.op.stores() {
            if let Some(other) = owners.insert(&store.name, n) {
                return Err(bad(
                    n,
                    format!(
                        "store '{}' is used by node '{}' too: give each store its own name",
                        store.name, other.name
                    ),
                ));
            }
        }
    }
    for n in nodes {
        let Op::Process { stores, .. } = &n.op else { continue };
        for store in stores {
            crate::log::check_topic_name(&store.name).map_err(|_| {
                bad(n, format!("store name '{}': use only ASCII letters, digits, '.', '_' and '-'", store.name))
            })?;
            if let Some(owner) = owners.get(store.name.as_str())
                && !matches!(owner.op, Op::GlobalTable { .. })
            {
                return Err(bad(
                    n,
                    format!(
                        "store '{}' belongs to node '{}' ({}); a processor uses its own stores and global tables' stores",
                        store.name,
                        owner.name,
                        owner.op.keyword()
                    ),
                ));
            }
        }
    }
    for (name, n) in owners {
        crate::log::check_topic_name(name)
            .map_err(|_| bad(n, format!("store name '{name}': use only ASCII letters, digits, '.', '_' and '-'")))?;
    }
    Ok(())
}
