//! One replay input: opened from a file or stdin, decompressed when it starts with
//! gzip's magic bytes (whatever its name), read as NDJSON line by line or, when its
//! first non-space byte is `[`, as a JSON array element by element; each line or
//! element read as Segment delivers it (one message, `{"batch": [...]}` or an array of
//! messages, see [`segfn_engine::input::read_delivery`]), and numbered.
//!
//! Numbering is what resuming rests on: each event, and each malformed line or
//! element, takes the next *position* of its input (0, 1, 2, ...), in input order. The
//! same bytes always give the same positions, so a state that says "positions below
//! 1500 are done" means the same events on the next run. Blank lines take none.
//!
//! Memory stays bounded whatever the input's size: one line or element at a time, at
//! most [`MAX_RECORD_BYTES`]; a longer one is skipped without being held and reported
//! as malformed.

use super::array::{ArraySplitter, MAX_RECORD_BYTES};
use flate2::read::MultiGzDecoder;
use segfn_engine::input::{InputError, RawMessage, read_delivery};
use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// gzip's magic bytes (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// One item of an input: an event to send, or a line that could not be read.
#[derive(Debug)]
pub struct Record {
    /// The position in its input (see the [module](self)).
    pub pos: u64,
    /// The line (1-based) the line or array element starts on.
    pub line: u64,
    /// For a JSON array input, the element's index (1-based).
    pub element: Option<u64>,
    /// The event, or why the line is malformed.
    pub body: Body,
}

/// What a [`Record`] holds.
#[derive(Debug)]
pub enum Body {
    /// One event. For a line holding one message, its text is exactly the line's
    /// (trimmed); an event of a `{"batch": [...]}` line is its text in the batch with
    /// the batch's `sentAt` and `writeKey` added when it lacks them, as Segment's
    /// tracking API does.
    Event(Box<RawMessage>),
    /// The line or element is not a message, with the reason.
    Malformed(String),
}

/// The format an input was found to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Newline-delimited JSON.
    Lines,
    /// One JSON array (or several in a row).
    Array,
}

/// Counts the bytes read from the underlying file: for compressed input, what was
/// consumed of the compressed file, which is what its size is known in.
#[derive(Debug)]
pub struct Counted<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R> Counted<R> {
    /// Counts reads of `inner` into `count`.
    pub fn new(inner: R, count: Arc<AtomicU64>) -> Counted<R> {
        Counted { inner, count }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Whether `raw` is gzip, decided on its first two bytes; the stream to read either way
/// (the bytes looked at are put back in front).
pub fn decompress<R: Read + Send + 'static>(
    mut raw: R,
) -> io::Result<(Box<dyn Read + Send>, bool)> {
    let mut head = [0u8; 2];
    let mut n = 0;
    // A pipe may hand over one byte at a time.
    while n < head.len() {
        match raw.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let whole = io::Cursor::new(head[..n].to_vec()).chain(raw);
    if head[..n] == GZIP_MAGIC {
        // Multi-member: concatenated gzip files (`cat a.gz b.gz`) are one stream.
        Ok((Box::new(MultiGzDecoder::new(whole)), true))
    } else {
        Ok((Box::new(whole), false))
    }
}

/// The records of one input, in order.
pub struct Records {
    reader: Box<dyn BufRead + Send>,
    format: Format,
    /// For NDJSON: the number of the next line.
    line: u64,
    array: ArraySplitter,
    next_pos: u64,
    pending: VecDeque<Record>,
    ended: bool,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records")
            .field("format", &self.format)
            .field("line", &self.line)
            .field("next_pos", &self.next_pos)
            .finish_non_exhaustive()
    }
}

impl Records {
    /// Reads `raw` (compressed or not): finds its format from the first non-space byte.
    pub fn new<R: Read + Send + 'static>(raw: R) -> io::Result<Records> {
        let (plain, _) = decompress(raw)?;
        let mut reader: Box<dyn BufRead + Send> =
            Box::new(BufReader::with_capacity(64 << 10, plain));
        let (lines_before, first) = skip_leading_space(&mut reader)?;
        let line = 1 + lines_before;
        let format = if first == Some(b'[') {
            Format::Array
        } else {
            Format::Lines
        };
        Ok(Records {
            reader,
            format,
            line,
            array: ArraySplitter::new(line),
            next_pos: 0,
            pending: VecDeque::new(),
            ended: false,
        })
    }

    /// The format found.
    pub fn format(&self) -> Format {
        self.format
    }

    /// How many positions have been given out so far (all of them once the iterator
    /// has ended).
    pub fn positions(&self) -> u64 {
        self.next_pos
    }

