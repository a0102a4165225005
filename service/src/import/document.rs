//! Streaming of a CloudTrail log file `{"Records":[...]}`: the array's elements are
//! parsed one at a time from the reader, so a document costs the memory of one record.

use std::io::{self, BufRead};

use serde::de::{Deserialize, IgnoredAny};
use serde_json::Value;

use super::input::Stream;
use super::MapError;

/// Bytes looked at for the opening `{"Records":[`, enough for pretty-printed files.
const OPENING_PEEK: usize = 256;

/// One step through the `Records` array.
pub(crate) enum Element {
    /// A record and the line where it starts.
    Record(u64, Value),
    /// Text that is not a JSON value, at the given line; the array cannot be followed
    /// past it.
    Invalid(u64, MapError),
    /// The array and its document are finished.
    End,
}

/// Consumes the opening `{"Records":[` when the input continues with it (spaces and
/// line breaks allowed) and returns true.
pub(crate) fn enter(reader: &mut Stream) -> io::Result<bool> {
    let Some(len) = opening_len(reader.peek(OPENING_PEEK)?) else {
        return Ok(false);
    };
    reader.consume(len);
    Ok(true)
}

fn opening_len(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    for token in [&b"{"[..], b"\"Records\"", b":", b"["] {
        at += bytes[at..]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        if !bytes[at..].starts_with(token) {
            return None;
        }
        at += token.len();
    }
    Some(at)
}

/// Reads the next element of the array.
pub(crate) fn next_element(reader: &mut Stream) -> io::Result<Element> {
    skip_separators(reader)?;
    let line = reader.line() + 1;
    match reader.fill_buf()?.first() {
        None => Ok(Element::Invalid(line, MapError::UnclosedRecords)),
        Some(b']') => {
            reader.consume(1);
            finish_document(reader)?;
            Ok(Element::End)
        }
        Some(_) => {
            let mut deserializer = serde_json::Deserializer::from_reader(&mut *reader);
            match Value::deserialize(&mut deserializer) {
                Ok(value) => Ok(Element::Record(line, value)),
                Err(error) if error.is_io() => Err(io::Error::other(error)),
                Err(error) => Ok(Element::Invalid(line, MapError::Json(error))),
            }
        }
    }
}

/// Consumes what follows the array up to the document's closing brace, including keys
/// other than `Records`. Anything unexpected is left for the line reader to report.
fn finish_document(reader: &mut Stream) -> io::Result<()> {
    loop {
        skip_separators(reader)?;
        match reader.fill_buf()?.first() {
            Some(b'}') => {
                reader.consume(1);
                return Ok(());
            }
            Some(b'"') => {
                let mut deserializer = serde_json::Deserializer::from_reader(&mut *reader);
                if String::deserialize(&mut deserializer).is_err() {
                    return Ok(());
                }
                skip_separators(reader)?;
                if reader.fill_buf()?.first() != Some(&b':') {
                    return Ok(());
                }
                reader.consume(1);
                let mut deserializer = serde_json::Deserializer::from_reader(&mut *reader);
                if IgnoredAny::deserialize(&mut deserializer).is_err() {
                    return Ok(());
                }
            }
            _ => return Ok(()),
        }
    }
}

/// Consumes whitespace and the commas between elements.
fn skip_separators(reader: &mut Stream) -> io::Result<()> {
    loop {
        let buffer = reader.fill_buf()?;
        let skip = buffer
            .iter()
            .take_while(|&&b| b.is_ascii_whitespace() || b == b',')
            .count();
        let whole_buffer = skip == buffer.len();
        if skip == 0 {
            return Ok(());
        }
        reader.consume(skip);
        if !whole_buffer {
            return Ok(());
        }
    }
}

/// Consumes the rest of the current line, including its line break.
pub(crate) fn skip_line(reader: &mut Stream) -> io::Result<()> {
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(());
        }
        if let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            reader.consume(end + 1);
            return Ok(());
        }
        let len = buffer.len();
        reader.consume(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_with_whitespace() {
        assert_eq!(opening_len(b"{\"Records\":["), Some(12));
        assert_eq!(opening_len(b" {\n  \"Records\" : [\n"), Some(18));
        assert_eq!(opening_len(b"{\"Records\":{"), None);
        assert_eq!(opening_len(b"{\"eventVersion\":\"1.08\"}"), None);
        assert_eq!(opening_len(b"{\"Rec"), None);
        assert_eq!(opening_len(b""), None);
    }
}
