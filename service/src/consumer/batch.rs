//! The batch of consumed events waiting for one database transaction.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::dead_letter::SourceMessage;
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
    sources: Vec<SourceMessage>,
    bytes: usize,
    next_offsets: BTreeMap<i32, i64>,
    started: Option<Instant>,
}

/// A batch taken for writing.
#[derive(Debug, Default)]
pub struct Flush {
    /// Events to insert.
    pub records: Vec<EventRecord>,
    /// The message of each event, in the same order, for the dead-letter topic.
    pub sources: Vec<SourceMessage>,
    /// Next offset per partition after the batch.
    pub next_offsets: BTreeMap<i32, i64>,
    /// Bytes of event data and source messages.
    pub bytes: usize,
    /// This consumer's claim token of each partition when the batch was taken. A
    /// partition whose claim has changed since (revoked, or assigned again and read
    /// anew from the stored offset) must not be written with this batch.
    pub owners: BTreeMap<i32, String>,
}

/// The batches being filled, one per writer. A partition's events always go to the
/// same writer, which has at most one batch of them in flight, so each partition's
/// batches are stored in order.
#[derive(Debug)]
pub struct Batches {
    lanes: Vec<Batch>,
    /// Writer of each partition, chosen when its first event arrives and kept until the
    /// partition is revoked. A partition assigned again starts from the stored offset
    /// under a new claim, so it may go to another writer.
    assigned: BTreeMap<i32, usize>,
}

impl Batches {
    /// Batches for `writers` writers (at least one).
    pub fn new(writers: usize) -> Self {
        Self {
            lanes: (0..writers.max(1)).map(|_| Batch::default()).collect(),
            assigned: BTreeMap::new(),
        }
    }

    /// Returns the writer of `partition`, if it has one.
    pub fn lane_of(&self, partition: i32) -> Option<usize> {
        self.assigned.get(&partition).copied()
    }

    /// Returns the writer of `partition`, giving it the writer with the fewest
    /// partitions if it has none: a consumer's partitions are spread over its
    /// writers whatever their numbers.
    fn lane_for(&mut self, partition: i32) -> usize {
        if let Some(&lane) = self.assigned.get(&partition) {
            return lane;
        }
        let mut counts = vec![0usize; self.lanes.len()];
        for &lane in self.assigned.values() {
            counts[lane] += 1;
        }
        let lane = (0..counts.len())
            .min_by_key(|&lane| (counts[lane], lane))
            .expect("at least one writer");
        self.assigned.insert(partition, lane);
        lane
    }

    /// Returns the batch of writer `lane`.
    pub fn lane(&self, lane: usize) -> &Batch {
        &self.lanes[lane]
    }

    /// Adds a message to the batch of its partition's writer; see [`Batch::push`].
    pub fn push(
        &mut self,
        partition: i32,
        offset: i64,
        event: Option<(EventRecord, SourceMessage)>,
    ) {
        let lane = self.lane_for(partition);
        self.lanes[lane].push(partition, offset, event);
    }

    /// Takes the first events of writer `lane`'s batch, up to the limits; see
    /// [`Batch::take_within`].
    pub fn take(&mut self, lane: usize, limits: &BatchLimits) -> Flush {
        self.lanes[lane].take_within(limits)
    }

    /// Drops what was buffered from `revoked` partitions; see [`Batch::drop_partitions`].
    pub fn drop_partitions(&mut self, revoked: &[i32]) {
        for batch in &mut self.lanes {
            batch.drop_partitions(revoked);
        }
        self.assigned
            .retain(|partition, _| !revoked.contains(partition));
    }

    /// Bytes buffered in all batches.
    pub fn bytes(&self) -> usize {
        self.lanes.iter().map(Batch::bytes).sum()
    }

    /// True when some batch reached its event or byte limit.
    pub fn any_full(&self, limits: &BatchLimits) -> bool {
        self.lanes.iter().any(|batch| batch.is_full(limits))
    }
}

impl Batch {
    /// Adds the message at `offset` of `partition`. `event` is `None` for a message that
    /// went to the dead-letter topic, whose offset still advances.
    pub fn push(
        &mut self,
        partition: i32,
        offset: i64,
        event: Option<(EventRecord, SourceMessage)>,
    ) {
        self.started.get_or_insert_with(Instant::now);
        if let Some((record, source)) = event {
            self.bytes += record.encoded_len() + source.len();
            self.records.push(record);
            self.sources.push(source);
        }
        self.next_offsets.insert(partition, offset + 1);
    }

