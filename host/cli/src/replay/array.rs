//! Splits a JSON array into its elements as it streams in, so a multi-gigabyte export
//! is never held in memory: only one element at a time, up to [`MAX_RECORD_BYTES`].
//!
//! The splitter follows strings and brackets, not the full grammar: it finds where each
//! element ends (a comma or the closing `]` outside strings and nested brackets) and
//! leaves parsing the element to `serde_json`. So an element that is not valid JSON is
//! reported on its own and the next one is read; but an element that breaks the
//! *structure* (an unterminated string, a missing `]`) swallows the rest of the input,
//! which is then reported once as "not closed". Several arrays one after the other
//! (`[...] [...]`, or one array per line) are read as one sequence.

use std::io::{self, BufRead};

/// Longest line or array element read; longer ones are malformed. Segment's own limits
/// are far below it (32 KB per message, 500 KB per batch).
pub const MAX_RECORD_BYTES: usize = 16 << 20;

/// One element of the array, or what stood where an element should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// The line (1-based) the element starts on.
    pub line: u64,
    /// Its index in the input (1-based; across arrays, when there are several).
    pub index: u64,
    /// The element's text (trimmed), or why there is none.
    pub text: Result<Vec<u8>, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    /// Before an array (or between arrays): `[` or the end of input expected.
    Outside,
    /// Inside an array, where an element or `]` may come; `after_comma` when a comma
    /// was just read (then `]` is a trailing comma).
    Inside { after_comma: bool },
    /// Nothing more is read.
    Done,
}

/// How the scan of an element ended.
enum End {
    Comma,
    Close,
    Eof,
}

/// The splitter's position in the input.
#[derive(Debug)]
pub struct ArraySplitter {
    line: u64,
    index: u64,
    at: Where,
}

impl ArraySplitter {
    /// A splitter for input whose next byte is on line `line`.
    pub fn new(line: u64) -> ArraySplitter {
        ArraySplitter {
            line,
            index: 0,
            at: Where::Outside,
        }
    }

    /// The next element, `None` at the end of the input.
    pub fn next_element(&mut self, r: &mut dyn BufRead) -> io::Result<Option<Element>> {
        loop {
            match self.at {
                Where::Done => return Ok(None),
                Where::Outside => match self.skip_space(r)? {
                    None => {
                        self.at = Where::Done;
                        return Ok(None);
                    }
                    Some(b'[') => {
                        r.consume(1);
                        self.at = Where::Inside { after_comma: false };
                    }
                    Some(other) => {
                        self.at = Where::Done;
                        return Ok(Some(self.problem(format!(
                            "expected `[` (the input started as a JSON array), found `{}`; the rest of the input is skipped",
                            other.escape_ascii()
                        ))));
                    }
                },
                Where::Inside { after_comma } => match self.skip_space(r)? {
                    None => {
                        self.at = Where::Done;
                        return Ok(Some(self.problem(
                            "the array is not closed: the input ends before `]`".into(),
                        )));
                    }
                    Some(b']') => {
                        r.consume(1);
                        self.at = Where::Outside;
                        if after_comma {
                            return Ok(Some(self.problem("a comma before `]`".into())));
                        }
                    }
                    Some(_) => return self.element(r).map(Some),
                },
            }
        }
    }

    /// A problem in place of an element, counted as one.
    fn problem(&mut self, message: String) -> Element {
        self.index += 1;
        Element {
            line: self.line,
            index: self.index,
            text: Err(message),
        }
    }

    /// Skips whitespace, counting lines; the next byte, not consumed.
    fn skip_space(&mut self, r: &mut dyn BufRead) -> io::Result<Option<u8>> {
        loop {
            let buf = r.fill_buf()?;
            if buf.is_empty() {
                return Ok(None);
            }
            let n = buf
                .iter()
                .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                .count();
            self.line += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
            let next = buf.get(n).copied();
            r.consume(n);
            if next.is_some() {
                return Ok(next);
            }
        }
    }

