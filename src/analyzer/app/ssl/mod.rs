//! TLS/SSL: the record layer of both directions, handshake messages reassembled across
//! records, and the summary Zeek writes to `ssl.log` (version, cipher, curve, SNI, ALPN,
//! resumption, alerts, establishment, `ssl_history`, certificate fingerprints).
//!
//! As in Zeek, the line is written once the handshake is established (both sides sent
//! ChangeCipherSpec, or for TLS 1.3 both sent application data) and the analyzer then stops
//! looking at the connection; otherwise it is written when the connection ends. Records and
//! handshake messages are buffered per side up to [`MAX_BUFFER`]; beyond that the side is
//! given up with a weird.
//!
//! Certificates of clear-text Certificate messages go to `x509` (x509.log, their
//! fingerprints, the host-name check).
//!
//! Layout: `parser` reads records and handshake messages into typed values, `consts` holds the name tables of Zeek's `consts.zeek`, `log`
//! the ssl.log row; this file is Zeek's semantics (`base/protocols/ssl/main.zeek`):
//! history letters, resumption, establishment, when the line is written.

mod consts;
mod log;
mod parser;

use std::borrow::Cow;

use super::x509::{log_certificate, Certificate};
use super::{escape_bytes, AppAnalyzer, AppOutput, ConnInfo};
use crate::analyzer::log::{Time, Vector};
use consts::{alert_name, cipher_name, curve_name, handshake_letter, version_name};
pub use log::{SslRow, SSL_SCHEMA};
pub(crate) use parser::{looks_like_dtls, looks_like_tls};
use parser::{
    parse_certificates, parse_client_hello, parse_server_hello, server_key_exchange_group,
    sslv2_client_hello, sslv2_record_len, HandshakeHeader, RecordHeader, CT_ALERT, CT_APPDATA,
    CT_CCS, CT_HANDSHAKE, CT_HEARTBEAT, DTLS_HANDSHAKE_HEADER_LEN, DTLS_RECORD_HEADER_LEN,
    HANDSHAKE_HEADER_LEN, HS_CERTIFICATE, HS_CLIENT_HELLO, HS_CLIENT_KEY_EXCHANGE, HS_SERVER_HELLO,
    HS_SERVER_KEY_EXCHANGE, RECORD_HEADER_LEN,
};

/// Most bytes buffered per side for an incomplete record or handshake message.
const MAX_BUFFER: usize = 256 * 1024;

/// Zeek's `SSL::ssl_ports` (TCP) and `dtls_ports` (UDP 443): where it analyzes TLS
/// without waiting for a server hello.
fn tls_port(conn: &ConnInfo) -> bool {
    const PORTS: [u16; 11] = [443, 563, 585, 614, 636, 989, 990, 992, 993, 995, 5223];
    match conn.transport {
        super::Transport::Tcp => PORTS.contains(&conn.resp_p),
        super::Transport::Udp => conn.resp_p == 443,
    }
}

/// Parse state of one direction.
#[derive(Debug, Default)]
struct Side {
    records: Vec<u8>,
    handshake: Vec<u8>,
    /// ChangeCipherSpec sent: later handshake records are encrypted.
    encrypted: bool,
    lost: bool,
    first_record_seen: bool,
}

/// The TLS analyzer of one connection.
#[derive(Debug, Default)]
pub struct SslAnalyzer {
    /// DTLS over UDP: one datagram holds whole records with 13-byte headers.
    dtls: bool,
    sides: [Side; 2],
    confirmed: bool,
    logged: bool,
    ts: Option<f64>,
    version: Option<u16>,
    cipher: Option<u16>,
    curve: Option<u16>,
    server_name: Option<String>,
    client_session_id: Option<Vec<u8>>,
    /// Client offered a session ticket without a session id (resumption if it then skips
    /// the key exchange).
    client_ticket_without_session_id: bool,
    client_key_exchange_seen: bool,
    client_offered_psk: bool,
    /// TLS 1.3 establishment (Zeek): client application data seen, and how many server
    /// application data records came after it (0, 1, 2).
    client_app_data: bool,
    server_app_data: u8,
    resumed: bool,
    last_alert: Option<Cow<'static, str>>,
    next_protocol: Option<String>,
    established: bool,
    history: String,
    /// A certificate was seen in either direction: Zeek then sets both chain columns.
    cert_files: bool,
    cert_fps: Vec<String>,
    client_cert_fps: Vec<String>,
    /// The server's first certificate (inner `None` if it did not parse), for
    /// `sni_matches_cert`.
    server_cert: Option<Option<Certificate>>,
}

