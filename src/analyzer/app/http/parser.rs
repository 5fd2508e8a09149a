//! HTTP/1.x syntax: start lines, header lines, chunk sizes, the header values the analyzer
//! interprets (Content-Range, multipart boundaries, Basic credentials) and URI escapes, as
//! typed values borrowing from the line. No Zeek semantics here: what a message means for
//! http.log is the analyzer's.

use base64::alphabet::STANDARD;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

use crate::analyzer::app::text::{skip_blank, trim_ws};

/// True for an HTTP request line start (`METHOD SP URI SP HTTP/x.y`) from the originator,
/// or a status line (`HTTP/x.y SP NNN`) from the responder.
pub(crate) fn looks_like_http(is_orig: bool, data: &[u8]) -> bool {
    let line_end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let line = trim_cr(&data[..line_end]);
    if is_orig {
        let method_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        let method = &line[..method_end];
        let rest = skip_blank(&line[method_end..]);
        let version = rest
            .windows(6)
            .position(|w| w == b" HTTP/")
            .and_then(|at| parse_version(trim_ws(&rest[at + 1..])));
        !method.is_empty()
            && method.len() <= 20
            && method.iter().all(u8::is_ascii_alphabetic)
            && !rest.starts_with(b"HTTP/")
            && version.is_some()
    } else {
        line.len() >= 12
            && parse_version(&line[..8]).is_some()
            && line[8] == b' '
            && line[9..12].iter().all(u8::is_ascii_digit)
    }
}

/// A line without its trailing CR.
pub(crate) fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `HTTP/1.1` → `"1.1"`.
pub(crate) fn parse_version(v: &[u8]) -> Option<String> {
    let rest = v.strip_prefix(b"HTTP/")?;
    let ok = rest.len() >= 3
        && rest.iter().all(|b| b.is_ascii_digit() || *b == b'.')
        && rest.contains(&b'.');
    ok.then(|| String::from_utf8_lossy(rest).into_owned())
}

/// A request line read as Zeek's HTTP analyzer reads it (`HTTP_RequestLine` and
/// `ParseRequest` in `HTTP.cc`): the method is an HTTP token, the URI runs over URI
/// characters and then up to the blanks before `HTTP/` (so URIs may hold blanks), and a
/// line without a version is an HTTP/0.9 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestLine<'a> {
    pub method: &'a [u8],
    /// Still escaped; empty when the line has no URI (`missing_uri`).
    pub uri: &'a [u8],
    pub version: RequestVersion,
    /// `HTTP/` came right after the method (weird `missing_HTTP_uri`).
    pub missing_uri: bool,
    /// `HTTP/` was written in lower case (weird `lowercase_HTTP_keyword`; logged once per
    /// connection however many places Zeek finds it in).
    pub lowercase_keyword: bool,
}

/// The version a request line gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequestVersion {
    /// `HTTP/x.y`, as `"x.y"`.
    Given(String),
    /// No `HTTP/` at all: an HTTP/0.9 request (only `GET` is one; the reply is all body).
    Http09,
    /// `HTTP/` followed by something that is no version (Zeek's `bad_HTTP_version` event,
    /// not a weird): the request stands without one.
    Bad,
}

/// Why a line is no request line; each is the weird of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadRequestLine {
    /// `bad_HTTP_request`: no method token, no blank after it, or an HTTP/0.9 request
    /// without URI or with a method shorter than `GET`.
    Bad,
    /// `bad_HTTP_request_with_version`: no method token, but the line ends like a request
    /// line (` HTTP/x.y`).
    BadWithVersion,
}

impl BadRequestLine {
    pub(crate) fn weird(self) -> &'static str {
        match self {
            BadRequestLine::Bad => "bad_HTTP_request",
            BadRequestLine::BadWithVersion => "bad_HTTP_request_with_version",
        }
    }
}

/// RFC 7230 token characters (what Zeek's `is_HTTP_token_char` admits).
fn is_token_char(c: u8) -> bool {
    (33..127).contains(&c) && !b"()<>@,;:\\\"/[]?={}".contains(&c)
}

/// Characters Zeek reads as part of a URI: RFC 3986 reserved and unreserved ones and `%`
/// (and NUL, which its `strchr` test lets through).
fn is_uri_char(c: u8) -> bool {
    c == 0 || c.is_ascii_alphanumeric() || b":/?#[]@!$&'()*+,;=-_.~%".contains(&c)
}

/// Zeek's `skip_whitespace`: blanks are spaces and tabs.
fn skip_space_tab(s: &[u8], mut at: usize) -> usize {
    while at < s.len() && matches!(s[at], b' ' | b'\t') {
        at += 1;
    }
    at
}

