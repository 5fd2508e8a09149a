//! Byte streams that one side of a TCP connection sends in a turn, produced lazily so a
//! multi-megabyte response never sits in memory: literal bytes, random (incompressible)
//! bytes, repeating text, and TLS application-data records wrapping random ciphertext.

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
mod tests {
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
