//! TLS/SSL: the record layer of both directions, handshake messages reassembled across
//! records, and the summary Zeek writes to `ssl.log` (version, cipher, curve, SNI, ALPN,
//! resumption, alerts, establishment, `ssl_history`, certificate fingerprints).
//!
//! As in Zeek, the line is written once the handshake is established (both sides sent
//! ChangeCipherSpec, or for TLS 1.3 both sent application data) and the analyzer then stops
//! looking at the connection; otherwise it is written when the connection ends. Records and
//! handshake messages are buffered per side up to [`MAX_BUFFER`]; beyond that the side is
//! given up with a weird.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use super::{escape_bytes, AppAnalyzer, AppOutput, ConnInfo};
use crate::analyzer::log::{log_row, ConnId, Time, Vector};

log_row! {
    /// One ssl.log line (Zeek's `SSL::Info`, `base/protocols/ssl/main.zeek`, with the
    /// certificate columns a default Zeek run adds).
    pub struct SslRow<'a> => SSL_SCHEMA("ssl") {
        ts: Time,
        id: ConnId<'a>,
        version: Option<&'a str>,
        cipher: Option<&'a str>,
        curve: Option<&'a str>,
        server_name: Option<&'a str>,
        resumed: bool,
        last_alert: Option<&'a str>,
        next_protocol: Option<&'a str>,
        established: bool,
        ssl_history: &'a str,
        cert_chain_fps: Vector<'a, String>,
        client_cert_chain_fps: Vector<'a, String>,
        sni_matches_cert: Option<bool>,
    }
}

/// Most bytes buffered per side for an incomplete record or handshake message.
const MAX_BUFFER: usize = 256 * 1024;

const CT_CCS: u8 = 20;
const CT_ALERT: u8 = 21;
const CT_HANDSHAKE: u8 = 22;
const CT_APPDATA: u8 = 23;
const CT_HEARTBEAT: u8 = 24;

/// True if `data` starts a TLS handshake record holding a ClientHello or ServerHello, or an
/// SSLv2-format ClientHello.
pub(crate) fn looks_like_tls(data: &[u8]) -> bool {
    if data.len() >= 6
        && data[0] == CT_HANDSHAKE
        && data[1] == 3
        && data[2] <= 4
        && matches!(data[5], 1 | 2)
    {
        let len = u16::from_be_bytes([data[3], data[4]]);
        return (4..=18432).contains(&len);
    }
    sslv2_client_hello(data).is_some()
}

/// Zeek's `SSL::ssl_ports` (TCP) and `dtls_ports` (UDP 443): where it analyzes TLS
/// without waiting for a server hello.
fn tls_port(conn: &ConnInfo) -> bool {
    const PORTS: [u16; 11] = [443, 563, 585, 614, 636, 989, 990, 992, 993, 995, 5223];
    match conn.transport {
        super::Transport::Tcp => PORTS.contains(&conn.resp_p),
        super::Transport::Udp => conn.resp_p == 443,
    }
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

/// An SSLv2-format ClientHello: returns the version it offers.
fn sslv2_client_hello(data: &[u8]) -> Option<u16> {
    if data.len() < 11 || data[0] & 0x80 == 0 || data[2] != 1 {
        return None;
    }
    let version = u16::from_be_bytes([data[3], data[4]]);
    matches!(version, 0x0002 | 0x0300..=0x0304).then_some(version)
}

/// Zeek's `SSL::version_strings`.
fn version_name(v: u16) -> Cow<'static, str> {
    Cow::Borrowed(match v {
        0x0002 => "SSLv2",
        0x0300 => "SSLv3",
        0x0301 => "TLSv10",
        0x0302 => "TLSv11",
        0x0303 => "TLSv12",
        0x0304 => "TLSv13",
        0xfeff => "DTLSv10",
        0xfefd => "DTLSv12",
        0xfefc => "DTLSv13",
        0x7f00..=0x7fff => return Cow::Owned(format!("TLSv13-draft{}", v & 0xff)),
        other => return Cow::Owned(format!("unknown-{other}")),
    })
}

