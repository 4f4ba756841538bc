//! The foreign-key table-table join (Kafka Streams' `KTable#join(other,
//! foreignKeyExtractor, joiner)` and `leftJoin`, KIP-213), in three
//! operators that mirror Kafka's processors, linked by two internal topics
//! (see `topology/foreign_key.rs`):
//!
//! - [`Subscribe`] (Kafka's `SubscriptionSendProcessorSupplier`), in the
//!   left table's tasks: on each left update it sends subscription
//!   instructions keyed by the foreign key: unsubscribe from the old foreign
//!   key if it changed, subscribe to the new one. Each carries a hash of the
//!   left row's new value and the left task's partition.
//! - [`Respond`] (`SubscriptionReceiveProcessorSupplier`,
//!   `SubscriptionJoinProcessorSupplier` and
//!   `ForeignTableJoinProcessorSupplier`), in the right table's tasks: keeps
//!   the subscriptions keyed by foreign key then left key, answers each
//!   instruction with the right row's value, and on each right update
//!   answers every left key subscribed to it (in key order). Answers go back
//!   keyed by left key to the partition the subscription came from.
//! - [`Resolve`] (`ResponseJoinProcessorSupplier`), in the left table's
//!   tasks: joins an answer with the left row's current value, or drops it
//!   if the row's value no longer has the hash the answer carries (a later
//!   update is on its way).
//!
//! The instructions and timestamps are Kafka's: a subscription carries the
//! left update's timestamp; an answer to it the larger of that and the right
//! row's, an answer to a right update that update's. One difference: in an
//! inner join, Kafka skips a left update whose old or new foreign key is
//! null, which leaves a result standing after the row's foreign key went
//! away (and never joins a row whose foreign key appears later); here such
//! a row unsubscribes (its result becomes a tombstone) or subscribes as any
//! other row does.

use bytes::{BufMut, Bytes, BytesMut};
use sha2::{Digest, Sha256};

use crate::plugin::{FunctionKind, JOIN_RIGHT_HEADER, Outcome};
use crate::record::{Header, Record};
use crate::store::prefix_end;

use super::context::{Cx, failure};
use super::join::join;
use super::operator::{Batch, Emit, Operator};
use super::{PARTITION_HEADER, ProcessError};

/// What a subscription asks of the right side (Kafka's
/// `SubscriptionWrapper.Instruction`, with its byte values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Instruction {
    /// Unsubscribe; no answer (the new foreign key's answer follows).
    DeleteKeyNoPropagate = 0,
    /// Unsubscribe and answer with no right value.
    DeleteKeyAndPropagate = 1,
    /// Subscribe and answer with the right value, or with none.
    PropagateNullIfNoFkValAvailable = 2,
    /// Subscribe and answer only if there is a right value.
    PropagateOnlyIfFkValAvailable = 3,
}

impl Instruction {
    fn from_byte(b: u8) -> Option<Instruction> {
        Some(match b {
            0 => Instruction::DeleteKeyNoPropagate,
            1 => Instruction::DeleteKeyAndPropagate,
            2 => Instruction::PropagateNullIfNoFkValAvailable,
            3 => Instruction::PropagateOnlyIfFkValAvailable,
            _ => return None,
        })
    }
}

/// A hash of a left row's value (the first 16 bytes of its SHA-256), or
/// none for no value.
type ValueHash = Option<[u8; 16]>;

fn hash(value: Option<&[u8]>) -> ValueHash {
    value.map(|v| Sha256::digest(v)[..16].try_into().expect("16 bytes"))
}

fn put_hash(b: &mut BytesMut, h: &ValueHash) {
    match h {
        Some(h) => {
            b.put_u8(1);
            b.put_slice(h);
        }
        None => b.put_u8(0),
    }
}

/// Reads a hash written by `put_hash` from the front of `b`; returns it and
/// the bytes after it.
fn take_hash(b: &[u8]) -> Option<(ValueHash, &[u8])> {
    match b.split_first()? {
        (0, rest) => Some((None, rest)),
        (1, rest) if rest.len() >= 16 => Some((Some(rest[..16].try_into().ok()?), &rest[16..])),
        _ => None,
    }
}

