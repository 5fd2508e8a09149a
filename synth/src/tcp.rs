//! TCP conversations: the connection state (sequence numbers, IP ids, timing) and a session
//! driver that runs an application's turns over it: 3-way handshake, MSS-sized data segments
//! with delayed ACKs, occasional timeout retransmissions and capture losses, FIN or RST
//! teardown; plus the two failed-connection shapes (rejected with RST, never answered).
//!
//! The capture point is next to the client: a server's answer is seen one RTT after the
//! client's request, the client's ACKs right after the data they acknowledge.
//! Invariant: `next_seq[d]` is the next sequence number side `d` sends and the other side's
//! ACK number is always its peer's `next_seq`, even across segments the tap missed.

use super::packet::{
    tcp_frame, Endpoint, IpFields, TcpHeader, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN,
};
use super::rng::Rng;
use super::session::{Outbox, Session};
use super::stream::ByteStream;

/// Which way a segment travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ToServer,
    ToClient,
}

impl Dir {
    fn index(self) -> usize {
        match self {
            Dir::ToServer => 0,
            Dir::ToClient => 1,
        }
    }
}

/// One side's contribution: what it sends and how long it waits (think or processing time,
/// not counting the RTT, which the connection adds) before sending.
pub struct Turn {
    pub dir: Dir,
    pub stream: ByteStream,
    pub delay: u64,
}

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    ClientFin,
    ServerFin,
    ClientRst,
}

/// The application layer of a TCP session: a sequence of turns, then an ending.
pub trait TcpApp {
    fn next_turn(&mut self, rng: &mut Rng, now: u64) -> Option<Turn>;
    fn ending(&self) -> Ending;
    /// Start no new exchanges; an answer already owed is still given.
    fn wind_down(&mut self);
}

/// How often segments are disturbed, in per mille of data segments.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// The segment is seen, then seen again after a retransmission timeout.
    pub retransmit_per_mille: u32,
    /// The tap misses the segment although the receiver got (and ACKs) it.
    pub capture_loss_per_mille: u32,
}

/// Segments per `refill` batch; even, so the every-second-segment ACK rhythm holds.
const SEGMENTS_PER_BATCH: usize = 32;
/// Gap between a segment and the client's ACK of it.
const ACK_DELAY_US: u64 = 40;

pub struct TcpConn {
    ends: [Endpoint; 2],
    next_seq: [u32; 2],
    ip_id: [u16; 2],
    ttl: [u8; 2],
    window: [u16; 2],
    mss: usize,
    rtt: u64,
    /// Time between back-to-back full segments (the path's bandwidth).
    segment_gap: u64,
    faults: Faults,
}

impl TcpConn {
    pub fn new(client: Endpoint, server: Endpoint, faults: Faults, rng: &mut Rng) -> Self {
        let v6 = client.ip.is_ipv6();
        TcpConn {
            ends: [client, server],
            next_seq: [rng.next_u32(), rng.next_u32()],
            ip_id: [rng.range(0, 0xFFFF) as u16, rng.range(0, 0xFFFF) as u16],
            ttl: [64, *rng.pick(&[49, 52, 55, 116, 118, 244])],
            window: [rng.range(400, 2048) as u16, rng.range(230, 1024) as u16],
            mss: if v6 { 1440 } else { 1460 },
            rtt: rng.log_uniform(500, 150_000),
            segment_gap: rng.range(12, 240),
            faults,
        }
    }

    pub fn rtt(&self) -> u64 {
        self.rtt
    }

    fn header_len(&self) -> usize {
        14 + if self.ends[0].ip.is_ipv6() { 40 } else { 20 } + 20
    }

    /// Pushes one segment from side `dir` with the current sequence state.
    fn emit(
        &mut self,
        out: &mut Outbox,
        dir: Dir,
        flags: u8,
        options: &[u8],
        payload: impl FnOnce(&mut Vec<u8>),
    ) {
        let d = dir.index();
        let (from, to) = (self.ends[d], self.ends[1 - d]);
        let ip = IpFields {
            id: self.ip_id[d],
            ttl: self.ttl[d],
        };
        self.ip_id[d] = self.ip_id[d].wrapping_add(1);
        let header = TcpHeader {
            seq: self.next_seq[d],
            ack: if flags & TCP_ACK != 0 {
                self.next_seq[1 - d]
            } else {
                0
            },
            flags,
            window: self.window[d],
        };
        out.push(|buf| tcp_frame(buf, &from, &to, ip, header, options, payload));
    }

