//! Conversion between [`EventRecord`] and the column values both stores use.

use crate::event::EventRecord;

/// A borrowed value for an insert placeholder.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Text(&'a str),
    Bytes(&'a [u8]),
    Int(i64),
    Time(i64),
}

/// Values of the events table's columns, in `sql::EVENT_COLUMNS` order; `hash` is the
/// record's content hash.
pub(crate) fn event_values<'a>(r: &'a EventRecord, hash: &'a [u8; 16]) -> [Value<'a>; 19] {
    use Value::{Bytes, Int, Text, Time};
    [
        Time(r.occurred_at_us),
        Text(&r.event_id),
        Text(&r.service),
        Text(&r.tenant),
        Text(&r.actor_id),
        Int(r.actor_type.into()),
        Text(&r.impersonator_id),
        Int(r.impersonator_type.into()),
        Text(&r.action),
        Int(r.action_type.into()),
        Text(&r.target_type),
        Text(&r.target_id),
        Int(r.result.into()),
        Text(&r.error_code),
        Text(&r.trace_id),
        Text(&r.span_id),
        Text(&r.request_id),
        Int(r.schema_version.into()),
        Bytes(hash),
    ]
}

/// Values of the details table's columns, in `sql::DETAIL_COLUMNS` order.
pub(crate) fn detail_values(r: &EventRecord) -> [Value<'_>; 9] {
    use Value::{Text, Time};
    [
        Time(r.occurred_at_us),
        Text(&r.event_id),
        Text(&r.actor_display_name),
        Text(&r.actor_ip),
        Text(&r.actor_user_agent),
        Text(&r.target_name),
        Text(&r.outcome_message),
        Text(&r.metadata_json),
        Text(&r.changes_json),
    ]
}

/// Column access that differs between the stores' row types.
pub(crate) trait ColumnReader {
    /// Reads a text column.
    fn text(&self, index: usize) -> Result<String, sqlx::Error>;
    /// Reads a small integer column.
    fn small_int(&self, index: usize) -> Result<i32, sqlx::Error>;
    /// Reads a time column as microseconds since the epoch.
    fn time_us(&self, index: usize) -> Result<i64, sqlx::Error>;
    /// Reads a binary column.
    fn bytes(&self, index: usize) -> Result<Vec<u8>, sqlx::Error>;
}

/// Decodes a row selected with the column list of `sql::SELECT_EVENT`.
pub(crate) fn decode_event(row: &impl ColumnReader) -> Result<EventRecord, sqlx::Error> {
    Ok(EventRecord {
        occurred_at_us: row.time_us(0)?,
        event_id: row.text(1)?,
        service: row.text(2)?,
        tenant: row.text(3)?,
        actor_id: row.text(4)?,
        actor_type: row.small_int(5)?,
        impersonator_id: row.text(6)?,
        impersonator_type: row.small_int(7)?,
        action: row.text(8)?,
        action_type: row.small_int(9)?,
        target_type: row.text(10)?,
        target_id: row.text(11)?,
        result: row.small_int(12)?,
        error_code: row.text(13)?,
        trace_id: row.text(14)?,
        span_id: row.text(15)?,
        request_id: row.text(16)?,
        schema_version: row.small_int(17)?,
        actor_display_name: row.text(18)?,
        actor_ip: row.text(19)?,
        actor_user_agent: row.text(20)?,
        target_name: row.text(21)?,
        outcome_message: row.text(22)?,
        metadata_json: row.text(23)?,
        changes_json: row.text(24)?,
    })
}

/// Splits `records` into chunks that each fit one INSERT of both tables: at most
/// `max_rows` rows and, unless a single record is larger, `max_bytes` bytes.
pub(crate) fn chunks(
    records: &[EventRecord],
    max_rows: usize,
    max_bytes: usize,
) -> impl Iterator<Item = &[EventRecord]> {
    let mut rest = records;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let mut end = 0;
        while end < rest.len() && end < max_rows {
            let len = rest[end].encoded_len();
            if end > 0 && bytes + len > max_bytes {
                break;
            }
            bytes += len;
            end += 1;
        }
        let (chunk, tail) = rest.split_at(end);
        rest = tail;
        Some(chunk)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(metadata_len: usize) -> EventRecord {
        // encoded_len counts 160 fixed bytes plus the text: 166 here before metadata.
        let mut record = crate::event::test_record("e");
        record.metadata_json = "x".repeat(metadata_len);
        record
    }

    #[test]
    fn chunks_respect_rows_and_bytes() {
        assert_eq!(record(834).encoded_len(), 1000);
        let records: Vec<_> = (0..10).map(|_| record(834)).collect();
        let sizes: Vec<_> = chunks(&records, 4, 2500).map(<[_]>::len).collect();
        assert_eq!(sizes, vec![2, 2, 2, 2, 2]);
        let sizes: Vec<_> = chunks(&records, 3, 1 << 20).map(<[_]>::len).collect();
        assert_eq!(sizes, vec![3, 3, 3, 1]);
    }

    #[test]
    fn oversized_record_gets_its_own_chunk() {
        let records = vec![record(10), record(5000), record(10)];
        let sizes: Vec<_> = chunks(&records, 100, 1000).map(<[_]>::len).collect();
        assert_eq!(sizes, vec![1, 1, 1]);
    }
}