    /// True when no message is buffered.
    pub fn is_empty(&self) -> bool {
        self.next_offsets.is_empty()
    }

    /// Bytes of buffered event data and source messages.
    pub fn bytes(&self) -> usize {
        self.bytes
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
        let records = std::mem::take(&mut self.records);
        let sources = std::mem::take(&mut self.sources);
        for (record, source) in records.into_iter().zip(sources) {
            if !revoked.contains(&source.partition) {
                self.records.push(record);
                self.sources.push(source);
            }
        }
        self.bytes = byte_count(&self.records, &self.sources);
        self.next_offsets.retain(|p, _| !revoked.contains(p));
        if self.next_offsets.is_empty() {
            self.started = None;
        }
    }

    /// True when the batch has reached twice its limits, the most it may buffer while
    /// its writer is still busy with the previous batch.
    pub fn is_overfull(&self, limits: &BatchLimits) -> bool {
        self.records.len() >= 2 * limits.max_events || self.bytes >= 2 * limits.max_bytes
    }

    /// Takes the first events up to `limits.max_events` and `limits.max_bytes` (at
    /// least one event), with the offsets they reach, and keeps the rest. A batch grows
    /// past its limits while its writer is busy, and each transaction stays within
    /// them. Dead-lettered messages between the taken events are covered by the taken
    /// offsets, and those after them by the rest's.
    pub fn take_within(&mut self, limits: &BatchLimits) -> Flush {
        let mut count = 0;
        let mut bytes = 0;
        for (record, source) in self.records.iter().zip(&self.sources) {
            let size = record.encoded_len() + source.len();
            if count > 0 && (count == limits.max_events || bytes + size > limits.max_bytes) {
                break;
            }
            count += 1;
            bytes += size;
        }
        if count == self.records.len() {
            return self.take();
        }

        let records: Vec<EventRecord> = self.records.drain(..count).collect();
        let sources: Vec<SourceMessage> = self.sources.drain(..count).collect();
        let mut next_offsets = BTreeMap::new();
        for source in &sources {
            let next = next_offsets.entry(source.partition).or_insert(0);
            *next = (*next).max(source.offset + 1);
        }

        // The rest keeps a partition's offset only when it moves past the taken one:
        // events of the partition remain, or dead-lettered messages follow them.
        let remaining: std::collections::BTreeSet<i32> =
            self.sources.iter().map(|s| s.partition).collect();
        self.next_offsets.retain(|partition, next| {
            remaining.contains(partition) || next_offsets.get(partition) != Some(next)
        });
        self.bytes -= bytes;
        Flush {
            records,
            sources,
            next_offsets,
            bytes,
            owners: BTreeMap::new(),
        }
    }

    /// Takes the buffered events and offsets, leaving the batch empty.
    pub fn take(&mut self) -> Flush {
        let taken = std::mem::take(self);
        Flush {
            records: taken.records,
            sources: taken.sources,
            next_offsets: taken.next_offsets,
            bytes: taken.bytes,
            owners: BTreeMap::new(),
        }
    }
}

impl Flush {
    /// Drops the events and offset of `partition`, which this consumer no longer owns.
    pub fn drop_partition(&mut self, partition: i32) {
        let mut batch = Batch {
            records: std::mem::take(&mut self.records),
            sources: std::mem::take(&mut self.sources),
            next_offsets: std::mem::take(&mut self.next_offsets),
            ..Batch::default()
        };
        batch.drop_partitions(&[partition]);
        let owners = std::mem::take(&mut self.owners);
        *self = batch.take();
        self.owners = owners;
        self.owners.remove(&partition);
    }
}

impl Flush {
    /// Removes the events at `indexes`, keeping the offsets.
    pub fn remove(&mut self, indexes: &[usize]) {
        let mut sorted = indexes.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        for &index in sorted.iter().rev() {
            self.records.remove(index);
            self.sources.remove(index);
        }
        self.bytes = byte_count(&self.records, &self.sources);
    }
}

