//! DNS: message encoding (queries and responses with A/AAAA/CNAME/TXT answers, NXDOMAIN
//! with an SOA authority, optional EDNS OPT records, name compression) and two session
//! shapes: queries over UDP (answered, NXDOMAIN, or unanswered and retried) and queries over
//! a TCP connection with RFC 1035 two-byte length framing.

use super::net::Host;
use super::packet::{udp_frame, Endpoint, IpFields};
use super::rng::Rng;
use super::session::{Outbox, Session};
use super::stream::ByteStream;
use super::tcp::{Dir, Ending, TcpApp, Turn};

pub const TYPE_A: u16 = 1;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;
/// Offset of the question name in every message: right after the 12-byte header.
const QUESTION_NAME_PTR: u16 = 0xC00C;

/// What the resolver answers for a name.
pub enum Outcome<'a> {
    Found(&'a Host),
    NxDomain { zone: &'a str },
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn encode_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

fn header(out: &mut Vec<u8>, id: u16, flags: u16, counts: [u16; 4]) {
    put_u16(out, id);
    put_u16(out, flags);
    for c in counts {
        put_u16(out, c);
    }
}

fn opt_record(out: &mut Vec<u8>) {
    out.push(0); // root name
    put_u16(out, TYPE_OPT);
    put_u16(out, 1232); // UDP payload size (DNS flag day 2020)
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // ext-rcode, version, flags, rdlen
}

/// A resource record whose owner is a compression pointer; returns the rdata offset.
fn record(out: &mut Vec<u8>, owner_ptr: u16, rtype: u16, ttl: u32, rdata: &[u8]) -> usize {
    put_u16(out, owner_ptr);
    put_u16(out, rtype);
    put_u16(out, CLASS_IN);
    out.extend_from_slice(&ttl.to_be_bytes());
    put_u16(out, rdata.len() as u16);
    let at = out.len();
    out.extend_from_slice(rdata);
    at
}

/// A recursive query (RD set).
pub fn query(id: u16, name: &str, qtype: u16, edns: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    header(&mut out, id, 0x0100, [1, 0, 0, u16::from(edns)]);
    encode_name(&mut out, name);
    put_u16(&mut out, qtype);
    put_u16(&mut out, CLASS_IN);
    if edns {
        opt_record(&mut out);
    }
    out
}

/// The resolver's response to `query(id, name, qtype, edns)`.
pub fn response(
    id: u16,
    name: &str,
    qtype: u16,
    outcome: &Outcome<'_>,
    edns: bool,
    rng: &mut Rng,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    let mut answers = Vec::new();
    let mut answer_count = 0u16;
    let mut authority = Vec::new();
    let flags = match outcome {
        Outcome::NxDomain { zone } => {
            // SOA in the authority section so caches can hold the negative answer.
            let mut rdata = Vec::new();
            encode_name(&mut rdata, &format!("ns1.{zone}"));
            encode_name(&mut rdata, &format!("hostmaster.{zone}"));
            for v in [2024050101u32, 7200, 3600, 1_209_600, 300] {
                rdata.extend_from_slice(&v.to_be_bytes());
            }
            encode_name(&mut authority, zone);
            put_u16(&mut authority, TYPE_SOA);
            put_u16(&mut authority, CLASS_IN);
            authority.extend_from_slice(&300u32.to_be_bytes());
            put_u16(&mut authority, rdata.len() as u16);
            authority.extend_from_slice(&rdata);
            0x8183
        }
        Outcome::Found(host) => {
            let answers_start = 12 + name.len() + 2 + 4;
            let mut owner = QUESTION_NAME_PTR;
            if let Some(canonical) = &host.canonical {
                let mut target = Vec::new();
                encode_name(&mut target, canonical);
                let at = record(
                    &mut answers,
                    owner,
                    TYPE_CNAME,
                    rng.range(60, 3600) as u32,
                    &target,
                );
                owner = 0xC000 | (answers_start + at) as u16;
                answer_count += 1;
            }
            let ttl = rng.range(20, 600) as u32;
            match qtype {
                TYPE_AAAA => {
                    record(&mut answers, owner, TYPE_AAAA, ttl, &host.v6.octets());
                }
                TYPE_TXT => {
                    let mut txt = Vec::new();
                    for i in 0..rng.range(3, 8) {
                        let s = format!("v=synth{i} key=\"{}\"", "k".repeat(180));
                        txt.push(s.len() as u8);
                        txt.extend_from_slice(s.as_bytes());
                    }
                    record(&mut answers, owner, TYPE_TXT, ttl, &txt);
                }
                _ => {
                    record(&mut answers, owner, TYPE_A, ttl, &host.v4.octets());
                }
            }
            answer_count += 1;
            0x8180
        }
    };
    let authority_count = u16::from(!authority.is_empty());
    header(
        &mut out,
        id,
        flags,
        [1, answer_count, authority_count, u16::from(edns)],
    );
    encode_name(&mut out, name);
    put_u16(&mut out, qtype);
    put_u16(&mut out, CLASS_IN);
    out.extend_from_slice(&answers);
    out.extend_from_slice(&authority);
    if edns {
        opt_record(&mut out);
    }
    out
}

/// One question the client will ask and what it gets back.
struct Question {
    name: String,
    qtype: u16,
    host: Option<Host>,
    zone: &'static str,
}

impl Question {
    fn pick(host: &Host, qtype: u16, nxdomain: bool, rng: &mut Rng) -> Self {
        if nxdomain {
            let (name, zone) = match rng.range(0, 2) {
                0 => ("wpad.corp.example".to_string(), "corp.example"),
                1 => (
                    format!("no-such-{:06x}.example.com", rng.next_u32() & 0xFF_FFFF),
                    "example.com",
                ),
                _ => ("printer.shop.test".to_string(), "shop.test"),
            };
            Question {
                name,
                qtype,
                host: None,
                zone,
            }
        } else {
            Question {
                name: host.name.clone(),
                qtype,
                host: Some(host.clone()),
                zone: "",
            }
        }
    }

    fn outcome(&self) -> Outcome<'_> {
        match &self.host {
            Some(host) => Outcome::Found(host),
            None => Outcome::NxDomain { zone: self.zone },
        }
    }
}

/// A UDP socket's worth of lookups: usually A then AAAA for one name.
pub struct DnsUdpSession {
    client: Endpoint,
    server: Endpoint,
    questions: Vec<Question>,
    unanswered: bool,
    edns: bool,
    done: bool,
}

impl DnsUdpSession {
    pub fn new(client: Endpoint, server: Endpoint, host: &Host, rng: &mut Rng) -> Self {
        let nxdomain = rng.chance(80);
        let qtypes: &[u16] = if rng.chance(500) {
            &[TYPE_A, TYPE_AAAA]
        } else {
            &[TYPE_A]
        };
        let questions = qtypes
            .iter()
            .map(|t| Question::pick(host, *t, nxdomain, &mut *rng))
            .collect();
        DnsUdpSession {
            client,
            server,
            questions,
            unanswered: rng.chance(40),
            edns: rng.chance(600),
            done: false,
        }
    }
}

impl Session for DnsUdpSession {
    fn refill(&mut self, out: &mut Outbox, rng: &mut Rng) -> bool {
        if self.done {
            return false;
        }
        self.done = true;
        let resolver_rtt = rng.log_uniform(150, 60_000);
        let ids: Vec<u16> = self
            .questions
            .iter()
            .map(|_| rng.next_u32() as u16)
            .collect();
        let ip = |rng: &mut Rng, ttl| IpFields {
            id: rng.next_u32() as u16,
            ttl,
        };
        let tries = if self.unanswered { 2 } else { 1 };
        for attempt in 0..tries {
            for (q, id) in self.questions.iter().zip(&ids) {
                let msg = query(*id, &q.name, q.qtype, self.edns);
                let fields = ip(rng, 64);
                out.push(|buf| udp_frame(buf, &self.client, &self.server, fields, &msg));
                out.advance(rng.range(20, 300));
            }
            if self.unanswered && attempt == 0 {
                // glibc's resolver retries after its 5 s timeout; stubs like systemd use 1-2 s.
                out.advance(*rng.pick(&[1_000_000, 2_000_000, 5_000_000]));
            }
        }
        if !self.unanswered {
            out.advance(resolver_rtt);
            for (q, id) in self.questions.iter().zip(&ids) {
                let msg = response(*id, &q.name, q.qtype, &q.outcome(), self.edns, rng);
                let fields = ip(rng, 64);
                out.push(|buf| udp_frame(buf, &self.server, &self.client, fields, &msg));
                out.advance(rng.range(20, 2_000));
            }
        }
        true
    }

    /// A UDP lookup is built in one step; there is nothing to cut short.
    fn wind_down(&mut self) {}
}

/// DNS over TCP: one or two length-prefixed queries (often TXT, whose answers outgrow UDP).
pub struct DnsTcpApp {
    questions: Vec<(u16, Question)>,
    pending: Option<Vec<u8>>,
}

impl DnsTcpApp {
    pub fn new(host: &Host, rng: &mut Rng) -> Self {
        let count = rng.range(1, 2);
        let questions = (0..count)
            .map(|_| {
                let qtype = *rng.pick(&[TYPE_TXT, TYPE_TXT, TYPE_A, TYPE_AAAA]);
                (
                    rng.next_u32() as u16,
                    Question::pick(host, qtype, rng.chance(50), &mut *rng),
                )
            })
            .collect();
        DnsTcpApp {
            questions,
            pending: None,
        }
    }
}

fn length_prefixed(msg: Vec<u8>) -> Vec<u8> {
    let mut out = (msg.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&msg);
    out
}

impl TcpApp for DnsTcpApp {
    fn next_turn(&mut self, rng: &mut Rng, _now: u64) -> Option<Turn> {
        if let Some(answer) = self.pending.take() {
            return Some(Turn {
                dir: Dir::ToClient,
                stream: ByteStream::new().bytes(answer),
                delay: rng.log_uniform(100, 30_000),
            });
        }
        if self.questions.is_empty() {
            return None;
        }
        let (id, q) = self.questions.remove(0);
        let answer = response(id, &q.name, q.qtype, &q.outcome(), false, rng);
        self.pending = Some(length_prefixed(answer));
        Some(Turn {
            dir: Dir::ToServer,
            stream: ByteStream::new().bytes(length_prefixed(query(id, &q.name, q.qtype, false))),
            delay: rng.range(50, 1_000),
        })
    }

    fn ending(&self) -> Ending {
        Ending::ClientFin
    }

    fn wind_down(&mut self) {
        self.questions.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// Reads a possibly compressed name starting at `pos`; returns it and the offset after it.
    fn read_name(msg: &[u8], mut pos: usize) -> (String, usize) {
        let mut labels = Vec::new();
        let mut end = None;
        loop {
            let len = msg[pos];
            if len & 0xC0 == 0xC0 {
                end.get_or_insert(pos + 2);
                pos = (usize::from(len & 0x3F) << 8) | usize::from(msg[pos + 1]);
                continue;
            }
            if len == 0 {
                end.get_or_insert(pos + 1);
                break;
            }
            labels.push(String::from_utf8(msg[pos + 1..pos + 1 + len as usize].to_vec()).unwrap());
            pos += 1 + len as usize;
        }
        (labels.join("."), end.unwrap())
    }

    fn host(canonical: Option<&str>) -> Host {
        Host {
            name: "cdn.example.com".into(),
            canonical: canonical.map(str::to_string),
            v4: Ipv4Addr::new(192, 0, 2, 7),
            v6: Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 7),
        }
    }

    #[test]
    fn cname_chain_answer_decodes_with_compression_pointers() {
        let h = host(Some("e1234.edge.example.net"));
        let msg = response(
            0xBEEF,
            &h.name,
            TYPE_A,
            &Outcome::Found(&h),
            true,
            &mut Rng::new(1),
        );
        assert_eq!(&msg[0..4], &[0xBE, 0xEF, 0x81, 0x80]);
        assert_eq!(&msg[4..12], &[0, 1, 0, 2, 0, 0, 0, 1]);
        let (qname, mut p) = read_name(&msg, 12);
        assert_eq!(qname, "cdn.example.com");
        p += 4;
        let (owner1, q) = read_name(&msg, p);
        assert_eq!(owner1, "cdn.example.com");
        assert_eq!(u16::from_be_bytes([msg[q], msg[q + 1]]), TYPE_CNAME);
        let rdlen = u16::from_be_bytes([msg[q + 8], msg[q + 9]]) as usize;
        let (target, _) = read_name(&msg, q + 10);
        assert_eq!(target, "e1234.edge.example.net");
        let (owner2, r) = read_name(&msg, q + 10 + rdlen);
        assert_eq!(
            owner2, "e1234.edge.example.net",
            "A record owned by the CNAME target"
        );
        assert_eq!(u16::from_be_bytes([msg[r], msg[r + 1]]), TYPE_A);
        assert_eq!(&msg[r + 10..r + 14], &[192, 0, 2, 7]);
        // EDNS OPT trails the message.
        assert_eq!(&msg[msg.len() - 11..msg.len() - 8], &[0, 0, 41]);
    }

    #[test]
    fn nxdomain_carries_rcode_3_and_an_soa_authority() {
        let msg = response(
            1,
            "wpad.corp.example",
            TYPE_A,
            &Outcome::NxDomain {
                zone: "corp.example",
            },
            false,
            &mut Rng::new(1),
        );
        assert_eq!(msg[3] & 0x0F, 3);
        assert_eq!(&msg[4..12], &[0, 1, 0, 0, 0, 1, 0, 0]);
        let (_, p) = read_name(&msg, 12);
        let (zone, a) = read_name(&msg, p + 4);
        assert_eq!(zone, "corp.example");
        assert_eq!(u16::from_be_bytes([msg[a], msg[a + 1]]), TYPE_SOA);
        let rdlen = u16::from_be_bytes([msg[a + 8], msg[a + 9]]) as usize;
        assert_eq!(a + 10 + rdlen, msg.len(), "SOA rdata ends the message");
    }

    #[test]
    fn query_layout_is_exact() {
        let msg = query(0x1234, "www.example.org", TYPE_AAAA, false);
        let mut expected = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        expected.extend_from_slice(b"\x03www\x07example\x03org\x00\x00\x1c\x00\x01");
        assert_eq!(msg, expected);
    }
}