impl SslAnalyzer {
    pub fn new() -> Self {
        Self::default()
    }

    /// An analyzer for DTLS datagrams.
    pub fn new_dtls() -> Self {
        SslAnalyzer {
            dtls: true,
            ..Self::default()
        }
    }

    /// One DTLS datagram: records of `type, version, epoch, sequence, length`; handshake
    /// messages carry a 12-byte header (fragments of one message are not reassembled).
    fn datagram(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        side: usize,
        mut data: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        while !self.logged {
            let Some(header) = RecordHeader::parse_dtls(data) else {
                return;
            };
            let content_type = header.content_type;
            if !(20..=24).contains(&content_type) || header.version_major != 0xfe {
                return;
            }
            let end = DTLS_RECORD_HEADER_LEN + header.length;
            let Some(fragment) = data.get(DTLS_RECORD_HEADER_LEN..end) else {
                return;
            };
            data = &data[end..];
            if content_type != CT_HANDSHAKE || self.sides[side].encrypted {
                self.record(conn, ts, side, content_type, fragment, out);
                continue;
            }
            self.ts.get_or_insert(ts);
            let mut rest = fragment;
            while let Some(h) = HandshakeHeader::parse_dtls(rest) {
                let end = DTLS_HANDSHAKE_HEADER_LEN + h.fragment_length;
                let Some(body) = rest.get(DTLS_HANDSHAKE_HEADER_LEN..end) else {
                    break;
                };
                if h.fragment_offset == 0 && h.fragment_length == h.length {
                    self.handshake(ts, side == 0, h.msg_type, body, out);
                }
                rest = &rest[end..];
            }
        }
    }

    fn note(&mut self, is_orig: bool, letter: char) {
        self.history.push(if is_orig {
            letter.to_ascii_uppercase()
        } else {
            letter
        });
    }

    fn is_tls13(&self) -> bool {
        self.version.is_some_and(|v| v == 0x0304 || v >> 8 == 0x7f)
    }

    fn records(&mut self, conn: &ConnInfo, ts: f64, side: usize, out: &mut AppOutput<'_>) {
        let is_orig = side == 0;
        let mut buf = std::mem::take(&mut self.sides[side].records);
        let mut pos = 0;
        while !self.logged {
            let rest = &buf[pos..];
            if !self.sides[side].first_record_seen {
                if let Some(version) = sslv2_client_hello(rest) {
                    let len = sslv2_record_len(rest);
                    if rest.len() < 2 + len {
                        break;
                    }
                    self.sides[side].first_record_seen = true;
                    self.ts.get_or_insert(ts);
                    self.note(is_orig, 'c');
                    self.version.get_or_insert(version);
                    pos += 2 + len;
                    continue;
                }
            }
            let Some(header) = RecordHeader::parse(rest) else {
                break;
            };
            let content_type = header.content_type;
            if !(20..=24).contains(&content_type)
                || header.version_major != 3 && header.version_major != 0xfe
            {
                // Zeek reports this as an analyzer violation (analyzer.log), not a weird.
                self.sides[side].lost = true;
                buf.clear();
                pos = 0;
                break;
            }
            let end = RECORD_HEADER_LEN + header.length;
            let Some(fragment) = rest.get(RECORD_HEADER_LEN..end) else {
                break;
            };
            pos += end;
            self.sides[side].first_record_seen = true;
            self.record(conn, ts, side, content_type, fragment, out);
        }
        buf.drain(..pos.min(buf.len()));
        if buf.len() > MAX_BUFFER {
            out.weirds.push(("SSL_record_too_large", String::new()));
            self.sides[side].lost = true;
            buf = Vec::new();
        }
        self.sides[side].records = buf;
    }