/// IANA cipher suite names as Zeek prints them (`SSL::cipher_desc`), for suites seen in
/// practice.
fn cipher_name(c: u16) -> Cow<'static, str> {
    let name = match c {
        0x0000 => "TLS_NULL_WITH_NULL_NULL",
        0x0001 => "TLS_RSA_WITH_NULL_MD5",
        0x0002 => "TLS_RSA_WITH_NULL_SHA",
        0x0004 => "TLS_RSA_WITH_RC4_128_MD5",
        0x0005 => "TLS_RSA_WITH_RC4_128_SHA",
        0x000a => "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        0x0016 => "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA",
        0x002f => "TLS_RSA_WITH_AES_128_CBC_SHA",
        0x0032 => "TLS_DHE_DSS_WITH_AES_128_CBC_SHA",
        0x0033 => "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
        0x0035 => "TLS_RSA_WITH_AES_256_CBC_SHA",
        0x0038 => "TLS_DHE_DSS_WITH_AES_256_CBC_SHA",
        0x0039 => "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
        0x003c => "TLS_RSA_WITH_AES_128_CBC_SHA256",
        0x003d => "TLS_RSA_WITH_AES_256_CBC_SHA256",
        0x0041 => "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA",
        0x0045 => "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA",
        0x0067 => "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
        0x006b => "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
        0x0084 => "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA",
        0x0088 => "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA",
        0x009c => "TLS_RSA_WITH_AES_128_GCM_SHA256",
        0x009d => "TLS_RSA_WITH_AES_256_GCM_SHA384",
        0x009e => "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        0x009f => "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        0x00ff => "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
        0x1301 => "TLS_AES_128_GCM_SHA256",
        0x1302 => "TLS_AES_256_GCM_SHA384",
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
        0x1304 => "TLS_AES_128_CCM_SHA256",
        0x1305 => "TLS_AES_128_CCM_8_SHA256",
        0x5600 => "TLS_FALLBACK_SCSV",
        0xc002 => "TLS_ECDH_ECDSA_WITH_RC4_128_SHA",
        0xc004 => "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA",
        0xc005 => "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA",
        0xc007 => "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
        0xc008 => "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA",
        0xc009 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        0xc00a => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        0xc00c => "TLS_ECDH_RSA_WITH_RC4_128_SHA",
        0xc00e => "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA",
        0xc00f => "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA",
        0xc011 => "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
        0xc012 => "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        0xc013 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        0xc014 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        0xc023 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        0xc024 => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        0xc027 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        0xc028 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        0xc02b => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        0xc02c => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        0xc02f => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        0xc030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        0xc09c => "TLS_RSA_WITH_AES_128_CCM",
        0xc09d => "TLS_RSA_WITH_AES_256_CCM",
        0xc0ac => "TLS_ECDHE_ECDSA_WITH_AES_128_CCM",
        0xc0ad => "TLS_ECDHE_ECDSA_WITH_AES_256_CCM",
        0xcca8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xcca9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        0xccaa => "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xcc13 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256_OLD",
        0xcc14 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256_OLD",
        0xcc15 => "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256_OLD",
        other => return Cow::Owned(format!("unknown-{other}")),
    };
    Cow::Borrowed(name)
}

