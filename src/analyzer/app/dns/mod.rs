//! DNS over UDP and TCP: parses messages, pairs queries with replies by transaction id the
//! way Zeek's `base/protocols/dns` does, and writes `dns.log`.
//!
//! One [`DnsAnalyzer`] serves one connection. UDP datagrams are single messages; a TCP stream
//! carries messages behind a 2-byte length prefix, buffered per side up to
//! [`MAX_TCP_MESSAGE`]. A query opens a pending record; the reply with the same id completes
//! and logs it. Records still pending when the connection ends (unanswered queries, replies
//! whose query was never seen) are logged by [`AppAnalyzer::finish`]. Messages to a
//! multicast responder (mDNS, LLMNR) are never paired: each is logged as it is seen.
//!
//! Layout: `parser` reads the wire format into typed messages, `consts` holds the name
//! tables of Zeek's `consts.zeek`, `log` the dns.log row; this file is Zeek's semantics
//! (`base/protocols/dns/main.zeek`): pairing, what each message sets, when a line is written.

mod consts;
mod log;
mod parser;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::IpAddr;

use super::{escape_bytes, escape_owned, AppAnalyzer, AppOutput, ConnInfo, Transport};
use crate::analyzer::addr_text::push_addr;
use crate::analyzer::bytes::be16;
use crate::analyzer::log::{Enum, Interval, LogSink, Time, Vector};
use consts::{netbios_opcode_name, opcode_name, qclass_name, qtype_name, rcode_name};
pub use log::{DnsRow, DNS_SCHEMA};
use parser::{parse_message, Answer, Header, Naptr, RData, HEADER_LEN};

/// Largest DNS message over TCP (the length prefix is 16 bits).
const MAX_TCP_MESSAGE: usize = 65535 + 2;
/// Pending unmatched records kept per connection before the oldest is logged as is
/// (Zeek: `max_pending_msgs`/`max_pending_query_ids`).
const MAX_PENDING: usize = 50;

const OP_QUERY: u8 = 0;
const OP_NOTIFY: u8 = 4;
const OP_UPDATE: u8 = 5;

/// An answer as Zeek's `dns_*_reply` handlers put it in `answers`; `None` for records
/// Zeek parses but does not list, or whose data did not decode.
fn render_answer(answer: &Answer<'_>) -> Option<String> {
    Some(match answer.data.as_ref()? {
        RData::A(a) => addr_string(IpAddr::V4(*a)),
        RData::Aaaa(a) => addr_string(IpAddr::V6(*a)),
        RData::Name(name) => escape_bytes(name),
        RData::Text { spf, strings } => {
            let tag = if *spf { "SPF" } else { "TXT" };
            let parts: Vec<String> = strings
                .iter()
                .map(|s| format!("{tag} {} {}", s.len(), escape_bytes(s)))
                .collect();
            parts.join(" ")
        }
        RData::Rrsig {
            type_covered,
            signer,
        } => {
            let signer = if signer.is_empty() {
                "<Root>".to_owned()
            } else {
                escape_bytes(signer)
            };
            format!("RRSIG {type_covered} {signer}")
        }
        RData::Dnskey { algorithm } => format!("DNSKEY {algorithm}"),
        RData::Ds {
            algorithm,
            digest_type,
        } => format!("DS {algorithm} {digest_type}"),
        RData::Nsec { next } => format!(
            "NSEC {} {}",
            escape_bytes(&answer.owner.decode()),
            escape_bytes(next)
        ),
        RData::Nsec3 => "NSEC3".to_owned(),
        RData::Nsec3Param => "NSEC3PARAM".to_owned(),
        RData::Bind9Signing => "BIND9 signing signal".to_owned(),
        RData::Sshfp { fingerprint } => {
            let hex: String = fingerprint.iter().map(|b| format!("{b:02x}")).collect();
            format!("SSHFP: {hex}")
        }
        RData::Loc {
            size,
            horizontal_precision,
            vertical_precision,
        } => format!("LOC:  {size} {horizontal_precision} {vertical_precision}"),
        RData::Naptr(naptr) => render_naptr(naptr),
        RData::Opaque => return None,
        RData::Unknown(rtype) => format!("<unknown type={rtype}>"),
    })
}