    fn record(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        side: usize,
        content_type: u8,
        fragment: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        let is_orig = side == 0;
        self.ts.get_or_insert(ts);
        match content_type {
            // Once both sides switched ciphers, the first encrypted record establishes the
            // session (Zeek's `proc_ciphertext_record`).
            _ if self.sides[side].encrypted => {
                let both = self.sides[0].encrypted && self.sides[1].encrypted;
                if both {
                    self.establish(conn, out);
                }
            }
            CT_CCS => {
                self.note(is_orig, 'i');
                if is_orig
                    && self.client_ticket_without_session_id
                    && !self.client_key_exchange_seen
                {
                    self.resumed = true;
                }
                // In TLS 1.3 ChangeCipherSpec is compatibility padding.
                if !self.is_tls13() {
                    self.sides[side].encrypted = true;
                }
            }
            CT_ALERT => {
                for alert in fragment.chunks_exact(2) {
                    self.note(is_orig, 'l');
                    self.last_alert = Some(alert_name(alert[1]));
                }
            }
            CT_HANDSHAKE => {
                // After ChangeCipherSpec (and for TLS 1.3 after the ServerHello) handshake
                // records are encrypted: nothing to parse.
                let tls13_encrypted = self.is_tls13() && self.history.contains('s');
                if tls13_encrypted {
                    return;
                }
                let mut hs = std::mem::take(&mut self.sides[side].handshake);
                hs.extend_from_slice(fragment);
                let mut pos = 0;
                while let Some(h) = HandshakeHeader::parse(&hs[pos..]) {
                    let start = pos + HANDSHAKE_HEADER_LEN;
                    let Some(body) = hs.get(start..start + h.length) else {
                        break;
                    };
                    pos = start + h.length;
                    self.handshake(ts, is_orig, h.msg_type, body, out);
                }
                hs.drain(..pos);
                if hs.len() > MAX_BUFFER {
                    out.weirds.push(("SSL_handshake_too_large", String::new()));
                    hs = Vec::new();
                }
                self.sides[side].handshake = hs;
            }
            CT_APPDATA if self.is_tls13() => self.tls13_app_data(conn, is_orig, out),
            CT_APPDATA if self.version.is_some() => {
                out.weirds
                    .push(("ssl_early_application_data", String::new()));
            }
            CT_HEARTBEAT => self.note(is_orig, 'b'),
            _ => {}
        }
    }

    /// Zeek's TLS 1.3 rule: established once the client sent application data and the
    /// server then sent two more records (the first may still be an encrypted alert).
    fn tls13_app_data(&mut self, conn: &ConnInfo, is_orig: bool, out: &mut AppOutput<'_>) {
        if is_orig {
            self.client_app_data = true;
            return;
        }
        match (self.client_app_data, self.server_app_data) {
            (false, 0) => self.server_app_data = 1,
            (true, 1) => self.server_app_data = 2,
            (true, 2) => self.establish(conn, out),
            // Client data before any server data: the handshake cannot be judged.
            _ => {}
        }
    }

    fn handshake(
        &mut self,
        ts: f64,
        is_orig: bool,
        msg_type: u8,
        body: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        if msg_type == HS_SERVER_HELLO {
            // Like Zeek, the protocol counts as confirmed once the server answers.
            self.confirmed = true;
            let retry = self.server_hello(body);
            self.note(is_orig, if retry { 'j' } else { 's' });
            return;
        }
        self.note(is_orig, handshake_letter(msg_type));
        match msg_type {
            HS_CLIENT_HELLO => self.client_hello(body),
            HS_CLIENT_KEY_EXCHANGE if is_orig => self.client_key_exchange_seen = true,
            HS_CERTIFICATE => self.certificates(ts, is_orig, body, out),
            HS_SERVER_KEY_EXCHANGE => {
                if let Some(g) = server_key_exchange_group(body) {
                    self.curve = Some(g);
                }
            }
            _ => {}
        }
    }

