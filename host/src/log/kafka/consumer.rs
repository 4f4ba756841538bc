//! Reading from Kafka: an assign-only librdkafka consumer that reads
//! committed records (`read_committed`) and tracks, per partition, where it
//! is and how far the partition goes.
//!
//! Records are taken from librdkafka's queue in batches
//! (`rd_kafka_consume_batch_queue`): one clock read and one position update
//! per batch, where rust-rdkafka's `poll` reads the clock, allocates an
//! event and looks up the topic's name for every record (a quarter of a
//! word count's worker thread went there).

use std::collections::HashMap;
use std::ffi::CStr;
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::ClientConfig;
use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::{ClientKind, KafkaOptions, REQUEST_TIMEOUT, kafka, retry};
use crate::log::{Consumer, Fetched, LogError, LogRecord, TopicPartition};
use crate::record::{Header, Record};

/// How long a partition's known end offset is trusted before [`Consumer::behind`]
/// asks the broker again.
const END_OFFSET_TTL: Duration = Duration::from_millis(50);

/// The configuration of every consumer: no automatic commits, committed
/// records only, from the start of a partition without a committed offset.
pub(super) fn config(options: &KafkaOptions) -> ClientConfig {
    options.client_config(ClientKind::Consumer, |config| {
        config
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .set("allow.auto.create.topics", "false")
            .set("enable.partition.eof", "false")
            // librdkafka assigns partitions only to a consumer with a group; this
            // one never joins it or commits to it (groups that commit name their
            // own).
            .set("group.id", "eddy-assigned-reader")
            // Wait less for data when a partition is idle (the default 500 ms
            // would add to a join's latency).
            .set("fetch.wait.max.ms", "100")
            // Prefetch less than librdkafka's 64 MiB per consumer (a worker
            // has one, and one per restore): memory, not speed, was what it
            // bought (word count on 1 thread: the same CPU, a third less RSS).
            .set("queued.max.messages.kbytes", "16384")
            // and fewer messages than its 100000 per partition, whatever their
            // size (a queued message costs about 350 bytes besides its own).
            .set("queued.min.messages", "10000")
            // With the queue that short, a partition whose queue is full asks
            // again in 10 ms rather than in librdkafka's 1 s (which starved
            // the worker: a third of the throughput).
            .set("fetch.queue.backoff.ms", "10")
            // librdkafka turns a whole fetch response into queued messages at
            // once, each costing about 350 bytes besides its own: an 8 MiB
            // response of 30-byte word-count lines held 150 MB. 1 MiB is still
            // tens of thousands of small records per request.
            .set("fetch.max.bytes", "1048576")
            .set("max.partition.fetch.bytes", "262144");
    })
}

/// librdkafka's consumer queue of one consumer, where fetched records
/// (and, forwarded, the client's own events) wait to be taken.
struct ConsumerQueue(NonNull<rd::rd_kafka_queue_t>);

// SAFETY: librdkafka's queues may be used from any thread.
unsafe impl Send for ConsumerQueue {}

impl ConsumerQueue {
    fn of(consumer: &BaseConsumer) -> Result<Self, LogError> {
        // SAFETY: the pointer is `consumer`'s live client; the queue
        // returned holds a reference of its own, dropped in `drop`.
        let queue = unsafe { rd::rd_kafka_queue_get_consumer(consumer.client().native_ptr()) };
        NonNull::new(queue).map(ConsumerQueue).ok_or_else(|| LogError::Kafka {
            op: "opening the consumer's queue".to_owned(),
            source: KafkaError::ClientCreation("librdkafka has no consumer queue".to_owned()),
        })
    }

