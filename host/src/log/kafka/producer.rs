//! Writing to Kafka: an idempotent librdkafka producer, transactional for
//! exactly-once.
//!
//! At-least-once, `commit` waits until the broker has every record sent
//! (`acks=all`), then commits the group's offsets: a crash in between
//! repeats records, never loses them. Exactly-once, the records and the
//! offsets commit in one transaction (`sendOffsetsToTransaction`), opened
//! at the first record after a commit. A producer whose transactional id a
//! newer one took over (a restarted instance) is fenced: its commit fails,
//! and nothing it wrote becomes visible to `read_committed` readers.
//!
//! The transactional calls that wait on coordinators run on a thread of
//! their own, bounded ([`KafkaProducer::bounded`]): librdkafka can lose track of a
//! coordinator request while brokers restart, and the call then never
//! returns. A producer caught so is *wedged*: the commit fails as fenced,
//! and the worker replaces the producer (the new one, with the same
//! transactional id, fences the old and aborts its transaction).

use std::ffi::{CString, c_void};
use std::ptr::{self, NonNull};
use std::sync::{Arc, Mutex};

use rdkafka::ClientContext;
use rdkafka::bindings as rd;
use rdkafka::consumer::Consumer as _;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryResult, Producer as _, ProducerContext, PurgeConfig, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::time::Duration;

use super::group::KafkaMember;
use super::{ClientKind, KafkaOptions, REQUEST_TIMEOUT, kafka, retrying};
use crate::log::{LogError, Member, Producer, TopicPartition};
use crate::record::Record;

/// How long a [`bounded`](KafkaProducer::bounded) transactional call may
/// take before its producer is taken for wedged: its retries stop after
/// [`REQUEST_TIMEOUT`], and the last may take as long again.
const WEDGED_AFTER: Duration = Duration::from_secs(2 * REQUEST_TIMEOUT.as_secs());

/// Waits up to `timeout` until every record `producer` was given is
/// acknowledged or has failed: librdkafka's own flush, which sends what
/// lingers at once and waits on its count of records in flight (the
/// producer's thread serves the delivery reports). rust-rdkafka's `flush`
/// polls in rounds of 100 ms that run to their end whatever comes: every
/// commit with a record in flight took 100 ms or more, and exactly-once
/// outputs waited that long to be visible.
fn flush_all(producer: &ThreadedProducer<Deliveries>, timeout: Duration) -> Result<(), KafkaError> {
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: the pointer is `producer`'s live client, and rd_kafka_flush
    // may be called from any thread.
    let code = unsafe { rdkafka::bindings::rd_kafka_flush(producer.client().native_ptr(), ms) };
    match RDKafkaErrorCode::from(code) {
        RDKafkaErrorCode::NoError => Ok(()),
        e => Err(KafkaError::Flush(e)),
    }
}

/// Keeps the first failed delivery, for `commit` to report.
#[derive(Default)]
struct Deliveries {
    failed: Mutex<Option<KafkaError>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| e.clone());
        }
    }
}

/// librdkafka's handles of the topics a producer wrote to, kept so that a
/// record is sent by handle: rust-rdkafka's `send` names the topic, which
/// costs a C string and a lookup of the topic per record.
#[derive(Default)]
struct TopicHandles {
    handles: Vec<(Arc<str>, NonNull<rd::rd_kafka_topic_t>)>,
    /// The index of the handle found last (records come in runs per topic).
    last: usize,
}

// SAFETY: librdkafka's topic handles may be used from any thread.
unsafe impl Send for TopicHandles {}

impl TopicHandles {
    /// The handle of `topic` in the client `rk`, opened on first use.
    fn of(&mut self, rk: *mut rd::rd_kafka_t, topic: &Arc<str>) -> Result<*mut rd::rd_kafka_topic_t, LogError> {
        if let Some((name, handle)) = self.handles.get(self.last)
            && (Arc::ptr_eq(name, topic) || **name == **topic)
        {
            return Ok(handle.as_ptr());
        }
        if let Some(i) = self.handles.iter().position(|(name, _)| **name == **topic) {
            self.last = i;
            return Ok(self.handles[i].1.as_ptr());
        }
        let not_a_name = |source| LogError::Kafka { op: format!("sending a record to topic {topic:?}"), source };
        let name = CString::new(topic.as_bytes()).map_err(|e| not_a_name(e.into()))?;
        // SAFETY: `rk` is a live client; the handle holds its own
        // reference to the topic, given back in `clear` or on drop.
        let handle = unsafe { rd::rd_kafka_topic_new(rk, name.as_ptr(), ptr::null_mut()) };
        let Some(handle) = NonNull::new(handle) else {
            // SAFETY: reads this thread's last librdkafka error.
            let code = unsafe { rd::rd_kafka_last_error() };
            return Err(not_a_name(KafkaError::MessageProduction(code.into())));
        };
        self.handles.push((topic.clone(), handle));
        self.last = self.handles.len() - 1;
        Ok(handle.as_ptr())
    }