/// A subscription as it travels on the registration topic (keyed by the
/// foreign key; none in a left join's row without one): the instruction,
/// the left task's partition, the hash of the left row's new value, then
/// the left key.
struct Subscription {
    instruction: Instruction,
    partition: u32,
    hash: ValueHash,
    primary_key: Bytes,
}

impl Subscription {
    fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(22 + self.primary_key.len());
        b.put_u8(self.instruction as u8);
        b.put_u32(self.partition);
        put_hash(&mut b, &self.hash);
        b.put_slice(&self.primary_key);
        b.freeze()
    }

    fn decode(b: &Bytes) -> Option<Subscription> {
        let instruction = Instruction::from_byte(*b.first()?)?;
        let partition = u32::from_be_bytes(b.get(1..5)?.try_into().ok()?);
        let (hash, rest) = take_hash(b.get(5..)?)?;
        let primary_key = b.slice(b.len() - rest.len()..);
        Some(Subscription { instruction, partition, hash, primary_key })
    }
}

/// An answer on the response topic (keyed by the left key): the hash the
/// subscription carried, the foreign key it answers for (a byte 1, its
/// length as 4 bytes big-endian and the key, or a byte 0 for none), then the
/// right value if there is one (a byte 1 and the value, or a byte 0).
fn encode_response(hash: &ValueHash, foreign_key: Option<&[u8]>, right: Option<&[u8]>) -> Bytes {
    let mut b = BytesMut::with_capacity(24 + foreign_key.map_or(0, <[u8]>::len) + right.map_or(0, <[u8]>::len));
    put_hash(&mut b, hash);
    match foreign_key {
        Some(fk) => {
            b.put_u8(1);
            b.put_u32(fk.len() as u32);
            b.put_slice(fk);
        }
        None => b.put_u8(0),
    }
    match right {
        Some(v) => {
            b.put_u8(1);
            b.put_slice(v);
        }
        None => b.put_u8(0),
    }
    b.freeze()
}

/// An answer read back: hash, foreign key, right value.
type Response = (ValueHash, Option<Bytes>, Option<Bytes>);

fn decode_response(b: &Bytes) -> Option<Response> {
    let (hash, rest) = take_hash(b)?;
    let at = |rest: &[u8]| b.len() - rest.len();
    let (foreign_key, rest) = match rest.split_first()? {
        (0, rest) => (None, rest),
        (1, rest) => {
            let (len, rest) = rest.split_first_chunk::<4>()?;
            let len = u32::from_be_bytes(*len) as usize;
            let start = at(rest);
            (Some(b.slice(start..start + len)), rest.get(len..)?)
        }
        _ => return None,
    };
    let right = match rest.split_first()? {
        (0, _) => None,
        (1, _) => Some(b.slice(at(rest) + 1..)),
        _ => return None,
    };
    Some((hash, foreign_key, right))
}

/// A subscription store key: the foreign key's length (4 bytes, big-endian),
/// the foreign key, then the left key (Kafka's `CombinedKeySchema`), so one
/// foreign key's subscribers are a prefix range in left-key order.
fn combined_key(foreign_key: &[u8], primary_key: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + foreign_key.len() + primary_key.len());
    b.put_u32(foreign_key.len() as u32);
    b.put_slice(foreign_key);
    b.put_slice(primary_key);
    b.freeze()
}

/// The left side: turns each left update into subscription instructions.
pub(crate) struct Subscribe {
    /// The select-key function giving a row's foreign key.
    pub extractor: u32,
    /// True for a left join.
    pub left_join: bool,
}

/// A left key's foreign key as the [`Subscribe`] store keeps it (a row
/// without a value has no entry): a byte 1 and the key, or a byte 0 for a
/// row whose foreign key is null.
fn encode_foreign_key(fk: Option<&[u8]>) -> Bytes {
    let mut b = BytesMut::with_capacity(1 + fk.map_or(0, <[u8]>::len));
    match fk {
        Some(fk) => {
            b.put_u8(1);
            b.put_slice(fk);
        }
        None => b.put_u8(0),
    }
    b.freeze()
}

fn decode_foreign_key(b: &Bytes) -> Option<Bytes> {
    (b.first() == Some(&1)).then(|| b.slice(1..))
}

