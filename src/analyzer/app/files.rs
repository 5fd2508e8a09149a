//! Files carried in HTTP bodies: content decoding (gzip/deflate), MIME sniffing from the
//! first bytes, and the `files.log` line Zeek's file analysis writes for each body.
//!
//! Memory per file is bounded: decoded bytes are counted, and only the first
//! [`SNIFF_LEN`] are kept for sniffing, however large the (decompressed) body is.

use std::io::Write;

use flate2::write::{GzDecoder, ZlibDecoder};

use super::{AppOutput, ConnInfo};
use crate::analyzer::log::{log_row, ConnId, Interval, Set, Time};

log_row! {
    /// One files.log line (Zeek's `Files::Info`, `base/frameworks/files/main.zeek`, with
    /// the columns of `base/files/hash` and `base/files/extract`, loaded by a default run).
    pub struct FilesRow<'a> => FILES_SCHEMA("files") {
        ts: Time,
        fuid: &'a str,
        id: ConnId<'a>,
        source: &'a str,
        depth: u64,
        analyzers: Set<'a, &'a str>,
        mime_type: Option<&'a str>,
        filename: Option<&'a str>,
        duration: Interval,
        local_orig: Option<bool>,
        is_orig: bool,
        seen_bytes: u64,
        total_bytes: Option<u64>,
        missing_bytes: u64,
        overflow_bytes: u64,
        timedout: bool,
        parent_fuid: Option<&'a str>,
        md5: Option<&'a str>,
        sha1: Option<&'a str>,
        sha256: Option<&'a str>,
        extracted: Option<&'a str>,
        extracted_cutoff: Option<bool>,
        extracted_size: Option<u64>,
    }
}

/// Bytes of a body kept for MIME sniffing (Zeek's default BOF buffer).
pub(crate) const SNIFF_LEN: usize = 4096;

/// Where decoded body bytes go: counted, and the first [`SNIFF_LEN`] kept.
#[derive(Debug, Clone, Default)]
struct Tap {
    len: u64,
    head: Vec<u8>,
}

impl Write for Tap {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.len += buf.len() as u64;
        let room = SNIFF_LEN.saturating_sub(self.head.len());
        self.head.extend_from_slice(&buf[..buf.len().min(room)]);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Content-Encoding decoding of one body, as Zeek's HTTP analyzer does before file analysis.
enum Decoder {
    Identity(Tap),
    Gzip(Box<GzDecoder<Tap>>),
    Zlib(Box<ZlibDecoder<Tap>>),
    /// Decoding failed or bytes went missing: what was decoded so far stands.
    Stopped(Tap),
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Decoder").field(self.tap()).finish()
    }
}

impl Decoder {
    fn for_encoding(encoding: Option<&[u8]>) -> Self {
        let enc = encoding.map(|e| e.trim_ascii().to_ascii_lowercase());
        match enc.as_deref() {
            Some(b"gzip") | Some(b"x-gzip") => {
                Decoder::Gzip(Box::new(GzDecoder::new(Tap::default())))
            }
            Some(b"deflate") => Decoder::Zlib(Box::new(ZlibDecoder::new(Tap::default()))),
            _ => Decoder::Identity(Tap::default()),
        }
    }

    fn tap(&self) -> &Tap {
        match self {
            Decoder::Identity(t) | Decoder::Stopped(t) => t,
            Decoder::Gzip(d) => d.get_ref(),
            Decoder::Zlib(d) => d.get_ref(),
        }
    }

    /// Feeds encoded bytes; false if the decoder gave up on them.
    fn write(&mut self, data: &[u8]) -> bool {
        let ok = match self {
            Decoder::Identity(t) => t.write_all(data).is_ok(),
            Decoder::Gzip(d) => d.write_all(data).is_ok(),
            Decoder::Zlib(d) => d.write_all(data).is_ok(),
            Decoder::Stopped(_) => return true,
        };
        if !ok {
            self.stop();
        }
        ok
    }

    fn stop(&mut self) {
        if !matches!(self, Decoder::Identity(_)) {
            *self = Decoder::Stopped(self.tap().clone());
        }
    }

