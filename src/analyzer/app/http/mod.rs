//! HTTP/1.x: a per-side message parser (start line, headers, body framed by Content-Length,
//! chunked encoding or connection close) feeding Zeek's request/response pairing, which
//! writes `http.log`, and a per-body file record, which writes `files.log`.
//!
//! Pairing follows Zeek's `base/protocols/http`: requests and responses are numbered
//! separately; the n-th response completes the n-th request (pipelining), a 1xx response
//! keeps the transaction open for the final one, and transactions still open when the
//! connection ends are logged by [`AppAnalyzer::finish`]. Line buffers are capped at
//! [`MAX_LINE`]; a side that exceeds it, or loses bytes where framing matters, stops being
//! parsed (with a weird) instead of guessing.
//!
//! Layout: `parser` reads start lines, header lines and header values, `consts` holds the
//! tables of Zeek's HTTP scripts, `log` the http.log row; this file is the per-side framing
//! and Zeek's semantics (`base/protocols/http/main.zeek`): pairing, what each header sets,
//! when a line is written.

mod consts;
mod log;
mod parser;

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::files::{
    disposition_filename, FileState, FuidGenerator, MultipartSplitter, PartEvent, RangeKey,
};
use super::text::contains;
use super::tunnel::Tunnel;
use super::{escape_bytes, AppAnalyzer, AppOutput, ConnInfo};
use crate::analyzer::log::{LogSink, Set, Time, Vector};
use consts::{HTTP_PORTS, KNOWN_METHODS, PROXY_HEADERS};
pub use log::{HttpRow, HTTP_SCHEMA};
pub(crate) use parser::looks_like_http;
use parser::{
    basic_credentials, multipart_boundary, parse_chunk_size, parse_content_range, trim_cr,
    unescape_uri, HeaderLine, RequestLine, RequestVersion, StatusLine,
};

/// Longest start line, header line or chunk-size line buffered before giving up on a side.
const MAX_LINE: usize = 64 * 1024;
/// Most header lines per message.
const MAX_HEADERS: usize = 1000;
/// Most header bytes kept per message.
const MAX_HEADER_BYTES: usize = 256 * 1024;
/// Open transactions per connection before the oldest are logged (Zeek:
/// `max_pending_requests`).
const MAX_PENDING: usize = 100;

/// How the rest of a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Exactly this many bytes remain.
    Length(u64),
    /// Chunked: expecting a chunk-size line.
    ChunkSize,
    /// Chunked: this many data bytes remain in the current chunk.
    ChunkData(u64),
    /// Chunked: expecting the CRLF after a chunk's data.
    ChunkEnd,
    /// Chunked: reading trailer lines until an empty one.
    Trailer,
    /// Everything until the connection closes.
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    StartLine,
    Headers,
    Body(Body),
    /// The reply to an HTTP/0.9 request, before its first byte: it has no status line nor
    /// headers, all the responder sends is its body.
    Http09Reply,
    /// Framing is lost (gap, oversized line, garbage): ignore the rest of this side.
    Lost,
}

/// Parser state of one direction.
#[derive(Debug)]
struct Side {
    phase: Phase,
    line: Vec<u8>,
    header_count: usize,
    /// Bytes of the current message's header lines, capped at [`MAX_HEADER_BYTES`].
    header_bytes: usize,
    /// Headers of the message being read, names uppercased.
    headers: Vec<(String, Vec<u8>)>,
    body_len: u64,
    file: Option<Box<FileState>>,
    /// A `multipart/*` body being collected: split into one file per part at its end.
    multipart: Option<Box<Multipart>>,
    /// A `206` body that is a piece of a ranged file (`files::RangeFiles`), instead of
    /// `file`.
    range: Option<RangePiece>,
    /// Last HTTP version seen on this side, for `HTTP_version_mismatch`.
    version: Option<String>,
}