    /// Reads one element, from its first byte to the comma or `]` after it.
    fn element(&mut self, r: &mut dyn BufRead) -> io::Result<Element> {
        let line = self.line;
        let mut text = Vec::new();
        let mut too_long = false;
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        let end = 'scan: loop {
            let buf = r.fill_buf()?;
            if buf.is_empty() {
                break End::Eof;
            }
            for (i, &b) in buf.iter().enumerate() {
                if b == b'\n' {
                    self.line += 1;
                }
                if in_string {
                    match (escaped, b) {
                        (true, _) => escaped = false,
                        (false, b'\\') => escaped = true,
                        (false, b'"') => in_string = false,
                        _ => {}
                    }
                } else {
                    let end = match b {
                        b'"' => {
                            in_string = true;
                            None
                        }
                        b'[' | b'{' => {
                            depth += 1;
                            None
                        }
                        b']' if depth == 0 => Some(End::Close),
                        b',' if depth == 0 => Some(End::Comma),
                        b']' | b'}' => {
                            depth = depth.saturating_sub(1);
                            None
                        }
                        _ => None,
                    };
                    if let Some(end) = end {
                        // Keep what came before the delimiter, then consume it too.
                        keep(&mut text, &mut too_long, &buf[..i]);
                        r.consume(i + 1);
                        break 'scan end;
                    }
                }
            }
            let n = buf.len();
            keep(&mut text, &mut too_long, &buf[..n]);
            r.consume(n);
        };
        self.index += 1;
        let text = match end {
            End::Eof => {
                self.at = Where::Done;
                Err("the array is not closed: the input ends inside this element".into())
            }
            _ if too_long => Err(format!(
                "longer than {} MiB; skipped",
                MAX_RECORD_BYTES >> 20
            )),
            _ => {
                let trimmed = text.trim_ascii();
                if trimmed.is_empty() {
                    Err("an empty element (two commas in a row?)".into())
                } else {
                    Ok(trimmed.to_vec())
                }
            }
        };
        self.at = match (end, self.at) {
            (_, Where::Done) => Where::Done,
            (End::Comma, _) => Where::Inside { after_comma: true },
            _ => Where::Outside,
        };
        Ok(Element {
            line,
            index: self.index,
            text,
        })
    }
}

/// Appends `bytes` unless the element has grown past the cap; past it, keeps nothing.
fn keep(text: &mut Vec<u8>, too_long: &mut bool, bytes: &[u8]) {
    if *too_long {
        return;
    }
    if text.len() + bytes.len() > MAX_RECORD_BYTES {
        *too_long = true;
        *text = Vec::new();
    } else {
        text.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every element of `input`, read through a tiny buffer so elements cross reads.
    fn split(input: &str) -> Vec<(u64, u64, Result<String, String>)> {
        let mut r = io::BufReader::with_capacity(3, input.as_bytes());
        let mut s = ArraySplitter::new(1);
        let mut out = Vec::new();
        while let Some(e) = s.next_element(&mut r).unwrap() {
            out.push((
                e.line,
                e.index,
                e.text.map(|t| String::from_utf8(t).unwrap()),
            ));
        }
        out
    }

    #[test]
    fn elements_with_their_lines_and_indexes() {
        let input = "[\n  {\"a\": \"x,]}\\\"\"},\n  {\"b\": [1, {\"c\": 2}]}\n]\n";
        assert_eq!(
            split(input),
            vec![
                (2, 1, Ok("{\"a\": \"x,]}\\\"\"}".into())),
                (3, 2, Ok("{\"b\": [1, {\"c\": 2}]}".into())),
            ]
        );
        assert_eq!(split("[]"), vec![]);
        assert_eq!(split("  \n [ ] \n"), vec![]);
    }

    #[test]
    fn several_arrays_read_as_one_sequence() {
        assert_eq!(
            split("[{\"a\":1}]\n[{\"b\":2},{\"c\":3}]\n"),
            vec![
                (1, 1, Ok("{\"a\":1}".into())),
                (2, 2, Ok("{\"b\":2}".into())),
                (2, 3, Ok("{\"c\":3}".into())),
            ]
        );
    }

    #[test]
    fn problems_are_elements_and_reading_goes_on_where_it_can() {
        let got = split("[{\"a\":1},,{\"b\":}, {\"c\":3},]");
        assert_eq!(got[0], (1, 1, Ok("{\"a\":1}".into())));
        assert_eq!(got[1].1, 2);
        assert!(got[1].2.as_ref().unwrap_err().contains("empty element"));
        // Not valid JSON, but its end is clear: handed on for the parser to refuse.
        assert_eq!(got[2], (1, 3, Ok("{\"b\":}".into())));
        assert_eq!(got[3], (1, 4, Ok("{\"c\":3}".into())));
        assert!(got[4].2.as_ref().unwrap_err().contains("comma before"));
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn an_unclosed_array_or_string_ends_the_input_with_one_problem() {
        let got = split("[{\"a\":1},\n{\"b\":\"never closed}]\n");
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].0, 2);
        assert!(got[1].2.as_ref().unwrap_err().contains("not closed"));
        let got = split("[{\"a\":1}, ");
        assert!(got[1].2.as_ref().unwrap_err().contains("not closed"));
        let got = split("[{\"a\":1}] garbage");
        assert!(got[1].2.as_ref().unwrap_err().contains("expected `[`"));
    }
}