    fn finish(&mut self) {
        let _ = match self {
            Decoder::Gzip(d) => d.try_finish(),
            Decoder::Zlib(d) => d.try_finish(),
            _ => Ok(()),
        };
    }
}

/// One HTTP body tracked as a file (Zeek's file analysis of an HTTP entity).
#[derive(Debug)]
pub(crate) struct FileState {
    pub fuid: String,
    pub filename: Option<String>,
    pub mime: Option<&'static str>,
    first_ts: f64,
    last_ts: f64,
    decoder: Decoder,
    sniffed: bool,
    /// No MIME detection: the body does not start at the file's first byte (a 206 range).
    no_bof: bool,
    missing: u64,
    total: Option<u64>,
}

impl FileState {
    pub(crate) fn new(
        fuid: String,
        ts: f64,
        content_encoding: Option<&[u8]>,
        no_bof: bool,
        filename: Option<String>,
        total: Option<u64>,
    ) -> Self {
        FileState {
            fuid,
            filename,
            mime: None,
            first_ts: ts,
            last_ts: ts,
            decoder: Decoder::for_encoding(content_encoding),
            sniffed: false,
            no_bof,
            missing: 0,
            total,
        }
    }

    /// Decoded bytes seen so far.
    pub(crate) fn seen(&self) -> u64 {
        self.decoder.tap().len
    }

    /// Feeds raw (still encoded) body bytes.
    pub(crate) fn data(&mut self, ts: f64, raw: &[u8], weirds: &mut Vec<(&'static str, String)>) {
        self.last_ts = ts;
        if !self.decoder.write(raw) {
            weirds.push(("zip_decompress_error", String::new()));
        }
        if !self.sniffed && self.decoder.tap().head.len() >= SNIFF_LEN {
            self.sniff();
        }
    }

    /// `len` body bytes were never seen: decoding cannot go on, sniffing uses what it has.
    pub(crate) fn gap(&mut self, len: u64) {
        self.missing += len;
        self.decoder.stop();
        if !self.sniffed {
            self.sniff();
        }
    }

    fn sniff(&mut self) {
        self.sniffed = true;
        self.mime = if self.no_bof {
            None
        } else {
            sniff_mime(&self.decoder.tap().head)
        };
    }

    /// The body ended: flush the decoder and settle the MIME type.
    pub(crate) fn end(&mut self) {
        self.decoder.finish();
        if !self.sniffed {
            self.sniff();
        }
    }

    /// Writes this file's `files.log` line.
    pub(crate) fn write_log(&self, conn: &ConnInfo, is_orig: bool, out: &mut AppOutput<'_>) {
        let seen = self.seen();
        // A file that ended short of its announced size stayed open until Zeek's file
        // timeout.
        let timed_out = self.total.is_some_and(|t| seen + self.missing < t);
        out.logs.write(&FilesRow {
            ts: Time(self.first_ts),
            fuid: &self.fuid,
            id: conn.id(),
            source: "HTTP",
            depth: 0,
            analyzers: Set(&[]),
            mime_type: self.mime,
            filename: self.filename.as_deref(),
            duration: Interval(self.last_ts - self.first_ts),
            local_orig: None,
            is_orig,
            seen_bytes: seen,
            total_bytes: self.total,
            missing_bytes: self.missing,
            overflow_bytes: 0,
            timedout: timed_out,
            // Hashes and extraction run only when a policy asks for them.
            parent_fuid: None,
            md5: None,
            sha1: None,
            sha256: None,
            extracted: None,
            extracted_cutoff: None,
            extracted_size: None,
        });
    }
}

/// One part of a `multipart/*` body: its Content-Disposition filename and content.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Part<'a> {
    pub filename: Option<String>,
    pub content: &'a [u8],
}

