//! The embedded log's consumer: assigned partitions read round-robin,
//! each through its own partition reader.

use super::*;

/// A consumer of the embedded log: a reader per assigned partition.
pub(super) struct EmbeddedConsumer {
    pub(super) log: EmbeddedLog,
    pub(super) readers: Vec<PartitionReader>,
    /// Reader to start the next poll at, for fairness.
    pub(super) next: usize,
    pub(super) last_refresh: Instant,
}

impl Consumer for EmbeddedConsumer {
    fn assign(&mut self, partitions: &[(TopicPartition, u64)]) -> Result<(), LogError> {
        self.log.refresh()?;
        self.readers = partitions
            .iter()
            .map(|(tp, offset)| PartitionReader::new(&self.log, tp.clone(), *offset))
            .collect::<Result<_, _>>()?;
        self.next = 0;
        Ok(())
    }

    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Fetched>, LogError> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.log.generation();
            let mut fetched = Vec::new();
            let mut left = max;
            let n = self.readers.len();
            for i in 0..n {
                if left == 0 {
                    break;
                }
                let reader = &mut self.readers[(self.next + i) % n];
                let (limit, generation) = {
                    let state = self.log.read_state();
                    let p = state.partition(&reader.tp)?;
                    (p.end_bytes, p.generation)
                };
                if generation != reader.generation {
                    // The partition was compacted: go on at the same offset in the new file.
                    *reader = PartitionReader::new(&self.log, reader.tp.clone(), reader.offset)?;
                    continue;
                }
                let mut records = Vec::new();
                reader.read(left, limit, u64::MAX, &mut records)?;
                if !records.is_empty() {
                    left -= records.len();
                    fetched.push(Fetched { partition: reader.tp.clone(), records });
                }
            }
            if n > 0 {
                self.next = (self.next + 1) % n;
            }
            if !fetched.is_empty() {
                return Ok(fetched);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(fetched);
            }
            if now.duration_since(self.last_refresh) >= FOREIGN_POLL {
                self.log.refresh()?;
                self.last_refresh = now;
                continue;
            }
            self.log.wait_for_commit(seen, (deadline - now).min(FOREIGN_POLL));
        }
    }

    fn position(&self, tp: &TopicPartition) -> Option<u64> {
        self.readers.iter().find(|r| r.tp == *tp).map(|r| r.offset)
    }

    fn behind(&mut self, tp: &TopicPartition) -> Result<bool, LogError> {
        let Some(offset) = self.position(tp) else { return Ok(false) };
        Ok(offset < self.log.read_state().partition(tp)?.end_offset)
    }
}
