//! Reading from Kafka: an assign-only librdkafka consumer that reads
//! committed records (`read_committed`) and tracks, per partition, where it
//! is and how far the partition goes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::{KafkaOptions, REQUEST_TIMEOUT, kafka, retry};
use crate::log::{Consumer, Fetched, LogError, LogRecord, TopicPartition};
use crate::record::{Header, Record};

/// How long a partition's known end offset is trusted before [`Consumer::behind`]
/// asks the broker again.
const END_OFFSET_TTL: Duration = Duration::from_millis(50);

/// The configuration of every consumer: no automatic commits, committed
/// records only, from the start of a partition without a committed offset.
pub(super) fn config(options: &KafkaOptions) -> ClientConfig {
    let mut config = options.client_config();
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
    config
}

/// A consumer of assigned partitions.
pub(super) struct KafkaConsumer {
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
        let consumer = config(options).create().map_err(kafka("creating a consumer"))?;
        Ok(KafkaConsumer { consumer, positions: HashMap::new(), ends: HashMap::new(), topics: HashMap::new() })
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

/// A consumed message as a record, with its bytes copied out of librdkafka's buffer.
fn record_of(m: &BorrowedMessage<'_>) -> Record {
    let headers = m
        .headers()
        .map(|hs| {
            hs.iter().map(|h| Header { name: h.key.to_owned(), value: h.value.map(Bytes::copy_from_slice) }).collect()
        })
        .unwrap_or_default();
    Record {
        key: m.key().map(Bytes::copy_from_slice),
        value: m.payload().map(Bytes::copy_from_slice),
        timestamp: m.timestamp().to_millis().unwrap_or(0),
        headers,
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
        let mut count = 0;
        let mut wait = timeout;
        while count < max {
            let Some(result) = self.consumer.poll(wait) else { break };
            wait = Duration::ZERO;
            let message = match result {
                Ok(m) => m,
                Err(KafkaError::PartitionEOF(_)) => continue,
                Err(KafkaError::MessageConsumptionFatal(code)) => {
                    return Err(LogError::Kafka {
                        op: "consuming".to_owned(),
                        source: KafkaError::MessageConsumptionFatal(code),
                    });
                }
                // librdkafka retries by itself (a broker going away, a
                // leader moving); the error is worth a line in the log.
                Err(e) => {
                    tracing::warn!("kafka consumer: {e}");
                    continue;
                }
            };
            let offset = message.offset().max(0) as u64;
            let record = record_of(&message);
            let tp = partition_of(&mut self.topics, message.topic(), message.partition());
            drop(message);
            if let Some(p) = self.positions.get_mut(&tp) {
                *p = (*p).max(offset + 1);
            }
            count += 1;
            match fetched.last_mut() {
                Some(f) if f.partition == tp => f.records.push(LogRecord { offset, record }),
                _ => match fetched.iter_mut().find(|f| f.partition == tp) {
                    Some(f) => f.records.push(LogRecord { offset, record }),
                    None => fetched.push(Fetched { partition: tp, records: vec![LogRecord { offset, record }] }),
                },
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