/// Whether `s[at..]` starts with `HTTP/`: `Some(false)` as written, `Some(true)` in
/// another case.
fn http_keyword_at(s: &[u8], at: usize) -> Option<bool> {
    let word = s.get(at..at + 5)?;
    if word == b"HTTP/" {
        Some(false)
    } else {
        word.eq_ignore_ascii_case(b"HTTP/").then_some(true)
    }
}

impl RequestLine<'_> {
    pub(crate) fn parse(line: &[u8]) -> Result<RequestLine<'_>, BadRequestLine> {
        let method_end = line
            .iter()
            .position(|&c| !is_token_char(c))
            .unwrap_or(line.len());
        if method_end == 0 {
            let tail = line.len().checked_sub(9).map(|at| &line[at..at + 6]);
            return Err(match tail {
                Some(t) if t.eq_ignore_ascii_case(b" HTTP/") => BadRequestLine::BadWithVersion,
                _ => BadRequestLine::Bad,
            });
        }
        let rest_start = skip_space_tab(line, method_end);
        if rest_start == method_end {
            return Err(BadRequestLine::Bad);
        }
        let rest = &line[rest_start..];
        let mut lowercase_keyword = false;
        let mut uri_end = rest
            .iter()
            .position(|&c| !is_uri_char(c))
            .unwrap_or(rest.len());
        let keyword_first = http_keyword_at(rest, 0);
        if keyword_first == Some(true) {
            lowercase_keyword = true;
        }
        let missing_uri = uri_end >= rest.len() && keyword_first.is_some();
        if missing_uri {
            uri_end = 0;
        }
        // The version starts where, after blanks, `HTTP/` does; the URI ends before those
        // blanks (or, without a version, one byte short of the line's end, as in Zeek).
        let mut at = uri_end;
        let mut version_at = None;
        while at < rest.len() {
            uri_end = at;
            at = skip_space_tab(rest, at);
            match http_keyword_at(rest, at) {
                Some(lower) => {
                    lowercase_keyword |= lower;
                    version_at = Some(at);
                    break;
                }
                None => at += 1,
            }
        }
        let version = match version_at {
            None => RequestVersion::Http09,
            Some(v) if v + 8 <= rest.len() => match &rest[v + 5..v + 8] {
                [major, b'.', minor] if major.is_ascii_digit() && minor.is_ascii_digit() => {
                    RequestVersion::Given(format!("{}.{}", *major as char, *minor as char))
                }
                _ => RequestVersion::Bad,
            },
            Some(_) => RequestVersion::Bad,
        };
        let uri = &rest[..uri_end];
        if version == RequestVersion::Http09 && (method_end < 3 || uri.is_empty()) {
            return Err(BadRequestLine::Bad);
        }
        Ok(RequestLine {
            method: &line[..method_end],
            uri,
            version,
            missing_uri,
            lowercase_keyword,
        })
    }
}

/// A status line: `HTTP/x.y NNN reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusLine<'a> {
    pub version: String,
    pub code: u64,
    /// Trimmed, raw bytes.
    pub reason: &'a [u8],
}

impl StatusLine<'_> {
    pub(crate) fn parse(line: &[u8]) -> Option<StatusLine<'_>> {
        let version = line.get(..8).and_then(parse_version)?;
        let code = line
            .get(9..12)
            .filter(|c| c.iter().all(u8::is_ascii_digit))
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.parse::<u64>().ok())?;
        Some(StatusLine {
            version,
            code,
            reason: trim_ws(line.get(12..).unwrap_or_default()),
        })
    }
}

/// One line of a header block (not the empty line that ends it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderLine<'a> {
    /// `Name: value`, the name upper-cased, both trimmed.
    Field { name: String, value: &'a [u8] },
    /// A folded line continuing the previous field (leading blanks removed).
    Continuation(&'a [u8]),
    /// A line without a colon.
    NoColon,
}

impl HeaderLine<'_> {
    pub(crate) fn parse(line: &[u8]) -> HeaderLine<'_> {
        if matches!(line.first(), Some(b' ' | b'\t')) {
            return HeaderLine::Continuation(skip_blank(line));
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return HeaderLine::NoColon;
        };
        HeaderLine::Field {
            name: String::from_utf8_lossy(trim_ws(&line[..colon])).to_ascii_uppercase(),
            value: trim_ws(&line[colon + 1..]),
        }
    }
}

/// The size of a chunk-size line (`1a;ext=1` → 26); `None` when it has no hex number.
pub(crate) fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let hex_end = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    std::str::from_utf8(&line[..hex_end])
        .ok()
        .and_then(|h| u64::from_str_radix(h, 16).ok())
}