impl Operator for Subscribe {
    fn process(&mut self, cx: &mut Cx<'_>, _from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        let node = cx.node;
        // One extractor call for the updates with a value.
        let live: Vec<Record> =
            batch.records.iter().filter(|r| r.key.is_some() && r.value.is_some()).cloned().collect();
        let mut keys =
            if live.is_empty() { Vec::new() } else { cx.call(self.extractor, FunctionKind::SelectKey, &live)? }
                .into_iter();
        let mut out = Batch::with_capacity(batch.len());
        let mut failures = Vec::new();
        for (r, origin) in batch.records.into_iter().zip(batch.origins) {
            let Some(key) = r.key.clone() else { continue };
            let new = match &r.value {
                None => None,
                Some(_) => match keys.next() {
                    Some(Outcome::Key(fk)) => Some(fk),
                    other => {
                        failures.push((origin, failure(other.unwrap_or(Outcome::Done), FunctionKind::SelectKey)));
                        continue;
                    }
                },
            };
            // The old row's foreign key: `None` for no old row.
            let old: Option<Option<Bytes>> = cx.store(node)?.get(&key)?.map(|b| decode_foreign_key(&b));
            let partition = cx.task;
            let sub = |instruction, fk: Option<Bytes>| {
                let subscription =
                    Subscription { instruction, partition, hash: hash(r.value.as_deref()), primary_key: key.clone() };
                Record { key: fk, value: Some(subscription.encode()), timestamp: r.timestamp, headers: Vec::new() }
            };
            let mut send = Vec::new();
            use Instruction::*;
            if self.left_join {
                match (&old, &new) {
                    (Some(old), new) => {
                        let new_fk = new.clone().flatten();
                        if let Some(old) = old
                            && new_fk.as_ref() != Some(old)
                        {
                            send.push(sub(DeleteKeyAndPropagate, Some(old.clone())));
                        }
                        send.push(sub(PropagateNullIfNoFkValAvailable, new_fk));
                    }
                    (None, Some(new)) => send.push(sub(PropagateNullIfNoFkValAvailable, new.clone())),
                    (None, None) => {}
                }
            } else {
                match (old.clone().flatten(), new.clone()) {
                    // A row with a foreign key changes it or loses it.
                    (Some(old), Some(Some(new))) => {
                        if new != old {
                            send.push(sub(DeleteKeyNoPropagate, Some(old)));
                        }
                        send.push(sub(PropagateNullIfNoFkValAvailable, Some(new)));
                    }
                    (Some(old), Some(None) | None) => send.push(sub(DeleteKeyAndPropagate, Some(old))),
                    // A row without a foreign key (or none before) gets one.
                    (None, Some(Some(new))) => send.push(sub(PropagateOnlyIfFkValAvailable, Some(new))),
                    (None, Some(None) | None) => {}
                }
            }
            out.records.extend(send.iter().cloned());
            out.origins.extend(send.iter().map(|_| origin));
            let state = new.map(|fk| encode_foreign_key(fk.as_deref()));
            cx.update(node, key, state, r.timestamp)?;
        }
        cx.reject_all(failures)?;
        Ok(Emit::All(out))
    }
}

/// The right side: keeps subscriptions and answers them and right updates.
pub(crate) struct Respond {
    /// The right table node.
    pub right: usize,
}

/// What an answer is about: the left key, the hash its subscription
/// carried, the foreign key it answers for, and the left task's partition.
struct Asked<'a> {
    primary_key: Bytes,
    hash: &'a ValueHash,
    foreign_key: Option<&'a [u8]>,
    partition: u32,
}

/// An answer with the right value `right`.
fn response(asked: Asked<'_>, right: Option<&[u8]>, timestamp: i64) -> Record {
    let Asked { primary_key, hash, foreign_key, partition } = asked;
    Record {
        key: Some(primary_key),
        value: Some(encode_response(hash, foreign_key, right)),
        timestamp,
        headers: vec![Header {
            name: PARTITION_HEADER.to_owned(),
            value: Some(Bytes::copy_from_slice(&partition.to_be_bytes())),
        }],
    }
}

