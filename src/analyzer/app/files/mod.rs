//! Files carried by the traffic (HTTP bodies, SMTP MIME entities, FTP data transfers):
//! content decoding (gzip/deflate), MIME sniffing from the first bytes, hashing,
//! extraction, and the `files.log` line Zeek's file analysis writes for each file. The
//! protocol analyzers create a [`FileState`] per file (its `source` says which protocol
//! carried it), feed it the file's bytes and write its line when it ends.
//!
//! Everything is streamed and memory per file is bounded: decoded bytes are counted and
//! hashed as they come, only the first [`SNIFF_LEN`] are kept until the MIME type is known,
//! and from then on an extracted file is written as its bytes arrive, however large the
//! (decompressed) body is.
//!
//! Layout: `magic` sniffs types by Zeek's file signatures (`magic.tsv`), `hash` keeps the
//! digests, `extract` writes chosen files under `extract_files/`, `multipart` splits
//! multipart HTTP bodies, `mime` reads MIME messages (mail) into entities, `log` is the
//! files.log row; this file follows one file through decoding and
//! names files ([`FuidGenerator`]).

mod extract;
mod hash;
mod log;
mod magic;
mod mime;
mod multipart;
mod range;

use std::io::Write;

use flate2::write::{DeflateDecoder, GzDecoder, ZlibDecoder};
use sha2::{Digest, Sha256};

use super::ConnInfo;
use crate::analyzer::log::{Interval, LogSink, Set, Time};
pub use extract::{mime_matches, ExtractScope, ExtractStats, EXTRACT_DIR};
use extract::{Extracted, Extraction};
pub use hash::{DigestSet, HashScope};
use hash::{Digests, Hashes};
pub use log::{FilesRow, FILES_SCHEMA};
use magic::sniff_mime;
pub(crate) use mime::{header_filename, Content, MimeEvent, MimeMessage};
pub(crate) use multipart::{disposition_filename, MultipartSplitter, PartEvent};
pub use range::RangeFiles;
pub(crate) use range::RangeKey;

/// Bytes of a body kept for MIME sniffing (Zeek's default BOF buffer).
pub(crate) const SNIFF_LEN: usize = 4096;

/// How much of the files of `source` (a files.log source) this run needs: all their
/// content when files.log is kept or they may be extracted, else only whether they have
/// any (the protocol's own log lists their ids).
pub(crate) fn content_needed(logs: &dyn LogSink, source: &str) -> Content {
    if logs.wants("files") || extract::may_extract(source) {
        Content::Decoded
    } else {
        Content::Presence
    }
}

/// Names the files of one connection: Zeek-shaped ids (`F` and 17 base-62 characters),
/// derived from the connection's uid and a counter so that a run is reproducible.
#[derive(Debug, Default)]
pub(crate) struct FuidGenerator {
    created: u64,
}

impl FuidGenerator {
    /// The next file id of the connection `conn`.
    pub(crate) fn next(&mut self, conn: &ConnInfo) -> String {
        self.created += 1;
        let digest = Sha256::digest(format!("{}/{}", conn.uid, self.created).as_bytes());
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut id = String::from("F");
        id.extend(
            digest
                .iter()
                .take(17)
                .map(|b| char::from(ALPHABET[usize::from(*b) % 62])),
        );
        id
    }
}

/// What a file needs to know to settle its type and start extraction.
#[derive(Debug, Clone, Default)]
struct Pending {
    fuid: String,
    ts: f64,
    source: &'static str,
    /// No MIME detection: the body does not start at the file's first byte (a 206 range).
    no_bof: bool,
}

/// Where decoded body bytes go: counted, hashed, kept for sniffing until the type is
/// settled, then written to the extraction if there is one.
#[derive(Debug, Default)]
struct Tap {
    len: u64,
    head: Vec<u8>,
    hashes: Hashes,
    /// Set until the MIME type is settled.
    pending: Option<Pending>,
    mime: Option<&'static str>,
    extraction: Option<Extraction>,
}

impl Tap {
    fn new(pending: Pending) -> Self {
        Tap {
            pending: Some(pending),
            hashes: Hashes::new(),
            ..Tap::default()
        }
    }

    /// Sniffs the type from what the head holds and decides on extraction.
    fn settle(&mut self) {
        let Some(p) = self.pending.take() else {
            return;
        };
        let head = std::mem::take(&mut self.head);
        self.mime = if p.no_bof { None } else { sniff_mime(&head) };
        self.extraction = extract::begin(p.ts, p.source, &p.fuid, self.mime);
        if let Some(x) = self.extraction.as_mut() {
            x.write(&head);
        }
    }