/// An address as the logs write it.
fn addr_string(addr: IpAddr) -> String {
    let mut text = Vec::with_capacity(39);
    push_addr(&mut text, addr);
    String::from_utf8(text).unwrap_or_default()
}

fn render_naptr(n: &Naptr<'_>) -> String {
    let mut tail = escape_bytes(n.regexp);
    if !n.replacement.is_empty() {
        if !tail.is_empty() {
            tail.push(' ');
        }
        tail.push_str(&escape_bytes(&n.replacement));
    }
    format!(
        "NAPTR {} {} {} {} {tail}",
        n.order,
        n.preference,
        escape_bytes(n.flags),
        escape_bytes(n.service)
    )
}

/// Zeek's `decode_netbios_name`: a 32-letter first-level encoded NetBIOS name back to its
/// 15 significant characters (cut at the first character that is not alphanumeric,
/// punctuation or below 3); `None` when `name` is not such an encoding.
fn decode_netbios_name(name: &[u8]) -> Option<Vec<u8>> {
    if name.len() != 32 {
        return None;
    }
    let decoded: Vec<u8> = name
        .chunks_exact(2)
        .map(|p| {
            let hi = p[0].to_ascii_uppercase().wrapping_sub(b'A');
            let lo = p[1].to_ascii_uppercase().wrapping_sub(b'A');
            (hi << 4).wrapping_add(lo)
        })
        .collect();
    let kept: Vec<u8> = decoded[..15]
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || b.is_ascii_punctuation() || b < 3)
        .copied()
        .collect();
    (!kept.is_empty()).then_some(kept)
}

/// One dns.log record under construction (Zeek's `DNS::Info`).
#[derive(Debug, Clone, Default, PartialEq)]
struct DnsRecord {
    ts: f64,
    trans_id: u16,
    rtt: Option<f64>,
    query: Option<String>,
    qclass: Option<u16>,
    qtype: Option<u16>,
    /// Set with `qtype`; NetBIOS renames SRV to NBSTAT.
    qtype_name: Option<Cow<'static, str>>,
    rcode: Option<u8>,
    aa: bool,
    tc: bool,
    rd: bool,
    ra: bool,
    z: u8,
    answers: Option<Vec<String>>,
    ttls: Option<Vec<Interval>>,
    rejected: bool,
    opcode: Option<u8>,
    opcode_name: Option<Cow<'static, str>>,
    saw_query: bool,
    saw_reply: bool,
}

impl DnsRecord {
    fn new(ts: f64, trans_id: u16) -> Self {
        DnsRecord {
            ts,
            trans_id,
            ..Default::default()
        }
    }

    /// Writes this record's dns.log line.
    fn write(&self, conn: &ConnInfo, logs: &mut dyn LogSink) {
        let qclass_name = self.qclass.map(qclass_name);
        let rcode_name = self.rcode.map(rcode_name);
        logs.write(&DnsRow {
            ts: Time(self.ts),
            id: conn.id(),
            proto: Enum(match conn.transport {
                Transport::Tcp => "tcp",
                Transport::Udp => "udp",
            }),
            trans_id: self.trans_id.into(),
            rtt: self.rtt.map(Interval),
            query: self.query.as_deref(),
            qclass: self.qclass.map(u64::from),
            qclass_name: qclass_name.as_deref(),
            qtype: self.qtype.map(u64::from),
            qtype_name: self.qtype_name.as_deref(),
            rcode: self.rcode.map(u64::from),
            rcode_name: rcode_name.as_deref(),
            aa: self.aa,
            tc: self.tc,
            rd: self.rd,
            ra: self.ra,
            z: self.z.into(),
            answers: self.answers.as_deref().map(Vector),
            ttls: self.ttls.as_deref().map(Vector),
            rejected: self.rejected,
            opcode: self.opcode.map(u64::from),
            opcode_name: self.opcode_name.as_deref(),
        });
    }
}

