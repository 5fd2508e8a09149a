//! The burp dialect (`docs/protocol.md`, "Child protocols"): how pcapd talks to `burp -c bconfcli -a m`.
//!
//! A burp monitor child prints JSON lines on stdout: `{ "logline": "…" }` diagnostics (one of
//! them, `Server version: X.Y.Z`, names the server), `{"warning": "…"}` when a query has no
//! result, `{"response-start": Q}` / `{"response-end": Q}` markers around each answer once
//! `j:response-markers-on` was sent (burp ≥ 2.2.10), and the answer documents themselves.
//! It reads one query per line on stdin.
//!
//! This module is the pure half: [`Handshake`] takes a fresh child from its first line to
//! ready (wait for the `in monitor` logline, `j:pretty-print-off`, markers where supported),
//! and [`QueryExchange`] turns the lines that follow one query into its answer. Both only
//! look at lines, so they are tested without processes; the pool's slot does the I/O, the
//! deadlines and the killing. A line that does not fit the exchange (an answer for another
//! query, a marker out of place, text that is not JSON) is an error: the child is out of step
//! and must be replaced, never guessed at.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::worker::excerpt;

/// Sent first: one answer per line instead of burp's indented multi-line JSON.
pub const PRETTY_PRINT_OFF: &str = "j:pretty-print-off";
/// Sent next where the server supports it: every answer framed by markers naming its query.
pub const RESPONSE_MARKERS_ON: &str = "j:response-markers-on";
/// The logline burp prints once it entered monitor mode and reads queries.
const READY_LOGLINE: &str = "in monitor";
/// The logline that names the server's version.
const SERVER_VERSION_PREFIX: &str = "Server version: ";

/// Oldest burp client bui-monitor works with (`burp -V` must say at least this).
pub const MIN_CLIENT_VERSION: BurpVersion = BurpVersion(2, 0, 18);
/// Servers from this version on list backups in batches (`batch_list_supported`).
pub const BATCH_LIST_SINCE: BurpVersion = BurpVersion(2, 0, 48);
/// Servers from this version on support `j:response-markers-on`.
pub const MARKERS_SINCE: BurpVersion = BurpVersion(2, 2, 10);

/// A burp version, `major.minor.patch`, compared numerically (bui-monitor compares the
/// strings, which only works while every part has one digit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BurpVersion(pub u32, pub u32, pub u32);

impl BurpVersion {
    /// Parses `3.1.4`, `burp-3.1.4` or `3.1.4-extra` (what `burp -V` and the server print).
    pub fn parse(text: &str) -> Option<BurpVersion> {
        let text = text.trim();
        let text = text.strip_prefix("burp-").unwrap_or(text);
        let mut parts = text.splitn(3, '.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch_text = parts.next()?;
        let digits = patch_text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(patch_text.len());
        let patch = patch_text[..digits].parse().ok()?;
        Some(BurpVersion(major, minor, patch))
    }
}

impl fmt::Display for BurpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// One stdout line of a burp monitor child, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BurpLine {
    Logline(String),
    Warning(String),
    ResponseStart(String),
    ResponseEnd(String),
    /// Any other JSON: an answer.
    Document,
}

/// The child said something that does not fit the exchange; it must be replaced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BurpError {
    #[error("burp wrote a line that is not JSON: {excerpt}")]
    NotJson { excerpt: String },
    #[error("burp is out of step ({what}): {excerpt}")]
    OutOfStep { what: String, excerpt: String },
}

impl BurpLine {
    /// Classifies a line. burp's own messages are objects with one string member; anything
    /// else is an answer, checked to be whole JSON but never built in memory (`c:` on a busy
    /// server is megabytes).
    pub fn parse(line: &[u8]) -> Result<BurpLine, BurpError> {
        let shape: LineShape = serde_json::from_slice(line).map_err(|_| BurpError::NotJson {
            excerpt: excerpt(line),
        })?;
        Ok(match shape {
            LineShape::Message(line) => line,
            LineShape::Other => BurpLine::Document,
        })
    }
}

