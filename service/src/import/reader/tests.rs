use std::io::{Cursor, Write};

use flate2::{write::GzEncoder, Compression};

use super::*;

const K8S_LINE: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"k-1","stage":"ResponseComplete","verb":"get","user":{"username":"alice"},"objectRef":{"resource":"pods","namespace":"a","name":"p"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2026-01-01T00:00:00Z"}"#;
const CT_RECORD: &str = r#"{"eventVersion":"1.08","eventID":"c-1","eventTime":"2026-01-01T00:00:00Z","eventSource":"iam.amazonaws.com","eventName":"GetUser","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a"}}"#;

fn records(input: &[u8], format: Format) -> Vec<Record> {
    Records::new(Cursor::new(input.to_vec()), "test", format)
        .unwrap()
        .map(|record| record.unwrap())
        .collect()
}

fn summary(records: &[Record]) -> Vec<(u64, String)> {
    records
        .iter()
        .map(|record| {
            let text = match &record.outcome {
                RecordOutcome::Event(event) => format!("event {}", event.event_id),
                RecordOutcome::Skipped(reason) => format!("skipped {reason}"),
                RecordOutcome::Invalid(error) => format!("invalid {error}"),
            };
            (record.line, text)
        })
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn lines_blank_and_invalid() {
    let input = format!("{K8S_LINE}\n\n   \n{{not json\n{CT_RECORD}\r\n{{\"x\":1}}");
    let summary = summary(&records(input.as_bytes(), Format::Auto));
    assert_eq!(summary.len(), 4);
    assert_eq!(summary[0], (1, "event k-1".to_owned()));
    assert_eq!(summary[1].0, 4);
    assert!(
        summary[1]
            .1
            .starts_with("invalid invalid JSON: key must be a string"),
        "{}",
        summary[1].1
    );
    assert_eq!(summary[2], (5, "event c-1".to_owned()));
    assert_eq!(summary[3].0, 6);
    assert!(
        summary[3].1.starts_with("invalid unrecognized record"),
        "{}",
        summary[3].1
    );
}

#[test]
fn gzip_is_detected_by_content() {
    let plain = format!("{K8S_LINE}\n{CT_RECORD}\n");
    let from_plain = summary(&records(plain.as_bytes(), Format::Auto));
    let from_gzip = summary(&records(&gzip(plain.as_bytes()), Format::Auto));
    assert_eq!(from_gzip, from_plain);
    assert_eq!(from_gzip.len(), 2);
}

#[test]
fn concatenated_gzip_members() {
    let mut input = gzip(format!("{K8S_LINE}\n").as_bytes());
    input.extend(gzip(format!("{CT_RECORD}\n").as_bytes()));
    let summary = summary(&records(&input, Format::Auto));
    assert_eq!(
        summary,
        [(1, "event k-1".to_owned()), (2, "event c-1".to_owned())]
    );
}

#[test]
fn truncated_gzip_is_a_read_error() {
    let lines: String = (0..200)
        .map(|i| K8S_LINE.replace("k-1", &format!("k-{i}")) + "\n")
        .collect();
    let compressed = gzip(lines.as_bytes());
    let truncated = compressed[..compressed.len() / 2].to_vec();
    let results: Vec<_> = Records::new(Cursor::new(truncated), "cut.gz", Format::Auto)
        .unwrap()
        .collect();
    let error = results.last().unwrap().as_ref().unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("failed to read cut.gz at line"),
        "{error}"
    );
    assert!(results[..results.len() - 1].iter().all(Result::is_ok));
}

#[test]
fn byte_order_mark_is_dropped() {
    let input = [&UTF8_BOM[..], K8S_LINE.as_bytes()].concat();
    assert_eq!(
        summary(&records(&input, Format::Auto)),
        [(1, "event k-1".to_owned())]
    );
}

#[test]
fn records_document_streamed_with_lines() {
    let input = format!(
        "{{\n  \"Records\": [\n    {CT_RECORD},\n    {}\n  ],\n  \"extra\": {{\"a\": [1]}}\n}}\n{K8S_LINE}\n",
        CT_RECORD.replace("c-1", "c-2")
    );
    let summary = summary(&records(input.as_bytes(), Format::Auto));
    assert_eq!(
        summary,
        [
            (3, "event c-1".to_owned()),
            (4, "event c-2".to_owned()),
            (8, "event k-1".to_owned())
        ]
    );
}

#[test]
fn records_document_gzipped_on_one_line() {
    let document = format!(
        "{{\"Records\":[{CT_RECORD},{}]}}",
        CT_RECORD.replace("c-1", "c-2")
    );
    let summary = summary(&records(&gzip(document.as_bytes()), Format::CloudTrail));
    assert_eq!(
        summary,
        [(1, "event c-1".to_owned()), (1, "event c-2".to_owned())]
    );
}

#[test]
fn records_document_after_other_lines_is_read_whole() {
    let document = format!("{{\"Records\":[{CT_RECORD}]}}");
    let input = format!("{K8S_LINE}\n{document}\n{document}\n");
    let summary = summary(&records(input.as_bytes(), Format::Auto));
    let lines: Vec<u64> = summary.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, [1, 2, 3]);
    assert!(
        summary.iter().all(|(_, text)| text.starts_with("event ")),
        "{summary:?}"
    );
}

#[test]
fn records_document_element_not_json() {
    let input = format!("{{\"Records\":[{CT_RECORD}, nope]}}\n{K8S_LINE}\n");
    let summary = summary(&records(input.as_bytes(), Format::Auto));
    assert_eq!(summary.len(), 3);
    assert_eq!(summary[0], (1, "event c-1".to_owned()));
    assert!(
        summary[1].1.starts_with("invalid invalid JSON"),
        "{}",
        summary[1].1
    );
    assert_eq!(summary[2], (2, "event k-1".to_owned()));
}

#[test]
fn records_document_unclosed() {
    let input = format!("{{\"Records\":[{CT_RECORD},");
    let summary = summary(&records(input.as_bytes(), Format::Auto));
    assert_eq!(summary.len(), 2);
    assert!(
        summary[1].1.contains("Records array is not closed"),
        "{}",
        summary[1].1
    );
}

#[test]
fn records_document_is_not_read_as_kubernetes() {
    let input = format!("{{\"Records\":[{CT_RECORD}]}}");
    let summary = summary(&records(input.as_bytes(), Format::Kubernetes));
    assert_eq!(summary.len(), 1);
    assert!(
        summary[0]
            .1
            .starts_with("invalid invalid record: missing stage"),
        "{}",
        summary[0].1
    );
}

#[test]
fn line_too_long_is_skipped() {
    let input = format!("{}\n{{\"eventId\":\"e-1\"}}\n", "x".repeat(100));
    let all: Vec<Record> = Records::new(Cursor::new(input.into_bytes()), "t", Format::Auto)
        .unwrap()
        .with_max_line_bytes(60)
        .map(Result::unwrap)
        .collect();
    let summary = summary(&all);
    assert_eq!(summary.len(), 2);
    assert_eq!(
        summary[0],
        (
            1,
            "invalid invalid line: longer than 60 bytes; write one record per line".to_owned()
        )
    );
    assert_eq!(summary[1], (2, "event e-1".to_owned()));
}

#[test]
fn empty_input() {
    assert!(records(b"", Format::Auto).is_empty());
    assert!(records(&gzip(b""), Format::Auto).is_empty());
}

#[test]
fn open_missing_file() {
    let error = super::super::open(std::path::Path::new("/nonexistent/audit.log"), Format::Auto)
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("failed to open /nonexistent/audit.log"),
        "{error}"
    );
}
