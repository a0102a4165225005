//! The [`Records`] iterator: decompression, line splitting and dispatch to the mappers.

use std::io::{self, BufRead, Read};

use flate2::read::MultiGzDecoder;
use serde_json::Value;

use super::document::{self, Element};
use super::input::{Input, Stream};
use super::{detect, Format, ImportError, MapError, Record, RecordOutcome};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const UTF8_BOM: [u8; 3] = [0xef, 0xbb, 0xbf];

/// Maximum line length, in bytes. Kubernetes events logged at the RequestResponse level
/// carry whole objects and lists, so lines of many megabytes are normal. A longer line
/// is reported invalid and skipped without being held in memory.
const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// Capacity above which the line buffer is released after a long line.
const KEEP_BUFFER_BYTES: usize = 1024 * 1024;

/// Iterator over the records of one input, yielding each record or the I/O error that
/// ended the input. Records are read one at a time, so memory use follows the longest
/// record, not the file size.
pub struct Records {
    reader: Stream,
    name: String,
    format: Format,
    state: State,
    /// Records of a `{"Records":[...]}` document read whole from one line.
    pending: std::vec::IntoIter<Value>,
    pending_line: u64,
    line: Vec<u8>,
    max_line_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Lines,
    /// Inside the `Records` array of a CloudTrail document, streaming its elements.
    Array,
    Done,
}

impl Records {
    /// Reads records from `reader`; `name` (a path or `<stdin>`) appears in errors.
    /// Gzip compression, including several concatenated gzip members, is detected from
    /// the first bytes, and a UTF-8 byte order mark is dropped.
    ///
    /// # Errors
    ///
    /// Returns [`ImportError::Read`] when the first bytes cannot be read or decompressed.
    pub fn new<R>(reader: R, name: impl Into<String>, format: Format) -> Result<Self, ImportError>
    where
        R: Read + Send + 'static,
    {
        let name = name.into();
        let decoded = decompress(reader).map_err(|source| ImportError::Read {
            name: name.clone(),
            line: 1,
            source,
        })?;
        Ok(Records {
            reader: decoded,
            name,
            format,
            state: State::Lines,
            pending: Vec::new().into_iter(),
            pending_line: 0,
            line: Vec::new(),
            max_line_bytes: MAX_LINE_BYTES,
        })
    }

    fn next_record(&mut self) -> io::Result<Option<Record>> {
        loop {
            if let Some(value) = self.pending.next() {
                return Ok(Some(cloudtrail_record(self.pending_line, value)));
            }
            match self.state {
                State::Done => return Ok(None),
                State::Array => match document::next_element(&mut self.reader)? {
                    Element::Record(line, value) => {
                        return Ok(Some(cloudtrail_record(line, value)))
                    }
                    Element::Invalid(line, error) => {
                        // After text that is not JSON the next element cannot be found, so the rest
                        // of the line is skipped and reading goes on line by line.
                        document::skip_line(&mut self.reader)?;
                        self.state = State::Lines;
                        return Ok(Some(invalid(line, error)));
                    }
                    Element::End => self.state = State::Lines,
                },
                State::Lines => {
                    if self.reads_documents() && document::enter(&mut self.reader)? {
                        self.state = State::Array;
                        continue;
                    }
                    if let Some(record) = self.next_line()? {
                        return Ok(Some(record));
                    }
                }
            }
        }
    }

    /// Reads one line. Returns `None` for a blank line or a document line whose records
    /// are now pending, and sets [`State::Done`] at the end of the input.
    fn next_line(&mut self) -> io::Result<Option<Record>> {
        let number = self.reader.line() + 1;
        if self.line.capacity() > KEEP_BUFFER_BYTES {
            self.line = Vec::new();
        }
        self.line.clear();

        let limit = self.max_line_bytes as u64 + 1;
        if (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.line)?
            == 0
        {
            self.state = State::Done;
            return Ok(None);
        }
        if self.line.len() > self.max_line_bytes && self.line.last() != Some(&b'\n') {
            document::skip_line(&mut self.reader)?;
            let max = self.max_line_bytes;
            return Ok(Some(invalid(number, MapError::LineTooLong { max })));
        }
        if self.line.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }

        let value = match serde_json::from_slice::<Value>(&self.line) {
            Ok(value) => value,
            Err(error) => return Ok(Some(invalid(number, MapError::Json(error)))),
        };
        if let Some(records) = self.document_records(&value) {
            self.pending = records.into_iter();
            self.pending_line = number;
            return Ok(None);
        }
        let outcome = detect::map(value, self.format);
        Ok(Some(Record {
            line: number,
            outcome,
        }))
    }

    /// Returns the records of a whole CloudTrail document on one line, which happens
    /// when S3 log files are concatenated or the streaming check could not see the
    /// document's start.
    fn document_records(&self, value: &Value) -> Option<Vec<Value>> {
        if !self.reads_documents() {
            return None;
        }
        value.get("Records")?.as_array().cloned()
    }

    /// Only CloudTrail uses `{"Records":[...]}` documents; under other formats such a
    /// line is mapped like any other record and so reported invalid.
    fn reads_documents(&self) -> bool {
        matches!(self.format, Format::Auto | Format::CloudTrail)
    }

    #[cfg(test)]
    pub(crate) fn with_max_line_bytes(mut self, max: usize) -> Self {
        self.max_line_bytes = max;
        self
    }
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("line", &self.reader.line())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Iterator for Records {
    type Item = Result<Record, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_record() {
            Ok(record) => record.map(Ok),
            Err(source) => {
                self.state = State::Done;
                self.pending = Vec::new().into_iter();
                Some(Err(ImportError::Read {
                    name: self.name.clone(),
                    line: self.reader.line() + 1,
                    source,
                }))
            }
        }
    }
}

fn cloudtrail_record(line: u64, value: Value) -> Record {
    let outcome = detect::map(value, Format::CloudTrail);
    Record { line, outcome }
}

fn invalid(line: u64, error: MapError) -> Record {
    Record {
        line,
        outcome: RecordOutcome::Invalid(error),
    }
}

/// Wraps `reader` in a gzip decoder when it starts with the gzip magic bytes and drops
/// a leading UTF-8 byte order mark.
fn decompress<R: Read + Send + 'static>(reader: R) -> io::Result<Stream> {
    let mut raw = Input::new(reader);
    let is_gzip = raw.peek(GZIP_MAGIC.len())?.starts_with(&GZIP_MAGIC);
    let decoded: Box<dyn Read + Send> = if is_gzip {
        Box::new(MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let mut input = Input::new(decoded);
    if input.peek(UTF8_BOM.len())?.starts_with(&UTF8_BOM) {
        input.consume(UTF8_BOM.len());
    }
    Ok(input)
}

#[cfg(test)]
mod tests;
