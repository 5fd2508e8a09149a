//! DNS over UDP and TCP: parses messages, pairs queries with replies by transaction id the
//! way Zeek's `base/protocols/dns` does, and writes `dns.log`.
//!
//! One [`DnsAnalyzer`] serves one connection. UDP datagrams are single messages; a TCP stream
//! carries messages behind a 2-byte length prefix, buffered per side up to
//! [`MAX_TCP_MESSAGE`]. A query opens a pending record; the reply with the same id completes
//! and logs it. Records still pending when the connection ends (unanswered queries, replies
//! whose query was never seen) are logged by [`AppAnalyzer::finish`].

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{escape_bytes, AppAnalyzer, AppOutput, ConnInfo, Transport};
use crate::analyzer::log::{log_row, ConnId, Enum, Interval, LogSink, Time, Vector};

log_row! {
    /// One dns.log line (Zeek's `DNS::Info`, `base/protocols/dns/main.zeek`).
    pub struct DnsRow<'a> => DNS_SCHEMA("dns") {
        ts: Time,
        id: ConnId<'a>,
        proto: Enum,
        trans_id: u64,
        rtt: Option<Interval>,
        query: Option<&'a str>,
        qclass: Option<u64>,
        qclass_name: Option<&'a str>,
        qtype: Option<u64>,
        qtype_name: Option<&'a str>,
        rcode: Option<u64>,
        rcode_name: Option<&'a str>,
        aa as "AA": bool,
        tc as "TC": bool,
        rd as "RD": bool,
        ra as "RA": bool,
        z as "Z": u64,
        answers: Option<Vector<'a, String>>,
        ttls as "TTLs": Option<Vector<'a, Interval>>,
        rejected: bool,
        opcode: Option<u64>,
        opcode_name: Option<&'a str>,
    }
}

const HEADER_LEN: usize = 12;
/// Largest DNS message over TCP (the length prefix is 16 bits).
const MAX_TCP_MESSAGE: usize = 65535 + 2;
/// Pending unmatched records kept per connection before the oldest is logged as is
/// (Zeek: `max_pending_msgs`/`max_pending_query_ids`).
const MAX_PENDING: usize = 50;
/// Longest decoded name; longer names are cut (RFC 1035 allows 255 octets).
const MAX_NAME_LEN: usize = 1024;

const OP_QUERY: u8 = 0;
const OP_NOTIFY: u8 = 4;
const OP_UPDATE: u8 = 5;

/// Decoded fixed header of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub id: u16,
    pub qr: bool,
    pub opcode: u8,
    pub aa: bool,
    pub tc: bool,
    pub rd: bool,
    pub ra: bool,
    pub z: u8,
    pub rcode: u8,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    pub(crate) fn parse(data: &[u8]) -> Option<Header> {
        if data.len() < HEADER_LEN {
            return None;
        }
        let word = |i: usize| u16::from_be_bytes([data[i], data[i + 1]]);
        let flags = word(2);
        Some(Header {
            id: word(0),
            qr: flags & 0x8000 != 0,
            opcode: ((flags >> 11) & 0x0f) as u8,
            aa: flags & 0x0400 != 0,
            tc: flags & 0x0200 != 0,
            rd: flags & 0x0100 != 0,
            ra: flags & 0x0080 != 0,
            z: ((flags >> 4) & 0x07) as u8,
            rcode: (flags & 0x0f) as u8,
            qdcount: word(4),
            ancount: word(6),
            nscount: word(8),
            arcount: word(10),
        })
    }
}

/// Why a name could not be decoded; each maps to a Zeek weird.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameError {
    LabelPastEnd,
    ForwardPointer,
    BadLabelType,
}

impl NameError {
    fn weird(self) -> &'static str {
        match self {
            NameError::LabelPastEnd => "DNS_label_len_gt_pkt",
            NameError::ForwardPointer => "DNS_label_forward_compress_offset",
            NameError::BadLabelType => "DNS_label_too_long",
        }
    }
}