/// A line as [`BurpLine::parse`] reads it: a one-member message, or anything else.
enum LineShape {
    Message(BurpLine),
    Other,
}

impl<'de> Deserialize<'de> for LineShape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<LineShape, D::Error> {
        deserializer.deserialize_any(ShapeVisitor)
    }
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = LineShape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LineShape, A::Error> {
        let mut members = 0usize;
        let mut message = None;
        while let Some(key) = map.next_key::<String>()? {
            members += 1;
            let kind: Option<fn(String) -> BurpLine> = match key.as_str() {
                _ if members > 1 => None,
                "logline" => Some(BurpLine::Logline),
                "warning" => Some(BurpLine::Warning),
                "response-start" => Some(BurpLine::ResponseStart),
                "response-end" => Some(BurpLine::ResponseEnd),
                _ => None,
            };
            match kind {
                Some(kind) => {
                    if let Value::String(text) = map.next_value::<Value>()? {
                        message = Some(kind(text));
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(match message {
            Some(line) if members == 1 => LineShape::Message(line),
            _ => LineShape::Other,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LineShape, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(LineShape::Other)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<LineShape, E> {
        Ok(LineShape::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<LineShape, E> {
        Ok(LineShape::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<LineShape, E> {
        Ok(LineShape::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<LineShape, E> {
        Ok(LineShape::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<LineShape, E> {
        Ok(LineShape::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<LineShape, E> {
        Ok(LineShape::Other)
    }
}

fn out_of_step(what: impl Into<String>, line: &[u8]) -> BurpError {
    BurpError::OutOfStep {
        what: what.into(),
        excerpt: excerpt(line),
    }
}

/// What a ready child told us about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo {
    /// From the `Server version:` logline; `None` if the child never printed one.
    pub server_version: Option<BurpVersion>,
    /// Whether answers come framed by response markers.
    pub markers: bool,
}

/// What the slot does after feeding the handshake a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeStep {
    /// Read the next line.
    Continue,
    /// Write this command line, then read on.
    Send(&'static str),
    /// The child is ready for queries.
    Ready(SessionInfo),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// What the handshake waits for next.
enum HandshakeState {
    /// The `in monitor` logline.
    MonitorMode,
    /// The warning that acknowledges `j:pretty-print-off`.
    PrettyPrintOff,
    /// `{"response-start": "j:response-markers-on"}`.
    MarkersStart,
    /// `{"response-end": "j:response-markers-on"}`.
    MarkersEnd,
}

/// A fresh child's way to ready, one line at a time.
#[derive(Debug, Clone)]
pub struct Handshake {
    state: HandshakeState,
    server_version: Option<BurpVersion>,
}

impl Default for Handshake {
    fn default() -> Self {
        Handshake::new()
    }
}

impl Handshake {
    pub fn new() -> Handshake {
        Handshake {
            state: HandshakeState::MonitorMode,
            server_version: None,
        }
    }

    pub fn on_line(&mut self, line: &[u8]) -> Result<HandshakeStep, BurpError> {
        let parsed = BurpLine::parse(line)?;
        if let BurpLine::Logline(text) = &parsed {
            if let Some(version) = server_version_in(text) {
                self.server_version = Some(version);
            }
        }
        match (self.state, parsed) {
            (HandshakeState::MonitorMode, BurpLine::Logline(text)) => {
                if text.contains(READY_LOGLINE) {
                    self.state = HandshakeState::PrettyPrintOff;
                    return Ok(HandshakeStep::Send(PRETTY_PRINT_OFF));
                }
                Ok(HandshakeStep::Continue)
            }
            (_, BurpLine::Logline(_)) => Ok(HandshakeStep::Continue),
            (HandshakeState::PrettyPrintOff, BurpLine::Warning(_)) => {
                if self.server_version.is_some_and(|v| v >= MARKERS_SINCE) {
                    self.state = HandshakeState::MarkersStart;
                    Ok(HandshakeStep::Send(RESPONSE_MARKERS_ON))
                } else {
                    Ok(HandshakeStep::Ready(self.info(false)))
                }
            }
            (HandshakeState::MarkersStart, BurpLine::ResponseStart(query))
                if query == RESPONSE_MARKERS_ON =>
            {
                self.state = HandshakeState::MarkersEnd;
                Ok(HandshakeStep::Continue)
            }
            (HandshakeState::MarkersEnd, BurpLine::Warning(_)) => Ok(HandshakeStep::Continue),
            (HandshakeState::MarkersEnd, BurpLine::ResponseEnd(query))
                if query == RESPONSE_MARKERS_ON =>
            {
                Ok(HandshakeStep::Ready(self.info(true)))
            }
            (state, _) => Err(out_of_step(format!("during start-up, {state:?}"), line)),
        }
    }

    fn info(&self, markers: bool) -> SessionInfo {
        SessionInfo {
            server_version: self.server_version,
            markers,
        }
    }
}

fn server_version_in(logline: &str) -> Option<BurpVersion> {
    BurpVersion::parse(logline.strip_prefix(SERVER_VERSION_PREFIX)?)
}

/// The answer to one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryAnswer {
    /// The JSON document burp printed, byte for byte (bui-monitor forwards it so).
    Document(Vec<u8>),
    /// burp had nothing for it (`{"warning": …}`, or markers around nothing).
    Warning(String),
}

/// What the slot does after feeding a query's exchange a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryStep {
    Continue,
    Answered(QueryAnswer),
}

/// The lines that answer one query.
#[derive(Debug, Clone)]
pub struct QueryExchange {
    query: String,
    markers: bool,
    started: bool,
    answer: Option<QueryAnswer>,
}

impl QueryExchange {
    /// `query` is the line sent (a [`StatusQuery`]), `markers` what the handshake found.
    pub fn new(query: &StatusQuery, markers: bool) -> QueryExchange {
        QueryExchange {
            query: query.as_str().to_owned(),
            markers,
            started: false,
            answer: None,
        }
    }

    pub fn on_line(&mut self, line: &[u8]) -> Result<QueryStep, BurpError> {
        let parsed = BurpLine::parse(line)?;
        if let BurpLine::Logline(_) = parsed {
            return Ok(QueryStep::Continue);
        }
        if !self.markers {
            return match parsed {
                BurpLine::Warning(text) => Ok(QueryStep::Answered(QueryAnswer::Warning(text))),
                BurpLine::Document => Ok(QueryStep::Answered(QueryAnswer::Document(line.to_vec()))),
                _ => Err(out_of_step("a response marker, but markers are off", line)),
            };
        }
        match parsed {
            BurpLine::ResponseStart(query) if !self.started && query == self.query => {
                self.started = true;
                Ok(QueryStep::Continue)
            }
            BurpLine::Warning(text) if self.started => {
                self.answer = Some(QueryAnswer::Warning(text));
                Ok(QueryStep::Continue)
            }
            BurpLine::Document if self.started => {
                self.answer = Some(QueryAnswer::Document(line.to_vec()));
                Ok(QueryStep::Continue)
            }
            BurpLine::ResponseEnd(query) if self.started && query == self.query => {
                let answer = self
                    .answer
                    .take()
                    .unwrap_or_else(|| QueryAnswer::Warning("burp answered nothing".into()));
                Ok(QueryStep::Answered(answer))
            }
            _ => Err(out_of_step(
                format!("while answering {:?}", self.query),
                line,
            )),
        }
    }
}

/// A status query as sent to burp: one line, no control characters, not a `j:` command.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatusQuery(String);

/// Why a query is refused before it reaches a child.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryRejected {
    #[error("the query is empty")]
    Empty,
    #[error(
        "{0:?} is a session command: j: commands would change the session every client \
         shares, so only status queries (c:…) are accepted"
    )]
    SessionCommand(String),
    #[error("the query holds control characters")]
    ControlCharacters,
}

impl StatusQuery {
    /// What bui-monitor sends burp: the request's query with trailing white space removed,
    /// up to its first newline (`c:\n` → `c:`).
    pub fn parse(raw: &str) -> Result<StatusQuery, QueryRejected> {
        let line = raw.trim_end().split('\n').next().unwrap_or("").trim_end();
        if line.is_empty() {
            return Err(QueryRejected::Empty);
        }
        if line.starts_with("j:") {
            return Err(QueryRejected::SessionCommand(line.to_owned()));
        }
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(QueryRejected::ControlCharacters);
        }
        Ok(StatusQuery(line.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What burp 3.1.4 prints at start, as loglines.
    const STARTUP: &[&str] = &[
        r#"{ "logline": "Connecting to 127.0.0.1:4972." }"#,
        r#"{ "logline": "auth ok." }"#,
        r#"{ "logline": "Server version: 3.1.4." }"#,
        r#"{ "logline": "nocsr ok." }"#,
        r#"{ "logline": "in monitor." }"#,
    ];

    fn run_handshake(lines: &[&str]) -> (Vec<&'static str>, Option<SessionInfo>) {
        let mut handshake = Handshake::new();
        let mut sent = Vec::new();
        for line in lines {
            match handshake.on_line(line.as_bytes()).expect("in step") {
                HandshakeStep::Continue => {}
                HandshakeStep::Send(command) => sent.push(command),
                HandshakeStep::Ready(info) => return (sent, Some(info)),
            }
        }
        (sent, None)
    }

    #[test]
    fn versions_parse_and_compare_numerically() {
        assert_eq!(
            BurpVersion::parse("burp-3.1.4\n"),
            Some(BurpVersion(3, 1, 4))
        );
        assert_eq!(BurpVersion::parse("2.2.10."), Some(BurpVersion(2, 2, 10)));
        assert_eq!(BurpVersion::parse("2.10"), None);
        assert!(BurpVersion(2, 2, 10) > BurpVersion(2, 2, 9));
        assert!(BurpVersion(10, 0, 0) > BurpVersion(9, 9, 9));
        assert_eq!(BurpVersion(3, 1, 4).to_string(), "3.1.4");
    }

    #[test]
    fn lines_are_classified_without_building_answers() {
        let parse = |line: &str| BurpLine::parse(line.as_bytes());
        assert_eq!(
            parse(r#"{ "logline": "auth ok." }"#),
            Ok(BurpLine::Logline("auth ok.".into()))
        );
        assert_eq!(
            parse(r#"{"warning":"x"}"#),
            Ok(BurpLine::Warning("x".into()))
        );
        assert_eq!(
            parse(r#"{"response-end":"c:"}"#),
            Ok(BurpLine::ResponseEnd("c:".into()))
        );
        for document in [
            r#"{"clients":[{"name":"a","warning":"not a message"}]}"#,
            r#"{"warning":"x","clients":[]}"#,
            r#"{"clients":[],"warning":"x"}"#,
            r#"{"warning":3}"#,
            "[1, 2]",
            "\"text\"",
            "null",
            "{}",
        ] {
            assert_eq!(parse(document), Ok(BurpLine::Document), "{document}");
        }
        for broken in [
            r#"{"clients":[{"name":"#,
            r#"{"a":1} trailing"#,
            "",
            "burp: oops",
        ] {
            assert!(
                matches!(parse(broken), Err(BurpError::NotJson { .. })),
                "{broken}"
            );
        }
    }

    #[test]
    fn handshake_turns_markers_on_for_a_recent_server() {
        let mut lines = STARTUP.to_vec();
        lines.extend([
            r#"{"warning":"Pretty print off"}"#,
            r#"{"response-start":"j:response-markers-on"}"#,
            r#"{"warning":"Response markers on"}"#,
            r#"{"response-end":"j:response-markers-on"}"#,
        ]);
        let (sent, info) = run_handshake(&lines);
        assert_eq!(sent, [PRETTY_PRINT_OFF, RESPONSE_MARKERS_ON]);
        assert_eq!(
            info,
            Some(SessionInfo {
                server_version: Some(BurpVersion(3, 1, 4)),
                markers: true
            })
        );
    }

    #[test]
    fn handshake_without_markers_for_an_old_server() {
        let lines = [
            r#"{ "logline": "Server version: 2.1.28." }"#,
            r#"{ "logline": "in monitor." }"#,
            r#"{"warning":"Pretty print off"}"#,
        ];
        let (sent, info) = run_handshake(&lines);
        assert_eq!(sent, [PRETTY_PRINT_OFF]);
        assert_eq!(info.map(|i| i.markers), Some(false));
    }

    #[test]
    fn handshake_refuses_an_answer_before_monitor_mode() {
        let mut handshake = Handshake::new();
        assert!(handshake.on_line(br#"{"clients":[]}"#).is_err());
        assert!(Handshake::new().on_line(b"burp: not json").is_err());
    }

    fn answer(markers: bool, query: &str, lines: &[&str]) -> Result<QueryAnswer, BurpError> {
        let query = StatusQuery::parse(query).expect("valid query");
        let mut exchange = QueryExchange::new(&query, markers);
        for line in lines {
            if let QueryStep::Answered(answer) = exchange.on_line(line.as_bytes())? {
                return Ok(answer);
            }
        }
        panic!("no answer after {lines:?}");
    }

    #[test]
    fn query_answer_is_the_document_between_markers_byte_for_byte() {
        let doc = r#"{"clients": [{"name":"c1"}]}"#;
        let got = answer(
            true,
            "c:\n",
            &[
                r#"{"response-start":"c:"}"#,
                r#"{ "logline": "noise." }"#,
                doc,
                r#"{"response-end":"c:"}"#,
            ],
        );
        assert_eq!(got, Ok(QueryAnswer::Document(doc.as_bytes().to_vec())));
    }

    #[test]
    fn warnings_and_empty_answers_are_no_answer() {
        let warning = answer(
            true,
            "c:nosuch",
            &[
                r#"{"response-start":"c:nosuch"}"#,
                r#"{"warning":"Could not find client: nosuch"}"#,
                r#"{"response-end":"c:nosuch"}"#,
            ],
        );
        assert_eq!(
            warning,
            Ok(QueryAnswer::Warning("Could not find client: nosuch".into()))
        );
        let empty = answer(
            true,
            "c:x",
            &[r#"{"response-start":"c:x"}"#, r#"{"response-end":"c:x"}"#],
        );
        assert!(matches!(empty, Ok(QueryAnswer::Warning(_))));
        let plain = answer(false, "c:x", &[r#"{"warning":"Could not find client: x"}"#]);
        assert!(matches!(plain, Ok(QueryAnswer::Warning(_))));
        let doc = answer(
            false,
            "c:",
            &[r#"{ "logline": "x." }"#, r#"{"clients":[]}"#],
        );
        assert_eq!(
            doc,
            Ok(QueryAnswer::Document(br#"{"clients":[]}"#.to_vec()))
        );
    }

    #[test]
    fn an_answer_for_another_query_is_out_of_step() {
        for lines in [
            &[r#"{"response-start":"c:other"}"#][..],
            &[r#"{"clients":[]}"#][..],
            &[
                r#"{"response-start":"c:"}"#,
                r#"{"response-end":"c:other"}"#,
            ][..],
            &[r#"{"response-start":"c:"}"#, r#"{"clients":[]"#][..],
        ] {
            let query = StatusQuery::parse("c:").unwrap();
            let mut exchange = QueryExchange::new(&query, true);
            let result = lines
                .iter()
                .map(|l| exchange.on_line(l.as_bytes()))
                .find(|r| r.is_err());
            assert!(result.is_some(), "{lines:?} accepted");
        }
    }

    #[test]
    fn queries_are_sanitised_as_bui_monitor_does_and_commands_refused() {
        assert_eq!(StatusQuery::parse("c:\n").unwrap().as_str(), "c:");
        assert_eq!(
            StatusQuery::parse("c:a:b:1  \nj:pretty-print-on\n")
                .unwrap()
                .as_str(),
            "c:a:b:1"
        );
        assert_eq!(StatusQuery::parse(" \n"), Err(QueryRejected::Empty));
        assert!(matches!(
            StatusQuery::parse("j:pretty-print-on\n"),
            Err(QueryRejected::SessionCommand(_))
        ));
        assert_eq!(
            StatusQuery::parse("c:a\u{0}b"),
            Err(QueryRejected::ControlCharacters)
        );
    }
}