    fn syn_options(&self) -> [u8; 12] {
        let mss = (self.mss as u16).to_be_bytes();
        // MSS, NOP NOP SACK-permitted, NOP window-scale 7.
        [2, 4, mss[0], mss[1], 1, 1, 4, 2, 1, 3, 3, 7]
    }

    /// SYN, SYN-ACK, ACK.
    pub fn handshake(&mut self, out: &mut Outbox) {
        let options = self.syn_options();
        let saved = self.window;
        self.window = [64240, 65160];
        self.emit(out, Dir::ToServer, TCP_SYN, &options, |_| {});
        self.next_seq[0] = self.next_seq[0].wrapping_add(1);
        out.advance(self.rtt);
        self.emit(out, Dir::ToClient, TCP_SYN | TCP_ACK, &options, |_| {});
        self.next_seq[1] = self.next_seq[1].wrapping_add(1);
        self.window = saved;
        out.advance(ACK_DELAY_US);
        self.emit(out, Dir::ToServer, TCP_ACK, &[], |_| {});
    }

    /// A pure ACK from side `dir`.
    fn ack(&mut self, out: &mut Outbox, dir: Dir) {
        out.advance(ACK_DELAY_US);
        self.emit(out, dir, TCP_ACK, &[], |_| {});
    }

    /// Sends up to one batch of `stream` from side `dir`; returns true once it is all sent.
    pub fn send(
        &mut self,
        out: &mut Outbox,
        dir: Dir,
        stream: &mut ByteStream,
        rng: &mut Rng,
    ) -> bool {
        let d = dir.index();
        let receiver = if dir == Dir::ToServer {
            Dir::ToClient
        } else {
            Dir::ToServer
        };
        let mut unacked = 0;
        for _ in 0..SEGMENTS_PER_BATCH {
            if stream.is_empty() {
                break;
            }
            let len = stream.remaining().min(self.mss as u64) as usize;
            let flags = if stream.remaining() <= self.mss as u64 {
                TCP_ACK | TCP_PSH
            } else {
                TCP_ACK
            };
            let mss = self.mss;
            if rng.chance(self.faults.capture_loss_per_mille) {
                let (from, to) = (self.ends[d], self.ends[1 - d]);
                let header = TcpHeader {
                    seq: self.next_seq[d],
                    ack: self.next_seq[1 - d],
                    flags,
                    window: self.window[d],
                };
                let ip = IpFields { id: 0, ttl: 0 };
                self.ip_id[d] = self.ip_id[d].wrapping_add(1);
                out.discard(|buf| {
                    tcp_frame(buf, &from, &to, ip, header, &[], |p| {
                        stream.fill(p, mss, rng);
                    })
                });
            } else {
                self.emit(out, dir, flags, &[], |p| {
                    stream.fill(p, mss, rng);
                });
                if rng.chance(self.faults.retransmit_per_mille) {
                    let payload = out
                        .last_payload(self.header_len())
                        .map(<[u8]>::to_vec)
                        .unwrap_or_default();
                    // Linux's minimum RTO is 200 ms; the timer is at least RTT-scaled.
                    out.advance(200_000 + 2 * self.rtt + rng.range(0, 50_000));
                    self.emit(out, dir, flags, &[], |p| p.extend_from_slice(&payload));
                }
            }
            self.next_seq[d] = self.next_seq[d].wrapping_add(len as u32);
            out.advance(self.segment_gap * len as u64 / self.mss as u64 + 1);
            unacked += 1;
            if unacked == 2 {
                self.ack(out, receiver);
                unacked = 0;
            }
        }
        if unacked > 0 {
            self.ack(out, receiver);
        }
        stream.is_empty()
    }

