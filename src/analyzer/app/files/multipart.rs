//! `multipart/*` bodies (RFC 2046) split into their parts, and the file name a part's
//! Content-Disposition gives.

use crate::analyzer::app::escape_bytes;
use crate::analyzer::app::text::trim_ws;

/// What the splitter found in the bytes it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PartEvent {
    /// A part's headers ended: its content follows. `content_range` is its Content-Range
    /// value (the parts of a `multipart/byteranges` body).
    Start {
        filename: Option<String>,
        content_range: Option<Vec<u8>>,
    },
    /// Content of the current part.
    Data(Vec<u8>),
    /// The current part ended (a delimiter, or the end of the body).
    End,
}

/// Where the splitter is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first delimiter.
    Preamble,
    /// Just after a delimiter: `--` (the last one) or the rest of its line.
    AfterDelimiter,
    Headers,
    Body,
    /// After the closing delimiter, or given up (a header block too long).
    Done,
}

/// Most bytes of one part's header block; a longer one ends the splitting.
const MAX_PART_HEADERS: usize = 16 * 1024;

/// Splits a `multipart/*` body (RFC 2046) into its parts as the bytes arrive, holding back
/// no more than a delimiter's length of content (or one part's header block): a part of
/// any size streams through. The preamble and epilogue are dropped; a part cut short by the
/// end of the body keeps what it has.
#[derive(Debug)]
pub(crate) struct MultipartSplitter {
    /// `\n--boundary`: a delimiter starts a line.
    delim: Vec<u8>,
    state: State,
    /// Bytes not yet decided on: a line of headers, or the tail of content that may begin a
    /// delimiter.
    buf: Vec<u8>,
    /// `buf[0]` is a line start that is not content (the body's start, a header block's
    /// end): it lets a delimiter match there.
    virtual_nl: bool,
    header_bytes: usize,
    filename: Option<String>,
    content_range: Option<Vec<u8>>,
}

impl MultipartSplitter {
    pub(crate) fn new(boundary: &[u8]) -> Self {
        let mut delim = b"\n--".to_vec();
        delim.extend_from_slice(boundary);
        MultipartSplitter {
            delim,
            state: State::Preamble,
            buf: b"\n".to_vec(),
            virtual_nl: true,
            header_bytes: 0,
            filename: None,
            content_range: None,
        }
    }

    fn find_delim(&self) -> Option<usize> {
        self.buf
            .windows(self.delim.len())
            .position(|w| w == self.delim.as_slice())
    }

    /// Content `buf[..end]` (without the virtual line start) as a Data event.
    fn emit(&mut self, end: usize, events: &mut Vec<PartEvent>) {
        let from = usize::from(self.virtual_nl).min(end);
        if end > from {
            events.push(PartEvent::Data(self.buf[from..end].to_vec()));
        }
        self.buf.drain(..end);
        if end > 0 {
            self.virtual_nl = false;
        }
    }

    /// Feeds body bytes; returns what they completed.
    pub(crate) fn feed(&mut self, data: &[u8]) -> Vec<PartEvent> {
        let mut events = Vec::new();
        if self.state == State::Done {
            return events;
        }
        self.buf.extend_from_slice(data);
        loop {
            match self.state {
                State::Done => {
                    self.buf = Vec::new();
                    break;
                }
                State::Preamble | State::Body => {
                    let body = self.state == State::Body;
                    match self.find_delim() {
                        Some(at) => {
                            if body {
                                // The CR of the CRLF before a delimiter is the delimiter's.
                                let end = if at > 0 && self.buf[at - 1] == b'\r' {
                                    at - 1
                                } else {
                                    at
                                };
                                self.emit(end, &mut events);
                                events.push(PartEvent::End);
                                self.buf.drain(..at - end);
                            } else {
                                self.buf.drain(..at);
                            }
                            self.buf.drain(..self.delim.len());
                            self.virtual_nl = false;
                            self.state = State::AfterDelimiter;
                        }
                        None => {
                            // Keep what could still begin a delimiter (and the CR before it).
                            let keep = self.delim.len();
                            let end = self.buf.len().saturating_sub(keep);
                            if body {
                                self.emit(end, &mut events);
                            } else if end > 0 {
                                self.buf.drain(..end);
                                self.virtual_nl = false;
                            }
                            break;
                        }
                    }
                }
                State::AfterDelimiter => {
                    if self.buf.len() < 2 {
                        break;
                    }
                    if self.buf.starts_with(b"--") {
                        self.state = State::Done;
                        continue;
                    }
                    let Some(nl) = self.buf.iter().position(|&b| b == b'\n') else {
                        if self.buf.len() > MAX_PART_HEADERS {
                            self.state = State::Done;
                        }
                        break;
                    };
                    self.buf.drain(..=nl);
                    self.state = State::Headers;
                    self.header_bytes = 0;
                    self.filename = None;
                    self.content_range = None;
                }
                State::Headers => {
                    let Some(nl) = self.buf.iter().position(|&b| b == b'\n') else {
                        if self.header_bytes + self.buf.len() > MAX_PART_HEADERS {
                            self.state = State::Done;
                        }
                        break;
                    };
                    let line: Vec<u8> = self.buf.drain(..=nl).collect();
                    self.header_bytes += line.len();
                    if self.header_bytes > MAX_PART_HEADERS {
                        self.state = State::Done;
                        continue;
                    }
                    let line = &line[..line.len() - 1];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if line.is_empty() {
                        events.push(PartEvent::Start {
                            filename: self.filename.take(),
                            content_range: self.content_range.take(),
                        });
                        // The header block's line end lets a delimiter follow at once.
                        self.buf.insert(0, b'\n');
                        self.virtual_nl = true;
                        self.state = State::Body;
                        continue;
                    }
                    if let Some(colon) = line.iter().position(|&b| b == b':') {
                        let (name, value) = (&line[..colon], &line[colon + 1..]);
                        if name.eq_ignore_ascii_case(b"content-disposition") {
                            self.filename = disposition_filename(value);
                        } else if name.eq_ignore_ascii_case(b"content-range") {
                            self.content_range = Some(value.to_vec());
                        }
                    }
                }
            }
        }
        events
    }