impl Side {
    fn new() -> Self {
        Side {
            phase: Phase::StartLine,
            line: Vec::new(),
            header_count: 0,
            header_bytes: 0,
            headers: Vec::new(),
            body_len: 0,
            file: None,
            multipart: None,
            range: None,
            version: None,
        }
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// The body of a `206` reply to a range request: a piece of the file the client and URL
/// name, which outlives the message and the connection.
#[derive(Debug)]
struct RangePiece {
    key: RangeKey,
    /// Where the next body byte goes in the file.
    offset: u64,
    /// Whether the transaction lists the file already.
    listed: bool,
}

/// Most parts of one multipart body analyzed as files; later parts are not.
const MAX_PARTS: usize = 1000;

/// A multipart body being split: each non-empty part is a file, streamed as it arrives;
/// the parts of a `multipart/byteranges` response are ranges of one file.
#[derive(Debug)]
struct Multipart {
    splitter: MultipartSplitter,
    byteranges: Option<Byteranges>,
    /// The part being read: its file once it has content, its name until then.
    current: Option<FileState>,
    name: Option<Option<String>>,
    /// Parts done, logged with the message.
    done: Vec<FileState>,
}

/// The one file a `multipart/byteranges` response carries, its parts placed by their
/// Content-Range: bytes before a part's start are missing, bytes already seen are skipped.
#[derive(Debug, Default)]
struct Byteranges {
    file: Option<FileState>,
    /// Bytes of the current part to drop (they overlap what was delivered).
    skip: u64,
}

/// One http.log line under construction (Zeek's `HTTP::Info`).
#[derive(Debug, Clone, Default, PartialEq)]
struct HttpRecord {
    ts: f64,
    trans_depth: u64,
    method: Option<String>,
    host: Option<String>,
    uri: Option<String>,
    referrer: Option<String>,
    version: Option<String>,
    user_agent: Option<String>,
    origin: Option<String>,
    request_body_len: u64,
    response_body_len: u64,
    status_code: Option<u64>,
    status_msg: Option<String>,
    info_code: Option<u64>,
    info_msg: Option<String>,
    username: Option<String>,
    password: Option<String>,
    proxied: Option<Vec<String>>,
    /// The request asked for a range (Zeek's `range_request`): a `206` reply's body is a
    /// piece of a file named by the client and URL.
    range_request: bool,
    orig_files: EntityFiles,
    resp_files: EntityFiles,
}

/// The files of one side's entities, as http.log lists them: every fuid, and the file
/// names and MIME types of those that have one.
#[derive(Debug, Clone, Default, PartialEq)]
struct EntityFiles {
    fuids: Vec<String>,
    filenames: Vec<String>,
    mime_types: Vec<&'static str>,
}

impl EntityFiles {
    fn push(&mut self, file: &FileState) {
        self.push_id(file.fuid.clone());
        self.filenames.extend(file.filename.clone());
        self.mime_types.extend(file.mime());
    }

    /// A file known by its id only (a ranged file, still open elsewhere).
    fn push_id(&mut self, fuid: String) {
        self.fuids.push(fuid);
    }
}

/// An empty list is logged unset.
fn listed<T>(items: &[T]) -> Option<Vector<'_, T>> {
    (!items.is_empty()).then_some(Vector(items))
}

impl HttpRecord {
    /// Writes this transaction's http.log line.
    fn write(&self, conn: &ConnInfo, logs: &mut dyn LogSink) {
        logs.write(&HttpRow {
            ts: Time(self.ts),
            id: conn.id(),
            trans_depth: self.trans_depth,
            method: self.method.as_deref(),
            host: self.host.as_deref(),
            uri: self.uri.as_deref(),
            referrer: self.referrer.as_deref(),
            version: self.version.as_deref(),
            user_agent: self.user_agent.as_deref(),
            origin: self.origin.as_deref(),
            request_body_len: self.request_body_len,
            response_body_len: self.response_body_len,
            status_code: self.status_code,
            status_msg: self.status_msg.as_deref(),
            info_code: self.info_code,
            info_msg: self.info_msg.as_deref(),
            tags: Set(&[]),
            username: self.username.as_deref(),
            password: self.password.as_deref(),
            proxied: self.proxied.as_deref().map(Set),
            orig_fuids: listed(&self.orig_files.fuids),
            orig_filenames: listed(&self.orig_files.filenames),
            orig_mime_types: listed(&self.orig_files.mime_types),
            resp_fuids: listed(&self.resp_files.fuids),
            resp_filenames: listed(&self.resp_files.filenames),
            resp_mime_types: listed(&self.resp_files.mime_types),
        });
    }
}

/// The HTTP analyzer of one connection.
#[derive(Debug)]
pub struct HttpAnalyzer {
    sides: [Side; 2],
    saw_request: bool,
    saw_reply: bool,
    /// The responder port is one Zeek analyzes HTTP on without seeing a reply first.
    http_port: bool,
    pending: BTreeMap<u64, Box<HttpRecord>>,
    current_request: u64,
    current_response: u64,
    trans_depth: u64,
    /// Methods of requests not yet answered, oldest first: a reply to HEAD has no body.
    request_methods: std::collections::VecDeque<String>,
    /// Method of the request the response being read answers.
    response_method: Option<String>,
    fuids: FuidGenerator,
    /// After a `CONNECT` was answered 2xx: the protocol the proxy tunnel carries.
    tunnel: Option<Tunnel>,
}

impl Default for HttpAnalyzer {
    fn default() -> Self {
        Self::new()
    }
}

const ORIG: usize = 0;
const RESP: usize = 1;

impl HttpAnalyzer {
    pub fn new() -> Self {
        HttpAnalyzer {
            sides: [Side::new(), Side::new()],
            saw_request: false,
            saw_reply: false,
            http_port: false,
            pending: BTreeMap::new(),
            current_request: 0,
            current_response: 0,
            trans_depth: 0,
            request_methods: Default::default(),
            response_method: None,
            fuids: FuidGenerator::default(),
            tunnel: None,
        }
    }

    /// Zeek analyzes HTTP on its ports once a request parses; elsewhere its detection needs
    /// a request and a reply.
    fn confirmed(&self) -> bool {
        self.saw_request && (self.saw_reply || self.http_port)
    }

    /// Zeek's `set_state`: the record the current message of `side` belongs to.
    fn record(&mut self, ts: f64, side: usize) -> &mut HttpRecord {
        let key = if side == ORIG {
            self.current_request
        } else {
            self.current_response
        };
        let depth = &mut self.trans_depth;
        self.pending.entry(key).or_insert_with(|| {
            *depth += 1;
            Box::new(HttpRecord {
                ts,
                trans_depth: *depth,
                ..Default::default()
            })
        })
    }

    fn new_fuid(&mut self, conn: &ConnInfo) -> String {
        self.fuids.next(conn)
    }

    fn process(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        side: usize,
        mut data: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        while !data.is_empty() {
            match self.sides[side].phase {
                Phase::Lost => {
                    if let Some(t) = self.tunnel.as_mut() {
                        t.deliver(conn, ts, side == ORIG, data, out);
                    }
                    return;
                }
                Phase::Body(body) => {
                    let used = self.body_bytes(conn, ts, side, body, data, out);
                    data = &data[used..];
                }
                Phase::Http09Reply => self.http09_reply(ts, out),
                Phase::StartLine | Phase::Headers => {
                    let s = &mut self.sides[side];
                    let Some(nl) = data.iter().position(|&b| b == b'\n') else {
                        s.line.extend_from_slice(data);
                        if s.line.len() > MAX_LINE {
                            out.weirds.push(("HTTP_line_too_long", String::new()));
                            s.phase = Phase::Lost;
                            s.line = Vec::new();
                        }
                        return;
                    };
                    s.line.extend_from_slice(&data[..nl]);
                    data = &data[nl + 1..];
                    let line = std::mem::take(&mut s.line);
                    if line.len() > MAX_LINE {
                        out.weirds.push(("HTTP_line_too_long", String::new()));
                        s.phase = Phase::Lost;
                        return;
                    }
                    self.line(conn, ts, side, trim_cr(&line), out);
                }
            }
        }
    }