/// Reads the (possibly compressed) name at `pos` of `msg`; returns the name (labels joined
/// by `.`, no trailing dot, `""` for the root) and the offset just past it.
///
/// Loop protection: every compression pointer must point strictly before the start of the
/// run of labels it ends, so run starts strictly decrease and decoding terminates.
fn read_name(msg: &[u8], mut pos: usize) -> Result<(Vec<u8>, usize), NameError> {
    let mut name = Vec::new();
    let mut end_after_first_pointer = None;
    let mut run_start = pos;
    loop {
        let len = *msg.get(pos).ok_or(NameError::LabelPastEnd)? as usize;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    let end = end_after_first_pointer.unwrap_or(pos + 1);
                    return Ok((name, end));
                }
                let label = msg
                    .get(pos + 1..pos + 1 + len)
                    .ok_or(NameError::LabelPastEnd)?;
                if name.len() < MAX_NAME_LEN {
                    if !name.is_empty() {
                        name.push(b'.');
                    }
                    // Zeek lowercases every name it extracts.
                    name.extend(label.iter().map(u8::to_ascii_lowercase));
                }
                pos += 1 + len;
            }
            0xc0 => {
                let low = *msg.get(pos + 1).ok_or(NameError::LabelPastEnd)? as usize;
                let target = ((len & 0x3f) << 8) | low;
                if target >= run_start {
                    return Err(NameError::ForwardPointer);
                }
                end_after_first_pointer.get_or_insert(pos + 2);
                pos = target;
                run_start = target;
            }
            _ => return Err(NameError::BadLabelType),
        }
    }
}

/// A bounds-checked reader over one message.
struct Cursor<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn u16(&mut self) -> Option<u16> {
        let b = self.msg.get(self.pos..self.pos + 2)?;
        self.pos += 2;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        let b = self.msg.get(self.pos..self.pos + 4)?;
        self.pos += 4;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn name(&mut self) -> Result<Vec<u8>, NameError> {
        let (name, end) = read_name(self.msg, self.pos)?;
        self.pos = end;
        Ok(name)
    }
}

/// One question: name, type, class.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Question {
    name: Vec<u8>,
    qtype: u16,
    qclass: u16,
}

/// One answer-section record, rendered the way Zeek's script renders it (`None` for types
/// Zeek parses but does not put in `answers`).
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    owner: Vec<u8>,
    ttl: u32,
    rendered: Option<String>,
}

/// A parsed message; `error` names the weird if parsing stopped early (what was parsed
/// before the error is still used, as Zeek does).
#[derive(Debug)]
struct Message {
    header: Header,
    questions: Vec<Question>,
    answers: Vec<Answer>,
    error: Option<&'static str>,
}

fn parse_message(msg: &[u8]) -> Result<Message, &'static str> {
    let header = Header::parse(msg).ok_or("DNS_truncated_len_lt_hdr_len")?;
    let mut out = Message {
        header,
        questions: Vec::new(),
        answers: Vec::new(),
        error: None,
    };
    let mut cur = Cursor {
        msg,
        pos: HEADER_LEN,
    };
    for _ in 0..header.qdcount {
        let name = match cur.name() {
            Ok(n) => n,
            Err(e) => {
                out.error = Some(e.weird());
                return Ok(out);
            }
        };
        let (Some(qtype), Some(qclass)) = (cur.u16(), cur.u16()) else {
            out.error = Some("DNS_truncated_quest_too_short");
            return Ok(out);
        };
        out.questions.push(Question {
            name,
            qtype,
            qclass,
        });
    }
    for _ in 0..header.ancount {
        let owner = match cur.name() {
            Ok(n) => n,
            Err(e) => {
                out.error = Some(e.weird());
                return Ok(out);
            }
        };
        let (Some(rtype), Some(_class), Some(ttl), Some(rdlen)) =
            (cur.u16(), cur.u16(), cur.u32(), cur.u16())
        else {
            out.error = Some("DNS_truncated_ans_too_short");
            return Ok(out);
        };
        let start = cur.pos;
        let end = start + rdlen as usize;
        if end > msg.len() {
            out.error = Some("DNS_truncated_RR_rdlength_lt_len");
            return Ok(out);
        }
        let rendered = render_rdata(msg, rtype, start, end, &owner);
        cur.pos = end;
        out.answers.push(Answer {
            owner,
            ttl,
            rendered,
        });
    }
    Ok(out)
}

