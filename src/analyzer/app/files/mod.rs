//! Files carried in HTTP bodies: content decoding (gzip/deflate), MIME sniffing from the
//! first bytes, and the `files.log` line Zeek's file analysis writes for each body.
//!
//! Memory per file is bounded: decoded bytes are counted, and only the first
//! [`SNIFF_LEN`] are kept for sniffing, however large the (decompressed) body is.
//!
//! Layout: `mime` sniffs types from Zeek's magic signatures, `multipart` splits MIME
//! bodies, `log` is the files.log row; this file follows one file through decoding.

mod log;
mod mime;
mod multipart;

use std::io::Write;

use flate2::write::{GzDecoder, ZlibDecoder};

use super::{AppOutput, ConnInfo};
use crate::analyzer::log::{Interval, Set, Time};
pub use log::{FilesRow, FILES_SCHEMA};
use mime::sniff_mime;
pub(crate) use multipart::{disposition_filename, multipart_parts};

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