/// The DNS analyzer of one connection.
#[derive(Debug, Default)]
pub struct DnsAnalyzer {
    confirmed: bool,
    /// Queries waiting for their reply, oldest first.
    pending_queries: VecDeque<DnsRecord>,
    /// Replies whose query has not been seen, oldest first.
    pending_replies: VecDeque<DnsRecord>,
    /// TCP only: unconsumed stream bytes per side (`[orig, resp]`).
    tcp_buf: [Vec<u8>; 2],
    /// TCP only: a side lost bytes; its framing is unknown until the connection ends.
    tcp_desynced: [bool; 2],
    /// A message has been parsed (only the first one can flip the roles).
    seen_message: bool,
    /// Roles found reversed, not yet reported through `take_role_flip`.
    flip_pending: bool,
}

impl DnsAnalyzer {
    pub fn new() -> Self {
        Self::default()
    }

    fn message(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        is_orig: bool,
        msg: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        let mut parsed = match parse_message(msg) {
            Ok(m) => m,
            Err(weird) => {
                out.weirds.push((weird, String::new()));
                return;
            }
        };
        if let Some(weird) = parsed.error {
            out.weirds.push((weird, String::new()));
        }
        self.confirmed = true;
        let h = parsed.header;
        if !self.seen_message {
            self.seen_message = true;
            if h.qr && is_orig && !conn.resp_h.is_multicast() {
                self.flip_pending = true;
                self.tcp_buf.swap(0, 1);
                self.tcp_desynced.swap(0, 1);
            }
        }
        // Zeek only tracks standard queries, NOTIFY and UPDATE.
        if !matches!(h.opcode, OP_QUERY | OP_NOTIFY | OP_UPDATE) {
            return;
        }
        // Zeek's `DNS::multicast_subnets` (224.0.0.0/4, ff00::/8): messages to a multicast
        // responder (mDNS, LLMNR) are never paired; each is a record of its own, logged now.
        let multicast = conn.resp_h.is_multicast();
        let mut rec = if multicast {
            DnsRecord::new(ts, h.id)
        } else {
            self.take_session(ts, &h)
        };
        let netbios = conn.resp_p == 137 || conn.orig_p == 137;
        rec.opcode = Some(h.opcode);
        rec.opcode_name = Some(if netbios {
            netbios_opcode_name(h.opcode)
        } else {
            opcode_name(h.opcode)
        });
        if h.qr {
            rec.rcode = Some(h.rcode);
            if h.rcode != 0 && h.qdcount == 0 {
                rec.rejected = true;
            }
        }
        for q in std::mem::take(&mut parsed.questions) {
            if !h.qr {
                rec.rd = h.rd;
                rec.tc = h.tc;
                rec.qclass = Some(q.qclass);
                rec.qtype = Some(q.qtype);
                rec.qtype_name = Some(qtype_name(q.qtype));
                rec.z = h.z;
                let mut name = q.name;
                if conn.resp_p == 137 {
                    if let Some(decoded) = decode_netbios_name(&name) {
                        name = decoded;
                    }
                    if q.qtype == 33 {
                        rec.qtype_name = Some(Cow::Borrowed("NBSTAT"));
                    }
                }
                rec.query = Some(escape_owned(name));
            } else if h.ancount == 0 && h.nscount == 0 && h.arcount == 0 {
                rec.rejected = true;
            }
        }
        if h.qr {
            for a in &parsed.answers {
                if rec.query.is_none() {
                    rec.query = Some(escape_bytes(&a.owner.decode()));
                }
                rec.aa = h.aa;
                rec.ra = h.ra;
                if rec.rtt.is_none() {
                    let rtt = ts - rec.ts;
                    // A zero rtt means only the reply was seen.
                    rec.rtt = (rtt != 0.0).then_some(rtt);
                }
                if let Some(s) = render_answer(a).filter(|s| !s.is_empty()) {
                    rec.answers.get_or_insert_with(Vec::new).push(s);
                    rec.ttls
                        .get_or_insert_with(Vec::new)
                        .push(Interval(a.ttl.into()));
                }
            }
            rec.saw_reply = true;
        } else {
            rec.saw_query = true;
        }
        if multicast || (rec.saw_query && rec.saw_reply) {
            rec.write(conn, out.logs);
        } else if h.qr {
            Self::enqueue(&mut self.pending_replies, rec, conn, out);
        } else {
            Self::enqueue(&mut self.pending_queries, rec, conn, out);
        }
    }

