//! The TLS and DTLS wire format: record and handshake headers, the SSLv2-compatible
//! ClientHello, and the handshake messages ssl.log draws on, as typed values borrowing from
//! the bytes. No Zeek semantics here: what a message means for the log is the analyzer's.

use crate::analyzer::bytes::{be16, ByteReader};

pub(crate) const CT_CCS: u8 = 20;
pub(crate) const CT_ALERT: u8 = 21;
pub(crate) const CT_HANDSHAKE: u8 = 22;
pub(crate) const CT_APPDATA: u8 = 23;
pub(crate) const CT_HEARTBEAT: u8 = 24;

pub(crate) const HS_CLIENT_HELLO: u8 = 1;
pub(crate) const HS_SERVER_HELLO: u8 = 2;
pub(crate) const HS_CERTIFICATE: u8 = 11;
pub(crate) const HS_SERVER_KEY_EXCHANGE: u8 = 12;
pub(crate) const HS_CLIENT_KEY_EXCHANGE: u8 = 16;

/// Length of a TLS record header and of a DTLS one.
pub(crate) const RECORD_HEADER_LEN: usize = 5;
pub(crate) const DTLS_RECORD_HEADER_LEN: usize = 13;
/// Length of a TLS handshake message header and of a DTLS one.
pub(crate) const HANDSHAKE_HEADER_LEN: usize = 4;
pub(crate) const DTLS_HANDSHAKE_HEADER_LEN: usize = 12;

/// The random of a TLS 1.3 HelloRetryRequest (RFC 8446, 4.1.3).
const RETRY_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// True if `data` starts a TLS handshake record holding a ClientHello or ServerHello, or an
/// SSLv2-format ClientHello.
pub(crate) fn looks_like_tls(data: &[u8]) -> bool {
    if data.len() >= 6
        && data[0] == CT_HANDSHAKE
        && data[1] == 3
        && data[2] <= 4
        && matches!(data[5], 1 | 2)
    {
        return be16(data, 3).is_some_and(|len| (4..=18432).contains(&len));
    }
    sslv2_client_hello(data).is_some()
}

/// True if a UDP datagram starts with a DTLS handshake record carrying a ClientHello or
/// ServerHello (or HelloVerifyRequest) in epoch 0.
pub(crate) fn looks_like_dtls(data: &[u8]) -> bool {
    data.len() >= 25
        && data[0] == CT_HANDSHAKE
        && data[1] == 0xfe
        && matches!(data[2], 0xff | 0xfd | 0xfc)
        && data[3..5] == [0, 0]
        && matches!(data[13], 1..=3)
}

/// An SSLv2-format ClientHello: the version it offers.
pub(crate) fn sslv2_client_hello(data: &[u8]) -> Option<u16> {
    if data.len() < 11 || data[0] & 0x80 == 0 || data[2] != 1 {
        return None;
    }
    let version = be16(data, 3)?;
    matches!(version, 0x0002 | 0x0300..=0x0304).then_some(version)
}

/// Length of an SSLv2 record (after its 2-byte header); `data` starts an SSLv2 ClientHello.
pub(crate) fn sslv2_record_len(data: &[u8]) -> usize {
    be16(data, 0).map_or(0, |len| usize::from(len & 0x7fff))
}

/// The header of a TLS record (or of a DTLS one, whose epoch and sequence are skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub content_type: u8,
    /// First version byte: 3 for SSLv3/TLS, 0xfe for DTLS.
    pub version_major: u8,
    pub length: usize,
}

impl RecordHeader {
    pub(crate) fn parse(data: &[u8]) -> Option<RecordHeader> {
        let mut r = ByteReader::new(data);
        let (content_type, version_major) = (r.u8()?, r.u8()?);
        r.skip(1)?;
        Some(RecordHeader {
            content_type,
            version_major,
            length: r.u16()?.into(),
        })
    }

    pub(crate) fn parse_dtls(data: &[u8]) -> Option<RecordHeader> {
        let mut r = ByteReader::new(data);
        let (content_type, version_major) = (r.u8()?, r.u8()?);
        r.skip(9)?;
        Some(RecordHeader {
            content_type,
            version_major,
            length: r.u16()?.into(),
        })
    }
}