    /// Turns one line's or element's bytes into records.
    fn push(&mut self, line: u64, element: Option<u64>, text: Result<&[u8], String>) {
        let mut add = |body| {
            self.pending.push_back(Record {
                pos: self.next_pos,
                line,
                element,
                body,
            });
            self.next_pos += 1;
        };
        match text.map(read_delivery) {
            Ok(Ok(delivery)) => {
                for message in delivery.messages {
                    add(Body::Event(Box::new(message)));
                }
            }
            Ok(Err(InputError::Utf8)) => add(Body::Malformed("not valid UTF-8".into())),
            Ok(Err(e)) => add(Body::Malformed(e.to_string())),
            Err(problem) => add(Body::Malformed(problem)),
        }
    }

    /// Reads the next line or element into `pending`; `false` at the end.
    fn fill(&mut self) -> io::Result<bool> {
        match self.format {
            Format::Array => {
                let Some(e) = self.array.next_element(&mut self.reader)? else {
                    return Ok(false);
                };
                self.push(
                    e.line,
                    Some(e.index),
                    e.text.as_deref().map_err(Clone::clone),
                );
                Ok(true)
            }
            Format::Lines => {
                let mut buf = Vec::new();
                let line = self.line;
                let read = read_line(&mut self.reader, &mut buf)?;
                match read {
                    LineRead::Eof => return Ok(false),
                    LineRead::Line => {
                        let text = buf.trim_ascii();
                        if !text.is_empty() {
                            let text = text.to_vec();
                            self.push(line, None, Ok(&text));
                        }
                    }
                    LineRead::TooLong => self.push(
                        line,
                        None,
                        Err(format!(
                            "longer than {} MiB; skipped",
                            MAX_RECORD_BYTES >> 20
                        )),
                    ),
                }
                self.line += 1;
                Ok(true)
            }
        }
    }
}

impl Iterator for Records {
    type Item = io::Result<Record>;