/// Splits a complete `multipart/*` body at its `boundary` (RFC 2046): the preamble and
/// epilogue are dropped, a part cut short by the end of the body keeps what it has.
pub(crate) fn multipart_parts<'a>(body: &'a [u8], boundary: &[u8]) -> Vec<Part<'a>> {
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(boundary);
    let find = |from: usize| -> Option<usize> {
        // A delimiter starts the body or a line.
        (from..body.len().saturating_sub(delim.len() - 1))
            .find(|&i| body[i..].starts_with(&delim) && (i == 0 || body[i - 1] == b'\n'))
    };
    let mut parts = Vec::new();
    let Some(mut at) = find(0) else {
        return parts;
    };
    loop {
        let after = at + delim.len();
        if body.get(after..after + 2) == Some(b"--") {
            break;
        }
        let Some(line_end) = body[after..].iter().position(|&b| b == b'\n') else {
            break;
        };
        let mut pos = after + line_end + 1;
        let mut filename = None;
        // Part headers up to the empty line.
        while let Some(len) = body[pos..].iter().position(|&b| b == b'\n') {
            let line = &body[pos..pos + len];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            pos += len + 1;
            if line.is_empty() {
                break;
            }
            if let Some(colon) = line.iter().position(|&b| b == b':') {
                if line[..colon].eq_ignore_ascii_case(b"content-disposition") {
                    filename = disposition_filename(&line[colon + 1..]);
                }
            }
        }
        let pos = pos.min(body.len());
        let next = find(pos);
        let end = next.unwrap_or(body.len());
        let mut content = &body[pos..end];
        if next.is_some() {
            // The line break before a delimiter belongs to the delimiter.
            content = content.strip_suffix(b"\n").unwrap_or(content);
            content = content.strip_suffix(b"\r").unwrap_or(content);
        }
        parts.push(Part { filename, content });
        match next {
            Some(n) => at = n,
            None => break,
        }
    }
    parts
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
    Some(super::escape_bytes(trim_ws(name)))
}

/// MIME type of a body from its first bytes: a subset of Zeek's file magic signatures,
/// strongest match first.
pub(crate) fn sniff_mime(data: &[u8]) -> Option<&'static str> {
    let starts = |p: &[u8]| data.starts_with(p);
    let binary: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"%PDF", "application/pdf"),
        (b"MZ", "application/x-dosexec"),
        (b"\x1f\x8b", "application/x-gzip"),
        (b"BZh", "application/x-bzip2"),
        (b"\xfd7zXZ\x00", "application/x-xz"),
        (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
        (b"Rar!\x1a\x07", "application/x-rar"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x7fELF", "application/x-executable"),
        (b"\xca\xfe\xba\xbe", "application/x-java-applet"),
        (b"FWS", "application/x-shockwave-flash"),
        (b"CWS", "application/x-shockwave-flash"),
        (b"ZWS", "application/x-shockwave-flash"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            "application/vnd.ms-office",
        ),
        (b"ID3", "audio/mpeg"),
        (b"OggS", "application/ogg"),
        (b"wOFF", "application/font-woff"),
        (b"\x00\x00\x01\x00", "image/x-icon"),
        (b"BM", "image/x-ms-bmp"),
        (b"\xa1\xb2\xc3\xd4", "application/vnd.tcpdump.pcap"),
        (b"\xd4\xc3\xb2\xa1", "application/vnd.tcpdump.pcap"),
        (b"-----BEGIN CERTIFICATE-----", "application/x-pem"),
    ];
    if starts(b"RIFF") && data.get(8..12) == Some(b"WEBP") {
        return Some("image/webp");
    }
    if let Some((_, mime)) = binary.iter().find(|(magic, _)| starts(magic)) {
        if *mime == "application/zip"
            && contains(data.get(..260).unwrap_or(data), b"META-INF/MANIFEST.MF")
        {
            return Some("application/java-archive");
        }
        return Some(mime);
    }
    let text = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let trimmed = skip_blank(text);
    let lower: Vec<u8> = trimmed
        .iter()
        .take(64)
        .map(u8::to_ascii_lowercase)
        .collect();
    let lstarts = |p: &[u8]| lower.starts_with(p);
    if lstarts(b"<!doctype html") || lstarts(b"<html") || lstarts(b"<meta http-equiv") {
        return Some("text/html");
    }
    if lstarts(b"<?xml ") {
        // XHTML documents carry their doctype after the XML declaration.
        let after = lowercase_window(trimmed, 512);
        if contains(&after, b"<!doctype html") || contains(&after, b"<html") {
            return Some("text/html");
        }
        if contains(&after, b"<rss") {
            return Some("text/rss");
        }
        return Some("application/xml");
    }
    if lstarts(b"<head") || lstarts(b"<title") || lstarts(b"<body") {
        return Some("text/html");
    }
    if lstarts(b"<script")
        && (contains(&lower, b"javascript")
            || lstarts(b"<script>var ")
            || lstarts(b"<script>function "))
        || lstarts(b"document.write")
        || lstarts(b"for (;;);")
        || text.strip_prefix(b"(function()").is_some_and(|r| {
            // Zeek's pattern allows blanks and LF, not CR, before the brace.
            r.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n')) == Some(&b'{')
        })
    {
        return Some("application/javascript");
    }
    if looks_like_json(trimmed) {
        return Some("text/json");
    }
    if text.starts_with(b"#!") {
        let line: Vec<u8> = text.iter().take_while(|&&b| b != b'\n').copied().collect();
        for (interp, mime) in [
            (&b"python"[..], "text/x-python"),
            (b"perl", "text/x-perl"),
            (b"ruby", "text/x-ruby"),
            (b"php", "text/x-php"),
            (b"sh", "text/x-shellscript"),
        ] {
            if contains(&line, interp) {
                return Some(mime);
            }
        }
    }
    if contains(&lowercase_window(data, SNIFF_LEN), b"<?php") {
        return Some("text/x-php");
    }
    let plain = text.len() >= 10
        && text[..10]
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) || b.is_ascii_whitespace() || b == 0x0b);
    plain.then_some("text/plain")
}