    fn line(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        side: usize,
        line: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        match self.sides[side].phase {
            Phase::StartLine => {
                // Blank lines between messages are tolerated (Zeek skips them).
                if line.iter().all(u8::is_ascii_whitespace) {
                    return;
                }
                if side == ORIG {
                    self.request_line(conn, ts, line, out);
                } else {
                    self.status_line(ts, line, out);
                }
            }
            Phase::Headers => {
                if line.is_empty() {
                    self.headers_done(conn, ts, side, out);
                    return;
                }
                let s = &mut self.sides[side];
                s.header_count += 1;
                s.header_bytes += line.len();
                if s.header_count > MAX_HEADERS || s.header_bytes > MAX_HEADER_BYTES {
                    out.weirds.push(("HTTP_too_many_headers", String::new()));
                    s.phase = Phase::Lost;
                    s.headers = Vec::new();
                    return;
                }
                match HeaderLine::parse(line) {
                    HeaderLine::Continuation(more) => {
                        if let Some((_, v)) = s.headers.last_mut() {
                            v.push(b' ');
                            v.extend_from_slice(more);
                        }
                    }
                    HeaderLine::Field { name, value } => s.headers.push((name, value.to_vec())),
                    HeaderLine::NoColon => {
                        out.weirds.push(("HTTP_header_no_colon", String::new()));
                    }
                }
            }
            Phase::Body(Body::ChunkSize) => {
                let s = &mut self.sides[side];
                match parse_chunk_size(line) {
                    Some(0) => s.phase = Phase::Body(Body::Trailer),
                    Some(n) => s.phase = Phase::Body(Body::ChunkData(n)),
                    None => {
                        out.weirds.push(("HTTP_bad_chunk_size", String::new()));
                        s.phase = Phase::Lost;
                    }
                }
            }
            Phase::Body(Body::ChunkEnd) => {
                self.sides[side].phase = Phase::Body(Body::ChunkSize);
                if !line.is_empty() {
                    // Data where CRLF was expected: treat it as the next size line.
                    self.line(conn, ts, side, line, out);
                }
            }
            Phase::Body(Body::Trailer) => {
                if line.is_empty() {
                    self.message_done(conn, ts, side, out);
                }
            }
            Phase::Body(_) | Phase::Http09Reply | Phase::Lost => {}
        }
    }

    fn request_line(&mut self, conn: &ConnInfo, ts: f64, line: &[u8], out: &mut AppOutput<'_>) {
        let request = match RequestLine::parse(line) {
            Ok(r) => r,
            Err(bad) => {
                out.weirds.push((bad.weird(), String::new()));
                self.sides[ORIG].phase = Phase::Lost;
                return;
            }
        };
        if request.lowercase_keyword {
            out.weirds.push(("lowercase_HTTP_keyword", String::new()));
        }
        if request.missing_uri {
            out.weirds.push(("missing_HTTP_uri", String::new()));
        }
        let RequestLine {
            method,
            uri,
            version,
            ..
        } = request;
        self.saw_request = true;
        let method = String::from_utf8_lossy(method).into_owned();
        let http09 = version == RequestVersion::Http09;
        let version = match &version {
            RequestVersion::Given(v) => Some(v.as_str()),
            RequestVersion::Http09 => Some("0.9"),
            RequestVersion::Bad => None,
        };
        self.check_version(ORIG, version, out);
        if self.current_request < self.current_response {
            out.weirds
                .push(("HTTP_response_before_request", String::new()));
            self.current_request = self.current_response;
        }
        self.current_request += 1;
        let uri = escape_bytes(&unescape_uri(uri, out.weirds));
        if http09 && method != "GET" {
            out.weirds
                .push(("invalid_http_09_request_method", method.clone()));
        }
        if !KNOWN_METHODS.contains(&method.as_str()) {
            out.weirds.push(("unknown_HTTP_method", method.clone()));
        }
        if self.request_methods.len() >= MAX_PENDING {
            // Responses stopped coming (one-sided capture): forget the oldest.
            self.request_methods.pop_front();
        }
        self.request_methods.push_back(method.clone());
        let rec = self.record(ts, ORIG);
        rec.method = Some(method);
        rec.uri = Some(uri);
        let s = &mut self.sides[ORIG];
        s.phase = Phase::Headers;
        s.headers.clear();
        s.header_count = 0;
        s.header_bytes = 0;
        if http09 {
            if matches!(self.sides[RESP].phase, Phase::Headers | Phase::Body(_)) {
                out.weirds
                    .push(("http_09_reply_before_request", String::new()));
                self.message_done(conn, ts, RESP, out);
            }
            self.sides[RESP].phase = Phase::Http09Reply;
        }
    }

    /// The first bytes of the reply to an HTTP/0.9 request: its transaction gets Zeek's
    /// version 0.9, status 0 and `<empty>` message, and everything is body until the end.
    fn http09_reply(&mut self, ts: f64, out: &mut AppOutput<'_>) {
        self.saw_reply = true;
        self.check_version(RESP, Some("0.9"), out);
        self.current_response += 1;
        self.response_method = self.request_methods.pop_front();
        let rec = self.record(ts, RESP);
        rec.status_code = Some(0);
        rec.status_msg = Some("<empty>".to_owned());
        rec.version = Some("0.9".to_owned());
        let s = &mut self.sides[RESP];
        s.headers.clear();
        s.body_len = 0;
        s.phase = Phase::Body(Body::UntilClose);
    }

    fn status_line(&mut self, ts: f64, line: &[u8], out: &mut AppOutput<'_>) {
        let Some(StatusLine {
            version,
            code,
            reason,
        }) = StatusLine::parse(line)
        else {
            out.weirds.push(("bad_HTTP_reply", String::new()));
            self.sides[RESP].phase = Phase::Lost;
            return;
        };
        self.saw_reply = true;
        let reason = escape_bytes(reason);
        self.check_version(RESP, Some(&version), out);
        let reuse = self
            .pending
            .get(&self.current_response)
            .is_some_and(|r| r.status_code.is_none_or(|c| (100..200).contains(&c)));
        if !reuse {
            self.current_response += 1;
            self.response_method = self.request_methods.pop_front();
        }
        let rec = self.record(ts, RESP);
        rec.status_code = Some(code);
        rec.status_msg = Some(reason.clone());
        rec.version = Some(version);
        if (100..200).contains(&code) {
            rec.info_code = Some(code);
            rec.info_msg = Some(reason);
        }
        let s = &mut self.sides[RESP];
        s.phase = Phase::Headers;
        s.headers.clear();
        s.header_count = 0;
        s.header_bytes = 0;
    }

    fn check_version(&mut self, side: usize, version: Option<&str>, out: &mut AppOutput<'_>) {
        let Some(v) = version else { return };
        let s = &mut self.sides[side];
        if s.version.as_deref().is_some_and(|old| old != v) {
            out.weirds.push(("HTTP_version_mismatch", String::new()));
        }
        s.version = Some(v.to_owned());
    }

