//! The DNS wire format (RFC 1035 and the record types Zeek decodes): bytes of one message to
//! a typed [`Message`]. No Zeek semantics here: which record is logged how lives in the
//! analyzer, the names of codes in `consts`.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::analyzer::bytes::ByteReader;

pub(crate) const HEADER_LEN: usize = 12;
/// Longest decoded name; longer names are cut (RFC 1035 allows 255 octets).
const MAX_NAME_LEN: usize = 1024;

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
        let mut r = ByteReader::new(data.get(..HEADER_LEN)?);
        let id = r.u16()?;
        let flags = r.u16()?;
        Some(Header {
            id,
            qr: flags & 0x8000 != 0,
            opcode: ((flags >> 11) & 0x0f) as u8,
            aa: flags & 0x0400 != 0,
            tc: flags & 0x0200 != 0,
            rd: flags & 0x0100 != 0,
            ra: flags & 0x0080 != 0,
            z: ((flags >> 4) & 0x07) as u8,
            rcode: (flags & 0x0f) as u8,
            qdcount: r.u16()?,
            ancount: r.u16()?,
            nscount: r.u16()?,
            arcount: r.u16()?,
        })
    }
}

/// Why a name could not be decoded; each maps to a Zeek weird.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameError {
    LabelPastEnd,
    ForwardPointer,
    BadLabelType,
}

impl NameError {
    pub(crate) fn weird(self) -> &'static str {
        match self {
            NameError::LabelPastEnd => "DNS_label_len_gt_pkt",
            NameError::ForwardPointer => "DNS_label_forward_compress_offset",
            NameError::BadLabelType => "DNS_label_too_long",
        }
    }
}

/// Reads the (possibly compressed) name at `pos` of `msg`; returns the name (labels joined
/// by `.`, lower case as Zeek extracts names, no trailing dot, `""` for the root) and the
/// offset just past it.
///
/// Loop protection: every compression pointer must point strictly before the start of the
/// run of labels it ends, so run starts strictly decrease and decoding terminates.
pub(crate) fn read_name(msg: &[u8], pos: usize) -> Result<(Vec<u8>, usize), NameError> {
    // Room for a typical name, so appending labels rarely reallocates.
    let mut name = Vec::with_capacity(64);
    let end = walk_name(msg, pos, Some(&mut name))?;
    Ok((name, end))
}

/// Walks the name at `pos` as [`read_name`] does, appending it to `name` if given (checks
/// and errors are the same either way); returns the offset just past it.
fn walk_name(
    msg: &[u8],
    mut pos: usize,
    mut name: Option<&mut Vec<u8>>,
) -> Result<usize, NameError> {
    let mut end_after_first_pointer = None;
    let mut run_start = pos;
    loop {
        let len = *msg.get(pos).ok_or(NameError::LabelPastEnd)? as usize;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Ok(end_after_first_pointer.unwrap_or(pos + 1));
                }
                let label = msg
                    .get(pos + 1..pos + 1 + len)
                    .ok_or(NameError::LabelPastEnd)?;
                if let Some(name) = name.as_deref_mut() {
                    if name.len() < MAX_NAME_LEN {
                        if !name.is_empty() {
                            name.push(b'.');
                        }
                        name.extend(label.iter().map(u8::to_ascii_lowercase));
                    }
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

/// A name checked but not decoded yet: most owner names of answers are never needed (the
/// query's name is logged), so they are only walked past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LazyName<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl LazyName<'_> {
    /// The decoded name (as [`read_name`] gives it).
    pub(crate) fn decode(&self) -> Vec<u8> {
        // Walked without error when the answer was parsed, so this decodes the same way.
        read_name(self.msg, self.pos)
            .map(|(name, _)| name)
            .unwrap_or_default()
    }
}

/// The name at the reader's position, checked and skipped, not decoded.
fn lazy_name<'a>(r: &mut ByteReader<'a>) -> Result<LazyName<'a>, NameError> {
    let pos = r.pos();
    let end = walk_name(r.data(), pos, None)?;
    r.seek(end);
    Ok(LazyName { msg: r.data(), pos })
}