    /// Zeek's `set_session`: the record this message belongs to, taken out of the pending
    /// queues (the caller puts it back if it is still incomplete).
    fn take_session(&mut self, ts: f64, h: &Header) -> DnsRecord {
        let other = if h.qr {
            &mut self.pending_queries
        } else {
            &mut self.pending_replies
        };
        if let Some(i) = other.iter().position(|r| r.trans_id == h.id) {
            if let Some(rec) = other.remove(i) {
                if other.is_empty() {
                    // Most connections see one query and its reply: an empty queue keeps no
                    // room for records (hundreds of bytes each) while the connection lingers.
                    *other = VecDeque::new();
                }
                return rec;
            }
        }
        // A retransmitted query (or repeated reply) with an id already pending on the same
        // side gets its own record, queued behind the first as Zeek does.
        DnsRecord::new(ts, h.id)
    }

    fn enqueue(
        queue: &mut VecDeque<DnsRecord>,
        rec: DnsRecord,
        conn: &ConnInfo,
        out: &mut AppOutput<'_>,
    ) {
        if queue.len() >= MAX_PENDING {
            if let Some(old) = queue.pop_front() {
                old.write(conn, out.logs);
            }
        }
        if queue.capacity() == 0 {
            // Room for one record, not the four a first push reserves: most connections
            // never hold more than their one query.
            queue.reserve_exact(1);
        }
        queue.push_back(rec);
    }

    fn deliver_tcp(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        is_orig: bool,
        data: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        let mut side = usize::from(!is_orig);
        if self.tcp_desynced[side] {
            return;
        }
        let flip_possible = !self.seen_message;
        let mut buf = std::mem::take(&mut self.tcp_buf[side]);
        buf.extend_from_slice(data);
        let mut pos = 0;
        while let Some(len) = be16(&buf, pos) {
            let len = usize::from(len);
            let Some(msg) = buf.get(pos + 2..pos + 2 + len) else {
                break;
            };
            self.message(conn, ts, is_orig, msg, out);
            pos += 2 + len;
        }
        buf.drain(..pos);
        debug_assert!(buf.len() < MAX_TCP_MESSAGE);
        if flip_possible && self.flip_pending {
            // The first message flipped the roles: this side's bytes now belong to the other.
            side = 1 - side;
        }
        self.tcp_buf[side] = buf;
    }
}

impl AppAnalyzer for DnsAnalyzer {
    fn service(&self) -> Option<&'static str> {
        self.confirmed.then_some("dns")
    }

    fn deliver(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        is_orig: bool,
        data: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        match conn.transport {
            Transport::Udp => self.message(conn, ts, is_orig, data, out),
            Transport::Tcp => self.deliver_tcp(conn, ts, is_orig, data, out),
        }
    }

    fn gap(
        &mut self,
        _conn: &ConnInfo,
        _ts: f64,
        is_orig: bool,
        _len: u64,
        _out: &mut AppOutput<'_>,
    ) {
        // Message boundaries after a gap are unknown: stop parsing that side.
        let side = usize::from(!is_orig);
        self.tcp_desynced[side] = true;
        self.tcp_buf[side] = Vec::new();
    }

    fn take_role_flip(&mut self) -> bool {
        std::mem::take(&mut self.flip_pending)
    }

    fn logs(&self) -> &'static [&'static str] {
        &["dns"]
    }

    /// Only the first message can flip the roles, and it confirms the service.
    fn conn_settled(&self) -> bool {
        self.confirmed && self.seen_message && !self.flip_pending
    }

    fn finish(&mut self, conn: &ConnInfo, _ts: f64, out: &mut AppOutput<'_>) {
        for rec in self
            .pending_queries
            .drain(..)
            .chain(self.pending_replies.drain(..))
        {
            rec.write(conn, out.logs);
        }
    }
}

