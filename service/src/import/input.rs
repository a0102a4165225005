//! [`Input`]: a buffered reader that can look ahead a given number of bytes and counts
//! the lines it has consumed.

use std::io::{self, BufRead, ErrorKind, Read};

/// The decompressed input of an import.
pub(crate) type Stream = Input<Box<dyn Read + Send>>;

/// Bytes requested from the inner reader at a time.
const CHUNK: usize = 64 * 1024;

/// A buffered reader like [`std::io::BufReader`] with two additions. [`Input::peek`]
/// reads until `len` bytes are buffered, where a plain `fill_buf` may return a single
/// byte from a pipe. [`Input::line`] counts consumed line breaks, so a record is located
/// by line wherever a parser stopped reading.
pub(crate) struct Input<R> {
    inner: R,
    buffer: Vec<u8>,
    position: usize,
    newlines: u64,
}

impl<R: Read> Input<R> {
    pub(crate) fn new(inner: R) -> Self {
        Input {
            inner,
            buffer: Vec::new(),
            position: 0,
            newlines: 0,
        }
    }

    /// Returns the number of line breaks consumed so far.
    pub(crate) fn line(&self) -> u64 {
        self.newlines
    }

    /// Returns the buffered bytes after reading until at least `len` are buffered or the
    /// input ends.
    pub(crate) fn peek(&mut self, len: usize) -> io::Result<&[u8]> {
        while self.buffer.len() - self.position < len {
            if self.read_more(len)? == 0 {
                break;
            }
        }
        Ok(&self.buffer[self.position..])
    }

    /// Appends the next chunk of the inner reader to the buffer; returns its length,
    /// 0 at the end of the input.
    fn read_more(&mut self, min_len: usize) -> io::Result<usize> {
        self.buffer.drain(..self.position);
        self.position = 0;
        let start = self.buffer.len();
        self.buffer.resize(start + CHUNK.max(min_len), 0);
        let read = loop {
            match self.inner.read(&mut self.buffer[start..]) {
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                result => break result,
            }
        };
        self.buffer.truncate(start + *read.as_ref().unwrap_or(&0));
        read
    }
}

impl<R: Read> Read for Input<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let len = available.len().min(out.len());
        out[..len].copy_from_slice(&available[..len]);
        self.consume(len);
        Ok(len)
    }
}

impl<R: Read> BufRead for Input<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.position == self.buffer.len() {
            self.read_more(1)?;
        }
        Ok(&self.buffer[self.position..])
    }

    fn consume(&mut self, amount: usize) {
        let end = (self.position + amount).min(self.buffer.len());
        let consumed = &self.buffer[self.position..end];
        self.newlines += consumed.iter().filter(|&&b| b == b'\n').count() as u64;
        self.position = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns one byte per call, like a slow pipe.
    struct Trickle(Vec<u8>, usize);

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.1 == self.0.len() || out.is_empty() {
                return Ok(0);
            }
            out[0] = self.0[self.1];
            self.1 += 1;
            Ok(1)
        }
    }

    #[test]
    fn peek_reads_past_short_reads() {
        let mut input = Input::new(Trickle(b"{\"Records\":[]}".to_vec(), 0));
        assert_eq!(input.peek(12).unwrap(), b"{\"Records\":[");
        assert_eq!(input.peek(100).unwrap(), b"{\"Records\":[]}");
    }

    #[test]
    fn counts_consumed_lines() {
        let mut input = Input::new(&b"a\nb\nc"[..]);
        let mut line = Vec::new();
        input.read_until(b'\n', &mut line).unwrap();
        assert_eq!(input.line(), 1);
        let mut rest = String::new();
        input.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "b\nc");
        assert_eq!(input.line(), 2);
    }
}