    /// Moves up to `max` messages into `taken`, waiting up to `timeout_ms`
    /// until there are `max` (librdkafka waits for the whole batch, not for
    /// the first message); returns how many it moved.
    fn take(&self, taken: &mut Taken, max: usize, timeout_ms: i32) -> Result<usize, LogError> {
        let start = taken.0.len();
        taken.0.reserve(max);
        // SAFETY: the array has room for `max` pointers past `start`; the
        // ones librdkafka fills are counted in by `set_len`.
        let n = unsafe {
            let n = rd::rd_kafka_consume_batch_queue(self.0.as_ptr(), timeout_ms, taken.0.as_mut_ptr().add(start), max);
            if n > 0 {
                taken.0.set_len(start + n as usize);
            }
            n
        };
        if n < 0 {
            // SAFETY: reads this thread's last librdkafka error.
            let code = unsafe { rd::rd_kafka_last_error() };
            return Err(LogError::Kafka {
                op: "consuming".to_owned(),
                source: KafkaError::MessageConsumption(code.into()),
            });
        }
        Ok(n as usize)
    }
}

impl Drop for ConsumerQueue {
    fn drop(&mut self) {
        // SAFETY: the queue's own reference, taken in `of`.
        unsafe { rd::rd_kafka_queue_destroy(self.0.as_ptr()) }
    }
}

/// Messages taken from a [`ConsumerQueue`], given back to librdkafka when
/// dropped (on an early return too).
#[derive(Default)]
struct Taken(Vec<*mut rd::rd_kafka_message_t>);

impl Drop for Taken {
    fn drop(&mut self) {
        for m in self.0.drain(..) {
            // SAFETY: each message was taken once and is destroyed once.
            unsafe { rd::rd_kafka_message_destroy(m) }
        }
    }
}

/// A consumer of assigned partitions.
pub(super) struct KafkaConsumer {
    /// Dropped before the consumer whose queue it is.
    queue: ConsumerQueue,
    consumer: BaseConsumer,
    /// Per assigned partition: the next offset to read.
    positions: HashMap<TopicPartition, u64>,
    /// Per assigned partition: its first and end offsets as last asked, and when.
    ends: HashMap<TopicPartition, (u64, u64, Instant)>,
    /// Topic names handed out, shared by the records' partitions.
    topics: HashMap<String, Arc<str>>,
}

impl KafkaConsumer {
    pub(super) fn new(options: &KafkaOptions) -> Result<Self, LogError> {
        let consumer: BaseConsumer = config(options).create().map_err(kafka("creating a consumer"))?;
        let queue = ConsumerQueue::of(&consumer)?;
        Ok(KafkaConsumer { queue, consumer, positions: HashMap::new(), ends: HashMap::new(), topics: HashMap::new() })
    }

    /// The client's fatal error, if it has met one (its error events are
    /// not messages, so a batch read does not return them).
    fn fatal_error(&self) -> Result<(), LogError> {
        let mut text = [0 as std::ffi::c_char; 512];
        // SAFETY: the pointer is the live client; librdkafka writes a
        // NUL-terminated string of at most `text.len()` bytes.
        let code =
            unsafe { rd::rd_kafka_fatal_error(self.consumer.client().native_ptr(), text.as_mut_ptr(), text.len()) };
        if code == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Ok(());
        }
        // SAFETY: NUL-terminated by librdkafka, within `text`.
        let why = unsafe { CStr::from_ptr(text.as_ptr()) }.to_string_lossy();
        Err(LogError::Kafka {
            op: format!("consuming ({why})"),
            source: KafkaError::MessageConsumptionFatal(RDKafkaErrorCode::from(code)),
        })
    }

    /// The position of `tp`, moved up to the partition's first offset
    /// `start` where the broker deleted the records before it (retention, a
    /// purge): librdkafka then reads from `start` (offset reset), but
    /// reports no position until it delivers a record, and a partition with
    /// none left would look behind for ever.
    fn skip_deleted(&mut self, tp: &TopicPartition, position: u64, start: u64) -> u64 {
        if position >= start {
            return position;
        }
        self.positions.insert(tp.clone(), start);
        start
    }

    /// Takes the positions librdkafka has moved past control records.
    fn update_positions(&mut self) -> Result<(), LogError> {
        let list = self.consumer.position().map_err(kafka("reading consumer positions"))?;
        for e in list.elements() {
            if let Offset::Offset(o) = e.offset() {
                let tp = partition_of(&mut self.topics, e.topic(), e.partition());
                if let Some(p) = self.positions.get_mut(&tp) {
                    *p = (*p).max(o.max(0) as u64);
                }
            }
        }
        Ok(())
    }
}