/// The name at the reader's position; the reader moves past it.
fn name(r: &mut ByteReader<'_>) -> Result<Vec<u8>, NameError> {
    let (name, end) = read_name(r.data(), r.pos())?;
    r.seek(end);
    Ok(name)
}

/// The name at offset `pos` of `msg`, if it decodes.
fn name_at(msg: &[u8], pos: usize) -> Option<Vec<u8>> {
    read_name(msg, pos).ok().map(|(n, _)| n)
}

/// One question: name, type, class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Question {
    pub name: Vec<u8>,
    pub qtype: u16,
    pub qclass: u16,
}

/// One answer-section record: owner, TTL and the decoded data (`None` when the data does
/// not decode as its type requires).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer<'a> {
    pub owner: LazyName<'a>,
    pub ttl: u32,
    pub data: Option<RData<'a>>,
}

/// Record data of the types Zeek decodes, borrowing from the message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RData<'a> {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// NS, CNAME, PTR and DNAME-less types whose data starts with a name; SOA's primary
    /// server; MX's exchange; SRV's target.
    Name(Vec<u8>),
    /// TXT (`spf: false`) or SPF character strings; the last may be cut short.
    Text {
        spf: bool,
        strings: Vec<&'a [u8]>,
    },
    Rrsig {
        type_covered: u16,
        signer: Vec<u8>,
    },
    Dnskey {
        algorithm: u8,
    },
    Ds {
        algorithm: u8,
        digest_type: u8,
    },
    Nsec {
        next: Vec<u8>,
    },
    Nsec3,
    Nsec3Param,
    /// BIND 9's private signing-state record (type 65534).
    Bind9Signing,
    Sshfp {
        fingerprint: &'a [u8],
    },
    Loc {
        size: u8,
        horizontal_precision: u8,
        vertical_precision: u8,
    },
    Naptr(Naptr<'a>),
    /// A type parsed without data worth logging (WKS, HINFO, OPT, TSIG, CAA, SVCB, HTTPS, A6).
    Opaque,
    /// A type not decoded at all.
    Unknown(u16),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Naptr<'a> {
    pub order: u16,
    pub preference: u16,
    pub flags: &'a [u8],
    pub service: &'a [u8],
    pub regexp: &'a [u8],
    pub replacement: Vec<u8>,
}

/// A parsed message; `error` names the weird if parsing stopped early (what was parsed
/// before the error is still used, as Zeek does).
#[derive(Debug)]
pub(crate) struct Message<'a> {
    pub header: Header,
    pub questions: Vec<Question>,
    pub answers: Vec<Answer<'a>>,
    pub error: Option<&'static str>,
}