    /// Gives every handle back (before their client goes).
    fn clear(&mut self) {
        for (_, handle) in self.handles.drain(..) {
            // SAFETY: each handle was opened once, in `of`, and its
            // client is still alive.
            unsafe { rd::rd_kafka_topic_destroy(handle.as_ptr()) }
        }
        self.last = 0;
    }
}

impl Drop for TopicHandles {
    fn drop(&mut self) {
        self.clear();
    }
}

/// `record`'s headers as a librdkafka header list, or null if it has none
/// (an empty list is still an allocation per record in librdkafka).
fn native_headers(record: &Record) -> *mut rd::rd_kafka_headers_t {
    if record.headers.is_empty() {
        return ptr::null_mut();
    }
    // SAFETY: a new list, filled with copies of names and values whose
    // lengths are given.
    unsafe {
        let list = rd::rd_kafka_headers_new(record.headers.len());
        for h in &record.headers {
            let (value, size) = match &h.value {
                Some(v) => (v.as_ptr().cast::<c_void>(), v.len() as isize),
                None => (ptr::null(), 0),
            };
            rd::rd_kafka_header_add(list, h.name.as_ptr().cast(), h.name.len() as isize, value, size);
        }
        list
    }
}

/// A `rd_kafka_vu_t` argument of `rd_kafka_produceva`.
fn argument(vtype: rd::rd_kafka_vtype_t, u: rd::rd_kafka_vu_s__bindgen_ty_1) -> rd::rd_kafka_vu_t {
    rd::rd_kafka_vu_t { vtype, u }
}

/// Bytes as a `rd_kafka_vu_t` memory argument (null for `None`).
fn memory(bytes: Option<&[u8]>) -> rd::rd_kafka_vu_s__bindgen_ty_1 {
    let (ptr, size) = bytes.map_or((ptr::null_mut(), 0), |b| (b.as_ptr() as *mut c_void, b.len()));
    rd::rd_kafka_vu_s__bindgen_ty_1 { mem: rd::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_1 { ptr, size } }
}

/// A producer of one worker thread.
pub(super) struct KafkaProducer {
    /// Given back before the producer they belong to.
    topics: TopicHandles,
    /// Polls for delivery reports on a thread of its own (which aborting a
    /// transaction needs). Shared with the threads of [`KafkaProducer::bounded`] calls.
    producer: Arc<ThreadedProducer<Deliveries>>,
    context: Arc<Deliveries>,
    options: KafkaOptions,
    /// Its transactional id, if it is transactional.
    transactional_id: Option<String>,
    /// A transaction is open.
    in_transaction: bool,
    /// A transactional call never returned: the producer takes no more
    /// calls, only [`Producer::reset`].
    wedged: bool,
    /// Records sent since the last commit.
    pending: usize,
    /// Whether it warned of a timestamp Kafka cannot carry.
    warned_timestamp: bool,
}

/// Wraps a commit's error. Going back to the last commit and redoing the
/// work is always safe, so every error is [`LogError::Fenced`] (the group or
/// a newer producer refused it, the transaction must abort, a coordinator
/// timed out while a broker restarts) except those that redoing cannot cure
/// ([`is_permanent`]), which are [`LogError::Kafka`].
fn commit_error(op: impl Into<String>) -> impl FnOnce(KafkaError) -> LogError {
    let op = op.into();
    move |source| {
        if is_permanent(&source) { LogError::Kafka { op, source } } else { LogError::Fenced { op, source } }
    }
}