    /// `len` decoded bytes are missing.
    fn gap(&mut self, len: u64) {
        self.hashes.gap();
        self.settle();
        if let Some(x) = self.extraction.as_mut() {
            x.gap(len);
        }
    }
}

impl Write for Tap {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.len += buf.len() as u64;
        self.hashes.update(buf);
        let mut rest = buf;
        if self.pending.is_some() {
            let room = SNIFF_LEN.saturating_sub(self.head.len());
            let (now, later) = buf.split_at(buf.len().min(room));
            self.head.extend_from_slice(now);
            rest = later;
            if self.head.len() < SNIFF_LEN {
                return Ok(buf.len());
            }
            self.settle();
        }
        if let Some(x) = self.extraction.as_mut() {
            x.write(rest);
        }
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
    /// `deflate` before its first two bytes say whether a zlib header wraps the stream.
    DeflateStart(Tap, Vec<u8>),
    Zlib(Box<ZlibDecoder<Tap>>),
    /// `deflate` without the zlib header, as some servers send it (Zeek's ZIP analyzer
    /// falls back to raw inflation too).
    RawDeflate(Box<DeflateDecoder<Tap>>),
    /// Decoding failed or bytes went missing: what was decoded so far stands.
    Stopped(Tap),
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Decoder").field(self.tap()).finish()
    }
}

impl Decoder {
    fn for_encoding(encoding: Option<&[u8]>, tap: Tap) -> Self {
        let enc = encoding.map(|e| e.trim_ascii().to_ascii_lowercase());
        match enc.as_deref() {
            Some(b"gzip") | Some(b"x-gzip") => Decoder::Gzip(Box::new(GzDecoder::new(tap))),
            Some(b"deflate") => Decoder::DeflateStart(tap, Vec::new()),
            _ => Decoder::Identity(tap),
        }
    }

    fn tap(&self) -> &Tap {
        match self {
            Decoder::Identity(t) | Decoder::Stopped(t) | Decoder::DeflateStart(t, _) => t,
            Decoder::Gzip(d) => d.get_ref(),
            Decoder::Zlib(d) => d.get_ref(),
            Decoder::RawDeflate(d) => d.get_ref(),
        }
    }

    fn tap_mut(&mut self) -> &mut Tap {
        match self {
            Decoder::Identity(t) | Decoder::Stopped(t) | Decoder::DeflateStart(t, _) => t,
            Decoder::Gzip(d) => d.get_mut(),
            Decoder::Zlib(d) => d.get_mut(),
            Decoder::RawDeflate(d) => d.get_mut(),
        }
    }

    /// Feeds encoded bytes; false if the decoder gave up on them.
    fn write(&mut self, data: &[u8]) -> bool {
        if let Decoder::DeflateStart(_, head) = self {
            head.extend_from_slice(data);
            if head.len() < 2 {
                return true;
            }
            let head = std::mem::take(head);
            let tap = std::mem::take(self.tap_mut());
            // RFC 1950: compression method 8 and a header that is a multiple of 31.
            let zlib =
                head[0] & 0x0f == 8 && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0;
            *self = if zlib {
                Decoder::Zlib(Box::new(ZlibDecoder::new(tap)))
            } else {
                Decoder::RawDeflate(Box::new(DeflateDecoder::new(tap)))
            };
            return self.write(&head);
        }
        let ok = match self {
            Decoder::Identity(t) => t.write_all(data).is_ok(),
            Decoder::Gzip(d) => d.write_all(data).is_ok(),
            Decoder::Zlib(d) => d.write_all(data).is_ok(),
            Decoder::RawDeflate(d) => d.write_all(data).is_ok(),
            Decoder::Stopped(_) | Decoder::DeflateStart(..) => return true,
        };
        if !ok {
            self.stop();
        }
        ok
    }

    fn stop(&mut self) {
        if !matches!(self, Decoder::Identity(_) | Decoder::Stopped(_)) {
            *self = Decoder::Stopped(std::mem::take(self.tap_mut()));
        }
    }

    fn finish(&mut self) {
        let _ = match self {
            Decoder::Gzip(d) => d.try_finish(),
            Decoder::Zlib(d) => d.try_finish(),
            Decoder::RawDeflate(d) => d.try_finish(),
            _ => Ok(()),
        };
    }
}