/// Named groups (`SSL::ec_curves`).
fn curve_name(g: u16) -> Cow<'static, str> {
    let name = match g {
        1..=22 => {
            const OLD: [&str; 22] = [
                "sect163k1",
                "sect163r1",
                "sect163r2",
                "sect193r1",
                "sect193r2",
                "sect233k1",
                "sect233r1",
                "sect239k1",
                "sect283k1",
                "sect283r1",
                "sect409k1",
                "sect409r1",
                "sect571k1",
                "sect571r1",
                "secp160k1",
                "secp160r1",
                "secp160r2",
                "secp192k1",
                "secp192r1",
                "secp224k1",
                "secp224r1",
                "secp256k1",
            ];
            OLD[usize::from(g - 1)]
        }
        23 => "secp256r1",
        24 => "secp384r1",
        25 => "secp521r1",
        26 => "brainpoolP256r1",
        27 => "brainpoolP384r1",
        28 => "brainpoolP512r1",
        29 => "x25519",
        30 => "x448",
        256 => "ffdhe2048",
        257 => "ffdhe3072",
        258 => "ffdhe4096",
        259 => "ffdhe6144",
        260 => "ffdhe8192",
        0x11ec => "X25519MLKEM768",
        0x6399 => "X25519Kyber768Draft00",
        0xff01 => "arbitrary_explicit_prime_curves",
        0xff02 => "arbitrary_explicit_char2_curves",
        other => return Cow::Owned(format!("unknown-{other}")),
    };
    Cow::Borrowed(name)
}

/// TLS alert descriptions (`SSL::alert_descriptions`).
fn alert_name(d: u8) -> Cow<'static, str> {
    let name = match d {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        other => return Cow::Owned(format!("unknown-{other}")),
    };
    Cow::Borrowed(name)
}

/// Zeek's `ssl_history` letter of a handshake message type (client letters are upper case).
fn handshake_letter(msg_type: u8) -> char {
    match msg_type {
        0 => 'h',
        1 => 'c',
        2 => 's',
        3 => 'v',
        4 => 't',
        5 => 'e',
        8 => 'o',
        11 => 'x',
        12 => 'k',
        13 => 'r',
        14 => 'n',
        15 => 'y',
        16 => 'g',
        20 => 'f',
        21 => 'w',
        22 => 'u',
        23 => 'a',
        24 => 'p',
        254 => 'm',
        _ => 'z',
    }
}

/// A bounds-checked big-endian reader.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let b = self.data.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(b)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.bytes(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<usize> {
        let b = self.bytes(3)?;
        Some(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.bytes(n.into())
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.bytes(n.into())
    }
    fn rest(&mut self) -> &'a [u8] {
        let r = self.data.get(self.pos..).unwrap_or_default();
        self.pos = self.data.len();
        r
    }
}

