//! Byte streams that one side of a TCP connection sends in a turn, produced lazily so a
//! multi-megabyte response never sits in memory: literal bytes, random (incompressible)
//! bytes, repeating text, TLS application-data records wrapping random ciphertext, and files
//! in MIME base64 (76-character lines, as mail clients attach them).

use std::collections::VecDeque;

use super::rng::Rng;

/// Text used for text/* bodies; cycled, so bodies look like documents, not noise.
const FILLER_TEXT: &[u8] = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do \
eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud \
exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. <p class=\"note\">Duis aute \
irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur.</p>\n";

/// TLS caps a record's plaintext at 2^14 bytes; AES-GCM adds a 16-byte tag.
pub const TLS_MAX_RECORD: u64 = 16_384 + 16;
pub const TLS_CONTENT_APPLICATION_DATA: u8 = 23;

enum Chunk {
    Bytes {
        data: Vec<u8>,
        pos: usize,
    },
    Random {
        remaining: u64,
    },
    Text {
        remaining: u64,
        offset: usize,
    },
    /// Application-data records of a TLS 1.2+ connection totalling `remaining` bytes of
    /// record bodies; each record's 5-byte header is emitted before its body.
    TlsRecords {
        remaining: u64,
    },
    /// A file of `remaining` raw bytes (`magic`, then random bytes) in base64 lines of 76
    /// characters plus CRLF; each line is produced when it is reached.
    Base64 {
        magic: &'static [u8],
        done: u64,
        remaining: u64,
    },
}

/// Raw bytes per 76-character base64 line.
const BASE64_LINE_RAW: u64 = 57;
const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Bytes of `raw` bytes in base64 lines of 76 characters, each followed by CRLF.
pub fn base64_lines_len(raw: u64) -> u64 {
    let rest = raw % BASE64_LINE_RAW;
    raw / BASE64_LINE_RAW * 78
        + if rest > 0 {
            rest.div_ceil(3) * 4 + 2
        } else {
            0
        }
}