fn byte_count(records: &[EventRecord], sources: &[SourceMessage]) -> usize {
    records.iter().map(EventRecord::encoded_len).sum::<usize>()
        + sources.iter().map(SourceMessage::len).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(partition: i32, offset: i64, id: &str) -> Option<(EventRecord, SourceMessage)> {
        let source = SourceMessage {
            topic: "t".into(),
            partition,
            offset,
            key: None,
            payload: Some(vec![0; 10]),
            headers: Vec::new(),
        };
        Some((crate::event::test_record(id), source))
    }

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
        batch.push(0, 0, event(0, 0, "a"));
        assert!(!batch.is_full(&LIMITS));
        batch.push(1, 0, event(1, 0, "b"));
        assert!(batch.is_full(&LIMITS));
    }

    #[test]
    fn revoked_partitions_are_dropped() {
        let mut batch = Batch::default();
        batch.push(0, 5, event(0, 5, "a"));
        batch.push(1, 7, event(1, 7, "b"));
        batch.push(0, 6, event(0, 6, "c"));
        batch.drop_partitions(&[0]);
        let flush = batch.take();
        let ids: Vec<_> = flush.records.iter().map(|r| r.event_id.as_str()).collect();
        assert_eq!(ids, ["b"]);
        assert_eq!(flush.next_offsets.into_iter().collect::<Vec<_>>(), [(1, 8)]);
    }

    #[test]
    fn flush_drops_a_partition_whole() {
        let mut batch = Batch::default();
        batch.push(0, 5, event(0, 5, "a"));
        batch.push(1, 7, event(1, 7, "b"));
        let mut flush = batch.take();
        flush.drop_partition(1);
        assert_eq!(flush.records.len(), 1);
        assert_eq!(flush.sources[0].partition, 0);
        assert_eq!(flush.next_offsets.keys().copied().collect::<Vec<_>>(), [0]);
        assert_eq!(
            flush.bytes,
            flush.records[0].encoded_len() + flush.sources[0].len()
        );
    }

    #[test]
    fn batches_keep_a_partition_on_one_writer() {
        let mut batches = Batches::new(2);
        for offset in 0..3 {
            for partition in 0..5 {
                batches.push(partition, offset, event(partition, offset, "e"));
            }
        }
        let all = BatchLimits {
            max_events: 100,
            ..LIMITS
        };
        let even = batches.take(0, &all);
        let odd = batches.take(1, &all);
        assert_eq!(
            even.next_offsets.keys().copied().collect::<Vec<_>>(),
            [0, 2, 4]
        );
        assert_eq!(odd.next_offsets.keys().copied().collect::<Vec<_>>(), [1, 3]);
        assert!(even.sources.iter().all(|s| s.partition % 2 == 0));
        assert!(odd.sources.iter().all(|s| s.partition % 2 == 1));
        assert_eq!(even.records.len() + odd.records.len(), 15);
        assert_eq!(batches.bytes(), 0);
    }

    #[test]
    fn batches_spread_partitions_over_writers() {
        let mut batches = Batches::new(2);
        // Only even partitions, as a consumer sharing a topic may get them.
        for partition in [0, 2, 4, 6] {
            batches.push(partition, 0, None);
        }
        assert_eq!(batches.lane_of(0), Some(0));
        assert_eq!(batches.lane_of(2), Some(1));
        assert_eq!(batches.lane_of(4), Some(0));
        assert_eq!(batches.lane_of(6), Some(1));
        batches.drop_partitions(&[2]);
        assert_eq!(batches.lane_of(2), None);
        batches.push(8, 0, None);
        assert_eq!(batches.lane_of(8), Some(1));
    }

    #[test]
    fn take_within_splits_an_overfull_batch() {
        let mut batch = Batch::default();
        batch.push(0, 10, event(0, 10, "a"));
        batch.push(1, 20, event(1, 20, "b"));
        batch.push(0, 11, None);
        batch.push(0, 12, event(0, 12, "c"));
        batch.push(1, 21, None);
        batch.push(2, 30, event(2, 30, "d"));
        batch.push(2, 31, None);
        assert!(batch.is_overfull(&LIMITS));
        let first = batch.take_within(&LIMITS);
        let ids: Vec<_> = first.records.iter().map(|r| r.event_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(
            first.next_offsets.into_iter().collect::<Vec<_>>(),
            [(0, 11), (1, 21)]
        );
        // Partition 1 stays for its dead-lettered message at 21, partition 0 and 2
        // for their events.
        let rest = batch.take_within(&LIMITS);
        let ids: Vec<_> = rest.records.iter().map(|r| r.event_id.as_str()).collect();
        assert_eq!(ids, ["c", "d"]);
        assert_eq!(
            rest.next_offsets.into_iter().collect::<Vec<_>>(),
            [(0, 13), (1, 22), (2, 32)]
        );
        assert!(batch.is_empty());
        assert_eq!(batch.bytes(), 0);
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