/// The header of a handshake message; for DTLS with the fragment it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HandshakeHeader {
    pub msg_type: u8,
    pub length: usize,
    pub fragment_offset: usize,
    pub fragment_length: usize,
}

impl HandshakeHeader {
    pub(crate) fn parse(data: &[u8]) -> Option<HandshakeHeader> {
        let mut r = ByteReader::new(data);
        let msg_type = r.u8()?;
        let length = r.u24()? as usize;
        Some(HandshakeHeader {
            msg_type,
            length,
            fragment_offset: 0,
            fragment_length: length,
        })
    }

    pub(crate) fn parse_dtls(data: &[u8]) -> Option<HandshakeHeader> {
        let mut r = ByteReader::new(data);
        let msg_type = r.u8()?;
        let length = r.u24()? as usize;
        r.skip(2)?; // message sequence
        Some(HandshakeHeader {
            msg_type,
            length,
            fragment_offset: r.u24()? as usize,
            fragment_length: r.u24()? as usize,
        })
    }
}

/// `(type, body)` of each whole extension of an extensions block.
fn extensions(block: &[u8]) -> Vec<(u16, &[u8])> {
    let mut r = ByteReader::new(block);
    let mut out = Vec::new();
    while let (Some(t), Some(body)) = (r.u16(), r.vec16()) {
        out.push((t, body));
    }
    out
}

const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_SESSION_TICKET: u16 = 35;
const EXT_PRE_SHARED_KEY: u16 = 41;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
const EXT_KEY_SHARE: u16 = 51;

/// What a ClientHello offers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ClientHello<'a> {
    /// The host name of the last server_name extension that has one.
    pub server_name: Option<&'a [u8]>,
    /// A session_ticket extension carrying a ticket.
    pub offers_session_ticket: bool,
    pub offers_psk: bool,
    /// The session id; `None` when a malformed server_name extension stopped parsing
    /// (what came before it stands).
    pub session_id: Option<&'a [u8]>,
}