/// Iterates `(type, body)` over an extensions block.
fn extensions(block: &[u8]) -> Vec<(u16, &[u8])> {
    let mut r = Reader::new(block);
    let mut out = Vec::new();
    while let (Some(t), Some(body)) = (r.u16(), r.vec16()) {
        out.push((t, body));
    }
    out
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
    cert_fps: Vec<String>,
    client_cert_fps: Vec<String>,
    /// DER of the server's first certificate, for `sni_matches_cert`.
    server_cert: Option<Vec<u8>>,
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
        while data.len() >= 13 && !self.logged {
            let content_type = data[0];
            if !(20..=24).contains(&content_type) || data[1] != 0xfe {
                return;
            }
            let len = usize::from(u16::from_be_bytes([data[11], data[12]]));
            let Some(fragment) = data.get(13..13 + len) else {
                return;
            };
            data = &data[13 + len..];
            if content_type != CT_HANDSHAKE || self.sides[side].encrypted {
                self.record(conn, ts, side, content_type, fragment, out);
                continue;
            }
            self.ts.get_or_insert(ts);
            let mut rest = fragment;
            while rest.len() >= 12 {
                let msg_len =
                    usize::from(rest[1]) << 16 | usize::from(rest[2]) << 8 | usize::from(rest[3]);
                let frag_off =
                    usize::from(rest[6]) << 16 | usize::from(rest[7]) << 8 | usize::from(rest[8]);
                let frag_len =
                    usize::from(rest[9]) << 16 | usize::from(rest[10]) << 8 | usize::from(rest[11]);
                let Some(body) = rest.get(12..12 + frag_len) else {
                    break;
                };
                if frag_off == 0 && frag_len == msg_len {
                    self.handshake(side == 0, rest[0], body);
                }
                rest = &rest[12 + frag_len..];
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
                    let len = usize::from(u16::from_be_bytes([rest[0] & 0x7f, rest[1]]));
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
            if rest.len() < 5 {
                break;
            }
            let content_type = rest[0];
            let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
            if !(20..=24).contains(&content_type) || rest[1] != 3 && rest[1] != 0xfe {
                // Zeek reports this as an analyzer violation (analyzer.log), not a weird.
                self.sides[side].lost = true;
                buf.clear();
                pos = 0;
                break;
            }
            let Some(fragment) = rest.get(5..5 + len) else {
                break;
            };
            let fragment = fragment.to_vec();
            pos += 5 + len;
            self.sides[side].first_record_seen = true;
            self.record(conn, ts, side, content_type, &fragment, out);
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
                while let Some(header) = hs.get(pos..pos + 4) {
                    let msg_type = header[0];
                    let len = usize::from(header[1]) << 16
                        | usize::from(header[2]) << 8
                        | usize::from(header[3]);
                    let Some(body) = hs.get(pos + 4..pos + 4 + len) else {
                        break;
                    };
                    let body = body.to_vec();
                    pos += 4 + len;
                    self.handshake(is_orig, msg_type, &body);
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

    fn handshake(&mut self, is_orig: bool, msg_type: u8, body: &[u8]) {
        let mut r = Reader::new(body);
        if msg_type == 2 {
            // Like Zeek, the protocol counts as confirmed once the server answers.
            self.confirmed = true;
            let retry = self.server_hello(&mut r).unwrap_or(false);
            self.note(is_orig, if retry { 'j' } else { 's' });
            return;
        }
        self.note(is_orig, handshake_letter(msg_type));
        match msg_type {
            1 => {
                let _ = self.client_hello(&mut r);
            }
            16 if is_orig => self.client_key_exchange_seen = true,
            11 => {
                let fps = self.certificates(&mut r, !is_orig);
                if is_orig {
                    self.client_cert_fps = fps;
                } else {
                    self.cert_fps = fps;
                }
            }
            // ECDHE parameters: curve_type 3 (named_curve) and the group.
            12 if r.u8() == Some(3) => {
                if let Some(g) = r.u16() {
                    self.curve = Some(g);
                }
            }
            _ => {}
        }
    }

    fn client_hello(&mut self, r: &mut Reader<'_>) -> Option<()> {
        let _version = r.u16()?;
        r.bytes(32)?;
        let sid = r.vec8()?;
        if self.dtls {
            // The DTLS cookie.
            r.vec8()?;
        }
        r.vec16()?;
        r.vec8()?;
        let exts = r.vec16().unwrap_or_default();
        for (t, body) in extensions(exts) {
            if t == 35 && !body.is_empty() {
                self.client_ticket_without_session_id = true;
            }
            if t == 41 {
                self.client_offered_psk = true;
            }
            if t == 0 {
                let mut e = Reader::new(body);
                let mut list = Reader::new(e.vec16()?);
                while let (Some(kind), Some(name)) = (list.u8(), list.vec16()) {
                    if kind == 0 {
                        self.server_name = Some(escape_bytes(name));
                        break;
                    }
                }
            }
        }
        // An all-zero 32-byte id is no session id (Zeek).
        if !sid.is_empty() && sid.iter().any(|&b| b != 0) {
            self.client_session_id = Some(sid.to_vec());
            self.client_ticket_without_session_id = false;
        }
        Some(())
    }

    /// Parses a ServerHello; returns whether it is a TLS 1.3 HelloRetryRequest.
    fn server_hello(&mut self, r: &mut Reader<'_>) -> Option<bool> {
        const RETRY_RANDOM: [u8; 32] = [
            0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65,
            0xb8, 0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2,
            0xc8, 0xa8, 0x33, 0x9c,
        ];
        let version = r.u16()?;
        self.version = Some(version);
        let retry = r.bytes(32)? == RETRY_RANDOM;
        let sid = r.vec8()?;
        let cipher = r.u16()?;
        self.cipher = Some(cipher);
        r.u8()?;
        let exts = r.vec16().unwrap_or_default();
        for (t, body) in extensions(exts) {
            let mut e = Reader::new(body);
            match t {
                43 => {
                    if let Some(v) = e.u16() {
                        self.version = Some(v);
                    }
                }
                16 => {
                    if let Some(list) = e.vec16() {
                        if let Some(p) = Reader::new(list).vec8() {
                            self.next_protocol = Some(escape_bytes(p));
                        }
                    }
                }
                51 => {
                    if let Some(g) = e.u16() {
                        self.curve = Some(g);
                    }
                }
                41 if self.client_offered_psk => self.resumed = true,
                _ => {}
            }
        }
        if !self.is_tls13() && self.client_session_id.as_deref() == Some(sid) {
            self.resumed = true;
        }
        Some(retry)
    }

    /// SHA-256 fingerprints of a Certificate message's chain (TLS ≤ 1.2 layout).
    fn certificates(&mut self, r: &mut Reader<'_>, from_server: bool) -> Vec<String> {
        let mut fps = Vec::new();
        let Some(list_len) = r.u24() else {
            return fps;
        };
        let Some(list) = r.bytes(list_len) else {
            return fps;
        };
        let mut l = Reader::new(list);
        while let Some(n) = l.u24() {
            let Some(der) = l.bytes(n) else { break };
            if from_server && self.server_cert.is_none() {
                self.server_cert = Some(der.to_vec());
            }
            fps.push(
                Sha256::digest(der)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
            );
        }
        let _ = r.rest();
        fps
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
            (Some(name), Some(der)) => Some(cert_matches_host(der, name)),
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
            cert_chain_fps: Vector(&self.cert_fps),
            client_cert_chain_fps: Vector(&self.client_cert_fps),
            sni_matches_cert,
        });
    }
}

impl AppAnalyzer for SslAnalyzer {
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

/// Minimal DER walking: `(tag, content, rest)` of the element at the start of `data`.
fn der(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *data.first()?;
    let first = *data.get(1)?;
    let (len, hdr) = if first & 0x80 == 0 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = data.get(2..2 + n)?;
        (
            bytes.iter().fold(0usize, |a, &b| a << 8 | usize::from(b)),
            2 + n,
        )
    };
    let content = data.get(hdr..hdr.checked_add(len)?)?;
    Some((tag, content, &data[hdr + len..]))
}

fn der_children(mut data: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while let Some((tag, content, rest)) = der(data) {
        out.push((tag, content));
        data = rest;
    }
    out
}

const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];