    /// The body ended: a part still open keeps what it has.
    pub(crate) fn finish(&mut self) -> Vec<PartEvent> {
        let mut events = Vec::new();
        if self.state == State::Body {
            let end = self.buf.len();
            self.emit(end, &mut events);
            events.push(PartEvent::End);
        }
        self.state = State::Done;
        self.buf = Vec::new();
        events
    }

    /// Bytes were lost: nothing after them can be framed.
    pub(crate) fn stop(&mut self) -> Vec<PartEvent> {
        self.finish()
    }
}

/// The `filename` parameter of a Content-Disposition header value.
pub(crate) fn disposition_filename(v: &[u8]) -> Option<String> {
    let lower = v.to_ascii_lowercase();
    let at = lower.windows(9).position(|w| w == b"filename=")?;
    let rest = &v[at + 9..];
    let name = if let Some(r) = rest.strip_prefix(b"\"") {
        &r[..r.iter().position(|&b| b == b'"').unwrap_or(r.len())]
    } else {
        &rest[..rest.iter().position(|&b| b == b';').unwrap_or(rest.len())]
    };
    Some(escape_bytes(trim_ws(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parts as (filename, content), feeding `body` in pieces of `step` bytes.
    fn split(body: &[u8], boundary: &[u8], step: usize) -> Vec<(Option<String>, Vec<u8>)> {
        let mut m = MultipartSplitter::new(boundary);
        let mut events = Vec::new();
        for piece in body.chunks(step.max(1)) {
            events.extend(m.feed(piece));
        }
        events.extend(m.finish());
        let mut parts = Vec::new();
        let mut open = false;
        for e in events {
            match e {
                PartEvent::Start { filename, .. } => {
                    assert!(!open, "a part starts inside another");
                    parts.push((filename, Vec::new()));
                    open = true;
                }
                PartEvent::Data(d) => {
                    assert!(open, "data outside a part");
                    parts.last_mut().unwrap().1.extend(d);
                }
                PartEvent::End => {
                    assert!(open, "an end outside a part");
                    open = false;
                }
            }
        }
        assert!(!open, "a part left open");
        parts
    }

    #[test]
    fn multipart_bodies_split_into_parts_however_they_arrive() {
        let body = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue one\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\r\n--XyZ\r\n\r\n\r\n--XyZ--\r\nepilogue --XyZ\r\n\r\nnot a part";
        let want = vec![
            (None, b"value one".to_vec()),
            (Some("x.png".to_string()), b"\x89PNG\r\n\x1a\n".to_vec()),
            (None, Vec::new()),
        ];
        for step in [1, 2, 3, 5, 7, 64, body.len()] {
            assert_eq!(split(body, b"XyZ", step), want, "step {step}");
        }
        assert!(split(b"no delimiter here", b"XyZ", 4).is_empty());
        // Cut short: the last part keeps what arrived; a delimiter may open the body.
        assert_eq!(
            split(b"--b\r\n\r\nabc", b"b", 2),
            vec![(None, b"abc".to_vec())]
        );
        // Content that only looks like a delimiter's start stays content.
        assert_eq!(
            split(b"--b\r\n\r\nx\r\n--bb\r\n-\r\n--b--", b"bb", 3),
            vec![]
        );
        assert_eq!(
            split(b"--bb\r\n\r\nx\r\n--b\r\n-\r\n--bb--", b"bb", 3),
            vec![(None, b"x\r\n--b\r\n-".to_vec())]
        );
    }

    #[test]
    fn a_large_part_streams_with_little_held_back() {
        let mut m = MultipartSplitter::new(b"B");
        let mut got = 0usize;
        m.feed(b"--B\r\nContent-Disposition: form-data; filename=\"big\"\r\n\r\n");
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..100 {
            for e in m.feed(&chunk) {
                if let PartEvent::Data(d) = e {
                    got += d.len();
                }
            }
            assert!(m.buf.len() <= 8, "held back {}", m.buf.len());
        }
        for e in m.feed(b"\r\n--B--\r\n") {
            if let PartEvent::Data(d) = e {
                got += d.len();
            }
        }
        assert_eq!(got, 100 * 64 * 1024);
    }
}
