//! Timestamp order across a task's input partitions, as Kafka Streams'
//! `PartitionGroup`: a task that reads several partitions (a join's two
//! sides, a merge of topics) takes their records smallest timestamp first,
//! so its result does not depend on the order the log hands records over
//! in. While one of its partitions has nothing buffered but is not caught
//! up with the log, the task waits for it, however long the fetch takes:
//! as Kafka Streams (with its default `max.task.idle.ms` of 0) waits for
//! data the broker has but has not fetched yet. A partition that is caught
//! up holds nothing back: the others go on without it.

use std::collections::{HashMap, VecDeque};

use crate::log::{Fetched, LogRecord, TopicPartition};

/// Fetched records not yet processed, per task input partition.
pub struct Interleave {
    /// Each task's input partitions.
    tasks: Vec<Vec<TopicPartition>>,
    buffers: HashMap<TopicPartition, VecDeque<LogRecord>>,
}

impl Interleave {
    /// Buffers for tasks reading these partitions.
    pub fn new(tasks: Vec<Vec<TopicPartition>>) -> Self {
        Interleave { tasks, buffers: HashMap::new() }
    }

    /// Replaces the tasks, dropping what is buffered for partitions none of
    /// them reads any more.
    pub fn set_tasks(&mut self, tasks: Vec<Vec<TopicPartition>>) {
        self.buffers.retain(|tp, _| tasks.iter().flatten().any(|t| t == tp));
        self.tasks = tasks;
    }

    /// Buffers fetched records.
    pub fn add(&mut self, fetched: Vec<Fetched>) {
        for f in fetched {
            self.buffers.entry(f.partition).or_default().extend(f.records);
        }
    }

    /// Records buffered and not yet taken.
    pub fn buffered(&self) -> usize {
        self.buffers.values().map(VecDeque::len).sum()
    }

    /// Whether records of `tp` are buffered and not yet taken.
    pub fn holds(&self, tp: &TopicPartition) -> bool {
        self.buffers.get(tp).is_some_and(|b| !b.is_empty())
    }

    /// Takes what can be processed now, as runs of records of one partition
    /// in the order to process them: per task, smallest head timestamp
    /// first, each run going as far as the other partitions' heads. A task
    /// with an empty partition that is `behind` the log (has records not
    /// fetched yet) waits.
    pub fn take(&mut self, mut behind: impl FnMut(&TopicPartition) -> bool) -> Vec<Fetched> {
        let mut runs = Vec::new();
        for inputs in &self.tasks {
            if let [only] = inputs.as_slice() {
                if let Some(records) = self.buffers.get_mut(only).filter(|b| !b.is_empty()) {
                    runs.push(Fetched { partition: only.clone(), records: records.drain(..).collect() });
                }
                continue;
            }
            loop {
                let empty_behind =
                    inputs.iter().any(|tp| self.buffers.get(tp).is_none_or(VecDeque::is_empty) && behind(tp));
                if empty_behind {
                    break;
                }
                let heads: Vec<(usize, i64)> = inputs
                    .iter()
                    .enumerate()
                    .filter_map(|(i, tp)| self.buffers.get(tp)?.front().map(|r| (i, r.record.timestamp)))
                    .collect();
                let Some(&(first, _)) = heads.iter().min_by_key(|(i, ts)| (*ts, *i)) else { break };
                let bound = heads.iter().filter(|(i, _)| *i != first).map(|(_, ts)| *ts).min();
                let buffer = self.buffers.get_mut(&inputs[first]).expect("has a head");
                let mut records = Vec::new();
                while let Some(r) = buffer.front() {
                    if !records.is_empty() && bound.is_some_and(|b| r.record.timestamp > b) {
                        break;
                    }
                    records.push(buffer.pop_front().expect("has a front"));
                }
                runs.push(Fetched { partition: inputs[first].clone(), records });
            }
        }
        runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;

    fn fetched(topic: &str, timestamps: &[i64]) -> Fetched {
        let records = timestamps
            .iter()
            .enumerate()
            .map(|(i, &ts)| LogRecord { offset: i as u64, record: Record::new(None::<String>, Some("v"), ts) })
            .collect();
        Fetched { partition: TopicPartition::new(topic, 0), records }
    }

    fn order(runs: &[Fetched]) -> Vec<(String, Vec<i64>)> {
        runs.iter()
            .map(|f| (f.partition.topic.to_string(), f.records.iter().map(|r| r.record.timestamp).collect()))
            .collect()
    }

    #[test]
    fn a_task_takes_its_partitions_smallest_timestamp_first() {
        let (a, b) = (TopicPartition::new("a", 0), TopicPartition::new("b", 0));
        let mut group = Interleave::new(vec![vec![a.clone(), b.clone()], vec![TopicPartition::new("c", 0)]]);
        group.add(vec![fetched("a", &[1, 2, 5, 9]), fetched("b", &[3, 4, 8]), fetched("c", &[7, 1])]);
        // The log holds nothing more than what was fetched.
        let runs = group.take(|_| false);
        assert_eq!(
            order(&runs),
            [
                ("a".to_owned(), vec![1, 2]),
                ("b".to_owned(), vec![3, 4]),
                ("a".to_owned(), vec![5]),
                ("b".to_owned(), vec![8]),
                ("a".to_owned(), vec![9]),
                ("c".to_owned(), vec![7, 1]),
            ]
        );
        assert_eq!(group.buffered(), 0);
        // A partition that is behind holds its task back: `a` waits for `b`,
        // whose log has records not fetched yet.
        group.add(vec![fetched("a", &[10, 11])]);
        assert!(group.take(|tp| tp == &b).is_empty());
        assert_eq!(group.buffered(), 2);
        assert!(group.holds(&a) && !group.holds(&b));
        // Caught up (nothing more to come from `b`), `a` goes on.
        assert_eq!(order(&group.take(|_| false)), [("a".to_owned(), vec![10, 11])]);
    }
}