/// `bytes 100-199/1000` → `(100, Some(1000))`; `None` when unparsable.
pub(crate) fn parse_content_range(v: &[u8]) -> Option<(u64, Option<u64>)> {
    let v = std::str::from_utf8(v).ok()?.trim();
    let rest = v.strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

/// The boundary of a `multipart/*` Content-Type value.
pub(crate) fn multipart_boundary(content_type: &[u8]) -> Option<Vec<u8>> {
    let lower = content_type.to_ascii_lowercase();
    if !lower.trim_ascii_start().starts_with(b"multipart/") {
        return None;
    }
    let at = lower.windows(9).position(|w| w == b"boundary=")?;
    let rest = &content_type[at + 9..];
    let b = match rest.strip_prefix(b"\"") {
        Some(r) => &r[..r.iter().position(|&c| c == b'"').unwrap_or(r.len())],
        None => {
            &rest[..rest
                .iter()
                .position(|&c| c == b';' || c == b' ')
                .unwrap_or(rest.len())]
        }
    };
    (!b.is_empty()).then(|| b.to_vec())
}

/// The decoded credentials of an `Authorization: Basic …` value (`None` for another
/// scheme); empty when the base64 does not decode.
pub(crate) fn basic_credentials(value: &[u8]) -> Option<Vec<u8>> {
    if value.len() > 6 && value[..6].eq_ignore_ascii_case(b"basic ") {
        Some(decode_base64(skip_blank(&value[6..])).unwrap_or_default())
    } else {
        None
    }
}

/// The standard alphabet, no padding expected, a last group's spare bits ignored.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// Lenient base64 as clients write it in headers: blanks anywhere are skipped, `-` and `_`
/// stand for `+` and `/` (the URL-safe alphabet, even mixed with the standard one),
/// decoding stops at the first `=`, and a last symbol that completes no byte is dropped.
/// Any other byte makes the whole value undecodable (`None`).
fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    let mut symbols: Vec<u8> = text
        .iter()
        .filter(|b| !b.is_ascii_whitespace())
        .take_while(|&&b| b != b'=')
        .map(|&b| match b {
            b'-' => b'+',
            b'_' => b'/',
            b => b,
        })
        .collect();
    if symbols.len() % 4 == 1 {
        // Six bits make no byte; the symbol must still be one.
        let last = symbols.pop()?;
        if !(last.is_ascii_alphanumeric() || last == b'+' || last == b'/') {
            return None;
        }
    }
    LENIENT_BASE64.decode(&symbols).ok()
}