impl Operator for Respond {
    fn process(&mut self, cx: &mut Cx<'_>, from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        let node = cx.node;
        let mut out = Batch::with_capacity(batch.len());
        if from == self.right {
            // A right update answers every left key subscribed to it.
            for (r, origin) in batch.records.into_iter().zip(batch.origins) {
                let Some(fk) = &r.key else { continue };
                let prefix = combined_key(fk, &[]);
                let end = prefix_end(&prefix);
                let subscribers = cx.store(node)?.range(Some(&prefix), end.as_deref(), usize::MAX)?;
                for (k, v) in subscribers {
                    let primary_key = Bytes::copy_from_slice(&k[prefix.len()..]);
                    let Some((partition, rest)) = v.split_first_chunk::<4>() else { continue };
                    let Some((hash, _)) = take_hash(rest) else { continue };
                    let partition = u32::from_be_bytes(*partition);
                    let asked = Asked { primary_key, hash: &hash, foreign_key: Some(fk), partition };
                    out.push(response(asked, r.value.as_deref(), r.timestamp), origin);
                }
            }
            return Ok(Emit::All(out));
        }
        for (r, origin) in batch.records.into_iter().zip(batch.origins) {
            let Some(sub) = r.value.as_ref().and_then(Subscription::decode) else {
                cx.reject_all(vec![(origin, "a foreign-key subscription that cannot be read".to_owned())])?;
                continue;
            };
            use Instruction::*;
            let right = match &r.key {
                None if sub.instruction != PropagateNullIfNoFkValAvailable => continue,
                None => None,
                Some(fk) => {
                    let key = combined_key(fk, &sub.primary_key);
                    let entry = match sub.instruction {
                        DeleteKeyAndPropagate | DeleteKeyNoPropagate => None,
                        _ => {
                            let mut b = BytesMut::with_capacity(21);
                            b.put_u32(sub.partition);
                            put_hash(&mut b, &sub.hash);
                            Some(b.freeze())
                        }
                    };
                    cx.update(node, key, entry, r.timestamp)?;
                    cx.store(self.right)?.get_timestamped(fk)?
                }
            };
            let timestamp = right.as_ref().map_or(r.timestamp, |(_, ts)| r.timestamp.max(*ts));
            let answer = match sub.instruction {
                DeleteKeyAndPropagate => Some(None),
                PropagateNullIfNoFkValAvailable => Some(right.as_ref().map(|(v, _)| v.as_ref())),
                PropagateOnlyIfFkValAvailable => right.as_ref().map(|(v, _)| Some(v.as_ref())),
                DeleteKeyNoPropagate => None,
            };
            if let Some(value) = answer {
                let asked = Asked {
                    primary_key: sub.primary_key.clone(),
                    hash: &sub.hash,
                    foreign_key: r.key.as_deref(),
                    partition: sub.partition,
                };
                out.push(response(asked, value, timestamp), origin);
            }
        }
        Ok(Emit::All(out))
    }
}

/// The result side: joins answers with the left rows' current values.
///
/// When a left row moves from one foreign key to another, the old key's
/// answer (a retraction: in a left join it joins the row with no right
/// value) and the new key's answer come from different right tasks when the
/// keys live in different partitions, in either order. Kafka Streams takes
/// whichever comes last; here the node's store remembers, per left key, the
/// value whose current foreign key has answered, and a retraction that comes
/// after that answer is dropped. In the order a single partition gives (the
/// retraction first), the output is Kafka's.
pub(crate) struct Resolve {
    /// The left table node, whose store is read.
    pub left: usize,
    /// The subscribe node, whose store has each left row's foreign key.
    pub subscribe: usize,
    pub joiner: u32,
    /// True for a left join.
    pub left_join: bool,
}

