//! The DHCP/BOOTP wire format (RFC 2131, options of RFC 2132 and 4702), as Zeek's
//! `src/analyzer/protocol/dhcp/dhcp-protocol.pac` and `dhcp-options.pac` read it: one
//! message per UDP datagram, the options that dhcp.log uses kept, borrowed from the datagram.
//!
//! As in Zeek, a message needs the whole fixed header, the magic cookie and an options list
//! closed by the end option (255); a later occurrence of an option replaces an earlier one,
//! except the message type (53), of which the first counts.

use std::net::Ipv4Addr;

use crate::analyzer::bytes::ByteReader;

/// Bytes before the magic cookie: op .. file.
pub const COOKIE_OFFSET: usize = 236;
/// RFC 2131's magic cookie, which Zeek's content signature (`dhcp_cookie`) looks for.
pub const MAGIC_COOKIE: [u8; 4] = [0x63, 0x82, 0x53, 0x63];

const OPT_PAD: u8 = 0;
const OPT_HOST_NAME: u8 = 12;
const OPT_DOMAIN_NAME: u8 = 15;
const OPT_ADDR_REQUEST: u8 = 50;
const OPT_LEASE: u8 = 51;
const OPT_MSG_TYPE: u8 = 53;
const OPT_MESSAGE: u8 = 56;
const OPT_CLIENT_ID: u8 = 61;
const OPT_CLIENT_FQDN: u8 = 81;
const OPT_END: u8 = 255;

/// Option 61: a hardware type and an address (or any identifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientId<'a> {
    pub hwtype: u8,
    pub hwaddr: &'a [u8],
}

/// The options of a message that dhcp.log uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options<'a> {
    /// Option 53; 0 when missing (Zeek then reports a violation but still raises the event).
    pub msg_type: u8,
    pub host_name: Option<&'a [u8]>,
    pub domain_name: Option<&'a [u8]>,
    pub addr_request: Option<Ipv4Addr>,
    /// Seconds.
    pub lease: Option<u32>,
    pub message: Option<&'a [u8]>,
    pub client_id: Option<ClientId<'a>>,
    /// Option 81's domain name, as sent (flags and rcodes dropped).
    pub client_fqdn: Option<&'a [u8]>,
}

/// One DHCP message (the fields of Zeek's `DHCP::Msg` that dhcp.log uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub op: u8,
    pub xid: u32,
    pub yiaddr: Ipv4Addr,
    /// The 16-byte client hardware address field.
    pub chaddr: &'a [u8; 16],
    pub options: Options<'a>,
}

/// Why a datagram is not a DHCP message Zeek would accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DhcpError {
    #[error("datagram shorter than a DHCP header")]
    Truncated,
    #[error("no DHCP magic cookie")]
    BadCookie,
    #[error("DHCP options run past the datagram or have no end option")]
    BadOptions,
}

/// Whether a UDP payload carries the magic cookie where DHCP puts it (Zeek's `dhcp_cookie`
/// signature: 236 bytes, then `63 82 53 63`).
pub fn has_cookie(data: &[u8]) -> bool {
    data.get(COOKIE_OFFSET..COOKIE_OFFSET + 4) == Some(&MAGIC_COOKIE[..])
}

pub fn parse_message(data: &[u8]) -> Result<Message<'_>, DhcpError> {
    let mut r = ByteReader::new(data);
    let mut header = || -> Option<(u8, u32, Ipv4Addr, &[u8; 16])> {
        let op = r.u8()?;
        r.skip(3)?; // htype, hlen, hops
        let xid = r.u32()?;
        r.skip(8)?; // secs, flags, ciaddr
        let yiaddr = Ipv4Addr::from(r.u32()?);
        r.skip(8)?; // siaddr, giaddr
        let chaddr = r.bytes(16)?.try_into().ok()?;
        r.skip(64 + 128)?; // sname, file
        Some((op, xid, yiaddr, chaddr))
    };
    let (op, xid, yiaddr, chaddr) = header().ok_or(DhcpError::Truncated)?;
    let cookie = r.bytes(4).ok_or(DhcpError::Truncated)?;
    let options = parse_options(&mut r)?;
    // Zeek parses the options before it checks the cookie.
    if cookie != MAGIC_COOKIE {
        return Err(DhcpError::BadCookie);
    }
    Ok(Message {
        op,
        xid,
        yiaddr,
        chaddr,
        options,
    })
}