/// Appends the padded base64 encoding of `raw` to `out`.
pub fn base64_encode(raw: &[u8], out: &mut Vec<u8>) {
    for group in raw.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(BASE64_ALPHABET[(n >> (18 - 6 * i) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
}

/// The bytes one side sends in one turn.
#[derive(Default)]
pub struct ByteStream {
    chunks: VecDeque<Chunk>,
    len: u64,
}

impl ByteStream {
    pub fn new() -> Self {
        ByteStream::default()
    }

    pub fn bytes(mut self, data: Vec<u8>) -> Self {
        self.len += data.len() as u64;
        if !data.is_empty() {
            self.chunks.push_back(Chunk::Bytes { data, pos: 0 });
        }
        self
    }

    pub fn random(mut self, len: u64) -> Self {
        self.len += len;
        if len > 0 {
            self.chunks.push_back(Chunk::Random { remaining: len });
        }
        self
    }

    pub fn text(mut self, len: u64) -> Self {
        self.len += len;
        if len > 0 {
            self.chunks.push_back(Chunk::Text {
                remaining: len,
                offset: 0,
            });
        }
        self
    }

    /// TLS application data carrying `body_len` bytes of record bodies (headers extra).
    pub fn tls_records(mut self, body_len: u64) -> Self {
        let records = body_len.div_ceil(TLS_MAX_RECORD);
        self.len += body_len + 5 * records;
        if body_len > 0 {
            self.chunks.push_back(Chunk::TlsRecords {
                remaining: body_len,
            });
        }
        self
    }

    /// A file of `raw_len` bytes starting with `magic` (the rest random), base64-encoded in
    /// CRLF-terminated lines of 76 characters as a MIME body part carries it.
    pub fn base64_file(mut self, magic: &'static [u8], raw_len: u64) -> Self {
        self.len += base64_lines_len(raw_len);
        if raw_len > 0 {
            self.chunks.push_back(Chunk::Base64 {
                magic,
                done: 0,
                remaining: raw_len,
            });
        }
        self
    }

    /// Appends another stream's bytes after this one's.
    pub fn append(mut self, other: ByteStream) -> Self {
        self.len += other.len;
        self.chunks.extend(other.chunks);
        self
    }

    /// Bytes still to send.
    pub fn remaining(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends up to `max` bytes to `out`; returns how many were appended.
    pub fn fill(&mut self, out: &mut Vec<u8>, max: usize, rng: &mut Rng) -> usize {
        let mut written = 0;
        while written < max {
            let room = max - written;
            let Some(chunk) = self.chunks.front_mut() else {
                break;
            };
            let (n, exhausted) = match chunk {
                Chunk::Bytes { data, pos } => {
                    let n = room.min(data.len() - *pos);
                    out.extend_from_slice(&data[*pos..*pos + n]);
                    *pos += n;
                    (n, *pos == data.len())
                }
                Chunk::Random { remaining } => {
                    let n = room.min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    let start = out.len();
                    out.resize(start + n, 0);
                    rng.fill(&mut out[start..]);
                    *remaining -= n as u64;
                    (n, *remaining == 0)
                }
                Chunk::Text { remaining, offset } => {
                    let mut n = room.min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    let total = n;
                    while n > 0 {
                        let take = n.min(FILLER_TEXT.len() - *offset);
                        out.extend_from_slice(&FILLER_TEXT[*offset..*offset + take]);
                        *offset = (*offset + take) % FILLER_TEXT.len();
                        n -= take;
                    }
                    *remaining -= total as u64;
                    (total, *remaining == 0)
                }
                Chunk::TlsRecords { remaining } => {
                    // Split off one record: its header and body go in front as ordinary
                    // chunks, so a header may straddle two TCP segments as on real links.
                    let body = (*remaining).min(TLS_MAX_RECORD);
                    *remaining -= body;
                    let exhausted = *remaining == 0;
                    let mut header = vec![TLS_CONTENT_APPLICATION_DATA, 3, 3];
                    header.extend_from_slice(&(body as u16).to_be_bytes());
                    if exhausted {
                        self.chunks.pop_front();
                    }
                    self.chunks.push_front(Chunk::Random { remaining: body });
                    self.chunks.push_front(Chunk::Bytes {
                        data: header,
                        pos: 0,
                    });
                    continue;
                }
                Chunk::Base64 {
                    magic,
                    done,
                    remaining,
                } => {
                    // Split off one line, as for TLS records.
                    let take = (*remaining).min(BASE64_LINE_RAW) as usize;
                    let mut raw = [0u8; BASE64_LINE_RAW as usize];
                    rng.fill(&mut raw[..take]);
                    let start = usize::try_from(*done).unwrap_or(usize::MAX);
                    if start < magic.len() {
                        let from_magic = (magic.len() - start).min(take);
                        raw[..from_magic].copy_from_slice(&magic[start..start + from_magic]);
                    }
                    *done += take as u64;
                    *remaining -= take as u64;
                    let mut line = Vec::with_capacity(78);
                    base64_encode(&raw[..take], &mut line);
                    line.extend_from_slice(b"\r\n");
                    if *remaining == 0 {
                        self.chunks.pop_front();
                    }
                    self.chunks.push_front(Chunk::Bytes { data: line, pos: 0 });
                    continue;
                }
            };
            written += n;
            self.len -= n as u64;
            if exhausted {
                self.chunks.pop_front();
            }
        }
        written
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn drain(mut stream: ByteStream, step: usize) -> Vec<u8> {
        let mut rng = Rng::new(3);
        let mut out = Vec::new();
        let declared = stream.remaining();
        while !stream.is_empty() {
            let before = out.len();
            let n = stream.fill(&mut out, step, &mut rng);
            assert_eq!(n, out.len() - before);
            assert!(n > 0 && n <= step);
        }
        assert_eq!(out.len() as u64, declared);
        out
    }

    #[test]
    fn chunks_concatenate_in_order_across_fill_boundaries() {
        let stream = ByteStream::new()
            .bytes(b"HEAD".to_vec())
            .text(300)
            .bytes(b"TAIL".to_vec());
        let out = drain(stream, 7);
        assert!(out.starts_with(b"HEADLorem ipsum"));
        assert!(out.ends_with(b"TAIL"));
        assert_eq!(out.len(), 308);
    }

    /// Decodes padded base64 (test helper).
    pub fn base64_decode(text: &[u8]) -> Vec<u8> {
        let value = |c: u8| BASE64_ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        let mut out = Vec::new();
        for quad in text.chunks(4) {
            let pad = quad.iter().filter(|&&c| c == b'=').count();
            let n = quad
                .iter()
                .fold(0u32, |n, &c| n << 6 | if c == b'=' { 0 } else { value(c) });
            out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
        }
        out
    }

    #[test]
    fn base64_encoding_matches_rfc_4648_vectors() {
        for (raw, text) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
        ] {
            let mut out = Vec::new();
            base64_encode(raw, &mut out);
            assert_eq!(out, text.as_bytes());
            assert_eq!(base64_decode(text.as_bytes()), raw);
        }
    }

    #[test]
    fn base64_file_is_lines_of_76_that_decode_to_the_magic_and_length() {
        for raw_len in [1u64, 5, 56, 57, 58, 114, 1000, 4097] {
            let out = drain(ByteStream::new().base64_file(b"%PDF-1.7\n", raw_len), 1460);
            assert_eq!(out.len() as u64, base64_lines_len(raw_len));
            let text = std::str::from_utf8(&out).unwrap();
            let lines: Vec<&str> = text.split_terminator("\r\n").collect();
            assert!(lines.iter().all(|l| l.len() <= 76 && !l.is_empty()));
            assert!(lines[..lines.len() - 1].iter().all(|l| l.len() == 76));
            let decoded = base64_decode(lines.concat().as_bytes());
            assert_eq!(decoded.len() as u64, raw_len);
            let magic = &b"%PDF-1.7\n"[..decoded.len().min(9)];
            assert!(decoded.starts_with(magic));
        }
    }

    #[test]
    fn tls_records_have_valid_headers_and_lengths() {
        let body = 40_000u64;
        let out = drain(ByteStream::new().tls_records(body), 1460);
        let mut pos = 0;
        let mut bodies = Vec::new();
        while pos < out.len() {
            assert_eq!(&out[pos..pos + 3], &[23, 3, 3]);
            let len = u16::from_be_bytes([out[pos + 3], out[pos + 4]]) as usize;
            bodies.push(len);
            pos += 5 + len;
        }
        assert_eq!(pos, out.len(), "records tile the stream exactly");
        assert_eq!(bodies.iter().sum::<usize>() as u64, body);
        assert_eq!(bodies, vec![16_400, 16_400, 7_200]);
    }
}