/// True if `data` looks like one DNS message: a sane header and, when it has questions,
/// a first question that decodes. `port_hint` (a DNS port on either side) admits
/// question-less messages, which alone prove nothing.
pub(crate) fn looks_like_dns(data: &[u8], port_hint: bool) -> bool {
    let Some(h) = Header::parse(data) else {
        return false;
    };
    if !matches!(h.opcode, 0 | 1 | 2 | 4 | 5) {
        return false;
    }
    let records = u32::from(h.ancount) + u32::from(h.nscount) + u32::from(h.arcount);
    // Each record needs at least 11 bytes; each question at least 5.
    if (records * 11 + u32::from(h.qdcount) * 5) as usize > data.len().saturating_sub(HEADER_LEN) {
        return false;
    }
    if h.qdcount == 0 {
        return port_hint && h.qr;
    }
    if h.qdcount > 16 {
        return false;
    }
    let Some((_qtype, qclass)) = parser::first_question(data) else {
        return false;
    };
    // IN, CH, HS, NONE, ANY; mDNS sets the top bit (unicast-response / cache-flush).
    let class_ok = matches!(qclass & 0x7fff, 1 | 3 | 4 | 254 | 255);
    if port_hint {
        return true;
    }
    // Off the DNS ports the evidence must be strong: one question, a standard opcode, a
    // query without records (EDNS aside), and everything up to the answers decoding.
    let query_shape = h.qr || (h.ancount == 0 && h.nscount == 0 && h.arcount <= 1);
    class_ok
        && h.qdcount == 1
        && h.opcode == 0
        && query_shape
        && parse_message(data).is_ok_and(|m| m.error.is_none())
}