    fn headers_done(&mut self, conn: &ConnInfo, ts: f64, side: usize, out: &mut AppOutput<'_>) {
        let headers = std::mem::take(&mut self.sides[side].headers);
        let rec = self.record(ts, side);
        let lossy = |v: &[u8]| escape_bytes(v);
        if side == ORIG {
            for (name, value) in &headers {
                match name.as_str() {
                    "REFERER" => rec.referrer = Some(lossy(value)),
                    "HOST" => rec.host = Some(lossy(value)),
                    "RANGE" => rec.range_request = true,
                    "ORIGIN" => rec.origin = Some(lossy(value)),
                    "USER-AGENT" => rec.user_agent = Some(lossy(value)),
                    "AUTHORIZATION" | "PROXY-AUTHORIZATION" => {
                        if let Some(decoded) = basic_credentials(value) {
                            // Zeek keeps passwords out of the log unless configured
                            // (`HTTP::default_capture_password = F`); credentials without a
                            // colon (or undecodable ones) are logged as
                            // `<problem-decoding> (<header value>)`.
                            rec.username = Some(match decoded.iter().position(|&b| b == b':') {
                                Some(i) => lossy(&decoded[..i]),
                                None => format!("<problem-decoding> ({})", lossy(value)),
                            });
                        }
                    }
                    n if PROXY_HEADERS.contains(&n) => {
                        let entry = format!("{n} -> {}", lossy(value));
                        let set = rec.proxied.get_or_insert_with(Vec::new);
                        if !set.contains(&entry) {
                            set.push(entry);
                        }
                    }
                    _ => {}
                }
            }
        }
        self.sides[side].headers = headers;
        let s = &self.sides[side];
        let chunked = s
            .header("TRANSFER-ENCODING")
            .is_some_and(|v| contains(&v.to_ascii_lowercase(), b"chunked"));
        let length = s
            .header("CONTENT-LENGTH")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if side == RESP {
            let code = self
                .pending
                .get(&self.current_response)
                .and_then(|r| r.status_code);
            let connect = self.response_method.as_deref() == Some("CONNECT");
            let tunnel =
                code == Some(101) || (connect && code.is_some_and(|c| (200..300).contains(&c)));
            if tunnel {
                // The connection now carries another protocol (upgrade or proxy tunnel):
                // the open transaction is logged at the end, as Zeek does.
                if code != Some(101) {
                    self.message_done(conn, ts, side, out);
                    // Zeek looks for the tunnel's protocol afresh.
                    self.tunnel = Some(Tunnel::default());
                }
                self.sides[ORIG].phase = Phase::Lost;
                self.sides[RESP].phase = Phase::Lost;
                return;
            }
        }
        let body = if side == ORIG {
            if chunked {
                Some(Body::ChunkSize)
            } else {
                length.filter(|&n| n > 0).map(Body::Length)
            }
        } else {
            let code = self
                .pending
                .get(&self.current_response)
                .and_then(|r| r.status_code)
                .unwrap_or(200);
            let head = self.response_method.as_deref() == Some("HEAD");
            if head || (100..200).contains(&code) || code == 204 || code == 304 {
                None
            } else if chunked {
                Some(Body::ChunkSize)
            } else {
                match length {
                    Some(0) => None,
                    Some(n) => Some(Body::Length(n)),
                    None => Some(Body::UntilClose),
                }
            }
        };
        match body {
            None => self.message_done(conn, ts, side, out),
            Some(b) => {
                let s = &mut self.sides[side];
                s.phase = Phase::Body(b);
                s.body_len = 0;
            }
        }
    }

    /// Consumes body bytes from `data` for the current framing; returns how many were used.
    fn body_bytes(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        side: usize,
        body: Body,
        data: &[u8],
        out: &mut AppOutput<'_>,
    ) -> usize {
        match body {
            Body::Length(n) | Body::ChunkData(n) => {
                let take = (data.len() as u64).min(n) as usize;
                self.body_data(conn, ts, side, &data[..take], out);
                let left = n - take as u64;
                let s = &mut self.sides[side];
                match (body, left) {
                    (Body::Length(_), 0) => self.message_done(conn, ts, side, out),
                    (Body::Length(_), _) => s.phase = Phase::Body(Body::Length(left)),
                    (_, 0) => s.phase = Phase::Body(Body::ChunkEnd),
                    _ => s.phase = Phase::Body(Body::ChunkData(left)),
                }
                take
            }
            Body::UntilClose => {
                self.body_data(conn, ts, side, data, out);
                data.len()
            }
            Body::ChunkSize | Body::ChunkEnd | Body::Trailer => {
                // Line-oriented parts of chunked framing.
                let s = &mut self.sides[side];
                let Some(nl) = data.iter().position(|&b| b == b'\n') else {
                    s.line.extend_from_slice(data);
                    if s.line.len() > MAX_LINE {
                        out.weirds
                            .push(("HTTP_chunked_transfer_for_multipart_message", String::new()));
                        s.phase = Phase::Lost;
                        s.line = Vec::new();
                    }
                    return data.len();
                };
                s.line.extend_from_slice(&data[..nl]);
                let line = std::mem::take(&mut s.line);
                self.line(conn, ts, side, trim_cr(&line), out);
                nl + 1
            }
        }
    }

    fn body_data(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        side: usize,
        data: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        if data.is_empty() {
            return;
        }
        let s = &mut self.sides[side];
        if s.file.is_none() && s.multipart.is_none() && s.range.is_none() {
            if let Some(boundary) = s.header("CONTENT-TYPE").and_then(multipart_boundary) {
                let byteranges = s.header("CONTENT-TYPE").is_some_and(|t| {
                    t.trim_ascii_start()
                        .to_ascii_lowercase()
                        .starts_with(b"multipart/byteranges")
                });
                s.multipart = Some(Box::new(Multipart {
                    byteranges: byteranges.then(Byteranges::default),
                    splitter: MultipartSplitter::new(&boundary),
                    current: None,
                    name: None,
                    done: Vec::new(),
                }));
            }
        }
        if let Some(mut m) = s.multipart.take() {
            s.body_len += data.len() as u64;
            let events = m.splitter.feed(data);
            self.parts(conn, ts, &mut m, events, out.weirds);
            self.sides[side].multipart = Some(m);
            return;
        }
        if self.sides[side].file.is_none() && self.sides[side].range.is_none() {
            match self.range_piece(conn, side) {
                Some(piece) => self.sides[side].range = Some(piece),
                None => {
                    let file = self.new_file(conn, ts, side);
                    self.sides[side].file = Some(Box::new(file));
                }
            }
        }
        if self.sides[side].range.is_some() {
            self.range_data(conn, ts, side, data, out);
            return;
        }
        let s = &mut self.sides[side];
        if let Some(f) = s.file.as_mut() {
            let before = f.seen();
            f.data(ts, data, out.weirds);
            s.body_len += f.seen() - before;
        }
    }