/// A topic and partition as a [`TopicPartition`], sharing the topic's name
/// among all the records read from it.
fn partition_of(topics: &mut HashMap<String, Arc<str>>, topic: &str, partition: i32) -> TopicPartition {
    let topic = match topics.get(topic) {
        Some(t) => t.clone(),
        None => {
            let t: Arc<str> = Arc::from(topic);
            topics.insert(topic.to_owned(), t.clone());
            t
        }
    };
    TopicPartition { topic, partition: partition as u32 }
}

/// The bytes `len` long at `data`, or `None` for a null pointer (a null key,
/// a tombstone).
///
/// # Safety
/// `data` is null or points to `len` readable bytes that outlive the slice.
unsafe fn bytes_at<'a>(data: *const std::ffi::c_void, len: usize) -> Option<&'a [u8]> {
    if data.is_null() {
        None
    } else {
        // SAFETY: as the caller promises.
        Some(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
    }
}

/// A consumed message as a record, its bytes copied out of librdkafka's
/// buffer: key and value into one allocation, so that passing the record on
/// (a clone per operator input) only counts references.
///
/// # Safety
/// `m` is a live message without an error.
unsafe fn record_of(m: &rd::rd_kafka_message_t) -> Record {
    // SAFETY: a live message's key and payload point to their lengths.
    let (key, value) = unsafe { (bytes_at(m.key, m.key_len), bytes_at(m.payload, m.len)) };
    let (key, value) = match (key, value) {
        (Some(k), Some(v)) => {
            let mut both = Vec::with_capacity(k.len() + v.len());
            both.extend_from_slice(k);
            both.extend_from_slice(v);
            let both = Bytes::from(both);
            (Some(both.slice(..k.len())), Some(both.slice(k.len()..)))
        }
        (k, v) => (k.map(Bytes::copy_from_slice), v.map(Bytes::copy_from_slice)),
    };
    let mut kind = rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
    // SAFETY: a live message.
    let timestamp = unsafe { rd::rd_kafka_message_timestamp(m, &mut kind) };
    let timestamp = match kind {
        rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE => 0,
        _ => timestamp,
    };
    // SAFETY: a live message.
    let headers = unsafe { headers_of(m) };
    Record { key, value, timestamp, headers }
}

/// A consumed message's headers.
///
/// # Safety
/// `m` is a live message.
unsafe fn headers_of(m: &rd::rd_kafka_message_t) -> Vec<Header> {
    let mut list = ptr::null_mut();
    // SAFETY: a live message; the list it returns lives as long.
    if unsafe { rd::rd_kafka_message_headers(m, &mut list) } != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        return Vec::new();
    }
    let mut headers = Vec::new();
    loop {
        let (mut name, mut value, mut size) = (ptr::null(), ptr::null(), 0);
        // SAFETY: `list` is the message's live header list; librdkafka
        // answers an index past its end with an error.
        let found = unsafe { rd::rd_kafka_header_get_all(list, headers.len(), &mut name, &mut value, &mut size) };
        if found != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return headers;
        }
        // SAFETY: a header's name is NUL-terminated, its value `size` bytes or null.
        let (name, value) = unsafe { (CStr::from_ptr(name).to_string_lossy().into_owned(), bytes_at(value, size)) };
        headers.push(Header { name, value: value.map(Bytes::copy_from_slice) });
    }
}