    /// A Certificate message: each certificate is a file of Zeek's x509 analyzer (the first
    /// a host certificate), logged to x509.log and listed in the chain columns by its
    /// fingerprint; one that does not parse is counted but has no fingerprint.
    fn certificates(&mut self, ts: f64, is_orig: bool, body: &[u8], out: &mut AppOutput<'_>) {
        for (i, der) in parse_certificates(body).into_iter().enumerate() {
            self.cert_files = true;
            let cert = Certificate::parse(der);
            if let Some(c) = &cert {
                log_certificate(ts, c, i == 0, is_orig, out);
                let fps = if is_orig {
                    &mut self.client_cert_fps
                } else {
                    &mut self.cert_fps
                };
                fps.push(c.fingerprint.clone());
            }
            if !is_orig && self.server_cert.is_none() {
                self.server_cert = Some(cert);
            }
        }
    }

    fn client_hello(&mut self, body: &[u8]) {
        let Some(hello) = parse_client_hello(body, self.dtls) else {
            return;
        };
        if hello.offers_session_ticket {
            self.client_ticket_without_session_id = true;
        }
        if hello.offers_psk {
            self.client_offered_psk = true;
        }
        if let Some(name) = hello.server_name {
            self.server_name = Some(escape_bytes(name));
        }
        // An all-zero 32-byte id is no session id (Zeek).
        if let Some(sid) = hello.session_id.filter(|s| s.iter().any(|&b| b != 0)) {
            self.client_session_id = Some(sid.to_vec());
            self.client_ticket_without_session_id = false;
        }
    }

    /// Takes in a ServerHello; returns whether it is a TLS 1.3 HelloRetryRequest.
    fn server_hello(&mut self, body: &[u8]) -> bool {
        let hello = parse_server_hello(body);
        if let Some(v) = hello.version {
            self.version = Some(v);
        }
        if let Some(c) = hello.cipher {
            self.cipher = Some(c);
        }
        let Some(tail) = hello.tail else {
            return false;
        };
        if let Some(v) = tail.supported_version {
            self.version = Some(v);
        }
        if let Some(p) = tail.alpn {
            self.next_protocol = Some(escape_bytes(p));
        }
        if let Some(g) = tail.key_share_group {
            self.curve = Some(g);
        }
        if tail.pre_shared_key && self.client_offered_psk {
            self.resumed = true;
        }
        if !self.is_tls13() && self.client_session_id.as_deref() == Some(tail.session_id) {
            self.resumed = true;
        }
        tail.retry_request
    }

    fn establish(&mut self, conn: &ConnInfo, out: &mut AppOutput<'_>) {
        self.established = true;
        self.write(conn, out);
    }

    /// Writes the ssl.log line once. A handshake the server never answered is only logged
    /// on a TLS port: elsewhere Zeek's detection needs the server's hello before it
    /// analyzes the connection at all.
    fn write(&mut self, conn: &ConnInfo, out: &mut AppOutput<'_>) {
        if self.logged || self.history.is_empty() || !(self.confirmed || tls_port(conn)) {
            return;
        }
        self.logged = true;
        let sni_matches_cert = match (&self.server_name, &self.server_cert) {
            (Some(name), Some(Some(cert))) => Some(cert.matches_host(name)),
            _ => None,
        };
        let version = self.version.map(version_name);
        let cipher = self.cipher.map(cipher_name);
        let curve = self.curve.map(curve_name);
        out.logs.write(&SslRow {
            ts: Time(self.ts.unwrap_or_default()),
            id: conn.id(),
            version: version.as_deref(),
            cipher: cipher.as_deref(),
            curve: curve.as_deref(),
            server_name: self.server_name.as_deref(),
            resumed: self.resumed,
            last_alert: self.last_alert.as_deref(),
            next_protocol: self.next_protocol.as_deref(),
            established: self.established,
            ssl_history: &self.history,
            cert_chain_fps: self.cert_files.then_some(Vector(&self.cert_fps)),
            client_cert_chain_fps: self.cert_files.then_some(Vector(&self.client_cert_fps)),
            sni_matches_cert,
        });
    }
}