    /// The file of the body starting on `side` (not a ranged one).
    fn new_file(&mut self, conn: &ConnInfo, ts: f64, side: usize) -> FileState {
        let fuid = self.new_fuid(conn);
        let code = self
            .pending
            .get(&self.current_response)
            .and_then(|r| r.status_code);
        let s = &self.sides[side];
        let range = s.header("CONTENT-RANGE").map(parse_content_range);
        let filename = s
            .header("CONTENT-DISPOSITION")
            .and_then(disposition_filename);
        // Sizes on the wire say nothing of a decoded file's size: Zeek sets none then.
        let encoded = s.header("CONTENT-ENCODING").is_some_and(|e| {
            let e = e.trim_ascii().to_ascii_lowercase();
            matches!(e.as_slice(), b"gzip" | b"x-gzip" | b"deflate")
        });
        let total = match range {
            _ if encoded => None,
            Some(Some((_, total))) => total,
            _ => s
                .header("CONTENT-LENGTH")
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.trim().parse().ok()),
        };
        let no_bof = side == RESP && code == Some(206) && !matches!(range, Some(Some((0, _))));
        FileState::new("HTTP", fuid, ts)
            .content_encoding(s.header("CONTENT-ENCODING"))
            .without_bof(no_bof)
            .named(filename)
            .sized(total)
    }

    /// The piece of a ranged file the starting body on `side` is, if it is one: a `206`
    /// reply with a `Content-Range` to a request that asked for a range, its body not
    /// content-encoded (Zeek's `get_file_handle` of `base/protocols/http/files.zeek`).
    fn range_piece(&self, conn: &ConnInfo, side: usize) -> Option<RangePiece> {
        if side != RESP {
            return None;
        }
        let rec = self.pending.get(&self.current_response)?;
        if rec.status_code != Some(206) || !rec.range_request {
            return None;
        }
        let s = &self.sides[side];
        if s.header("CONTENT-ENCODING").is_some() {
            return None;
        }
        let (offset, _) = s.header("CONTENT-RANGE").and_then(parse_content_range)?;
        // Zeek's `HTTP::build_url`: host (or the responder's address), the port unless 80,
        // then the URI.
        let mut url = match &rec.host {
            Some(host) => host.clone(),
            None => match conn.resp_h {
                IpAddr::V6(a) => format!("[{a}]"),
                a => a.to_string(),
            },
        };
        if conn.resp_p != 80 {
            url.push_str(&format!(":{}", conn.resp_p));
        }
        url.push_str(rec.uri.as_deref().unwrap_or("/<missed_request>"));
        Some(RangePiece {
            key: RangeKey {
                client: conn.orig_h,
                url,
            },
            offset,
            listed: false,
        })
    }

    /// Body bytes of a ranged file's piece.
    fn range_data(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        side: usize,
        data: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        let Some(mut piece) = self.sides[side].range.take() else {
            return;
        };
        let files = &mut out.shared.range_files;
        if !files.is_open(&piece.key) {
            let file = self.new_file(conn, ts, side);
            files.open(piece.key.clone(), file, out.logs);
        }
        // Listed before the piece goes in: the piece may complete the file and end it.
        if !std::mem::replace(&mut piece.listed, true) {
            if let Some(fuid) = files.fuid(&piece.key) {
                let fuid = fuid.to_owned();
                self.record(ts, side).resp_files.push_id(fuid);
            }
        }
        let files = &mut out.shared.range_files;
        files.piece(
            &piece.key,
            conn,
            ts,
            piece.offset,
            data,
            out.weirds,
            out.logs,
        );
        piece.offset = piece.offset.saturating_add(data.len() as u64);
        let s = &mut self.sides[side];
        s.body_len += data.len() as u64;
        s.range = Some(piece);
    }