/// Decodes URI escapes as Zeek's `unescape_URI` does: `%XX` and IIS-style `%uXXXX`
/// become bytes; a doubled `%` drops the first; a `%` that starts no escape stays, with a
/// weird.
pub(crate) fn unescape_uri(uri: &[u8], weirds: &mut Vec<(&'static str, String)>) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let pair = |h: u8, l: u8| Some(hex(h)? << 4 | hex(l)?);
    let mut out = Vec::with_capacity(uri.len());
    let mut i = 0;
    while i < uri.len() {
        if uri[i] != b'%' {
            out.push(uri[i]);
            i += 1;
            continue;
        }
        let rest = &uri[i + 1..];
        match rest {
            [] => {
                out.push(b'%');
                weirds.push(("illegal_%_at_end_of_URI", String::new()));
                i += 1;
            }
            [c] => {
                out.extend_from_slice(&[b'%', *c]);
                weirds.push(("partial_escape_at_end_of_URI", String::new()));
                i += 2;
            }
            [b'%', ..] => {
                weirds.push(("double_%_in_URI", String::new()));
                i += 1;
            }
            [h, l, ..] if pair(*h, *l).is_some() => {
                out.extend(pair(*h, *l));
                i += 3;
            }
            [b'u', a, b, c, d, ..] if pair(*a, *b).is_some() && pair(*c, *d).is_some() => {
                out.extend(pair(*a, *b));
                out.extend(pair(*c, *d));
                i += 6;
            }
            [c, ..] => {
                weirds.push(("unescaped_%_in_URI", String::new()));
                out.extend_from_slice(&[b'%', *c]);
                i += 2;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request lines of Zeek's `http-methods` test trace, read as Zeek reads them.
    #[test]
    fn request_lines_as_zeek_reads_them() {
        fn ok(line: &[u8]) -> RequestLine<'_> {
            RequestLine::parse(line).expect("a request line")
        }
        let r = ok(b"OPTIONS HTTP/1.1");
        assert!(r.missing_uri);
        assert_eq!(
            (r.uri, &r.version),
            (&b""[..], &RequestVersion::Given("1.1".into()))
        );
        let r = ok(b"CCM_POST / HTTP/1.1");
        assert_eq!((r.method, r.uri), (&b"CCM_POST"[..], &b"/"[..]));
        assert_eq!(ok(b"CCM_POST / HTTP/1.").version, RequestVersion::Bad);
        let r = ok(b"CCM_POST /HTTP/1.1");
        assert_eq!(
            (r.uri, &r.version),
            (&b"/HTTP/1.1"[..], &RequestVersion::Http09)
        );
        // Without a version Zeek's URI stops one byte short of the line's end.
        assert_eq!(ok(b"GET /foo bar").uri, b"/foo ba");
        assert!(ok(b"GET / http/1.1").lowercase_keyword);
        let bad = |line: &[u8]| {
            RequestLine::parse(line)
                .map(|r| r.uri.to_vec())
                .unwrap_err()
        };
        assert_eq!(bad(b"OPTIONSHTTP/1.1"), BadRequestLine::Bad);
        assert_eq!(bad(b"CCM_POST/ HTTP/1.1"), BadRequestLine::Bad);
        assert_eq!(bad(b"\xc3\x83/ HTTP/1.1"), BadRequestLine::BadWithVersion);
        assert_eq!(bad(b"GE /x"), BadRequestLine::Bad);
        assert_eq!(bad(b"G3T"), BadRequestLine::Bad);
    }

    #[test]
    fn start_and_header_lines() {
        let r = RequestLine::parse(b"GET /a b.html HTTP/1.1").expect("request");
        assert_eq!((r.method, r.uri), (&b"GET"[..], &b"/a b.html"[..]));
        assert_eq!(r.version, RequestVersion::Given("1.1".into()));
        assert_eq!(
            RequestLine::parse(b"GET /old").map(|r| r.version),
            Ok(RequestVersion::Http09)
        );
        assert_eq!(
            RequestLine::parse(b"GET").map(|r| r.uri),
            Err(BadRequestLine::Bad)
        );
        let s = StatusLine::parse(b"HTTP/1.0 404 Not Found ").expect("status");
        assert_eq!(
            (s.version.as_str(), s.code, s.reason),
            ("1.0", 404, &b"Not Found"[..])
        );
        assert_eq!(StatusLine::parse(b"HTTP/1.1 OK"), None);
        assert_eq!(
            HeaderLine::parse(b"content-type : text/html "),
            HeaderLine::Field {
                name: "CONTENT-TYPE".into(),
                value: b"text/html"
            }
        );
        assert_eq!(
            HeaderLine::parse(b"\t more"),
            HeaderLine::Continuation(b"more")
        );
        assert_eq!(HeaderLine::parse(b"junk"), HeaderLine::NoColon);
        assert_eq!(parse_chunk_size(b"1a;ext=1"), Some(26));
        assert_eq!(parse_chunk_size(b";"), None);
        assert_eq!(
            parse_content_range(b"bytes 100-199/1000"),
            Some((100, Some(1000)))
        );
        assert_eq!(parse_content_range(b"bytes 5-9/*"), Some((5, None)));
        assert_eq!(
            multipart_boundary(b"multipart/form-data; boundary=\"a b\""),
            Some(b"a b".to_vec())
        );
    }

    #[test]
    fn basic_credentials_decode_leniently() {
        let decode = |v: &str| basic_credentials(v.as_bytes());
        assert_eq!(decode("Basic dXNlcjpwYXNz"), Some(b"user:pass".to_vec()));
        assert_eq!(
            decode("basic  dXNl cjpw\tYXNz "),
            Some(b"user:pass".to_vec())
        );
        // Padding ends the value; what follows it is not looked at.
        assert_eq!(decode("Basic dXNlcg==!!"), Some(b"user".to_vec()));
        // Missing padding, spare bits and a lone last symbol are tolerated.
        assert_eq!(decode("Basic dXNlcg"), Some(b"user".to_vec()));
        assert_eq!(decode("Basic dXNlcn"), Some(b"user".to_vec()));
        assert_eq!(decode("Basic dXNlc"), Some(b"use".to_vec()));
        // Both alphabets, even mixed.
        assert_eq!(decode("Basic _-8"), Some(vec![0xff, 0xef]));
        assert_eq!(decode("Basic /+8"), Some(vec![0xff, 0xef]));
        // Any other byte: nothing decodes (the analyzer then logs `<problem-decoding>`).
        assert_eq!(decode("Basic dXNl!"), Some(Vec::new()));
        assert_eq!(decode("Basic dX*lcjpwYXNz"), Some(Vec::new()));
        assert_eq!(decode("Basic "), None);
        assert_eq!(decode("Bearer abc"), None);
    }
}
