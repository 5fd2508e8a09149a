//! What every generated session shares: its kind, the `Session` trait the scheduler drives,
//! and the `Outbox` of frames a session has built but the scheduler has not yet written.
//!
//! Invariant: frames enter an outbox in nondecreasing timestamp order and never earlier than
//! the time the session was started at. The scheduler relies on it to merge sessions into
//! one globally ordered capture with a heap keyed on each outbox's first frame.

use std::collections::VecDeque;

use super::rng::Rng;

/// The kinds of traffic the generator produces; one session is one conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SessionKind {
    /// TCP connection carrying HTTP/1.1 requests and responses (keep-alive, chunked, POST).
    Http,
    /// TCP connection with a TLS 1.2 or 1.3 handshake and application data.
    Tls,
    /// DNS queries over UDP, answered, NXDOMAIN or unanswered.
    DnsUdp,
    /// DNS queries over a TCP connection (two-byte length framing).
    DnsTcp,
    /// NTP client/server exchanges.
    Ntp,
    /// A bidirectional UDP flow with opaque payloads (media-like).
    UdpStream,
    /// ICMP / ICMPv6 echo requests and replies.
    IcmpEcho,
    /// A TCP SYN answered by RST (closed port).
    TcpRejected,
    /// A TCP SYN never answered, retransmitted by the client.
    TcpUnanswered,
    /// SMTP on port 25 or 587: EHLO, mail transactions with MIME attachments, STARTTLS.
    Smtp,
    /// FTP on port 21 with a separate data connection per transfer (passive or active).
    Ftp,
    /// SSH on port 22: version lines, key exchange, encrypted auth and session traffic.
    Ssh,
}

impl SessionKind {
    pub const ALL: [SessionKind; 12] = [
        SessionKind::Http,
        SessionKind::Tls,
        SessionKind::DnsUdp,
        SessionKind::DnsTcp,
        SessionKind::Ntp,
        SessionKind::UdpStream,
        SessionKind::IcmpEcho,
        SessionKind::TcpRejected,
        SessionKind::TcpUnanswered,
        SessionKind::Smtp,
        SessionKind::Ftp,
        SessionKind::Ssh,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            SessionKind::Http => "http",
            SessionKind::Tls => "tls",
            SessionKind::DnsUdp => "dns-udp",
            SessionKind::DnsTcp => "dns-tcp",
            SessionKind::Ntp => "ntp",
            SessionKind::UdpStream => "udp-stream",
            SessionKind::IcmpEcho => "icmp-echo",
            SessionKind::TcpRejected => "tcp-rejected",
            SessionKind::TcpUnanswered => "tcp-unanswered",
            SessionKind::Smtp => "smtp",
            SessionKind::Ftp => "ftp",
            SessionKind::Ssh => "ssh",
        }
    }
}

/// One built frame and the time it is seen at the capture point (µs since the epoch).
pub struct Frame {
    pub ts: u64,
    pub data: Vec<u8>,
}

/// A session's queue of built frames plus its clock. Frame buffers are recycled through
/// `spare`, so a running generator allocates nothing per packet.
pub struct Outbox {
    frames: VecDeque<Frame>,
    spare: Vec<Vec<u8>>,
    /// The session's current time; only ever moves forward.
    pub now: u64,
}

impl Outbox {
    pub fn new(start: u64) -> Self {
        Outbox {
            frames: VecDeque::new(),
            spare: Vec::new(),
            now: start,
        }
    }

    /// Restarts an outbox for a new session, keeping its spare buffers.
    pub fn reset(&mut self, start: u64) {
        debug_assert!(self.frames.is_empty());
        self.now = start;
    }

    /// Moves the clock forward by `micros`.
    pub fn advance(&mut self, micros: u64) {
        self.now += micros;
    }

    /// Builds a frame stamped with the current time.
    pub fn push(&mut self, build: impl FnOnce(&mut Vec<u8>)) {
        let mut data = self.spare.pop().unwrap_or_default();
        build(&mut data);
        self.frames.push_back(Frame { ts: self.now, data });
    }

    /// Builds a frame into a scratch buffer and drops it: a segment the tap missed still
    /// consumes its payload bytes from the stream so later segments stay consistent.
    pub fn discard(&mut self, build: impl FnOnce(&mut Vec<u8>)) {
        let mut data = self.spare.pop().unwrap_or_default();
        build(&mut data);
        self.spare.push(data);
    }

    /// Payload bytes of the most recently pushed frame after `header_len` bytes, for
    /// retransmitting it.
    pub fn last_payload(&self, header_len: usize) -> Option<&[u8]> {
        self.frames.back().map(|f| &f.data[header_len..])
    }

    pub fn front_ts(&self) -> Option<u64> {
        self.frames.front().map(|f| f.ts)
    }

    pub fn pop(&mut self) -> Option<Frame> {
        self.frames.pop_front()
    }

    /// Gives a written frame's buffer back for reuse.
    pub fn recycle(&mut self, mut data: Vec<u8>) {
        data.clear();
        self.spare.push(data);
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

/// A conversation the scheduler advances step by step.
pub trait Session {
    /// Appends the next batch of frames to `out`. Returns false once the session is over
    /// (after which nothing more is appended). Batches are bounded, so memory per session
    /// stays constant however large the transfer.
    fn refill(&mut self, out: &mut Outbox, rng: &mut Rng) -> bool;

    /// The capture is big enough: finish what is under way (the current exchange), then
    /// end the conversation properly instead of starting new exchanges.
    fn wind_down(&mut self);
}