/// Renders one record's data as Zeek's `dns_*_reply` handlers do.
fn render_rdata(msg: &[u8], rtype: u16, start: usize, end: usize, owner: &[u8]) -> Option<String> {
    let rdata = msg.get(start..end)?;
    let name_at = |pos: usize| read_name(msg, pos).ok().map(|(n, _)| escape_bytes(&n));
    match rtype {
        1 => {
            let b: [u8; 4] = rdata.get(..4)?.try_into().ok()?;
            Some(Ipv4Addr::from(b).to_string())
        }
        28 => {
            let b: [u8; 16] = rdata.get(..16)?.try_into().ok()?;
            Some(Ipv6Addr::from(b).to_string())
        }
        // NS, CNAME, PTR, SOA (mname), DNAME-less: the name that starts the rdata.
        2 | 5 | 12 | 6 => name_at(start),
        15 => name_at(start + 2),
        33 => name_at(start + 6),
        16 | 99 => {
            let tag = if rtype == 16 { "TXT" } else { "SPF" };
            let mut parts = Vec::new();
            let mut i = 0;
            while i < rdata.len() {
                let len = rdata[i] as usize;
                let s = rdata.get(i + 1..i + 1 + len).unwrap_or(&rdata[i + 1..]);
                parts.push(format!("{tag} {} {}", s.len(), escape_bytes(s)));
                i += 1 + len;
            }
            Some(parts.join(" "))
        }
        46 => {
            // RRSIG: type covered, algorithm, labels, original TTL, expiration, inception,
            // key tag (18 bytes), then the signer's name.
            let covered = u16::from_be_bytes([*rdata.first()?, *rdata.get(1)?]);
            let signer = read_name(msg, start + 18).ok()?.0;
            let signer = if signer.is_empty() {
                "<Root>".to_owned()
            } else {
                escape_bytes(&signer)
            };
            Some(format!("RRSIG {covered} {signer}"))
        }
        48 => Some(format!("DNSKEY {}", rdata.get(3)?)),
        43 => Some(format!("DS {} {}", rdata.get(2)?, rdata.get(3)?)),
        47 => {
            let next = read_name(msg, start).ok()?.0;
            Some(format!(
                "NSEC {} {}",
                escape_bytes(owner),
                escape_bytes(&next)
            ))
        }
        50 => Some("NSEC3".to_owned()),
        51 => Some("NSEC3PARAM".to_owned()),
        65534 => Some("BIND9 signing signal".to_owned()),
        44 => {
            let hex: String = rdata.get(2..)?.iter().map(|b| format!("{b:02x}")).collect();
            Some(format!("SSHFP: {hex}"))
        }
        29 => Some(format!(
            "LOC:  {} {} {}",
            rdata.get(1)?,
            rdata.get(2)?,
            rdata.get(3)?
        )),
        35 => render_naptr(msg, start, end),
        // Types Zeek parses without a log rendering: WKS, HINFO, OPT, TSIG, CAA, SVCB,
        // HTTPS, A6 (obsolete, rendered only when well-formed, which we do not decode).
        11 | 13 | 41 | 250 | 257 | 64 | 65 | 38 => None,
        other => Some(format!("<unknown type={other}>")),
    }
}