/// True for errors that the same work would meet again: access refused,
/// a broker too old, a record the cluster cannot take.
fn is_permanent(e: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    let code = match e {
        KafkaError::Transaction(e) => Some(e.code()),
        e => e.rdkafka_error_code(),
    };
    matches!(
        code,
        Some(
            TopicAuthorizationFailed
                | GroupAuthorizationFailed
                | ClusterAuthorizationFailed
                | TransactionalIdAuthorizationFailed
                | UnsupportedVersion
                | UnsupportedForMessageFormat
                | MessageSizeTooLarge
                | InvalidMessageSize
                | MessageBatchTooLarge
                | InvalidRecord
                | PolicyViolation
                | InvalidConfig
                | InvalidArgument
        )
    )
}

/// The Kafka member `member` is, or an error saying it is not one.
fn kafka_member(member: &dyn Member) -> Result<&KafkaMember, LogError> {
    member.as_any().downcast_ref::<KafkaMember>().ok_or_else(|| LogError::Kafka {
        op: format!("committing group {}'s offsets: the member is not one of a Kafka group", member.group()),
        source: KafkaError::AdminOp(RDKafkaErrorCode::InvalidGroupId),
    })
}

impl KafkaProducer {
    pub(super) fn new(options: &KafkaOptions, transactional_id: Option<String>) -> Result<Self, LogError> {
        let producer = Self::client(options, transactional_id.as_deref())?;
        let context = producer.context().clone();
        Ok(KafkaProducer {
            topics: TopicHandles::default(),
            producer,
            context,
            options: options.clone(),
            transactional_id,
            in_transaction: false,
            wedged: false,
            pending: 0,
            warned_timestamp: false,
        })
    }

    /// A librdkafka producer, its transactions initialized (fencing older
    /// producers with the same transactional id).
    fn client(
        options: &KafkaOptions,
        transactional_id: Option<&str>,
    ) -> Result<Arc<ThreadedProducer<Deliveries>>, LogError> {
        let config = options.client_config(ClientKind::Producer, |config| {
            config
                .set("enable.idempotence", "true")
                .set("acks", "all")
                .set("linger.ms", "5")
                // Records waiting to be sent: enough for a commit interval's
                // worth at full speed, not librdkafka's 100,000.
                .set("queue.buffering.max.messages", "50000")
                // Only failures matter to the delivery callback (a flush waits
                // for the acknowledgements without it): no report per record.
                .set("delivery.report.only.error", "true")
                // Partitions are chosen by Eddy (Kafka's murmur2, as Java's
                // clients do); this only matters for records sent without one.
                .set("partitioner", "murmur2_random");
            if let Some(id) = transactional_id {
                // A zombie's open transaction is aborted after this long.
                config.set("transactional.id", id).set("transaction.timeout.ms", "10000");
            }
        });
        let producer: ThreadedProducer<Deliveries> =
            config.create_with_context(Deliveries::default()).map_err(kafka("creating a producer"))?;
        if let Some(id) = transactional_id {
            producer
                .init_transactions(REQUEST_TIMEOUT)
                .map_err(kafka(format!("starting transactional producer {id}")))?;
        }
        Ok(Arc::new(producer))
    }