/// True if a DNS well-known port is on either side of the connection.
pub(crate) fn dns_port(conn: &ConnInfo) -> bool {
    const PORTS: [u16; 4] = [53, 137, 5353, 5355];
    PORTS.contains(&conn.resp_p) || PORTS.contains(&conn.orig_p)
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::analyzer::app::tests::{conn, Collect, Driver};
    use crate::analyzer::log::tests::OwnedValue;

    /// Builds a DNS message: header fields, questions, answer records (raw bytes).
    fn msg(id: u16, flags: u16, qd: &[&[u8]], an: &[Vec<u8>], ns: u16, ar: u16) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&(qd.len() as u16).to_be_bytes());
        m.extend_from_slice(&(an.len() as u16).to_be_bytes());
        m.extend_from_slice(&ns.to_be_bytes());
        m.extend_from_slice(&ar.to_be_bytes());
        for q in qd {
            m.extend_from_slice(q);
        }
        for a in an {
            m.extend_from_slice(a);
        }
        m
    }

    /// `www.example.com` A IN, at offset 12 when it is the first question.
    const Q_WWW: &[u8] = b"\x03www\x07example\x03com\x00\x00\x01\x00\x01";

    fn rr(owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
        let mut r = owner.to_vec();
        r.extend_from_slice(&rtype.to_be_bytes());
        r.extend_from_slice(&1u16.to_be_bytes());
        r.extend_from_slice(&ttl.to_be_bytes());
        r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        r.extend_from_slice(rdata);
        r
    }

    fn run(c: &ConnInfo, msgs: &[(f64, bool, Vec<u8>)]) -> (Collect, Vec<(&'static str, String)>) {
        let mut d = Driver::with(DnsAnalyzer::new(), c.clone());
        let mut last = 0.0;
        for (ts, is_orig, m) in msgs {
            d.send(*ts, *is_orig, m);
            last = *ts;
        }
        d.finish(last);
        (d.sink, d.weirds)
    }

    #[test]
    fn query_and_compressed_reply_are_paired() {
        let c = conn(Transport::Udp, 53);
        let q = msg(0x1234, 0x0100, &[Q_WWW], &[], 0, 0);
        // Answer 1: CNAME www.example.com -> web.example.com (pointer to "example.com" at 16).
        // Answer 2: A for web.example.com (pointer to the CNAME target).
        let cname_target = b"\x03web\xc0\x10".to_vec();
        let a1 = rr(b"\xc0\x0c", 5, 300, &cname_target);
        // The CNAME rdata starts at 12 + 21 + 12 = 45.
        let a2 = rr(b"\xc0\x2d", 1, 60, &[192, 0, 2, 7]);
        let r = msg(0x1234, 0x8580, &[Q_WWW], &[a1, a2], 0, 0);
        let (sink, weirds) = run(&c, &[(10.0, true, q), (10.25, false, r)]);
        assert!(weirds.is_empty(), "{weirds:?}");
        assert_eq!(sink.rows.len(), 1);
        let row = &sink.rows[0].1;
        assert_eq!(row[6], OwnedValue::Enum("udp".into()));
        assert_eq!(row[7], OwnedValue::Count(0x1234));
        assert_eq!(row[8], OwnedValue::Interval(0.25));
        assert_eq!(row[9], OwnedValue::Str("www.example.com".into()));
        assert_eq!(row[10], OwnedValue::Count(1));
        assert_eq!(row[11], OwnedValue::Str("C_INTERNET".into()));
        assert_eq!(row[13], OwnedValue::Str("A".into()));
        assert_eq!(row[15], OwnedValue::Str("NOERROR".into()));
        assert_eq!(
            row[16..20],
            [
                OwnedValue::Bool(true),
                OwnedValue::Bool(false),
                OwnedValue::Bool(true),
                OwnedValue::Bool(true)
            ]
        );
        assert_eq!(
            row[21],
            OwnedValue::Vector(vec![
                OwnedValue::Str("web.example.com".into()),
                OwnedValue::Str("192.0.2.7".into())
            ])
        );
        assert_eq!(
            row[22],
            OwnedValue::Vector(vec![
                OwnedValue::Interval(300.0),
                OwnedValue::Interval(60.0)
            ])
        );
        assert_eq!(row[23], OwnedValue::Bool(false));
        assert_eq!(row[25], OwnedValue::Str("query".into()));
    }

    #[test]
    fn reply_only_has_no_rtt_and_no_question_fields() {
        let c = conn(Transport::Udp, 53);
        let a = rr(b"\xc0\x0c", 16, 900, b"\x05hello\x02hi");
        let r = msg(7, 0x8480, &[Q_WWW], &[a], 0, 0);
        let (sink, _) = run(&c, &[(5.0, false, r)]);
        let row = &sink.rows[0].1;
        assert_eq!(row[8], OwnedValue::Unset);
        assert_eq!(row[9], OwnedValue::Str("www.example.com".into()));
        assert_eq!(row[10], OwnedValue::Unset);
        assert_eq!(row[13], OwnedValue::Unset);
        assert_eq!(row[16], OwnedValue::Bool(true));
        assert_eq!(
            row[21],
            OwnedValue::Vector(vec![OwnedValue::Str("TXT 5 hello TXT 2 hi".into())])
        );
    }

    #[test]
    fn multicast_messages_are_never_paired() {
        // mDNS: a query and an unrelated reply, both trans_id 0, both to 224.0.0.251:5353.
        let mut c = conn(Transport::Udp, 5353);
        c.resp_h = IpAddr::V4(std::net::Ipv4Addr::new(224, 0, 0, 251));
        let q = msg(0, 0x0000, &[Q_WWW], &[], 0, 0);
        let a = rr(b"\xc0\x0c", 1, 120, &[192, 0, 2, 9]);
        let r = msg(0, 0x8400, &[Q_WWW], &[a], 0, 0);
        let (sink, _) = run(&c, &[(1.0, true, q.clone()), (1.5, true, r.clone())]);
        assert_eq!(sink.rows.len(), 2);
        let (query, reply) = (&sink.rows[0].1, &sink.rows[1].1);
        assert_eq!(query[8], OwnedValue::Unset);
        assert_eq!(query[13], OwnedValue::Str("A".into()));
        assert_eq!(query[14], OwnedValue::Unset);
        assert_eq!(query[16], OwnedValue::Bool(false));
        assert_eq!(query[21], OwnedValue::Unset);
        assert_eq!(reply[8], OwnedValue::Unset);
        assert_eq!(reply[9], OwnedValue::Str("www.example.com".into()));
        assert_eq!(reply[13], OwnedValue::Unset);
        assert_eq!(reply[15], OwnedValue::Str("NOERROR".into()));
        assert_eq!(reply[16], OwnedValue::Bool(true));
        assert_eq!(
            reply[21],
            OwnedValue::Vector(vec![OwnedValue::Str("192.0.2.9".into())])
        );
        // The same pair to a unicast responder is one paired row.
        let (sink, _) = run(
            &conn(Transport::Udp, 5353),
            &[(1.0, true, q), (1.5, false, r)],
        );
        assert_eq!(sink.rows.len(), 1);
        assert_eq!(sink.rows[0].1[8], OwnedValue::Interval(0.5));
    }

    #[test]
    fn unanswered_query_logged_at_finish_and_refused_notify_rejected() {
        let c = conn(Transport::Udp, 53);
        let soa_q: &[u8] = b"\x04dhcp\x04lbnl\x02us\x00\x00\x06\x00\x01";
        let notify = msg(20785, 0x2000, &[soa_q], &[], 0, 0);
        let refused = msg(20785, 0xa005, &[soa_q], &[], 0, 0);
        let lone = msg(99, 0x0110, &[Q_WWW], &[], 0, 0);
        let (sink, _) = run(
            &c,
            &[
                (1.0, true, notify),
                (1.1, false, refused),
                (2.0, true, lone),
            ],
        );
        assert_eq!(sink.rows.len(), 2);
        let n = &sink.rows[0].1;
        assert_eq!(n[9], OwnedValue::Str("dhcp.lbnl.us".into()));
        assert_eq!(n[13], OwnedValue::Str("SOA".into()));
        assert_eq!(n[14], OwnedValue::Count(5));
        assert_eq!(n[15], OwnedValue::Str("REFUSED".into()));
        assert_eq!(n[8], OwnedValue::Unset);
        assert_eq!(n[23], OwnedValue::Bool(true));
        assert_eq!(n[24], OwnedValue::Count(4));
        assert_eq!(n[25], OwnedValue::Str("notify".into()));
        let q = &sink.rows[1].1;
        assert_eq!(q[7], OwnedValue::Count(99));
        assert_eq!(q[14], OwnedValue::Unset);
        assert_eq!(q[20], OwnedValue::Count(1));
        assert_eq!(q[21], OwnedValue::Unset);
    }

    #[test]
    fn tcp_messages_split_and_coalesced() {
        let c = conn(Transport::Tcp, 53);
        let frame = |m: Vec<u8>| {
            let mut f = (m.len() as u16).to_be_bytes().to_vec();
            f.extend_from_slice(&m);
            f
        };
        let mut both = frame(msg(1, 0x0100, &[Q_WWW], &[], 0, 0));
        both.extend(frame(msg(2, 0x0100, &[Q_WWW], &[], 0, 0)));
        let reply = frame(msg(2, 0x8183, &[Q_WWW], &[], 1, 0));
        let mut d = Driver::with(DnsAnalyzer::new(), c);
        d.send(1.0, true, &both[..5]);
        d.send(1.0, true, &both[5..]);
        d.send(1.5, false, &reply[..20]);
        assert!(d.sink.rows.is_empty());
        d.send(1.5, false, &reply[20..]);
        assert_eq!(d.sink.rows.len(), 1);
        assert_eq!(d.sink.rows[0].1[6], OwnedValue::Enum("tcp".into()));
        assert_eq!(d.sink.rows[0].1[7], OwnedValue::Count(2));
        assert_eq!(d.sink.rows[0].1[15], OwnedValue::Str("NXDOMAIN".into()));
        d.finish(2.0);
        assert_eq!(d.sink.rows.len(), 2);
        assert_eq!(d.sink.rows[1].1[7], OwnedValue::Count(1));
        assert_eq!(d.a.service(), Some("dns"));
    }

    #[test]
    fn compression_loops_and_truncation_raise_weirds() {
        // A name that points at itself.
        let looped = msg(3, 0x0100, &[b"\xc0\x0c\x00\x01\x00\x01"], &[], 0, 0);
        assert_eq!(
            parse_message(&looped).map(|m| m.error),
            Ok(Some("DNS_label_forward_compress_offset"))
        );
        // A label followed by a pointer back to that same label.
        let cycle = msg(3, 0x0100, &[b"\x01a\xc0\x0c\x00\x01\x00\x01"], &[], 0, 0);
        assert_eq!(
            parse_message(&cycle).map(|m| m.error),
            Ok(Some("DNS_label_forward_compress_offset"))
        );
        assert_eq!(
            parse_message(&[0u8; 5]).map(|m| m.error),
            Err("DNS_truncated_len_lt_hdr_len")
        );
        let short = msg(3, 0x0100, &[b"\x03www\x00\x00"], &[], 0, 0);
        assert_eq!(
            parse_message(&short).map(|m| m.error),
            Ok(Some("DNS_truncated_quest_too_short"))
        );
        // Every prefix of a valid message parses without panicking.
        let full = msg(
            3,
            0x8180,
            &[Q_WWW],
            &[rr(b"\xc0\x0c", 1, 1, &[1, 2, 3, 4])],
            0,
            0,
        );
        for n in 0..full.len() {
            let _ = parse_message(&full[..n]);
        }
    }

    #[test]
    fn reply_first_from_originator_flips_roles_once() {
        let c = conn(Transport::Udp, 53);
        let reply = msg(9, 0x8180, &[Q_WWW], &[], 0, 0);
        let mut d = Driver::with(DnsAnalyzer::new(), c);
        d.send(1.0, true, &reply);
        assert!(d.a.take_role_flip());
        assert!(!d.a.take_role_flip());
        d.send(1.1, true, &reply);
        assert!(!d.a.take_role_flip());

        let mut mdns = conn(Transport::Udp, 5353);
        mdns.resp_h = "224.0.0.251".parse().unwrap();
        let mut d = Driver::with(DnsAnalyzer::new(), mdns);
        d.send(1.0, true, &reply);
        assert!(!d.a.take_role_flip());
    }

    #[test]
    fn netbios_names_and_opcodes() {
        let c = conn(Transport::Udp, 137);
        // "FHEPFCELEHFCEPFFFACACACACACACAAA" encodes "WORKGROUP" padded, type 0x00.
        let mut q = vec![32u8];
        q.extend_from_slice(b"FHEPFCELEHFCEPFFFACACACACACACAAA");
        q.extend_from_slice(b"\x00\x00\x21\x00\x01");
        let m = msg(5, 0x0010, &[&q], &[], 0, 0);
        let (sink, _) = run(&c, &[(1.0, true, m)]);
        let row = &sink.rows[0].1;
        assert_eq!(row[9], OwnedValue::Str("WORKGROUP".into()));
        assert_eq!(row[13], OwnedValue::Str("NBSTAT".into()));
        assert_eq!(row[25], OwnedValue::Str("netbios-query".into()));
        assert_eq!(opcode_name(2), "server-status");
    }

    #[test]
    fn detection_needs_a_plausible_header() {
        let q = msg(1, 0x0100, &[Q_WWW], &[], 0, 0);
        assert!(looks_like_dns(&q, false));
        assert!(!looks_like_dns(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", false));
        // Off the DNS ports a query carrying records is not taken for DNS.
        let with_record = msg(
            1,
            0x0100,
            &[Q_WWW],
            &[rr(b"\xc0\x0c", 1, 1, &[1, 2, 3, 4])],
            0,
            0,
        );
        assert!(!looks_like_dns(&with_record, false));
        assert!(looks_like_dns(&with_record, true));
        let empty_reply = msg(1, 0x8000, &[], &[], 0, 0);
        assert!(!looks_like_dns(&empty_reply, false));
        assert!(looks_like_dns(&empty_reply, true));
    }
}