fn render_naptr(msg: &[u8], start: usize, end: usize) -> Option<String> {
    let rdata = msg.get(start..end)?;
    let order = u16::from_be_bytes([*rdata.first()?, *rdata.get(1)?]);
    let pref = u16::from_be_bytes([*rdata.get(2)?, *rdata.get(3)?]);
    let mut i = 4;
    let mut strings = Vec::new();
    for _ in 0..3 {
        let len = *rdata.get(i)? as usize;
        strings.push(escape_bytes(rdata.get(i + 1..i + 1 + len)?));
        i += 1 + len;
    }
    let replacement = read_name(msg, start + i).ok()?.0;
    let mut tail = strings[2].clone();
    if !replacement.is_empty() {
        if !tail.is_empty() {
            tail.push(' ');
        }
        tail.push_str(&escape_bytes(&replacement));
    }
    Some(format!(
        "NAPTR {order} {pref} {} {} {tail}",
        strings[0], strings[1]
    ))
}

/// Zeek's `DNS::query_types` table.
pub(crate) fn qtype_name(t: u16) -> Cow<'static, str> {
    let name = match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAP-PTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        31 => "EID",
        32 => "NIMLOC",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        40 => "SINK",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        53 => "SMIMEA",
        55 => "HIP",
        56 => "NINFO",
        57 => "RKEY",
        58 => "TALINK",
        59 => "CDS",
        60 => "CDNSKEY",
        61 => "OPENPGPKEY",
        62 => "CSYNC",
        63 => "ZONEMD",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        100 => "UINFO",
        101 => "UID",
        102 => "GID",
        103 => "UNSPEC",
        104 => "NID",
        105 => "L32",
        106 => "L64",
        107 => "LP",
        108 => "EUI48",
        109 => "EUI64",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "*",
        256 => "URI",
        257 => "CAA",
        32768 => "TA",
        32769 => "DLV",
        65281 => "WINS",
        65282 => "WINS-R",
        65422 => "XPF",
        65521 => "INTEGRITY",
        other => return Cow::Owned(format!("query-{other}")),
    };
    Cow::Borrowed(name)
}

/// Zeek's `DNS::classes` table.
fn qclass_name(c: u16) -> Cow<'static, str> {
    Cow::Borrowed(match c {
        1 => "C_INTERNET",
        2 => "C_CSNET",
        3 => "C_CHAOS",
        4 => "C_HESIOD",
        254 => "C_NONE",
        255 => "C_ANY",
        other => return Cow::Owned(format!("qclass-{other}")),
    })
}

/// Zeek's `DNS::base_errors` table.
fn rcode_name(r: u8) -> Cow<'static, str> {
    let name = match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSet",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        11..=15 => return Cow::Owned(format!("unassigned-{r}")),
        other => return Cow::Owned(format!("rcode-{other}")),
    };
    Cow::Borrowed(name)
}

/// Zeek's `DNS::opcodes` table.
fn opcode_name(op: u8) -> Cow<'static, str> {
    Cow::Borrowed(match op {
        0 => "query",
        1 => "iquery",
        2 => "server-status",
        4 => "notify",
        5 => "dynamic-update",
        6 => "dso",
        other => return Cow::Owned(format!("opcode-{other}")),
    })
}