    /// Waits until every record sent is acknowledged or has failed (a
    /// failure is reported by [`Self::take_failed`]). While a broker is
    /// away this takes as long as the cluster needs to elect new leaders,
    /// bounded by librdkafka's `message.timeout.ms`, after which the records
    /// still queued fail.
    fn flush(&mut self) -> Result<(), LogError> {
        loop {
            match flush_all(&self.producer, REQUEST_TIMEOUT) {
                Ok(()) => return Ok(()),
                Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)) => {
                    tracing::warn!(
                        "{} record(s) not yet acknowledged by the cluster after {REQUEST_TIMEOUT:?}; still waiting",
                        self.producer.in_flight_count()
                    );
                }
                Err(e) => return Err(LogError::Kafka { op: "flushing records".to_owned(), source: e }),
            }
        }
    }

    fn take_failed(&self) -> Option<KafkaError> {
        self.context.failed.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn commit_transaction(&mut self, member: Option<&dyn Member>, list: TopicPartitionList) -> Result<(), LogError> {
        if !self.in_transaction {
            self.producer.begin_transaction().map_err(kafka("beginning a transaction"))?;
            self.in_transaction = true;
        }
        let started = std::time::Instant::now();
        if let Some(member) = member.filter(|_| list.count() > 0) {
            let group = member.group();
            // The member's generation goes with the offsets: a member the
            // group has dropped cannot commit.
            let metadata = kafka_member(member)?.consumer().group_metadata().ok_or_else(|| LogError::Kafka {
                op: format!("reading group {group}'s metadata"),
                source: KafkaError::AdminOp(RDKafkaErrorCode::InvalidGroupId),
            })?;
            let op = format!("sending group {group}'s offsets to the transaction");
            let producer = self.producer.clone();
            self.bounded(&op, move || {
                retrying(|| producer.send_offsets_to_transaction(&list, &metadata, REQUEST_TIMEOUT))
            })?
            .map_err(commit_error(op))?;
        }
        let producer = self.producer.clone();
        let offsets_sent = started.elapsed();
        // Flushed first with librdkafka's flush: the commit's own would wait
        // 100 ms or more (see `flush_all`), and then finds nothing to wait for.
        self.bounded("committing the transaction", move || {
            flush_all(&producer, REQUEST_TIMEOUT)?;
            retrying(|| producer.commit_transaction(REQUEST_TIMEOUT))
        })?
        .map_err(commit_error("committing the transaction"))?;
        self.in_transaction = false;
        tracing::debug!("committed a transaction in {:?} (offsets sent in {offsets_sent:?})", started.elapsed());
        Ok(())
    }

    /// Runs `call` (one of librdkafka's transactional calls, with its
    /// retries) on a thread of its own and waits for it for up to
    /// [`WEDGED_AFTER`]. librdkafka (2.12) can lose a coordinator request
    /// while brokers restart: a FindCoordinator that failed waits for a
    /// change of broker state that may never come, and the call waits with
    /// it, for ever. Such a producer is wedged: the error is
    /// [`LogError::Fenced`], so the worker goes back to its last commit and
    /// replaces the producer; the call's thread is left to its fate.
    fn bounded<T: Send + 'static>(
        &mut self,
        op: &str,
        call: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, LogError> {
        let (done, result) = std::sync::mpsc::sync_channel(1);
        let spawned = std::thread::Builder::new().name("eddy-txn-call".to_owned()).spawn(move || {
            // The receiver is gone if the call took too long: nothing to tell.
            let _ = done.send(call());
        });
        if let Err(e) = spawned {
            return Err(LogError::Io {
                op: "start a transactional call's thread",
                path: Default::default(),
                source: e,
            });
        }
        result.recv_timeout(WEDGED_AFTER).map_err(|_| {
            self.wedged = true;
            tracing::warn!("{op}: no answer from the Kafka client after {WEDGED_AFTER:?}; replacing the producer");
            LogError::Fenced {
                op: format!("{op} (no answer after {WEDGED_AFTER:?})"),
                source: KafkaError::Global(RDKafkaErrorCode::OperationTimedOut),
            }
        })
    }
}