impl Operator for Resolve {
    fn process(&mut self, cx: &mut Cx<'_>, from: usize, batch: Batch) -> Result<Emit, ProcessError> {
        if from == self.left {
            return Ok(Emit::Nothing);
        }
        let mut calls = Batch::with_capacity(batch.len());
        // Per answer, in order: a joined record to come from the joiner, or
        // a tombstone now.
        let mut plan = Vec::with_capacity(batch.len());
        let mut failures = Vec::new();
        let node = cx.node;
        for (r, origin) in batch.records.into_iter().zip(batch.origins) {
            let Some(key) = r.key.clone() else { continue };
            let Some((expected, foreign_key, right)) = r.value.as_ref().and_then(decode_response) else {
                failures.push((origin, "a foreign-key join answer that cannot be read".to_owned()));
                continue;
            };
            let current = cx.store(self.left)?.get(&key)?;
            if hash(current.as_deref()) != expected {
                // Stale: the row has changed since it subscribed.
                continue;
            }
            if let Some(h) = expected {
                // The row as it is now: which foreign key answers for it.
                let now = cx.store(self.subscribe)?.get(&key)?.map(|b| decode_foreign_key(&b));
                let answered = cx.store(node)?.get(&key)?;
                if now.is_some_and(|fk| fk == foreign_key) {
                    if answered.as_deref() != Some(&h[..]) {
                        cx.update(node, key.clone(), Some(Bytes::copy_from_slice(&h)), r.timestamp)?;
                    }
                } else if answered.as_deref() == Some(&h[..]) {
                    // A retraction from the row's old foreign key, after its
                    // new one answered: the new answer stands.
                    continue;
                }
            } else if cx.store(node)?.get(&key)?.is_some() {
                cx.update(node, key.clone(), None, r.timestamp)?;
            }
            if right.is_none() && (!self.left_join || current.is_none()) {
                let tombstone = Record { key: Some(key), value: None, timestamp: r.timestamp, headers: Vec::new() };
                plan.push(Ok((tombstone, origin)));
                continue;
            }
            let mut call = Record { key: Some(key), value: current, timestamp: r.timestamp, headers: Vec::new() };
            if let Some(right) = right {
                call.headers.push(Header { name: JOIN_RIGHT_HEADER.to_owned(), value: Some(right) });
            }
            calls.push(call, origin);
            plan.push(Err(origin));
        }
        cx.reject_all(failures)?;
        let joined = join(cx, self.joiner, calls)?;
        // A joiner failure leaves its answer out; each answer is an input
        // record of its own, so its origin tells the results apart.
        let mut joined = joined.records.into_iter().zip(joined.origins).peekable();
        let mut out = Batch::with_capacity(plan.len());
        for step in plan {
            match step {
                Ok((record, origin)) => out.push(record, origin),
                Err(origin) => {
                    if let Some((record, o)) = joined.next_if(|(_, o)| *o == origin) {
                        out.push(record, o);
                    }
                }
            }
        }
        Ok(Emit::All(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_formats_round_trip() {
        let sub = Subscription {
            instruction: Instruction::PropagateOnlyIfFkValAvailable,
            partition: 7,
            hash: hash(Some(b"value")),
            primary_key: Bytes::from_static(b"pk"),
        };
        let back = Subscription::decode(&sub.encode()).unwrap();
        assert_eq!(
            (back.instruction, back.partition, back.hash, back.primary_key),
            (sub.instruction, 7, sub.hash, sub.primary_key)
        );
        let none = Subscription { hash: None, primary_key: Bytes::new(), ..sub };
        assert_eq!(Subscription::decode(&none.encode()).unwrap().hash, None);
        for right in [None, Some(&b""[..]), Some(&b"right"[..])] {
            for fk in [None, Some(&b""[..]), Some(&b"fk"[..])] {
                let (h, f, r) = decode_response(&encode_response(&hash(Some(b"v")), fk, right)).unwrap();
                assert_eq!((h, f.as_deref(), r.as_deref()), (hash(Some(b"v")), fk, right));
            }
        }
        assert_eq!(decode_foreign_key(&encode_foreign_key(Some(b"fk"))).as_deref(), Some(&b"fk"[..]));
        assert_eq!(decode_foreign_key(&encode_foreign_key(None)), None);
    }

    #[test]
    fn subscribers_of_a_foreign_key_are_a_prefix_range() {
        let prefix = combined_key(b"ab", b"");
        let end = prefix_end(&prefix).unwrap();
        let inside = combined_key(b"ab", b"\xff\xff");
        let other = combined_key(b"abc", b"");
        assert!(prefix[..] <= inside[..] && inside[..] < end[..]);
        assert!(!(prefix[..] <= other[..] && other[..] < end[..]), "a longer foreign key is another prefix");
        assert_eq!(prefix_end(b"\x01\xff"), Some(vec![2]));
        assert_eq!(prefix_end(b"\xff"), None);
    }
}