    /// The parts of a `multipart/byteranges` body into its one file (Zeek gives the ranges of
    /// a file one fuid): a range past what was delivered leaves the bytes before it missing
    /// (from offset 0 for the first), one that overlaps is skipped as far as it does.
    fn ranges(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        r: &mut Byteranges,
        events: Vec<PartEvent>,
        weirds: &mut Vec<(&'static str, String)>,
    ) {
        for event in events {
            match event {
                PartEvent::Start { content_range, .. } => {
                    let range = content_range.as_deref().and_then(parse_content_range);
                    let Some((start, total)) = range else {
                        // A part that does not say where it goes cannot be placed.
                        r.skip = u64::MAX;
                        continue;
                    };
                    if r.file.is_none() {
                        let fuid = self.new_fuid(conn);
                        r.file = Some(
                            FileState::new("HTTP", fuid, ts)
                                .without_bof(start != 0)
                                .sized(total),
                        );
                    }
                    let Some(f) = r.file.as_mut() else { continue };
                    let offset = f.seen().saturating_add(f.missing());
                    if start > offset {
                        f.gap(start - offset);
                        r.skip = 0;
                    } else {
                        r.skip = offset - start;
                    }
                }
                PartEvent::Data(bytes) => {
                    let Some(f) = r.file.as_mut() else { continue };
                    let skip = usize::try_from(r.skip)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    r.skip -= skip as u64;
                    f.data(ts, &bytes[skip..], weirds);
                }
                PartEvent::End => r.skip = 0,
            }
        }
    }

    /// Bytes of a multipart body were lost: the part being read keeps what it had and counts
    /// them missing; no later part can be framed.
    fn multipart_gap(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        side: usize,
        len: u64,
        weirds: &mut Vec<(&'static str, String)>,
    ) {
        let Some(mut m) = self.sides[side].multipart.take() else {
            return;
        };
        let mut events = m.splitter.stop();
        let ended = events.last() == Some(&PartEvent::End);
        if ended {
            events.pop();
        }
        self.parts(conn, ts, &mut m, events, weirds);
        if let Some(f) = m.current.as_mut() {
            f.gap(len);
        }
        if let Some(f) = m.byteranges.as_mut().and_then(|r| r.file.as_mut()) {
            f.gap(len);
        }
        if ended {
            self.parts(conn, ts, &mut m, vec![PartEvent::End], weirds);
        }
        self.sides[side].multipart = Some(m);
    }

    /// Applies what the multipart splitter found: a file per non-empty part.
    fn parts(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        m: &mut Multipart,
        events: Vec<PartEvent>,
        weirds: &mut Vec<(&'static str, String)>,
    ) {
        if let Some(ranges) = m.byteranges.as_mut() {
            self.ranges(conn, ts, ranges, events, weirds);
            return;
        }
        for event in events {
            match event {
                PartEvent::Start { filename, .. } => m.name = Some(filename),
                PartEvent::Data(bytes) => {
                    if m.current.is_none() {
                        let Some(name) = m.name.take() else { continue };
                        if m.done.len() >= MAX_PARTS {
                            continue;
                        }
                        let fuid = self.new_fuid(conn);
                        m.current = Some(FileState::new("HTTP", fuid, ts).named(name));
                    }
                    if let Some(f) = m.current.as_mut() {
                        f.data(ts, &bytes, weirds);
                    }
                }
                PartEvent::End => {
                    m.name = None;
                    // Zeek analyzes every non-empty MIME part as a file of its own.
                    if let Some(mut f) = m.current.take() {
                        f.end();
                        m.done.push(f);
                    }
                }
            }
        }
    }

    /// End of one message on `side`: record body length and files; a final response logs
    /// its transaction.
    fn message_done(&mut self, conn: &ConnInfo, ts: f64, side: usize, out: &mut AppOutput<'_>) {
        let s = &mut self.sides[side];
        let mut file = s.file.take();
        if let Some(f) = file.as_mut() {
            // Flushing the decoder may release the last decoded bytes.
            let before = f.seen();
            f.end();
            s.body_len += f.seen() - before;
        }
        let multipart = s.multipart.take();
        s.range = None;
        let body_len = s.body_len;
        s.body_len = 0;
        s.phase = Phase::StartLine;
        s.headers.clear();
        s.header_count = 0;
        s.header_bytes = 0;
        let mut files: Vec<FileState> = file.map(|f| *f).into_iter().collect();
        if let Some(mut m) = multipart {
            let events = m.splitter.finish();
            self.parts(conn, ts, &mut m, events, out.weirds);
            files.extend(m.done);
            if let Some(mut f) = m.byteranges.and_then(|r| r.file) {
                f.end();
                files.push(f);
            }
        }
        let rec = self.record(ts, side);
        if side == ORIG {
            rec.request_body_len = body_len;
        } else {
            rec.response_body_len = body_len;
        }
        for f in files {
            if side == ORIG {
                rec.orig_files.push(&f);
            } else {
                rec.resp_files.push(&f);
            }
            f.write_log(conn, side == ORIG, out.logs);
        }
        if side == RESP {
            let final_response = !rec.status_code.is_some_and(|c| (100..200).contains(&c));
            if final_response {
                if let Some(done) = self.pending.remove(&self.current_response) {
                    done.write(conn, out.logs);
                }
            }
        } else if self.pending.len() > MAX_PENDING {
            out.weirds
                .push(("HTTP_excessive_pipelining", String::new()));
            let keep = self.pending.split_off(&self.current_request);
            for (_, r) in std::mem::replace(&mut self.pending, keep) {
                r.write(conn, out.logs);
            }
            self.current_response = self.current_request.saturating_sub(1);
        }
    }
}

impl AppAnalyzer for HttpAnalyzer {
    fn logs(&self) -> &'static [&'static str] {
        // A CONNECT tunnel may carry any protocol.
        &["http", "files", "ssl", "x509", "ssh", "smtp", "ftp", "dns"]
    }

    fn service(&self) -> Option<&'static str> {
        if !self.confirmed() {
            return None;
        }
        Some(match self.tunnel.as_ref().and_then(Tunnel::service) {
            Some("ssl") => "http,ssl",
            Some("smtp") => "http,smtp",
            Some("smtp,ssl") => "http,smtp,ssl",
            Some("ssh") => "http,ssh",
            Some("ftp") => "http,ftp",
            Some("dns") => "http,dns",
            _ => "http",
        })
    }

    fn weird_source(&self, name: &'static str) -> Option<&'static str> {
        if name == "unknown_HTTP_method" {
            // Raised by Zeek's script (`http/main.zeek`), which names no analyzer.
            Some("")
        } else if name.contains("HTTP") || name.contains("http") || name.contains("URI") {
            // Raised by the analyzer itself, confirmed or not.
            Some("HTTP")
        } else {
            None
        }
    }

    fn conn_settled(&self) -> bool {
        self.service().is_some() && self.tunnel.as_ref().is_none_or(Tunnel::settled)
    }

    fn deliver(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        is_orig: bool,
        data: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        self.http_port = HTTP_PORTS.contains(&conn.resp_p);
        let side = if is_orig { ORIG } else { RESP };
        self.process(conn, ts, side, data, out);
    }

    fn gap(&mut self, conn: &ConnInfo, ts: f64, is_orig: bool, len: u64, out: &mut AppOutput<'_>) {
        let side = if is_orig { ORIG } else { RESP };
        let in_body = match self.sides[side].phase {
            Phase::Body(Body::Length(n)) | Phase::Body(Body::ChunkData(n)) => Some(len.min(n)),
            Phase::Body(Body::UntilClose) => Some(len),
            _ => None,
        };
        if let Some(missing) = in_body {
            self.multipart_gap(conn, ts, side, missing, out.weirds);
        }
        let s = &mut self.sides[side];
        match s.phase {
            // Inside a body of known extent the bytes are missing, not the framing.
            Phase::Body(Body::Length(n)) | Phase::Body(Body::ChunkData(n)) => {
                let skipped = len.min(n);
                if let Some(f) = s.file.as_mut() {
                    f.gap(skipped);
                }
                if let Some(p) = s.range.as_mut() {
                    p.offset = p.offset.saturating_add(skipped);
                }
                s.body_len += skipped;
                let left = n - skipped;
                let rest = len - skipped;
                match s.phase {
                    Phase::Body(Body::Length(_)) if left == 0 => {
                        self.message_done(conn, ts, side, out);
                    }
                    Phase::Body(Body::Length(_)) => s.phase = Phase::Body(Body::Length(left)),
                    _ if left == 0 => s.phase = Phase::Body(Body::ChunkEnd),
                    _ => s.phase = Phase::Body(Body::ChunkData(left)),
                }
                if rest > 0 {
                    self.gap(conn, ts, is_orig, rest, out);
                }
            }
            Phase::Body(Body::UntilClose) => {
                if let Some(f) = s.file.as_mut() {
                    f.gap(len);
                }
                if let Some(p) = s.range.as_mut() {
                    p.offset = p.offset.saturating_add(len);
                }
                s.body_len += len;
            }
            Phase::Lost => {
                if let Some(t) = self.tunnel.as_mut() {
                    t.gap(conn, ts, is_orig, len, out);
                }
            }
            // Framing is unknown after the gap: stop parsing this side. Zeek reports this
            // as an `http_event`, not a weird.
            _ => {
                s.phase = Phase::Lost;
                s.line = Vec::new();
            }
        }
    }

    fn finish(&mut self, conn: &ConnInfo, ts: f64, out: &mut AppOutput<'_>) {
        if let Some(t) = self.tunnel.as_mut() {
            t.finish(conn, ts, out);
        }
        // A body delimited by the close ends now; other unfinished messages still count
        // what they carried.
        for side in [ORIG, RESP] {
            if let Phase::Body(_) = self.sides[side].phase {
                self.message_done(conn, ts, side, out);
            }
        }
        // Off the HTTP ports, a request nobody answered was never analyzed by Zeek.
        let analyzed = self.saw_reply || self.http_port;
        for (key, rec) in std::mem::take(&mut self.pending) {
            if key != 0 && analyzed {
                rec.write(conn, out.logs);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::app::tests::{conn, Driver};
    use crate::analyzer::app::Transport;
    use crate::analyzer::log::tests::OwnedValue;

    type Run = Driver<HttpAnalyzer>;

    impl Run {
        fn new() -> Self {
            Driver::with(HttpAnalyzer::new(), conn(Transport::Tcp, 80))
        }
        fn http(&self) -> Vec<&Vec<OwnedValue>> {
            self.sink.of("http")
        }
    }

    fn s(v: &str) -> OwnedValue {
        OwnedValue::Str(v.into())
    }

    #[test]
    fn pipelined_requests_pair_with_responses_in_order() {
        let mut r = Run::new();
        r.send(
            1.0,
            true,
            b"GET /a%20b HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\nReferer: http://r/\r\n\r\nHEAD /h HTTP/1.1\r\nHost: example.com\r\n\r\n",
        );
        r.send(
            1.1,
            false,
            b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n<html>hi</h",
        );
        assert!(r.http().is_empty());
        r.send(
            1.2,
            false,
            b"tml>HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n",
        );
        let rows = r.http();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][6], OwnedValue::Count(1));
        assert_eq!(rows[0][7], s("GET"));
        assert_eq!(rows[0][8], s("example.com"));
        assert_eq!(rows[0][9], s("/a b"));
        assert_eq!(rows[0][10], s("http://r/"));
        assert_eq!(rows[0][11], s("1.1"));
        assert_eq!(rows[0][12], s("t/1"));
        assert_eq!(rows[0][15], OwnedValue::Count(15));
        assert_eq!(rows[0][16], OwnedValue::Count(200));
        assert_eq!(rows[0][17], s("OK"));
        assert_eq!(rows[0][20], OwnedValue::Set(vec![]));
        assert!(matches!(&rows[0][27], OwnedValue::Vector(v) if v.len() == 1));
        assert_eq!(rows[0][29], OwnedValue::Vector(vec![s("text/html")]));
        // The HEAD response has no body despite its Content-Length.
        assert_eq!(rows[1][6], OwnedValue::Count(2));
        assert_eq!(rows[1][7], s("HEAD"));
        assert_eq!(rows[1][15], OwnedValue::Count(0));
        assert_eq!(rows[1][27], OwnedValue::Unset);
        assert_eq!(r.sink.of("files").len(), 1);
    }

    #[test]
    fn chunked_body_and_100_continue() {
        let mut r = Run::new();
        r.send(
            1.0,
            true,
            b"POST /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nAuthorization: Basic dXNlcjpwYXNz\r\nContent-Length: 4\r\n\r\n",
        );
        r.send(1.1, false, b"HTTP/1.1 100 Continue\r\n\r\n");
        r.send(1.2, true, b"abcd");
        r.send(
            1.3,
            false,
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        );
        r.send(1.4, false, b"6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n");
        let rows = r.http();
        assert_eq!(rows.len(), 1);
        let row = rows[0];
        assert_eq!(row[14], OwnedValue::Count(4));
        assert_eq!(row[15], OwnedValue::Count(11));
        assert_eq!(row[16], OwnedValue::Count(201));
        assert_eq!(row[17], s("Created"));
        assert_eq!(row[18], OwnedValue::Count(100));
        assert_eq!(row[19], s("Continue"));
        assert_eq!(row[21], s("user"));
        assert_eq!(row[22], OwnedValue::Unset);
        assert_eq!(row[29], OwnedValue::Vector(vec![s("text/plain")]));
        assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    }

    #[test]
    fn body_until_close_and_unanswered_request_logged_at_finish() {
        let mut r = Run::new();
        r.send(1.0, true, b"GET / HTTP/1.0\r\n\r\nGET /2 HTTP/1.0\r\n\r\n");
        r.send(1.1, false, b"HTTP/1.0 200 OK\r\n\r\nGIF89a....");
        r.finish(9.0);
        let rows = r.http();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][15], OwnedValue::Count(10));
        assert_eq!(rows[0][29], OwnedValue::Vector(vec![s("image/gif")]));
        assert_eq!(rows[1][9], s("/2"));
        assert_eq!(rows[1][16], OwnedValue::Unset);
        assert_eq!(rows[1][11], OwnedValue::Unset);
    }

    #[test]
    fn gap_in_body_keeps_sync_and_gap_in_headers_stops_side() {
        let mut r = Run::new();
        r.send(1.0, true, b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
        r.send(
            1.1,
            false,
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12",
        );
        r.gap(0.0, false, 5);
        r.send(
            1.2,
            false,
            b"890HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        );
        let rows = r.http();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][15], OwnedValue::Count(10));
        assert_eq!(rows[1][16], OwnedValue::Count(404));
        r.gap(0.0, false, 3);
        r.send(1.3, false, b"garbage\r\n");
        assert!(r.weirds.is_empty(), "{:?}", r.weirds);
        assert_eq!(r.a.sides[RESP].phase, Phase::Lost);
    }

    #[test]
    fn version_mismatch_and_unknown_method_weirds() {
        let mut r = Run::new();
        r.send(1.0, true, b"FOO / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n");
        r.send(1.1, false, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        let names: Vec<_> = r.weirds.iter().map(|w| w.0).collect();
        assert_eq!(names, vec!["unknown_HTTP_method", "HTTP_version_mismatch"]);
        assert_eq!(r.http()[1][11], s("1.0"));
    }

    #[test]
    fn a_connect_tunnel_is_analyzed_as_what_it_carries() {
        let mut r = Run::new();
        r.send(1.0, true, b"CONNECT mx:25 HTTP/1.1\r\nHost: mx:25\r\n\r\n");
        r.send(
            1.1,
            false,
            b"HTTP/1.1 200 Connection established\r\n\r\n220 mx ESMTP\r\n",
        );
        r.send(1.2, true, b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
        r.send(1.3, false, b"250 mx\r\n250 ok\r\n250 ok\r\n");
        assert_eq!(r.a.service(), Some("http,smtp"));
        r.finish(9.0);
        assert_eq!(r.http().len(), 1);
        assert_eq!(r.sink.of("smtp").len(), 1);
        assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    }

    #[test]
    fn upgrade_and_connect_stop_parsing_without_weirds() {
        let mut r = Run::new();
        r.send(1.0, true, b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n");
        r.send(
            1.1,
            false,
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x05hello",
        );
        r.send(1.2, true, b"\x81\x85binaryframe");
        r.finish(9.0);
        assert!(r.weirds.is_empty(), "{:?}", r.weirds);
        let rows = r.http();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][16], OwnedValue::Count(101));
        assert_eq!(rows[0][18], OwnedValue::Count(101));

        let mut r = Run::new();
        r.send(
            1.0,
            true,
            b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n\x16\x03\x01",
        );
        r.send(
            1.1,
            false,
            b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03",
        );
        r.finish(9.0);
        assert!(r.weirds.is_empty(), "{:?}", r.weirds);
        assert_eq!(r.http().len(), 1);
        assert_eq!(r.http()[0][9], s("h:443"));
    }

    #[test]
    fn unanswered_request_off_port_is_not_http() {
        let mut r = Run::new();
        r.c = conn(Transport::Tcp, 4444);
        r.send(1.0, true, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.a.service(), None);
        r.finish(9.0);
        assert!(r.http().is_empty());
        let mut r = Run::new();
        r.send(1.0, true, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.a.service(), Some("http"));
    }

    #[test]
    fn uri_unescaping_follows_zeek() {
        let mut w = Vec::new();
        assert_eq!(unescape_uri(b"/a%20b%u0041%41", &mut w), b"/a b\x00AA");
        assert!(w.is_empty());
        assert_eq!(unescape_uri(b"/%%41%zz%", &mut w), b"/A%zz%");
        let names: Vec<_> = w.iter().map(|x| x.0).collect();
        assert_eq!(
            names,
            [
                "double_%_in_URI",
                "unescaped_%_in_URI",
                "illegal_%_at_end_of_URI"
            ]
        );
        let mut r = Run::new();
        r.send(1.0, true, b"GET /a b.html HTTP/1.1\r\n\r\n");
        r.finish(9.0);
        assert_eq!(r.http()[0][9], s("/a b.html"));
    }

    #[test]
    fn byteranges_are_one_file_with_the_gaps_missing() {
        let body = b"--R\r\nContent-Range: bytes 10-14/100\r\n\r\nabcde\r\n--R\r\nContent-Range: bytes 20-24/100\r\n\r\nfghij\r\n--R\r\nContent-Range: bytes 22-26/100\r\n\r\nhijkl\r\n--R--\r\n";
        let mut head = format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Type: multipart/byteranges; boundary=R\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        head.extend_from_slice(body);
        let mut r = Run::new();
        r.send(
            1.0,
            true,
            b"GET /f HTTP/1.1\r\nRange: bytes=10-14,20-26\r\n\r\n",
        );
        let (a, b) = head.split_at(70);
        r.send(1.1, false, a);
        r.send(1.2, false, b);
        let files = r.sink.of("files");
        assert_eq!(files.len(), 1);
        let row = files[0];
        // seen: abcde fghij kl (the overlap hij dropped); missing: 0..10 and 15..20.
        assert_eq!(row[15], OwnedValue::Count(12), "{row:?}");
        assert_eq!(row[16], OwnedValue::Count(100));
        assert_eq!(row[17], OwnedValue::Count(15));
        assert_eq!(row[19], OwnedValue::Bool(true));
        assert_eq!(
            row[10],
            OwnedValue::Unset,
            "no MIME type without the first byte"
        );
    }

    #[test]
    fn multipart_post_gives_one_file_per_part() {
        let body = b"--B\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\nsome text value\r\n--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.gif\"\r\n\r\nGIF89a......\r\n--B--\r\n";
        let mut req = format!(
            "POST /up HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        let mut r = Run::new();
        r.send(1.0, true, &req);
        r.send(1.1, false, b"HTTP/1.1 204 No Content\r\n\r\n");
        let row = r.http()[0].clone();
        assert_eq!(row[14], OwnedValue::Count(body.len() as u64));
        assert!(matches!(&row[24], OwnedValue::Vector(v) if v.len() == 2));
        assert_eq!(row[25], OwnedValue::Vector(vec![s("a.gif")]));
        assert_eq!(
            row[26],
            OwnedValue::Vector(vec![s("text/plain"), s("image/gif")])
        );
        assert_eq!(r.sink.of("files").len(), 2);
    }

    #[test]
    fn header_bytes_and_unanswered_requests_stay_bounded() {
        let mut r = Run::new();
        r.send(1.0, true, b"GET / HTTP/1.1\r\n");
        let line = format!("X-Big: {}\r\n", "a".repeat(60 * 1024));
        for _ in 0..5 {
            r.send(1.0, true, line.as_bytes());
        }
        assert_eq!(r.weirds.len(), 1);
        assert!(r.a.sides[ORIG].headers.is_empty());

        let mut r = Run::new();
        for _ in 0..(3 * MAX_PENDING) {
            r.send(1.0, true, b"GET / HTTP/1.1\r\n\r\n");
        }
        assert!(r.a.request_methods.len() <= MAX_PENDING);
        assert!(r.a.pending.len() <= MAX_PENDING + 1);
    }

    #[test]
    fn oversized_header_line_gives_up() {
        let mut r = Run::new();
        r.send(1.0, true, b"GET / HTTP/1.1\r\nX: ");
        let junk = vec![b'a'; MAX_LINE + 10];
        r.send(1.0, true, &junk);
        assert_eq!(r.weirds.len(), 1);
        assert!(r.a.sides[ORIG].line.is_empty());
    }

    #[test]
    fn detection_of_request_and_status_lines() {
        assert!(looks_like_http(true, b"GET /index.html HTTP/1.1\r\n"));
        assert!(looks_like_http(true, b"PROPFIND /x HTTP/1.0"));
        assert!(looks_like_http(true, b"GET /a b HTTP/1.0\r\n"));
        assert!(!looks_like_http(true, b"GET /index.html\r\n"));
        assert!(!looks_like_http(true, b"\x16\x03\x01"));
        assert!(looks_like_http(false, b"HTTP/1.1 200 OK\r\n"));
        assert!(!looks_like_http(false, b"HTTP/1.1 OK\r\n"));
    }
}