fn lowercase_window(data: &[u8], n: usize) -> Vec<u8> {
    data.iter().take(n).map(u8::to_ascii_lowercase).collect()
}

pub(crate) fn skip_blank(data: &[u8]) -> &[u8] {
    let start = data
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(data.len());
    &data[start..]
}

pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Zeek's `text/json` signatures: `{"key":` / `{key:` followed by a value start, or an
/// array opening with a scalar and a comma, an object or an array.
fn looks_like_json(t: &[u8]) -> bool {
    let Some((&open, rest)) = t.split_first() else {
        return false;
    };
    let rest = skip_blank(rest);
    match open {
        b'{' => {
            let after_key = if let Some(r) = rest.strip_prefix(b"\"") {
                match r.iter().position(|&b| b == b'"') {
                    Some(end) if end > 0 => &r[end + 1..],
                    _ => return false,
                }
            } else if rest.first().is_some_and(u8::is_ascii_alphabetic) {
                let n = rest
                    .iter()
                    .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_' || *b == b'\\'))
                    .unwrap_or(rest.len());
                &rest[n..]
            } else {
                return rest.first() == Some(&b'}') && skip_blank(&rest[1..]).is_empty();
            };
            let Some(value) = skip_blank(after_key).strip_prefix(b":") else {
                return false;
            };
            let value = skip_blank(value);
            value
                .first()
                .is_some_and(|b| matches!(b, b'"' | b'[' | b'{') || b.is_ascii_digit())
                || value.starts_with(b"true")
                || value.starts_with(b"false")
        }
        b'[' => {
            matches!(rest.first(), Some(b'{') | Some(b'['))
                || (rest.first() == Some(&b']') && skip_blank(&rest[1..]).is_empty())
                || {
                    let scalar_end = rest.iter().position(|&b| b == b',');
                    scalar_end.is_some_and(|n| {
                        let s = trim_ws(&rest[..n]);
                        (s.len() >= 2 && s[0] == b'"' && s[s.len() - 1] == b'"')
                            || (!s.is_empty() && s.iter().all(|b| b.is_ascii_digit() || *b == b'.'))
                            || s == b"true"
                            || s == b"false"
                    })
                }
        }
        _ => false,
    }
}