    fn next(&mut self) -> Option<io::Result<Record>> {
        loop {
            if let Some(record) = self.pending.pop_front() {
                return Some(Ok(record));
            }
            if self.ended {
                return None;
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) => self.ended = true,
                Err(e) => {
                    // A read error (a truncated or corrupt gzip stream) ends the input.
                    self.ended = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Consumes a UTF-8 byte order mark and whitespace; the number of newlines consumed
/// and the first other byte (not consumed).
fn skip_leading_space(r: &mut dyn BufRead) -> io::Result<(u64, Option<u8>)> {
    let mut newlines = 0;
    // Byte by byte: a read may hand over fewer than three bytes. (A start of EF BB
    // without BF is not JSON either way.)
    for mark in *b"\xEF\xBB\xBF" {
        match r.fill_buf()?.first() {
            Some(&b) if b == mark => r.consume(1),
            _ => break,
        }
    }
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok((newlines, None));
        }
        let n = buf
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .count();
        newlines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        let first = buf.get(n).copied();
        r.consume(n);
        if first.is_some() {
            return Ok((newlines, first));
        }
    }
}

/// How reading a line ended.
#[derive(Debug, PartialEq, Eq)]
enum LineRead {
    /// A line is in the buffer (without its newline).
    Line,
    /// The line was longer than [`MAX_RECORD_BYTES`]; it was consumed, not kept.
    TooLong,
    /// No more input.
    Eof,
}

/// Reads up to and including the next newline, keeping at most [`MAX_RECORD_BYTES`].
fn read_line(r: &mut dyn BufRead, buf: &mut Vec<u8>) -> io::Result<LineRead> {
    let mut too_long = false;
    let mut any = false;
    loop {
        let available = r.fill_buf()?;
        if available.is_empty() {
            return Ok(match (any, too_long) {
                (false, _) => LineRead::Eof,
                (true, true) => LineRead::TooLong,
                (true, false) => LineRead::Line,
            });
        }
        any = true;
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if !too_long {
            if buf.len() + chunk.len() > MAX_RECORD_BYTES {
                too_long = true;
                *buf = Vec::new();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(available.len());
        r.consume(used);
        if done.is_some() {
            return Ok(if too_long {
                LineRead::TooLong
            } else {
                LineRead::Line
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    /// pos, line, element, and the message's JSON or "!" + the error, of a record.
    type Seen = (u64, u64, Option<u64>, String);

    fn read(bytes: Vec<u8>) -> (Format, Vec<Seen>) {
        let records = Records::new(io::Cursor::new(bytes)).unwrap();
        let format = records.format();
        let all = records
            .map(|r| {
                let r = r.unwrap();
                let text = match r.body {
                    Body::Event(m) => m.json,
                    Body::Malformed(e) => format!("!{e}"),
                };
                (r.pos, r.line, r.element, text)
            })
            .collect();
        (format, all)
    }

    const NDJSON: &str = "{\"type\":\"track\",\"messageId\":\"a\"}\n\
        \n\
        not json\n\
        {\"batch\":[{\"type\":\"track\",\"messageId\":\"b\"},{\"type\":\"identify\",\"messageId\":\"c\"}],\"sentAt\":\"2024-01-01T00:00:00Z\"}\r\n\
        {\"batch\":[]}\n\
        42\n\
          {\"type\":\"page\", \"messageId\":\"d\"}  ";

    #[test]
    fn ndjson_lines_batches_and_malformed_lines_with_their_numbers() {
        let (format, got) = read(NDJSON.as_bytes().to_vec());
        assert_eq!(format, Format::Lines);
        let summary: Vec<(u64, u64)> = got.iter().map(|r| (r.0, r.1)).collect();
        // Positions count events and malformed lines; the blank line 2 takes none.
        assert_eq!(
            summary,
            [(0, 1), (1, 3), (2, 4), (3, 4), (4, 5), (5, 6), (6, 7)]
        );
        assert_eq!(got[0].3, "{\"type\":\"track\",\"messageId\":\"a\"}");
        assert!(got[1].3.starts_with("!not valid JSON"), "{}", got[1].3);
        // A batch's events get its sentAt, as the tracking API sets it.
        assert_eq!(
            got[2].3,
            "{\"type\":\"track\",\"messageId\":\"b\",\"sentAt\":\"2024-01-01T00:00:00Z\"}"
        );
        assert!(got[3].3.contains("\"identify\""));
        assert_eq!(got[4].3, "!the batch is empty");
        assert!(
            got[5].3.starts_with("!expected a Segment message"),
            "{}",
            got[5].3
        );
        // Trimmed, otherwise exactly as read.
        assert_eq!(got[6].3, "{\"type\":\"page\", \"messageId\":\"d\"}");
        assert!(got.iter().all(|r| r.2.is_none()));
    }

    #[test]
    fn gzip_is_found_by_its_magic_bytes_and_reads_the_same() {
        let plain = read(NDJSON.as_bytes().to_vec());
        let gz = read(gzip(NDJSON.as_bytes()));
        assert_eq!(plain, gz);
        // Concatenated members are one stream.
        let mut two = gzip(b"{\"type\":\"track\"}\n");
        two.extend(gzip(b"{\"type\":\"page\"}\n"));
        assert_eq!(read(two).1.len(), 2);
        // Not gzip although it starts with one of the magic bytes.
        assert_eq!(read(vec![0x1f]).1.len(), 1);
        let (_, flagged) = decompress(io::Cursor::new(gzip(b"x"))).unwrap();
        assert!(flagged);
        let (_, flagged) = decompress(io::Cursor::new(b"x".to_vec())).unwrap();
        assert!(!flagged);
    }

    #[test]
    fn a_truncated_gzip_stream_is_an_error_after_what_it_held() {
        let mut gz = gzip(NDJSON.repeat(50).as_bytes());
        gz.truncate(gz.len() - 20);
        let results: Vec<_> = Records::new(io::Cursor::new(gz)).unwrap().collect();
        assert!(results.last().unwrap().is_err());
        assert!(results.len() > 100);
    }

    #[test]
    fn a_json_array_with_lines_and_element_indexes() {
        let input = "\u{feff}\n[\n {\"type\":\"track\",\"messageId\":\"a\"},\n {\"type\":\n  \"page\"},\n {oops},\n {\"batch\":[{\"type\":\"track\"},{\"type\":\"track\"}]}\n]\n";
        let (format, got) = read(input.as_bytes().to_vec());
        assert_eq!(format, Format::Array);
        let summary: Vec<(u64, u64, Option<u64>)> = got.iter().map(|r| (r.0, r.1, r.2)).collect();
        assert_eq!(
            summary,
            [
                (0, 3, Some(1)),
                (1, 4, Some(2)),
                (2, 6, Some(3)),
                (3, 7, Some(4)),
                (4, 7, Some(4))
            ]
        );
        assert_eq!(got[1].3, "{\"type\":\n  \"page\"}");
        assert!(got[2].3.starts_with("!not valid JSON"));
    }

    #[test]
    fn long_lines_are_skipped_without_being_kept() {
        let mut input = b"{\"type\":\"track\"}\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES + 10));
        input.extend(b"\n{\"type\":\"page\"}\n");
        let (_, got) = read(input);
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[1].1, got[1].3.as_str()),
            (2, "!longer than 16 MiB; skipped")
        );
        assert_eq!(got[2].1, 3);
    }

    #[test]
    fn counted_counts_what_was_read_of_the_file() {
        let count = Arc::new(AtomicU64::new(0));
        let gz = gzip(NDJSON.as_bytes());
        let len = gz.len() as u64;
        let records = Records::new(Counted::new(io::Cursor::new(gz), count.clone())).unwrap();
        assert_eq!(records.count(), 7);
        assert_eq!(count.load(Ordering::Relaxed), len);
    }

    #[test]
    fn empty_input_has_no_records() {
        assert_eq!(read(Vec::new()).1.len(), 0);
        assert_eq!(read(b"\n\n  \n".to_vec()).1.len(), 0);
        assert_eq!(read(gzip(b"")).1.len(), 0);
    }
}
