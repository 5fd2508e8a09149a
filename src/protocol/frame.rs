//! Frame encoding: length-prefixed client frames and status-prefixed server replies.
//!
//! Reading a frame is split in two so sizes are checked before memory is spent: the caller
//! reads the header, compares the length with the limit that applies (`max_request` for a
//! request, `max_chunk` for upload data) and only then reads the body.

use super::error::ErrorCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The readiness probe: these two bytes sent alone instead of a length.
pub const PROBE: &[u8; 2] = b"RE";

/// What the first bytes of an exchange turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameHeader {
    /// The peer closed the connection cleanly before sending anything.
    Closed,
    /// `RE`: answer nothing, close.
    Probe,
    /// A frame of this many bytes follows.
    Length(u64),
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge { len: u64, limit: u64 },
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads the 8-byte length of the next frame. With `allow_probe`, two bytes `RE` followed by
/// end of stream (or anything: a real length never starts with "RE" within sane limits) is
/// reported as a probe.
pub async fn read_frame_header<R: AsyncRead + Unpin>(
    reader: &mut R,
    allow_probe: bool,
) -> Result<FrameHeader, FrameError> {
    let mut head = [0u8; 8];
    let first = read_until_eof(reader, &mut head[..2]).await?;
    if first == 0 {
        return Ok(FrameHeader::Closed);
    }
    if first < 2 {
        return Err(FrameError::Truncated);
    }
    if allow_probe && &head[..2] == PROBE {
        return Ok(FrameHeader::Probe);
    }
    if read_until_eof(reader, &mut head[2..]).await? < 6 {
        return Err(FrameError::Truncated);
    }
    Ok(FrameHeader::Length(u64::from_be_bytes(head)))
}

/// Reads exactly `buf.len()` bytes unless the stream ends first; returns how many arrived.
async fn read_until_eof<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = reader.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Reads a frame body of `len` bytes (already checked against its limit).
pub async fn read_frame_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    len: u64,
    buf: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let len = usize::try_from(len).map_err(|_| FrameError::TooLarge {
        len,
        limit: usize::MAX as u64,
    })?;
    buf.clear();
    buf.resize(len, 0);
    if read_until_eof(reader, buf).await? < len {
        return Err(FrameError::Truncated);
    }
    Ok(())
}

/// Writes one client frame (used by the client and tests).
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    body: &[u8],
) -> std::io::Result<()> {
    writer.write_all(&(body.len() as u64).to_be_bytes()).await?;
    writer.write_all(body).await
}

/// A server answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `OK` + a JSON document.
    Ok(serde_json::Value),
    /// `OK` + raw bytes (`fetch`).
    OkRaw(Vec<u8>),
    /// `KO`: wrong password (or, burp backend, no answer). No payload.
    Ko,
    /// `ER` + `{"error": code, "message": text}`.
    Er { code: ErrorCode, message: String },
}

impl Reply {
    /// An `ER` reply; the message is made client-facing ([`super::client_message`]).
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Reply {
        Reply::Er {
            code,
            message: super::client_message(&message.into()),
        }
    }
}

/// Writes a reply and flushes it.
pub async fn write_reply<W: AsyncWrite + Unpin>(
    writer: &mut W,
    reply: &Reply,
) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(64);
    match reply {
        Reply::Ok(value) => encode(
            &mut out,
            b"OK",
            &serde_json::to_vec(value).unwrap_or_default(),
        ),
        Reply::OkRaw(bytes) => encode(&mut out, b"OK", bytes),
        Reply::Ko => out.extend_from_slice(b"KO"),
        Reply::Er { code, message } => {
            let body = serde_json::json!({ "error": code.as_str(), "message": message });
            encode(
                &mut out,
                b"ER",
                &serde_json::to_vec(&body).unwrap_or_default(),
            );
        }
    }
    writer.write_all(&out).await?;
    writer.flush().await
}

fn encode(out: &mut Vec<u8>, status: &[u8; 2], payload: &[u8]) {
    out.extend_from_slice(status);
    out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Reads a reply (client side). `max` caps the payload the client accepts.
pub async fn read_reply<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: u64,
) -> Result<RawReply, FrameError> {
    let mut status = [0u8; 2];
    if read_until_eof(reader, &mut status).await? < 2 {
        return Err(FrameError::Truncated);
    }
    if &status == b"KO" {
        return Ok(RawReply::Ko);
    }
    let FrameHeader::Length(len) = read_frame_header(reader, false).await? else {
        return Err(FrameError::Truncated);
    };
    if len > max {
        return Err(FrameError::TooLarge { len, limit: max });
    }
    let mut body = Vec::new();
    read_frame_body(reader, len, &mut body).await?;
    match &status {
        b"OK" => Ok(RawReply::Ok(body)),
        b"ER" => Ok(RawReply::Er(body)),
        _ => Err(FrameError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "unknown reply status {:?}",
                String::from_utf8_lossy(&status)
            ),
        ))),
    }
}

/// A reply as bytes, before the client interprets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawReply {
    Ok(Vec<u8>),
    Ko,
    Er(Vec<u8>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ok_reply_is_status_length_payload() {
        let mut out = Vec::new();
        write_reply(&mut out, &Reply::Ok(serde_json::json!({"a": 1})))
            .await
            .unwrap();
        assert_eq!(&out[..2], b"OK");
        assert_eq!(&out[2..10], &7u64.to_be_bytes());
        assert_eq!(&out[10..], br#"{"a":1}"#);
    }

    #[tokio::test]
    async fn ko_has_no_payload() {
        let mut out = Vec::new();
        write_reply(&mut out, &Reply::Ko).await.unwrap();
        assert_eq!(out, b"KO");
    }

    #[tokio::test]
    async fn er_carries_code_and_message() {
        let mut out = Vec::new();
        write_reply(&mut out, &Reply::error(ErrorCode::QueueFull, "full"))
            .await
            .unwrap();
        let mut reader = &out[..];
        let RawReply::Er(body) = read_reply(&mut reader, 1024).await.unwrap() else {
            panic!("not ER")
        };
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"], "queue_full");
        assert_eq!(v["message"], "full");
    }

    #[tokio::test]
    async fn probe_closed_and_truncated_headers() {
        let mut probe: &[u8] = b"RE";
        assert_eq!(
            read_frame_header(&mut probe, true).await.unwrap(),
            FrameHeader::Probe
        );
        let mut empty: &[u8] = b"";
        assert_eq!(
            read_frame_header(&mut empty, true).await.unwrap(),
            FrameHeader::Closed
        );
        let mut short: &[u8] = &[0, 0, 0];
        assert!(matches!(
            read_frame_header(&mut short, true).await,
            Err(FrameError::Truncated)
        ));
        let mut len: &[u8] = &5u64.to_be_bytes();
        assert_eq!(
            read_frame_header(&mut len, true).await.unwrap(),
            FrameHeader::Length(5)
        );
    }

    #[tokio::test]
    async fn body_shorter_than_declared_is_truncated() {
        let mut reader: &[u8] = b"abc";
        let mut buf = Vec::new();
        assert!(matches!(
            read_frame_body(&mut reader, 5, &mut buf).await,
            Err(FrameError::Truncated)
        ));
    }
}