/// DNS names a certificate is valid for: its subjectAltName dNSNames, or its subject
/// common names when it has no SAN.
fn cert_host_names(cert: &[u8]) -> Vec<String> {
    let Some((_, cert_body, _)) = der(cert) else {
        return Vec::new();
    };
    let Some((_, tbs, _)) = der(cert_body) else {
        return Vec::new();
    };
    let fields = der_children(tbs);
    // Skip the optional [0] version; then serial, signature, issuer, validity, subject.
    let offset = usize::from(fields.first().is_some_and(|f| f.0 == 0xa0));
    let subject = fields.get(offset + 4).map(|f| f.1);
    let mut sans = Vec::new();
    if let Some((_, ext_wrapper)) = fields.iter().find(|f| f.0 == 0xa3) {
        if let Some((_, exts, _)) = der(ext_wrapper) {
            for (_, ext) in der_children(exts) {
                let parts = der_children(ext);
                if parts.first().map(|p| p.1) != Some(OID_SAN) {
                    continue;
                }
                let Some((_, value)) = parts.last() else {
                    continue;
                };
                if let Some((_, names, _)) = der(value) {
                    for (tag, name) in der_children(names) {
                        if tag == 0x82 {
                            sans.push(String::from_utf8_lossy(name).to_ascii_lowercase());
                        }
                    }
                }
            }
        }
    }
    if !sans.is_empty() {
        return sans;
    }
    let mut cns = Vec::new();
    for (_, rdn) in subject.map(der_children).unwrap_or_default() {
        for (_, atv) in der_children(rdn) {
            let parts = der_children(atv);
            if parts.first().map(|p| p.1) == Some(OID_CN) {
                if let Some((_, v)) = parts.get(1) {
                    cns.push(String::from_utf8_lossy(v).to_ascii_lowercase());
                }
            }
        }
    }
    cns
}