    /// FIN handshake started by `closer`, or a client RST.
    pub fn close(&mut self, out: &mut Outbox, ending: Ending, rng: &mut Rng) {
        let (closer, peer) = match ending {
            Ending::ClientRst => {
                out.advance(rng.range(100, 5_000));
                self.emit(out, Dir::ToServer, TCP_RST | TCP_ACK, &[], |_| {});
                return;
            }
            Ending::ClientFin => (Dir::ToServer, Dir::ToClient),
            Ending::ServerFin => (Dir::ToClient, Dir::ToServer),
        };
        out.advance(rng.range(50, 20_000));
        self.emit(out, closer, TCP_FIN | TCP_ACK, &[], |_| {});
        self.next_seq[closer.index()] = self.next_seq[closer.index()].wrapping_add(1);
        out.advance(if closer == Dir::ToServer {
            self.rtt
        } else {
            ACK_DELAY_US
        });
        self.emit(out, peer, TCP_FIN | TCP_ACK, &[], |_| {});
        self.next_seq[peer.index()] = self.next_seq[peer.index()].wrapping_add(1);
        out.advance(if closer == Dir::ToServer {
            ACK_DELAY_US
        } else {
            self.rtt
        });
        self.emit(out, closer, TCP_ACK, &[], |_| {});
    }

    /// A SYN refused by the server with RST-ACK (Zeek: REJ).
    pub fn rejected(&mut self, out: &mut Outbox) {
        let options = self.syn_options();
        self.window = [64240, 0];
        self.emit(out, Dir::ToServer, TCP_SYN, &options, |_| {});
        self.next_seq[0] = self.next_seq[0].wrapping_add(1);
        self.next_seq[1] = 0;
        out.advance(self.rtt);
        self.emit(out, Dir::ToClient, TCP_RST | TCP_ACK, &[], |_| {});
    }

    /// A SYN sent three times without an answer (Zeek: S0), backing off 1 s then 2 s.
    pub fn unanswered(&mut self, out: &mut Outbox) {
        let options = self.syn_options();
        self.window = [64240, 0];
        for backoff in [1_000_000, 2_000_000, 0] {
            self.emit(out, Dir::ToServer, TCP_SYN, &options, |_| {});
            out.advance(backoff);
        }
    }
}

enum Phase {
    Handshake,
    AwaitTurn,
    Sending(Turn),
    Closing,
    Done,
}

/// A complete TCP connection running application `A`.
pub struct TcpSession<A: TcpApp> {
    conn: TcpConn,
    app: A,
    phase: Phase,
}

impl<A: TcpApp> TcpSession<A> {
    pub fn new(conn: TcpConn, app: A) -> Self {
        TcpSession {
            conn,
            app,
            phase: Phase::Handshake,
        }
    }
}

impl<A: TcpApp> Session for TcpSession<A> {
    fn refill(&mut self, out: &mut Outbox, rng: &mut Rng) -> bool {
        while out.is_empty() {
            match std::mem::replace(&mut self.phase, Phase::Done) {
                Phase::Handshake => {
                    self.conn.handshake(out);
                    self.phase = Phase::AwaitTurn;
                }
                Phase::AwaitTurn => {
                    self.phase = match self.app.next_turn(rng, out.now) {
                        Some(turn) => {
                            let wait = match turn.dir {
                                Dir::ToServer => turn.delay,
                                Dir::ToClient => turn.delay + self.conn.rtt(),
                            };
                            out.advance(wait);
                            Phase::Sending(turn)
                        }
                        None => Phase::Closing,
                    };
                }
                Phase::Sending(mut turn) => {
                    let done = self.conn.send(out, turn.dir, &mut turn.stream, rng);
                    self.phase = if done {
                        Phase::AwaitTurn
                    } else {
                        Phase::Sending(turn)
                    };
                }
                Phase::Closing => {
                    let ending = self.app.ending();
                    self.conn.close(out, ending, rng);
                    self.phase = Phase::Done;
                }
                Phase::Done => return false,
            }
        }
        true
    }

    fn wind_down(&mut self) {
        self.app.wind_down();
    }
}

/// A connection attempt that never carries data: refused or unanswered.
pub struct FailedConnect {
    conn: Option<TcpConn>,
    refused: bool,
}

impl FailedConnect {
    pub fn new(conn: TcpConn, refused: bool) -> Self {
        FailedConnect {
            conn: Some(conn),
            refused,
        }
    }
}

impl Session for FailedConnect {
    fn refill(&mut self, out: &mut Outbox, _rng: &mut Rng) -> bool {
        match self.conn.take() {
            Some(mut conn) if self.refused => conn.rejected(out),
            Some(mut conn) => conn.unanswered(out),
            None => return false,
        }
        true
    }

    fn wind_down(&mut self) {}
}