impl Consumer for KafkaConsumer {
    fn assign(&mut self, partitions: &[(TopicPartition, u64)]) -> Result<(), LogError> {
        let mut list = TopicPartitionList::new();
        for (tp, offset) in partitions {
            list.add_partition_offset(&tp.topic, tp.partition as i32, Offset::Offset(*offset as i64))
                .map_err(kafka(format!("assigning {tp}")))?;
        }
        self.consumer.assign(&list).map_err(kafka("assigning partitions"))?;
        self.positions = partitions.iter().cloned().collect();
        self.ends.clear();
        Ok(())
    }

    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Fetched>, LogError> {
        let mut fetched: Vec<Fetched> = Vec::new();
        if max == 0 {
            return Ok(fetched);
        }
        // What is queued, or else the first to come within `timeout` and
        // what is queued behind it.
        let mut taken = Taken::default();
        if self.queue.take(&mut taken, max, 0)? == 0 && !timeout.is_zero() {
            let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
            if self.queue.take(&mut taken, 1, ms)? == 1 && max > 1 {
                self.queue.take(&mut taken, max - 1, 0)?;
            }
        }
        self.fatal_error()?;
        // The group the last record went to, by librdkafka's topic handle
        // and partition (a taken message holds its topic, so the handle
        // names one topic within the batch).
        let mut last: Option<(*mut rd::rd_kafka_topic_t, i32, usize)> = None;
        for &m in &taken.0 {
            // SAFETY: taken and not yet destroyed.
            let m = unsafe { &*m };
            if m.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                if m.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    // librdkafka retries by itself (a broker going away, a
                    // leader moving); the error is worth a line in the log.
                    tracing::warn!("kafka consumer: {}", KafkaError::MessageConsumption(m.err.into()));
                }
                continue;
            }
            let group = match last {
                Some((rkt, partition, group)) if rkt == m.rkt && partition == m.partition => group,
                _ => {
                    // SAFETY: a message's topic handle names its topic.
                    let name = unsafe { CStr::from_ptr(rd::rd_kafka_topic_name(m.rkt)) }.to_string_lossy();
                    let tp = partition_of(&mut self.topics, &name, m.partition);
                    let group = match fetched.iter().position(|f| f.partition == tp) {
                        Some(g) => g,
                        None => {
                            fetched.push(Fetched { partition: tp, records: Vec::new() });
                            fetched.len() - 1
                        }
                    };
                    last = Some((m.rkt, m.partition, group));
                    group
                }
            };
            // SAFETY: a live message without an error.
            let record = unsafe { record_of(m) };
            fetched[group].records.push(LogRecord { offset: m.offset.max(0) as u64, record });
        }
        drop(taken);
        for f in &fetched {
            if let (Some(p), Some(r)) = (self.positions.get_mut(&f.partition), f.records.last()) {
                *p = (*p).max(r.offset + 1);
            }
        }
        self.update_positions()?;
        Ok(fetched)
    }

    fn position(&self, tp: &TopicPartition) -> Option<u64> {
        self.positions.get(tp).copied()
    }

    fn behind(&mut self, tp: &TopicPartition) -> Result<bool, LogError> {
        let Some(&position) = self.positions.get(tp) else { return Ok(false) };
        if let Some(&(start, end, at)) = self.ends.get(tp) {
            // An end offset once seen stays true: a partition behind it is
            // behind without asking again.
            if position < end || at.elapsed() < END_OFFSET_TTL {
                return Ok(self.skip_deleted(tp, position, start) < end);
            }
        }
        let (low, high) = retry(format!("reading the end offset of {tp}"), || {
            self.consumer.fetch_watermarks(&tp.topic, tp.partition as i32, REQUEST_TIMEOUT)
        })?;
        let (start, end) = (low.max(0) as u64, high.max(0) as u64);
        self.ends.insert(tp.clone(), (start, end, Instant::now()));
        Ok(self.skip_deleted(tp, position, start) < end)
    }
}