impl AppAnalyzer for SslAnalyzer {
    fn logs(&self) -> &'static [&'static str] {
        &["ssl", "x509"]
    }

    fn service(&self) -> Option<&'static str> {
        self.confirmed.then_some("ssl")
    }

    fn deliver(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        is_orig: bool,
        data: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        let side = usize::from(!is_orig);
        if self.logged || self.sides[side].lost {
            return;
        }
        if self.dtls {
            self.datagram(conn, ts, side, data, out);
            return;
        }
        self.sides[side].records.extend_from_slice(data);
        self.records(conn, ts, side, out);
    }

    fn gap(
        &mut self,
        _conn: &ConnInfo,
        _ts: f64,
        is_orig: bool,
        _len: u64,
        _out: &mut AppOutput<'_>,
    ) {
        // Record boundaries are lost with the missing bytes.
        let s = &mut self.sides[usize::from(!is_orig)];
        s.lost = true;
        s.records = Vec::new();
        s.handshake = Vec::new();
    }

    fn finish(&mut self, conn: &ConnInfo, _ts: f64, out: &mut AppOutput<'_>) {
        self.write(conn, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::app::tests::{conn, Driver};
    use crate::analyzer::app::x509::tests::cert;
    use crate::analyzer::app::Transport;
    use crate::analyzer::log::tests::OwnedValue;

    fn record(ct: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![ct, 3, 3];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    fn hs(msg_type: u8, body: &[u8]) -> Vec<u8> {
        let mut h = vec![msg_type];
        h.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        h.extend_from_slice(body);
        h
    }

    fn ext(t: u16, body: &[u8]) -> Vec<u8> {
        let mut e = t.to_be_bytes().to_vec();
        e.extend_from_slice(&(body.len() as u16).to_be_bytes());
        e.extend_from_slice(body);
        e
    }

    fn with_len16(b: &[u8]) -> Vec<u8> {
        let mut v = (b.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(b);
        v
    }

    fn client_hello(sid: &[u8], sni: &str) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&[7; 32]);
        b.push(sid.len() as u8);
        b.extend_from_slice(sid);
        b.extend_from_slice(&[0, 4, 0xc0, 0x2f, 0x13, 0x01]);
        b.extend_from_slice(&[1, 0]);
        let mut name = vec![0];
        name.extend(with_len16(sni.as_bytes()));
        let exts = ext(0, &with_len16(&name));
        b.extend(with_len16(&exts));
        hs(1, &b)
    }

    fn server_hello(version: u16, sid: &[u8], cipher: u16, exts: &[u8]) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend_from_slice(&[9; 32]);
        b.push(sid.len() as u8);
        b.extend_from_slice(sid);
        b.extend_from_slice(&cipher.to_be_bytes());
        b.push(0);
        b.extend(with_len16(exts));
        hs(2, &b)
    }

    fn certificate_msg(certs: &[Vec<u8>]) -> Vec<u8> {
        let mut list = Vec::new();
        for c in certs {
            list.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
            list.extend_from_slice(c);
        }
        let mut b = (list.len() as u32).to_be_bytes()[1..].to_vec();
        b.extend(list);
        hs(11, &b)
    }

    type Run = Driver<SslAnalyzer>;

    impl Run {
        fn new() -> Self {
            Driver::with(SslAnalyzer::new(), conn(Transport::Tcp, 443))
        }
    }

    fn s(v: &str) -> OwnedValue {
        OwnedValue::Str(v.into())
    }

    #[test]
    fn tls12_handshake_split_across_records_and_segments() {
        let mut r = Run::new();
        let ch = record(CT_HANDSHAKE, &client_hello(&[1, 2, 3], "www.example.com"));
        r.send(1.0, true, &ch[..7]);
        r.send(1.0, true, &ch[7..]);
        let c1 = cert("other.test", "*.example.com");
        let c2 = cert("CA", "ca.test");
        let mut flight = server_hello(0x0303, &[4, 5, 6], 0xc02f, &ext(16, &with_len16(b"\x02h2")));
        flight.extend(certificate_msg(&[c1.clone(), c2.clone()]));
        flight.extend(hs(12, &[3, 0, 23, 65]));
        flight.extend(hs(14, &[]));
        // The server flight is split over two records, mid-message.
        let mut bytes = record(CT_HANDSHAKE, &flight[..50]);
        bytes.extend(record(CT_HANDSHAKE, &flight[50..]));
        r.send(1.0, false, &bytes);
        let mut client = record(CT_HANDSHAKE, &hs(16, &[0; 10]));
        client.extend(record(CT_CCS, &[1]));
        client.extend(record(CT_HANDSHAKE, &[0xaa; 40]));
        r.send(1.0, true, &client);
        let mut server = record(CT_HANDSHAKE, &hs(4, &[0; 6]));
        server.extend(record(CT_CCS, &[1]));
        r.send(1.0, false, &server);
        r.send(1.0, false, &record(CT_ALERT, &[1, 0]));
        r.finish(2.0);
        let rows = r.sink.of("ssl");
        assert_eq!(rows.len(), 1);
        let row = rows[0];
        assert_eq!(row[6], s("TLSv12"));
        assert_eq!(row[7], s("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"));
        assert_eq!(row[8], s("secp256r1"));
        assert_eq!(row[9], s("www.example.com"));
        assert_eq!(row[10], OwnedValue::Bool(false));
        assert_eq!(row[11], OwnedValue::Unset);
        assert_eq!(row[12], s("h2"));
        assert_eq!(row[13], OwnedValue::Bool(true));
        assert_eq!(row[14], s("CsxknGIti"));
        let fp = |c: &[u8]| s(&crate::analyzer::app::x509::sha256_hex(c));
        assert_eq!(row[15], OwnedValue::Vector(vec![fp(&c1), fp(&c2)]));
        assert_eq!(row[16], OwnedValue::Vector(vec![]));
        assert_eq!(row[17], OwnedValue::Bool(true));
        assert_eq!(r.a.service(), Some("ssl"));
        // Each certificate is an x509.log line; the first is the host certificate.
        let certs = r.sink.of("x509");
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0][1], fp(&c1));
        assert_eq!(certs[0][20], OwnedValue::Bool(true));
        assert_eq!(certs[1][20], OwnedValue::Bool(false));
        assert_eq!(certs[1][21], OwnedValue::Bool(false));
    }

    #[test]
    fn tls13_uses_supported_versions_key_share_and_app_data() {
        let mut r = Run::new();
        r.send(
            1.0,
            true,
            &record(CT_HANDSHAKE, &client_hello(&[8; 32], "a.test")),
        );
        let mut exts = ext(43, &[3, 4]);
        exts.extend(ext(51, &[0, 29, 0, 2, 1, 2]));
        let mut server = record(CT_HANDSHAKE, &server_hello(0x0303, &[8; 32], 0x1301, &exts));
        server.extend(record(CT_CCS, &[1]));
        server.extend(record(CT_APPDATA, &[0; 30]));
        r.send(1.0, false, &server);
        r.send(1.0, true, &record(CT_CCS, &[1]));
        r.send(1.0, true, &record(CT_APPDATA, &[0; 30]));
        r.send(1.0, false, &record(CT_APPDATA, &[0; 30]));
        assert_eq!(
            r.sink.rows.len(),
            0,
            "one server record after the client's is not enough"
        );
        r.send(1.0, false, &record(CT_APPDATA, &[0; 30]));
        let rows = r.sink.of("ssl");
        assert_eq!(rows.len(), 1);
        let row = rows[0];
        assert_eq!(row[6], s("TLSv13"));
        assert_eq!(row[7], s("TLS_AES_128_GCM_SHA256"));
        assert_eq!(row[8], s("x25519"));
        // The echoed session id of TLS 1.3 compatibility mode is not a resumption.
        assert_eq!(row[10], OwnedValue::Bool(false));
        assert_eq!(row[13], OwnedValue::Bool(true));
        assert_eq!(row[14], s("CsiI"));
        assert_eq!(row[17], OwnedValue::Unset);
    }

    #[test]
    fn resumption_alert_and_unestablished_logged_at_finish() {
        let mut r = Run::new();
        r.send(
            1.0,
            true,
            &record(CT_HANDSHAKE, &client_hello(&[5; 16], "x.test")),
        );
        r.send(
            1.0,
            false,
            &record(CT_HANDSHAKE, &server_hello(0x0301, &[5; 16], 0x0005, &[])),
        );
        r.send(1.0, true, &record(CT_ALERT, &[2, 40]));
        r.finish(2.0);
        let row = r.sink.of("ssl")[0].clone();
        assert_eq!(row[6], s("TLSv10"));
        assert_eq!(row[7], s("TLS_RSA_WITH_RC4_128_SHA"));
        assert_eq!(row[10], OwnedValue::Bool(true));
        assert_eq!(row[11], s("handshake_failure"));
        assert_eq!(row[13], OwnedValue::Bool(false));
        assert_eq!(row[14], s("CsL"));
    }

    #[test]
    fn session_ticket_resumption_and_hello_retry() {
        // Client offers a ticket with no session id and skips the key exchange.
        let mut b = vec![3, 3];
        b.extend_from_slice(&[7; 32]);
        b.push(0);
        b.extend_from_slice(&[0, 2, 0xc0, 0x2f, 1, 0]);
        b.extend(with_len16(&ext(35, &[1, 2, 3])));
        let mut r = Run::new();
        r.send(1.0, true, &record(CT_HANDSHAKE, &hs(1, &b)));
        r.send(
            1.0,
            false,
            &record(CT_HANDSHAKE, &server_hello(0x0303, &[1; 32], 0xc02f, &[])),
        );
        r.send(1.0, false, &record(CT_CCS, &[1]));
        r.send(1.0, true, &record(CT_CCS, &[1]));
        r.send(1.0, true, &record(CT_HANDSHAKE, &[0x55; 40]));
        let row = r.sink.of("ssl")[0].clone();
        assert_eq!(row[10], OwnedValue::Bool(true));
        assert_eq!(row[13], OwnedValue::Bool(true));
        assert_eq!(row[14], s("CsiI"));

        let mut hrr = server_hello(0x0303, &[], 0x1301, &ext(43, &[3, 4]));
        // Replace the random with the HelloRetryRequest magic value.
        hrr[6..38].copy_from_slice(&[
            0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65,
            0xb8, 0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2,
            0xc8, 0xa8, 0x33, 0x9c,
        ]);
        let mut r = Run::new();
        r.send(
            1.0,
            true,
            &record(CT_HANDSHAKE, &client_hello(&[], "h.test")),
        );
        r.send(1.0, false, &record(CT_HANDSHAKE, &hrr));
        r.send(
            1.0,
            true,
            &record(CT_HANDSHAKE, &client_hello(&[], "h.test")),
        );
        r.send(
            1.0,
            false,
            &record(
                CT_HANDSHAKE,
                &server_hello(0x0303, &[], 0x1302, &ext(43, &[3, 4])),
            ),
        );
        r.finish(2.0);
        let row = r.sink.of("ssl")[0].clone();
        assert_eq!(row[14], s("CjCs"));
        assert_eq!(row[7], s("TLS_AES_256_GCM_SHA384"));
    }

    #[test]
    fn sslv2_client_hello_and_garbage() {
        assert!(looks_like_tls(
            b"\x80\x2e\x01\x03\x01\x00\x15\x00\x00\x00\x10"
        ));
        assert!(looks_like_tls(&record(
            CT_HANDSHAKE,
            &client_hello(&[], "a")
        )));
        assert!(!looks_like_tls(b"GET / HTTP/1.1\r\n"));
        let mut r = Run::new();
        r.send(
            1.0,
            true,
            b"\x80\x0b\x01\x03\x01\x00\x00\x00\x00\x00\x00\x00\x00",
        );
        r.send(
            1.0,
            false,
            &record(CT_HANDSHAKE, &server_hello(0x0301, &[], 0x002f, &[])),
        );
        r.send(1.0, false, b"\x99\x99\x99\x99\x99\x99");
        r.finish(2.0);
        let row = r.sink.of("ssl")[0].clone();
        assert_eq!(row[14], s("Cs"));
        assert_eq!(row[7], s("TLS_RSA_WITH_AES_128_CBC_SHA"));
        assert!(r.a.sides[1].lost);
        // Truncations of a valid flight never panic and never log twice.
        let flight = record(CT_HANDSHAKE, &client_hello(&[1], "z"));
        for n in 0..flight.len() {
            let mut r = Run::new();
            r.send(1.0, true, &flight[..n]);
            r.finish(2.0);
            assert!(r.sink.rows.len() <= 1);
        }
    }

    #[test]
    fn unanswered_client_hello_logged_only_on_tls_ports() {
        let hello = record(CT_HANDSHAKE, &client_hello(&[], "a.test"));
        let mut r = Run::new();
        r.send(1.0, true, &hello);
        assert_eq!(r.a.service(), None);
        r.finish(2.0);
        assert_eq!(r.sink.of("ssl").len(), 1);
        assert_eq!(r.sink.of("ssl")[0][14], s("C"));

        let mut r = Run::new();
        r.c = conn(Transport::Tcp, 80);
        r.send(1.0, true, &hello);
        r.finish(2.0);
        assert!(r.sink.rows.is_empty());
    }

    #[test]
    fn dtls_handshake_in_datagrams() {
        fn dtls_record(ct: u8, epoch: u16, body: &[u8]) -> Vec<u8> {
            let mut r = vec![ct, 0xfe, 0xfd];
            r.extend_from_slice(&epoch.to_be_bytes());
            r.extend_from_slice(&[0; 6]);
            r.extend_from_slice(&(body.len() as u16).to_be_bytes());
            r.extend_from_slice(body);
            r
        }
        fn dtls_hs(msg_type: u8, body: &[u8]) -> Vec<u8> {
            let len = &(body.len() as u32).to_be_bytes()[1..];
            let mut h = vec![msg_type];
            h.extend_from_slice(len);
            h.extend_from_slice(&[0, 0, 0, 0, 0]);
            h.extend_from_slice(len);
            h.extend_from_slice(body);
            h
        }
        let mut ch = vec![0xfe, 0xfd];
        ch.extend_from_slice(&[7; 32]);
        ch.extend_from_slice(&[0, 2, 0xaa, 0xbb, 0, 2, 0xc0, 0x2b, 1, 0]);
        let mut sni = vec![0];
        sni.extend(with_len16(b"d.test"));
        ch.extend(with_len16(&ext(0, &with_len16(&sni))));
        let mut sh = vec![0xfe, 0xfd];
        sh.extend_from_slice(&[9; 32]);
        sh.extend_from_slice(&[0, 0xc0, 0x2b, 0]);
        sh.extend(with_len16(&[]));
        let hello = dtls_record(CT_HANDSHAKE, 0, &dtls_hs(1, &ch));
        assert!(looks_like_dtls(&hello));
        let mut r = Run::new();
        r.c = conn(Transport::Udp, 4433);
        r.a = SslAnalyzer::new_dtls();
        r.send(1.0, true, &hello);
        r.send(1.0, false, &dtls_record(CT_HANDSHAKE, 0, &dtls_hs(2, &sh)));
        r.send(1.0, false, &dtls_record(CT_CCS, 0, &[1]));
        r.send(1.0, true, &dtls_record(CT_CCS, 0, &[1]));
        r.send(1.0, true, &dtls_record(CT_HANDSHAKE, 1, &[0x42; 48]));
        let row = r.sink.of("ssl")[0].clone();
        assert_eq!(row[6], s("DTLSv12"));
        assert_eq!(row[7], s("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"));
        assert_eq!(row[9], s("d.test"));
        assert_eq!(row[13], OwnedValue::Bool(true));
        assert_eq!(row[14], s("CsiI"));
    }
}