/// Hostname check with a single leftmost wildcard label, as Zeek's
/// `x509_check_cert_hostname` does.
fn cert_matches_host(cert: &[u8], host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    cert_host_names(cert).iter().any(|pattern| {
        if let Some(suffix) = pattern.strip_prefix("*.") {
            host.split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix)
        } else {
            *pattern == host
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::app::tests::{conn, Driver};
    use crate::analyzer::app::Transport;
    use crate::analyzer::log::tests::{assert_fully_set_row_matches_schema, OwnedValue};

    #[test]
    fn ssl_row_matches_its_schema() {
        let c = conn(Transport::Tcp, 443);
        let fps = ["ab".to_string()];
        assert_fully_set_row_matches_schema(&SslRow {
            ts: Time(1.0),
            id: c.id(),
            version: Some("TLSv12"),
            cipher: Some("TLS_AES_128_GCM_SHA256"),
            curve: Some("x25519"),
            server_name: Some("a.test"),
            resumed: false,
            last_alert: Some("close_notify"),
            next_protocol: Some("h2"),
            established: true,
            ssl_history: "CsiI",
            cert_chain_fps: Vector(&fps),
            client_cert_chain_fps: Vector(&fps),
            sni_matches_cert: Some(true),
        });
    }

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

    /// A DER certificate skeleton: tbs with version, serial, sig alg, issuer, validity,
    /// subject (CN) and a SAN extension.
    fn cert(cn: &str, san: &str) -> Vec<u8> {
        fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
            assert!(content.len() < 128);
            let mut v = vec![tag, content.len() as u8];
            v.extend_from_slice(content);
            v
        }
        let mut atv = tlv(0x06, OID_CN);
        atv.extend(tlv(0x0c, cn.as_bytes()));
        let subject = tlv(0x30, &tlv(0x31, &tlv(0x30, &atv)));
        let names = tlv(0x30, &tlv(0x82, san.as_bytes()));
        let mut e = tlv(0x06, OID_SAN);
        e.extend(tlv(0x04, &names));
        let exts = tlv(0xa3, &tlv(0x30, &tlv(0x30, &e)));
        let mut tbs = tlv(0xa0, &tlv(0x02, &[2]));
        tbs.extend(tlv(0x02, &[1]));
        tbs.extend(tlv(0x30, &[]));
        tbs.extend(tlv(0x30, &[]));
        tbs.extend(tlv(0x30, &[]));
        tbs.extend(subject);
        tbs.extend(exts);
        let mut body = tlv(0x30, &tbs);
        body.extend(tlv(0x30, &[]));
        tlv(0x30, &body)
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
        let fp = |c: &[u8]| -> String {
            Sha256::digest(c)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        assert_eq!(row[15], OwnedValue::Vector(vec![s(&fp(&c1)), s(&fp(&c2))]));
        assert_eq!(row[16], OwnedValue::Vector(vec![]));
        assert_eq!(row[17], OwnedValue::Bool(true));
        assert_eq!(r.a.service(), Some("ssl"));
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

    #[test]
    fn wildcard_matching() {
        let c = cert("cn.test", "*.example.com");
        assert!(cert_matches_host(&c, "WWW.example.com"));
        assert!(!cert_matches_host(&c, "example.com"));
        assert!(!cert_matches_host(&c, "a.b.example.com"));
    }
}