pub(crate) fn parse_message(msg: &[u8]) -> Result<Message<'_>, &'static str> {
    let header = Header::parse(msg).ok_or("DNS_truncated_len_lt_hdr_len")?;
    let mut out = Message {
        header,
        questions: Vec::new(),
        answers: Vec::new(),
        error: None,
    };
    let mut r = ByteReader::at(msg, HEADER_LEN);
    for _ in 0..header.qdcount {
        let name = match name(&mut r) {
            Ok(n) => n,
            Err(e) => {
                out.error = Some(e.weird());
                return Ok(out);
            }
        };
        let (Some(qtype), Some(qclass)) = (r.u16(), r.u16()) else {
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
        let owner = match lazy_name(&mut r) {
            Ok(n) => n,
            Err(e) => {
                out.error = Some(e.weird());
                return Ok(out);
            }
        };
        let (Some(rtype), Some(_class), Some(ttl), Some(rdlen)) =
            (r.u16(), r.u16(), r.u32(), r.u16())
        else {
            out.error = Some("DNS_truncated_ans_too_short");
            return Ok(out);
        };
        let start = r.pos();
        let end = start + usize::from(rdlen);
        if end > msg.len() {
            out.error = Some("DNS_truncated_RR_rdlength_lt_len");
            return Ok(out);
        }
        let data = parse_rdata(msg, rtype, start, end);
        r.seek(end);
        out.answers.push(Answer { owner, ttl, data });
    }
    Ok(out)
}

/// Type and class of the first question of a message, if its name is well formed.
pub(crate) fn first_question(msg: &[u8]) -> Option<(u16, u16)> {
    let mut r = ByteReader::at(msg, HEADER_LEN);
    lazy_name(&mut r).ok()?;
    Some((r.u16()?, r.u16()?))
}

/// Decodes the data of one record at `start..end` of `msg` (names may point anywhere
/// before them in the message).
fn parse_rdata(msg: &[u8], rtype: u16, start: usize, end: usize) -> Option<RData<'_>> {
    let rdata = msg.get(start..end)?;
    let mut r = ByteReader::new(rdata);
    Some(match rtype {
        1 => RData::A(Ipv4Addr::from(r.u32()?)),
        28 => RData::Aaaa(Ipv6Addr::from(*r.bytes(16)?.first_chunk::<16>()?)),
        2 | 5 | 12 | 6 => RData::Name(name_at(msg, start)?),
        15 => RData::Name(name_at(msg, start + 2)?),
        33 => RData::Name(name_at(msg, start + 6)?),
        16 | 99 => {
            let mut strings = Vec::new();
            let mut i = 0;
            while i < rdata.len() {
                let len = usize::from(rdata[i]);
                strings.push(rdata.get(i + 1..i + 1 + len).unwrap_or(&rdata[i + 1..]));
                i += 1 + len;
            }
            RData::Text {
                spf: rtype == 99,
                strings,
            }
        }
        46 => RData::Rrsig {
            type_covered: r.u16()?,
            signer: name_at(msg, start + 18)?,
        },
        48 => RData::Dnskey {
            algorithm: *rdata.get(3)?,
        },
        43 => RData::Ds {
            algorithm: *rdata.get(2)?,
            digest_type: *rdata.get(3)?,
        },
        47 => RData::Nsec {
            next: name_at(msg, start)?,
        },
        50 => RData::Nsec3,
        51 => RData::Nsec3Param,
        65534 => RData::Bind9Signing,
        44 => RData::Sshfp {
            fingerprint: rdata.get(2..)?,
        },
        29 => RData::Loc {
            size: *rdata.get(1)?,
            horizontal_precision: *rdata.get(2)?,
            vertical_precision: *rdata.get(3)?,
        },
        35 => {
            let order = r.u16()?;
            let preference = r.u16()?;
            let (flags, service, regexp) = (r.vec8()?, r.vec8()?, r.vec8()?);
            let replacement = name_at(msg, start + r.pos())?;
            RData::Naptr(Naptr {
                order,
                preference,
                flags,
                service,
                regexp,
                replacement,
            })
        }
        11 | 13 | 41 | 250 | 257 | 64 | 65 | 38 => RData::Opaque,
        other => RData::Unknown(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn record_data_of_each_shape() {
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(&[3, b'c', b'o', b'm', 0]);
        let at = msg.len();
        msg.extend_from_slice(&[0, 10, 0, 20, 1, b'U', 3, b'E', b'2', b'U', 0, 0xc0, 12]);
        let naptr = parse_rdata(&msg, 35, at, msg.len());
        assert_eq!(
            naptr,
            Some(RData::Naptr(Naptr {
                order: 10,
                preference: 20,
                flags: b"U",
                service: b"E2U",
                regexp: b"",
                replacement: b"com".to_vec(),
            }))
        );
        let at = msg.len();
        msg.extend_from_slice(&[2, b'h', b'i', 5, b'c', b'u']);
        assert_eq!(
            parse_rdata(&msg, 16, at, msg.len()),
            Some(RData::Text {
                spf: false,
                strings: vec![&b"hi"[..], &b"cu"[..]],
            })
        );
        assert_eq!(parse_rdata(&msg, 1, at, at + 3), None);
        assert_eq!(parse_rdata(&msg, 250, at, at), Some(RData::Opaque));
        assert_eq!(parse_rdata(&msg, 4242, at, at), Some(RData::Unknown(4242)));
    }

    #[test]
    fn names_are_lowercased() {
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(b"\x03WwW\x02Ex\x00");
        assert_eq!(read_name(&msg, 12).map(|n| n.0), Ok(b"www.ex".to_vec()));
        let mut r = ByteReader::at(&msg, 12);
        let lazy = lazy_name(&mut r).unwrap();
        assert_eq!((lazy.decode(), r.pos()), (b"www.ex".to_vec(), msg.len()));
        assert_eq!(first_question(&msg), None);
    }
}