/// Parses a ClientHello body (`dtls`: with the cookie); `None` if it ends before its
/// extensions.
pub(crate) fn parse_client_hello(body: &[u8], dtls: bool) -> Option<ClientHello<'_>> {
    let mut r = ByteReader::new(body);
    r.skip(2 + 32)?; // version, random
    let session_id = r.vec8()?;
    if dtls {
        r.vec8()?; // cookie
    }
    r.vec16()?; // cipher suites
    r.vec8()?; // compression methods
    let mut hello = ClientHello::default();
    for (t, body) in extensions(r.vec16().unwrap_or_default()) {
        match t {
            EXT_SESSION_TICKET if !body.is_empty() => hello.offers_session_ticket = true,
            EXT_PRE_SHARED_KEY => hello.offers_psk = true,
            EXT_SERVER_NAME => {
                let Some(list) = ByteReader::new(body).vec16() else {
                    return Some(hello);
                };
                let mut list = ByteReader::new(list);
                while let (Some(kind), Some(name)) = (list.u8(), list.vec16()) {
                    if kind == 0 {
                        hello.server_name = Some(name);
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    hello.session_id = Some(session_id);
    Some(hello)
}

/// A ServerHello, as far as it goes: fields are `None` from the first one cut off.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ServerHello<'a> {
    /// `legacy_version`.
    pub version: Option<u16>,
    pub cipher: Option<u16>,
    /// The rest, when the message is whole up to its compression method.
    pub tail: Option<ServerHelloTail<'a>>,
}

/// A ServerHello's session id and the extensions ssl.log draws on (the last of each kind
/// that decodes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ServerHelloTail<'a> {
    /// The random is TLS 1.3's HelloRetryRequest marker.
    pub retry_request: bool,
    pub session_id: &'a [u8],
    pub supported_version: Option<u16>,
    /// The first protocol of an ALPN extension.
    pub alpn: Option<&'a [u8]>,
    pub key_share_group: Option<u16>,
    pub pre_shared_key: bool,
}

pub(crate) fn parse_server_hello(body: &[u8]) -> ServerHello<'_> {
    let mut r = ByteReader::new(body);
    let mut hello = ServerHello::default();
    let Some(version) = r.u16() else {
        return hello;
    };
    hello.version = Some(version);
    let (Some(random), Some(session_id), Some(cipher)) = (r.bytes(32), r.vec8(), r.u16()) else {
        return hello;
    };
    hello.cipher = Some(cipher);
    if r.u8().is_none() {
        return hello; // compression method
    }
    let mut tail = ServerHelloTail {
        retry_request: random == RETRY_RANDOM,
        session_id,
        ..ServerHelloTail::default()
    };
    for (t, body) in extensions(r.vec16().unwrap_or_default()) {
        let mut e = ByteReader::new(body);
        match t {
            EXT_SUPPORTED_VERSIONS => {
                if let Some(v) = e.u16() {
                    tail.supported_version = Some(v);
                }
            }
            EXT_ALPN => {
                if let Some(p) = e.vec16().and_then(|list| ByteReader::new(list).vec8()) {
                    tail.alpn = Some(p);
                }
            }
            EXT_KEY_SHARE => {
                if let Some(g) = e.u16() {
                    tail.key_share_group = Some(g);
                }
            }
            EXT_PRE_SHARED_KEY => tail.pre_shared_key = true,
            _ => {}
        }
    }
    hello.tail = Some(tail);
    hello
}

/// The DER certificates of a Certificate message (TLS ≤ 1.2 layout), as far as they are
/// whole.
pub(crate) fn parse_certificates(body: &[u8]) -> Vec<&[u8]> {
    let mut certs = Vec::new();
    let Some(list) = ByteReader::new(body).vec24() else {
        return certs;
    };
    let mut l = ByteReader::new(list);
    while let Some(der) = l.vec24() {
        certs.push(der);
    }
    certs
}

/// The named group of an ECDHE ServerKeyExchange (curve type 3, named_curve).
pub(crate) fn server_key_exchange_group(body: &[u8]) -> Option<u16> {
    let mut r = ByteReader::new(body);
    if r.u8()? != 3 {
        return None;
    }
    r.u16()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_of_records_and_handshake_messages() {
        assert_eq!(
            RecordHeader::parse(&[22, 3, 1, 0x01, 0x02]),
            Some(RecordHeader {
                content_type: 22,
                version_major: 3,
                length: 0x102
            })
        );
        assert_eq!(RecordHeader::parse(&[22, 3, 1, 0]), None);
        let dtls = [22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
        assert_eq!(RecordHeader::parse_dtls(&dtls).map(|h| h.length), Some(7));
        assert_eq!(
            HandshakeHeader::parse(&[1, 0, 1, 0]).map(|h| (h.msg_type, h.length)),
            Some((1, 256))
        );
        let hs = [2, 0, 0, 9, 0, 0, 0, 0, 3, 0, 0, 6];
        let h = HandshakeHeader::parse_dtls(&hs).expect("whole header");
        assert_eq!((h.length, h.fragment_offset, h.fragment_length), (9, 3, 6));
    }

    #[test]
    fn a_malformed_server_name_keeps_what_came_before() {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0; 32]);
        body.extend_from_slice(&[1, 9, 0, 2, 0x13, 0x01, 1, 0]);
        // session_ticket with a ticket, then a server_name whose list overruns it.
        body.extend_from_slice(&[0, 12, 0, 35, 0, 1, 7, 0, 0, 0, 3, 0, 9, 0]);
        let hello = parse_client_hello(&body, false).expect("extensions reached");
        assert!(hello.offers_session_ticket);
        assert_eq!(hello.session_id, None);
        assert_eq!(parse_client_hello(&body[..30], false), None);
    }

    #[test]
    fn a_cut_server_hello_keeps_its_first_fields() {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0; 32]);
        body.extend_from_slice(&[0, 0x13, 0x01]);
        let cut = parse_server_hello(&body);
        assert_eq!((cut.version, cut.cipher), (Some(0x0303), Some(0x1301)));
        assert_eq!(cut.tail, None);
        body.push(0);
        let whole = parse_server_hello(&body);
        assert_eq!(whole.tail.map(|t| t.retry_request), Some(false));
        assert_eq!(parse_server_hello(&body[..10]).version, Some(0x0303));
        assert_eq!(parse_server_hello(&body[..10]).cipher, None);
    }
}
