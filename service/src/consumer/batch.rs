//! The batch of consumed events waiting for one database transaction.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::event::EventRecord;

/// Limits that make a batch flush.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Flush at this many events.
    pub max_events: usize,
    /// Flush at this many bytes of event data.
    pub max_bytes: usize,
    /// Flush when the oldest buffered message has waited this long.
    pub max_wait: Duration,
}

/// Events consumed since the last flush, with the next offset of each partition.
#[derive(Debug, Default)]
pub struct Batch {
    records: Vec<EventRecord>,
    partitions: Vec<i32>,
    bytes: usize,
    next_offsets: BTreeMap<i32, i64>,
    started: Option<Instant>,
}

/// A batch taken for writing.
#[derive(Debug, Default)]
pub struct Flush {
    /// Events to insert.
    pub records: Vec<EventRecord>,
    /// Next offset per partition after the batch.
    pub next_offsets: BTreeMap<i32, i64>,
}

impl Batch {
    /// Adds the message at `offset` of `partition`; `record` is `None` for a message that
    /// went to the dead-letter topic, whose offset still advances.
    pub fn push(&mut self, partition: i32, offset: i64, record: Option<EventRecord>) {
        self.started.get_or_insert_with(Instant::now);
        if let Some(record) = record {
            self.bytes += record.encoded_len();
            self.records.push(record);
            self.partitions.push(partition);
        }
        self.next_offsets.insert(partition, offset + 1);
    }

    /// True when no message is buffered.
    pub fn is_empty(&self) -> bool {
        self.next_offsets.is_empty()
    }

    /// True when the batch reached its event or byte limit.
    pub fn is_full(&self, limits: &BatchLimits) -> bool {
        self.records.len() >= limits.max_events || self.bytes >= limits.max_bytes
    }

    /// When the batch must be flushed by its wait limit, if anything is buffered.
    pub fn deadline(&self, limits: &BatchLimits) -> Option<Instant> {
        self.started.map(|started| started + limits.max_wait)
    }

    /// Drops what was buffered from `revoked` partitions: their new owner reads those
    /// messages again from the stored offset.
    pub fn drop_partitions(&mut self, revoked: &[i32]) {
        let mut kept_partitions = Vec::with_capacity(self.partitions.len());
        let mut kept_records = Vec::with_capacity(self.records.len());
        for (partition, record) in self.partitions.drain(..).zip(self.records.drain(..)) {
            if !revoked.contains(&partition) {
                kept_partitions.push(partition);
                kept_records.push(record);
            }
        }
        self.partitions = kept_partitions;
        self.records = kept_records;
        self.bytes = self.records.iter().map(EventRecord::encoded_len).sum();
        self.next_offsets.retain(|p, _| !revoked.contains(p));
        if self.next_offsets.is_empty() {
            self.started = None;
        }
    }

    /// Takes the buffered events and offsets, leaving the batch empty.
    pub fn take(&mut self) -> Flush {
        let taken = std::mem::take(self);
        Flush {
            records: taken.records,
            next_offsets: taken.next_offsets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: BatchLimits = BatchLimits {
        max_events: 2,
        max_bytes: 1 << 20,
        max_wait: Duration::from_secs(1),
    };

    #[test]
    fn dead_lettered_message_advances_offset_only() {
        let mut batch = Batch::default();
        batch.push(0, 41, None);
        assert!(!batch.is_empty());
        let flush = batch.take();
        assert!(flush.records.is_empty());
        assert_eq!(flush.next_offsets[&0], 42);
        assert!(batch.is_empty());
    }

    #[test]
    fn full_at_max_events() {
        let mut batch = Batch::default();
        batch.push(0, 0, Some(crate::event::test_record("a")));
        assert!(!batch.is_full(&LIMITS));
        batch.push(1, 0, Some(crate::event::test_record("b")));
        assert!(batch.is_full(&LIMITS));
    }

    #[test]
    fn revoked_partitions_are_dropped() {
        let mut batch = Batch::default();
        batch.push(0, 5, Some(crate::event::test_record("a")));
        batch.push(1, 7, Some(crate::event::test_record("b")));
        batch.push(0, 6, Some(crate::event::test_record("c")));
        batch.drop_partitions(&[0]);
        let flush = batch.take();
        let ids: Vec<_> = flush.records.iter().map(|r| r.event_id.as_str()).collect();
        assert_eq!(ids, ["b"]);
        assert_eq!(flush.next_offsets.into_iter().collect::<Vec<_>>(), [(1, 8)]);
    }

    #[test]
    fn deadline_starts_with_first_message() {
        let mut batch = Batch::default();
        assert!(batch.deadline(&LIMITS).is_none());
        batch.push(0, 0, None);
        assert!(batch.deadline(&LIMITS).is_some());
        batch.drop_partitions(&[0]);
        assert!(batch.deadline(&LIMITS).is_none());
    }
}