/// One file tracked through Zeek's file analysis: an HTTP body, an SMTP MIME entity, an FTP
/// transfer.
#[derive(Debug)]
pub(crate) struct FileState {
    pub fuid: String,
    pub filename: Option<String>,
    /// files.log `source`: `HTTP`, `SMTP`, `FTP_DATA`.
    source: &'static str,
    /// files.log `depth`: the MIME entity's depth for SMTP, 0 otherwise.
    depth: u64,
    first_ts: f64,
    last_ts: f64,
    decoder: Decoder,
    missing: u64,
    total: Option<u64>,
    digests: Option<Digests>,
    extracted: Option<Extracted>,
    /// Seen and missing bytes when they are not those of one stream (a ranged file whose
    /// pieces came out of order, see `range`).
    counts: Option<(u64, u64)>,
}

impl FileState {
    /// A file of `source` whose first byte comes at `ts`; the builder methods below add
    /// what the protocol knows of it before its first byte.
    pub(crate) fn new(source: &'static str, fuid: String, ts: f64) -> Self {
        let tap = Tap::new(Pending {
            fuid: fuid.clone(),
            ts,
            source,
            no_bof: false,
        });
        FileState {
            fuid,
            filename: None,
            source,
            depth: 0,
            first_ts: ts,
            last_ts: ts,
            decoder: Decoder::Identity(tap),
            missing: 0,
            total: None,
            digests: None,
            extracted: None,
            counts: None,
        }
    }

    /// The body is sent with this Content-Encoding (HTTP): it is decoded before analysis.
    pub(crate) fn content_encoding(mut self, encoding: Option<&[u8]>) -> Self {
        let tap = std::mem::take(self.decoder.tap_mut());
        self.decoder = Decoder::for_encoding(encoding, tap);
        self
    }

    /// The bytes do not start at the file's first byte (an HTTP 206): no MIME sniffing.
    pub(crate) fn without_bof(mut self, no_bof: bool) -> Self {
        if let Some(p) = self.decoder.tap_mut().pending.as_mut() {
            p.no_bof = no_bof;
        }
        self
    }

    /// The name the protocol gives the file (Content-Disposition).
    pub(crate) fn named(mut self, filename: Option<String>) -> Self {
        self.filename = filename;
        self
    }

    /// The size the protocol announces (Content-Length).
    pub(crate) fn sized(mut self, total: Option<u64>) -> Self {
        self.total = total;
        self
    }

    /// files.log `depth` (SMTP: the number of MIME entities begun in the session).
    pub(crate) fn at_depth(mut self, depth: u64) -> Self {
        self.depth = depth;
        self
    }

    /// Decoded bytes seen so far.
    pub(crate) fn seen(&self) -> u64 {
        self.decoder.tap().len
    }

    /// Bytes counted missing so far.
    pub(crate) fn missing(&self) -> u64 {
        self.missing
    }