/// Zeek's `DNS::netbios_opcodes` table (NetBIOS name service, port 137).
fn netbios_opcode_name(op: u8) -> Cow<'static, str> {
    Cow::Borrowed(match op {
        0 => "netbios-query",
        5 => "netbios-registration",
        6 => "netbios-release",
        7 => "netbios-wack",
        8 => "netbios-refresh",
        other => return Cow::Owned(format!("netbios-opcode-{other}")),
    })
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
        let parsed = match parse_message(msg) {
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
        let mut rec = self.take_session(ts, &h);
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
        for q in &parsed.questions {
            if !h.qr {
                rec.rd = h.rd;
                rec.tc = h.tc;
                rec.qclass = Some(q.qclass);
                rec.qtype = Some(q.qtype);
                rec.qtype_name = Some(qtype_name(q.qtype));
                rec.z = h.z;
                let mut name = q.name.clone();
                if conn.resp_p == 137 {
                    if let Some(decoded) = decode_netbios_name(&name) {
                        name = decoded;
                    }
                    if q.qtype == 33 {
                        rec.qtype_name = Some(Cow::Borrowed("NBSTAT"));
                    }
                }
                rec.query = Some(escape_bytes(&name));
            } else if h.ancount == 0 && h.nscount == 0 && h.arcount == 0 {
                rec.rejected = true;
            }
        }
        if h.qr {
            for a in &parsed.answers {
                if rec.query.is_none() {
                    rec.query = Some(escape_bytes(&a.owner));
                }
                rec.aa = h.aa;
                rec.ra = h.ra;
                if rec.rtt.is_none() {
                    let rtt = ts - rec.ts;
                    // A zero rtt means only the reply was seen.
                    rec.rtt = (rtt != 0.0).then_some(rtt);
                }
                if let Some(s) = a.rendered.as_ref().filter(|s| !s.is_empty()) {
                    rec.answers.get_or_insert_with(Vec::new).push(s.clone());
                    rec.ttls
                        .get_or_insert_with(Vec::new)
                        .push(Interval(a.ttl.into()));
                }
            }
            rec.saw_reply = true;
        } else {
            rec.saw_query = true;
        }
        if rec.saw_query && rec.saw_reply {
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
        while let Some(prefix) = buf.get(pos..pos + 2) {
            let len = u16::from_be_bytes([prefix[0], prefix[1]]) as usize;
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
    let mut cur = Cursor {
        msg: data,
        pos: HEADER_LEN,
    };
    let Ok(_) = cur.name() else {
        return false;
    };
    let (Some(_qtype), Some(qclass)) = (cur.u16(), cur.u16()) else {
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

    #[test]
    fn pointer_back_into_the_same_name_is_refused_not_looped() {
        // Header (12 bytes), then at offset 12 the label "a" followed by a pointer to 12.
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(&[1, b'a', 0xc0, 12]);
        assert!(read_name(&msg, 12).is_err());
        // A chain of pointers that only goes down terminates normally.
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(&[3, b'c', b'o', b'm', 0]); // 12: "com"
        msg.extend_from_slice(&[1, b'x', 0xc0, 12]); // 17: "x" -> 12
        msg.extend_from_slice(&[0xc0, 17]); // 21: -> 17
        let (name, end) = read_name(&msg, 21).unwrap();
        assert_eq!(name, b"x.com");
        assert_eq!(end, 23);
    }

    use super::*;
    use crate::analyzer::app::tests::{conn, Collect, Driver};
    use crate::analyzer::log::tests::{assert_fully_set_row_matches_schema, OwnedValue};

    #[test]
    fn dns_row_matches_its_schema() {
        let c = conn(Transport::Udp, 53);
        let answers = ["192.0.2.7".to_string()];
        assert_fully_set_row_matches_schema(&DnsRow {
            ts: Time(1.0),
            id: c.id(),
            proto: Enum("udp"),
            trans_id: 1,
            rtt: Some(Interval(0.5)),
            query: Some("www.example.com"),
            qclass: Some(1),
            qclass_name: Some("C_INTERNET"),
            qtype: Some(1),
            qtype_name: Some("A"),
            rcode: Some(0),
            rcode_name: Some("NOERROR"),
            aa: false,
            tc: false,
            rd: true,
            ra: true,
            z: 0,
            answers: Some(Vector(&answers)),
            ttls: Some(Vector(&[Interval(60.0)])),
            rejected: false,
            opcode: Some(0),
            opcode_name: Some("query"),
        });
    }

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
    fn names_are_lowercased() {
        let q = msg(
            1,
            0x0100,
            &[b"\x03WwW\x02Ex\x00\x00\x01\x00\x01"],
            &[],
            0,
            0,
        );
        let parsed = parse_message(&q).unwrap();
        assert_eq!(parsed.questions[0].name, b"www.ex");
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
