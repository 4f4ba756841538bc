//! Joins. A stream-table join (Kafka Streams' `KStreamKTableJoin`) looks
//! each stream record's key up in the table's store as it is at that moment
//! and calls the plugin joiner with both values; the output keeps the stream
//! record's key and timestamp. Updates of the table produce nothing. Stream
//! records without a value are dropped; without a key, an inner join drops
//! them and a left join joins them with no table value (as Kafka Streams
//! does since 3.7).

use crate::plugin::{FunctionKind, JOIN_RIGHT_HEADER, Outcome};
use crate::record::{Header, Record};

use super::ProcessError;
use super::context::{Cx, failure};
use super::operator::{Batch, Emit, Operator};

/// Joins a stream with a table.
pub(crate) struct StreamTableJoin {
    /// The table node, whose store is read.
    pub table: usize,
    pub joiner: u32,
    /// A record with no table value joins with none instead of being dropped.
    pub left: bool,
}

impl Operator for StreamTableJoin {
    fn process(&mut self, cx: &mut Cx<'_>, from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        if from == self.table {
            return Ok(Emit::Nothing);
        }
        let mut calls = Batch::with_capacity(batch.len());
        for (mut r, origin) in batch.records.into_iter().zip(batch.origins) {
            if r.value.is_none() {
                continue;
            }
            let right = match &r.key {
                Some(key) => cx.store(self.table)?.get(key)?,
                None if self.left => None,
                None => continue,
            };
            if right.is_none() && !self.left {
                continue;
            }
            if let Some(right) = right {
                r.headers.push(Header { name: JOIN_RIGHT_HEADER.to_owned(), value: Some(right) });
            }
            calls.push(r, origin);
        }
        if calls.is_empty() {
            return Ok(Emit::Nothing);
        }
        let outcomes = cx.call(self.joiner, FunctionKind::Joiner, &calls.records)?;
        let mut joined = Batch::with_capacity(calls.len());
        let mut failures = Vec::new();
        for ((r, origin), outcome) in calls.records.into_iter().zip(calls.origins).zip(outcomes) {
            match outcome {
                Outcome::Value(value) => {
                    let headers = r.headers.into_iter().filter(|h| h.name != JOIN_RIGHT_HEADER).collect();
                    joined.push(Record { key: r.key, value, timestamp: r.timestamp, headers }, origin);
                }
                other => failures.push((origin, failure(other, FunctionKind::Joiner))),
            }
        }
        cx.reject_all(failures)?;
        Ok(Emit::All(joined))
    }
}