fn parse_options<'a>(r: &mut ByteReader<'a>) -> Result<Options<'a>, DhcpError> {
    let mut options = Options::default();
    loop {
        let code = r.u8().ok_or(DhcpError::BadOptions)?;
        match code {
            OPT_END => return Ok(options),
            OPT_PAD => continue,
            _ => {}
        }
        let len = r.u8().ok_or(DhcpError::BadOptions)?;
        let value = r.bytes(usize::from(len)).ok_or(DhcpError::BadOptions)?;
        let addr = || {
            value
                .get(..4)
                .map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        };
        match code {
            OPT_MSG_TYPE if options.msg_type == 0 => {
                options.msg_type = value.first().copied().unwrap_or(0)
            }
            OPT_HOST_NAME => options.host_name = Some(value),
            OPT_DOMAIN_NAME => options.domain_name = Some(value),
            OPT_ADDR_REQUEST => options.addr_request = addr(),
            OPT_LEASE => options.lease = addr().map(u32::from),
            OPT_MESSAGE => options.message = Some(value),
            OPT_CLIENT_ID => {
                if let Some((&hwtype, hwaddr)) = value.split_first() {
                    options.client_id = Some(ClientId { hwtype, hwaddr });
                }
            }
            OPT_CLIENT_FQDN => options.client_fqdn = value.get(3..),
            _ => {}
        }
    }
}

/// A hardware address as Zeek's `fmt_mac` writes it: six bytes (or eight, when the 7th and
/// 8th are not both zero) as lower-case hex pairs; empty for fewer than six bytes (or seven).
pub fn fmt_mac(bytes: &[u8]) -> String {
    if bytes.len() < 8 && bytes.len() != 6 {
        return String::new();
    }
    let n = if bytes.len() == 6 || (bytes[6] == 0 && bytes[7] == 0) {
        6
    } else {
        8
    };
    let parts: Vec<String> = bytes[..n].iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A DHCP message: op, xid, yiaddr, chaddr (6 bytes), and raw options (the end option
    /// is appended).
    pub(crate) fn message(
        op: u8,
        xid: u32,
        yiaddr: [u8; 4],
        mac: [u8; 6],
        options: &[u8],
    ) -> Vec<u8> {
        let mut m = vec![0u8; COOKIE_OFFSET];
        m[0] = op;
        m[1] = 1;
        m[2] = 6;
        m[4..8].copy_from_slice(&xid.to_be_bytes());
        m[16..20].copy_from_slice(&yiaddr);
        m[28..34].copy_from_slice(&mac);
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(options);
        m.push(OPT_END);
        m
    }

    #[test]
    fn options_that_dhcp_log_uses() {
        let opts = [
            53, 1, 3, // REQUEST
            0, 0, // padding
            12, 4, b'h', b'o', b's', b't', //
            50, 4, 192, 0, 2, 7, //
            51, 4, 0, 0, 0x0e, 0x10, //
            61, 7, 1, 1, 2, 3, 4, 5, 6, //
            81, 6, 0, 0, 0, b'a', b'.', b'b', //
            53, 1, 5, // a second type option does not count
        ];
        let m = message(
            1,
            0xdead_beef,
            [0; 4],
            [0x90, 0xb1, 0x1c, 0x99, 0x49, 0x29],
            &opts,
        );
        assert!(has_cookie(&m));
        let msg = parse_message(&m).expect("parses");
        assert_eq!((msg.op, msg.xid), (1, 0xdead_beef));
        assert_eq!(fmt_mac(msg.chaddr), "90:b1:1c:99:49:29");
        let o = &msg.options;
        assert_eq!(o.msg_type, 3);
        assert_eq!(o.host_name, Some(&b"host"[..]));
        assert_eq!(o.addr_request, Some(Ipv4Addr::new(192, 0, 2, 7)));
        assert_eq!(o.lease, Some(3600));
        assert_eq!(
            o.client_id.map(|c| (c.hwtype, fmt_mac(c.hwaddr))),
            Some((1, "01:02:03:04:05:06".into()))
        );
        assert_eq!(o.client_fqdn, Some(&b"a.b"[..]));
    }

    #[test]
    fn broken_messages_are_errors() {
        let m = message(2, 1, [10, 0, 0, 5], [1, 2, 3, 4, 5, 6], &[53, 1, 2]);
        assert!(parse_message(&m).is_ok());
        assert_eq!(parse_message(&m[..200]), Err(DhcpError::Truncated));
        // No end option.
        assert_eq!(parse_message(&m[..m.len() - 1]), Err(DhcpError::BadOptions));
        // An option longer than what is left.
        let mut long = m.clone();
        let end = long.len() - 1;
        long[end] = 12;
        long.push(9);
        assert_eq!(parse_message(&long), Err(DhcpError::BadOptions));
        let mut bad = m;
        bad[COOKIE_OFFSET] = 0;
        assert!(!has_cookie(&bad));
        assert_eq!(parse_message(&bad), Err(DhcpError::BadCookie));
    }

    #[test]
    fn mac_formats_like_zeek() {
        assert_eq!(fmt_mac(&[1, 2, 3, 4]), "");
        assert_eq!(fmt_mac(&[1, 2, 3, 4, 5, 6, 0, 0, 9]), "01:02:03:04:05:06");
        assert_eq!(
            fmt_mac(&[1, 2, 3, 4, 5, 6, 7, 8]),
            "01:02:03:04:05:06:07:08"
        );
    }
}