pub(crate) fn trim_ws(s: &[u8]) -> &[u8] {
    let s = skip_blank(s);
    let end = s
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .map_or(0, |p| p + 1);
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::app::tests::conn;
    use crate::analyzer::app::Transport;
    use crate::analyzer::log::tests::assert_fully_set_row_matches_schema;
    use flate2::write::GzEncoder;
    use flate2::Compression;

    #[test]
    fn files_row_matches_its_schema() {
        let c = conn(Transport::Tcp, 80);
        assert_fully_set_row_matches_schema(&FilesRow {
            ts: Time(1.0),
            fuid: "Fx",
            id: c.id(),
            source: "HTTP",
            depth: 0,
            analyzers: Set(&["SHA256"]),
            mime_type: Some("text/plain"),
            filename: Some("a.txt"),
            duration: Interval(0.5),
            local_orig: Some(false),
            is_orig: false,
            seen_bytes: 5,
            total_bytes: Some(5),
            missing_bytes: 0,
            overflow_bytes: 0,
            timedout: false,
            parent_fuid: Some("Fp"),
            md5: Some("00"),
            sha1: Some("00"),
            sha256: Some("00"),
            extracted: Some("x"),
            extracted_cutoff: Some(false),
            extracted_size: Some(5),
        });
    }
    #[test]
    fn mime_sniffing_covers_common_types() {
        assert_eq!(sniff_mime(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff_mime(b"\xff\xd8\xff\xe0"), Some("image/jpeg"));
        assert_eq!(sniff_mime(b"MZ\x90\x00"), Some("application/x-dosexec"));
        assert_eq!(sniff_mime(b"%PDF-1.4"), Some("application/pdf"));
        assert_eq!(sniff_mime(b"PK\x03\x04"), Some("application/zip"));
        assert_eq!(sniff_mime(b"  <!DOCTYPE html><html>"), Some("text/html"));
        assert_eq!(sniff_mime(b"{\"a\": 1}"), Some("text/json"));
        assert_eq!(
            sniff_mime(b"document.write('x')"),
            Some("application/javascript")
        );
        assert_eq!(sniff_mime(b"hello world, plain"), Some("text/plain"));
        assert_eq!(
            sniff_mime(b"(function()\n{ var x;"),
            Some("application/javascript")
        );
        assert_eq!(sniff_mime(b"(function()\r\n{ var x;"), Some("text/plain"));
        assert_eq!(sniff_mime(b"short"), None);
        assert_eq!(sniff_mime(b"\x00\x01\x02binary...."), None);
    }

    #[test]
    fn multipart_bodies_split_into_parts() {
        let body = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue one\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\r\n--XyZ--\r\nepilogue";
        let parts = multipart_parts(body, b"XyZ");
        assert_eq!(
            parts,
            vec![
                Part {
                    filename: None,
                    content: b"value one"
                },
                Part {
                    filename: Some("x.png".into()),
                    content: b"\x89PNG\r\n\x1a\n"
                },
            ]
        );
        assert!(multipart_parts(b"no delimiter here", b"XyZ").is_empty());
        // Cut short: the last part keeps what arrived.
        assert_eq!(multipart_parts(b"--b\r\n\r\nabc", b"b")[0].content, b"abc");
    }

    #[test]
    fn gzip_body_is_counted_and_sniffed_decoded() {
        let plain = b"body { color: red; } /* a stylesheet that compresses well */ ".repeat(20);
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&plain).unwrap();
        let gz = enc.finish().unwrap();
        let mut f = FileState::new("Fx".into(), 1.0, Some(b" gzip"), false, None, None);
        let mut weirds = Vec::new();
        let (a, b) = gz.split_at(gz.len() / 2);
        f.data(1.0, a, &mut weirds);
        f.data(1.5, b, &mut weirds);
        f.end();
        assert_eq!(f.seen(), plain.len() as u64);
        assert_eq!(f.mime, Some("text/plain"));
        assert!(weirds.is_empty());
        let mut bad = FileState::new("Fy".into(), 1.0, Some(b"gzip"), false, None, None);
        bad.data(1.0, b"not gzip at all", &mut weirds);
        assert_eq!(weirds, vec![("zip_decompress_error", String::new())]);
    }
}