    /// The MIME type, once settled.
    pub(crate) fn mime(&self) -> Option<&'static str> {
        self.decoder.tap().mime
    }

    /// Whether the MIME type is settled (Zeek's `file_sniff` happened): the first
    /// [`SNIFF_LEN`] bytes were seen, bytes went missing, or the file ended.
    pub(crate) fn sniffed(&self) -> bool {
        self.decoder.tap().pending.is_none()
    }

    /// The size the protocol announced.
    pub(crate) fn total(&self) -> Option<u64> {
        self.total
    }

    /// When the first byte came.
    pub(crate) fn first_ts(&self) -> f64 {
        self.first_ts
    }

    /// When the last byte came.
    pub(crate) fn last_ts(&self) -> f64 {
        self.last_ts
    }

    /// Bytes at `offset` of the file (a piece of a ranged file): what continues the stream
    /// is analyzed, bytes past it leave the gap missing, bytes behind it are only counted
    /// (by the caller's coverage).
    pub(crate) fn data_at(
        &mut self,
        ts: f64,
        offset: u64,
        data: &[u8],
        weirds: &mut Vec<(&'static str, String)>,
    ) {
        self.last_ts = ts;
        let position = self.seen().saturating_add(self.missing);
        if offset > position {
            self.gap(offset - position);
        }
        let behind = usize::try_from(position.saturating_sub(offset)).unwrap_or(usize::MAX);
        if let Some(rest) = data.get(behind..).filter(|r| !r.is_empty()) {
            self.data(ts, rest, weirds);
        }
    }

    /// Seen and missing bytes as counted elsewhere (see [`FileState::data_at`]).
    pub(crate) fn set_counts(&mut self, seen: u64, missing: u64) {
        self.counts = Some((seen, missing));
    }

    /// Feeds raw (still encoded) body bytes.
    pub(crate) fn data(&mut self, ts: f64, raw: &[u8], weirds: &mut Vec<(&'static str, String)>) {
        self.last_ts = ts;
        if !self.decoder.write(raw) {
            weirds.push(("zip_decompress_error", String::new()));
        }
    }

    /// `len` body bytes were never seen: decoding cannot go on, sniffing uses what it has.
    pub(crate) fn gap(&mut self, len: u64) {
        self.missing = self.missing.saturating_add(len);
        self.decoder.stop();
        self.decoder.tap_mut().gap(len);
    }

    /// The body ended: flush the decoder, settle the MIME type, the digests and the
    /// extracted file.
    pub(crate) fn end(&mut self) {
        self.decoder.finish();
        let tap = self.decoder.tap_mut();
        tap.settle();
        self.digests = tap.hashes.finish();
        self.extracted = tap.extraction.take().map(Extraction::finish);
    }

    /// Writes this file's `files.log` line.
    pub(crate) fn write_log(&self, conn: &ConnInfo, is_orig: bool, logs: &mut dyn LogSink) {
        let (seen, missing) = self.counts.unwrap_or((self.seen(), self.missing));
        // A file that ended short of its announced size stayed open until Zeek's file
        // timeout.
        let timed_out = self.total.is_some_and(|t| seen.saturating_add(missing) < t);
        let digests = self.digests.as_ref();
        let extracted = self.extracted.as_ref();
        // Zeek lists the analyzers attached to the file. The hash analyzers are left out
        // here (docs/files.md): the reference corpus was recorded without them.
        let analyzers: &[&str] = if extracted.is_some() {
            &["EXTRACT"]
        } else {
            &[]
        };
        logs.write(&FilesRow {
            ts: Time(self.first_ts),
            fuid: &self.fuid,
            id: conn.id(),
            source: self.source,
            depth: self.depth,
            analyzers: Set(analyzers),
            mime_type: self.mime(),
            filename: self.filename.as_deref(),
            duration: Interval(self.last_ts - self.first_ts),
            local_orig: None,
            is_orig,
            seen_bytes: seen,
            total_bytes: self.total,
            missing_bytes: missing,
            overflow_bytes: 0,
            timedout: timed_out,
            parent_fuid: None,
            md5: digests.and_then(|d| d.md5.as_deref()),
            sha1: digests.and_then(|d| d.sha1.as_deref()),
            sha256: digests.and_then(|d| d.sha256.as_deref()),
            extracted: extracted.map(|x| x.name.as_str()),
            extracted_cutoff: extracted.map(|x| x.cutoff),
            extracted_size: extracted.and_then(|x| x.size),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;

    #[test]
    fn gzip_body_is_counted_and_sniffed_decoded() {
        let plain = b"body { color: red; } /* a stylesheet that compresses well */ ".repeat(20);
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&plain).unwrap();
        let gz = enc.finish().unwrap();
        let mut f = FileState::new("HTTP", "Fx".into(), 1.0).content_encoding(Some(b" gzip"));
        let mut weirds = Vec::new();
        let (a, b) = gz.split_at(gz.len() / 2);
        f.data(1.0, a, &mut weirds);
        f.data(1.5, b, &mut weirds);
        f.end();
        assert_eq!(f.seen(), plain.len() as u64);
        assert_eq!(f.mime(), Some("text/plain"));
        assert!(weirds.is_empty());
        // `deflate` comes zlib-wrapped or raw; both decode.
        for raw in [false, true] {
            let body = if raw {
                let mut enc =
                    flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
                enc.write_all(&plain).unwrap();
                enc.finish().unwrap()
            } else {
                let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
                enc.write_all(&plain).unwrap();
                enc.finish().unwrap()
            };
            let mut f = FileState::new("HTTP", "Fd".into(), 1.0).content_encoding(Some(b"deflate"));
            f.data(1.0, &body[..1], &mut weirds);
            f.data(1.0, &body[1..], &mut weirds);
            f.end();
            assert_eq!(f.seen(), plain.len() as u64, "raw deflate: {raw}");
        }
        assert!(weirds.is_empty());
        let mut bad = FileState::new("HTTP", "Fy".into(), 1.0).content_encoding(Some(b"gzip"));
        bad.data(1.0, b"not gzip at all", &mut weirds);
        assert_eq!(weirds, vec![("zip_decompress_error", String::new())]);
    }
}