impl Producer for KafkaProducer {
    fn send(&mut self, tp: &TopicPartition, record: Record) -> Result<(), LogError> {
        if self.transactional_id.is_some() && !self.in_transaction {
            self.producer.begin_transaction().map_err(kafka("beginning a transaction"))?;
            self.in_transaction = true;
        }
        if record.timestamp <= 0 && !self.warned_timestamp {
            // librdkafka sends a timestamp of 0 as the time of sending, and
            // Kafka has no negative timestamps.
            tracing::warn!(
                "a record for {tp} has timestamp {}: on Kafka it gets the time it is sent instead (and so may others)",
                record.timestamp
            );
            self.warned_timestamp = true;
        }
        let rk = self.producer.client().native_ptr();
        let topic = self.topics.of(rk, &tp.topic)?;
        let headers = native_headers(&record);
        use rd::rd_kafka_vtype_t::*;
        let arguments = [
            argument(RD_KAFKA_VTYPE_RKT, rd::rd_kafka_vu_s__bindgen_ty_1 { rkt: topic }),
            argument(RD_KAFKA_VTYPE_PARTITION, rd::rd_kafka_vu_s__bindgen_ty_1 { i32_: tp.partition as i32 }),
            argument(RD_KAFKA_VTYPE_MSGFLAGS, rd::rd_kafka_vu_s__bindgen_ty_1 { i: rd::RD_KAFKA_MSG_F_COPY }),
            argument(RD_KAFKA_VTYPE_VALUE, memory(record.value.as_deref())),
            argument(RD_KAFKA_VTYPE_KEY, memory(record.key.as_deref())),
            argument(RD_KAFKA_VTYPE_TIMESTAMP, rd::rd_kafka_vu_s__bindgen_ty_1 { i64_: record.timestamp }),
            argument(RD_KAFKA_VTYPE_HEADERS, rd::rd_kafka_vu_s__bindgen_ty_1 { headers }),
        ];
        let count = if headers.is_null() { arguments.len() - 1 } else { arguments.len() };
        loop {
            // SAFETY: `rk` is the live client, `topic` its handle, and the
            // key and value outlive the call (librdkafka copies them:
            // `RD_KAFKA_MSG_F_COPY`). The header list becomes librdkafka's
            // if the record is taken.
            let error = unsafe { rd::rd_kafka_produceva(rk, arguments.as_ptr(), count) };
            let Some(error) = NonNull::new(error) else { break };
            // SAFETY: an error librdkafka handed over, destroyed once.
            let code = unsafe {
                let code = rd::rd_kafka_error_code(error.as_ptr());
                rd::rd_kafka_error_destroy(error.as_ptr());
                RDKafkaErrorCode::from(code)
            };
            if code == RDKafkaErrorCode::QueueFull {
                // The local queue is full: let deliveries drain it.
                self.producer.poll(Duration::from_millis(10));
                continue;
            }
            if !headers.is_null() {
                // SAFETY: the record was refused, so the list is still ours.
                unsafe { rd::rd_kafka_headers_destroy(headers) };
            }
            let source = KafkaError::MessageProduction(code);
            // A failed transaction refuses every record until it is
            // aborted: the work goes back to the last commit.
            return Err(if self.transactional_id.is_some() {
                LogError::Fenced { op: format!("sending a record to {tp} in a failed transaction"), source }
            } else {
                LogError::Kafka { op: format!("sending a record to {tp}"), source }
            });
        }
        self.pending += 1;
        Ok(())
    }

    fn commit(&mut self, member: Option<&dyn Member>, offsets: &[(TopicPartition, u64)]) -> Result<(), LogError> {
        let mut list = TopicPartitionList::new();
        for (tp, offset) in offsets {
            list.add_partition_offset(&tp.topic, tp.partition as i32, Offset::Offset(*offset as i64))
                .map_err(kafka(format!("committing the offset of {tp}")))?;
        }
        if self.transactional_id.is_some() {
            if let Err(e) = self.commit_transaction(member, list.clone()) {
                // An aborted transaction whose records the cluster refused
                // for good (too large, not allowed) would fail again.
                return Err(match self.take_failed() {
                    Some(failed) if is_permanent(&failed) => {
                        LogError::Kafka { op: "delivering records".to_owned(), source: failed }
                    }
                    _ => e,
                });
            }
        } else {
            self.flush()?;
        }
        if let Some(e) = self.take_failed() {
            return Err(LogError::Kafka { op: "delivering records".to_owned(), source: e });
        }
        if self.transactional_id.is_none()
            && let Some(member) = member.filter(|_| list.count() > 0)
        {
            let op = format!("committing group {}'s offsets", member.group());
            let consumer = kafka_member(member)?.consumer();
            if let Err(source) = retrying(|| consumer.commit(&list, rdkafka::consumer::CommitMode::Sync)) {
                // The group refuses commits while it moves tasks, and from a
                // member it has not told its new generation yet: the runtime
                // commits again later. (Exactly-once, the transaction aborts
                // instead.)
                return Err(match commit_error(op)(source) {
                    LogError::Fenced { op, source } => LogError::Rebalancing { op, source },
                    other => other,
                });
            }
        }
        self.pending = 0;
        Ok(())
    }

    fn abort(&mut self) {
        if self.wedged {
            // It takes no calls: its replacement fences it, which aborts
            // its transaction.
        } else if self.in_transaction {
            if let Err(e) = self.producer.abort_transaction(REQUEST_TIMEOUT) {
                tracing::warn!("aborting a transaction: {e}");
            }
            self.in_transaction = false;
        } else {
            self.producer.purge(PurgeConfig::default().queue());
        }
        self.take_failed();
        self.pending = 0;
    }

    fn pending(&self) -> usize {
        self.pending
    }

    fn reset(&mut self) -> Result<(), LogError> {
        self.abort();
        self.topics.clear();
        self.producer = Self::client(&self.options, self.transactional_id.as_deref())?;
        self.context = self.producer.context().clone();
        self.wedged = false;
        Ok(())
    }
}
