//! Application-layer analyzers (DNS, HTTP, TLS, SSH, FTP, SMTP, NTP, DHCP) that the flow table feeds.
//!
//! The flow table owns connections, reassembles TCP streams and calls one
//! [`AppAnalyzer`] per connection once [`detect`] has picked a protocol from the payload
//! (never from the port alone). Analyzers write their own logs (`dns.log`, `http.log`,
//! `ssl.log`, `ssh.log`, `ftp.log`, `smtp.log`, `files.log`, `ntp.log`, `dhcp.log`) through
//! [`AppOutput`] and report oddities as weirds; what spans connections (DHCP exchanges, the
//! certificates logged) lives in [`SharedState`], and an analyzer may announce a connection
//! it expects (FTP's data channels, [`ExpectedConn`]).
//!
//! Modules: `dhcp` (DHCP exchanges), `dns` (DNS over UDP/TCP), `http` (HTTP/1.x
//! transactions), `files` (the files of every protocol: decoding, MIME sniffing, MIME
//! messages, multipart, files.log), `ssl` (TLS handshakes), `ssh` (SSH version and key
//! exchange, authentication guessed from packet sizes), `ftp` (FTP commands and data
//! channels), `smtp` (mail transactions, STARTTLS, MIME entities as files), `ntp` (NTP
//! messages), `tunnel` (the protocol inside an HTTP CONNECT tunnel, detected afresh), `x509`
//! (certificates of TLS handshakes: x509.log, fingerprints, host-name check), `text`
//! (byte-string helpers of the text protocols). Each protocol directory keeps one layout:
//! `parser.rs` (wire format to typed messages), `mod.rs` (Zeek's semantics, the
//! [`AppAnalyzer`]), `consts.rs` (name tables of Zeek's scripts), `log.rs` (the log's row).

use std::net::IpAddr;

use super::bytes::be16;
use super::log::{ConnId, LogSink};
use super::uid::Uid;

pub mod dhcp;
pub mod dns;
pub mod files;
pub mod ftp;
pub mod http;
pub mod ntp;
pub mod smtp;
pub mod ssh;
pub mod ssl;
mod text;
mod tunnel;
pub mod x509;

pub use dhcp::{DhcpAnalyzer, DHCP_SCHEMA};
pub use dns::{DnsAnalyzer, DNS_SCHEMA};
pub use files::FILES_SCHEMA;
pub use ftp::{FtpAnalyzer, FTP_SCHEMA};
pub use http::{HttpAnalyzer, HTTP_SCHEMA};
pub use ntp::{NtpAnalyzer, NTP_SCHEMA};
pub use smtp::{SmtpAnalyzer, SMTP_SCHEMA};
pub use ssh::{SshAnalyzer, SSH_SCHEMA};
pub use ssl::{SslAnalyzer, SSL_SCHEMA};
pub use x509::X509_SCHEMA;

/// Transport protocol of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

/// What an analyzer knows of the connection it serves; `orig` is the originator as Zeek
/// decided it (after any direction flip).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    pub uid: Uid,
    pub orig_h: IpAddr,
    pub orig_p: u16,
    pub resp_h: IpAddr,
    pub resp_p: u16,
    pub transport: Transport,
}

impl ConnInfo {
    /// The `uid` and `id.*` columns of this connection's log lines.
    pub fn id(&self) -> ConnId<'_> {
        ConnId {
            uid: self.uid.as_str(),
            orig_h: self.orig_h,
            orig_p: self.orig_p,
            resp_h: self.resp_h,
            resp_p: self.resp_p,
        }
    }
}

/// The analyzer's view of the outside world during one call.
pub struct AppOutput<'a> {
    pub logs: &'a mut dyn LogSink,
    /// Weirds raised by the analyzer: `(name, addl)`; the flow table writes them to
    /// weird.log with the connection's uid and 5-tuple.
    pub weirds: &'a mut Vec<(&'static str, String)>,
    /// What outlives the call: DHCP exchanges, the certificates logged, and the
    /// connections the analyzer announces.
    pub shared: &'a mut SharedState,
}

/// What the analyzers keep across connections for one run: a DHCP exchange spans several
/// connections (broadcasts, then unicast), so its log line is built here; so does a file
/// fetched in pieces by HTTP range requests. The flow table
/// owns it, lets it expire with capture time and flushes it at the end.
#[derive(Debug, Default)]
pub struct SharedState {
    pub dhcp: dhcp::Transactions,
    /// Certificates x509.log has a line for already.
    pub certificates: x509::Logged,
    /// Connections an analyzer announced during the call (FTP's data channels); the flow
    /// table takes them after each call and attaches their analyzer when they start.
    pub expected: Vec<ExpectedConn>,
    /// Files fetched in pieces by HTTP range requests, which outlive their connections.
    pub range_files: files::RangeFiles,
}

impl SharedState {
    /// Writes what is over by capture time `now` (seconds); cheap when nothing is due.
    pub fn expire(&mut self, now: f64, logs: &mut dyn LogSink) {
        self.dhcp.expire(now, logs);
        self.range_files.expire(now, logs);
    }

    /// End of the capture: writes everything still open.
    pub fn finish(&mut self, logs: &mut dyn LogSink) {
        self.dhcp.flush(logs);
        self.range_files.finish(logs);
    }
}

/// A TCP connection an analyzer announces before it starts (Zeek's
/// `Analyzer::schedule_analyzer`): one from `orig_h` to `resp_h:resp_p` that starts within
/// the wait of its announcement gets the analyzer `start` makes from its first packet on,
/// whatever its content.
pub struct ExpectedConn {
    pub orig_h: IpAddr,
    pub resp_h: IpAddr,
    pub resp_p: u16,
    pub start: Box<dyn Fn() -> Box<dyn AppAnalyzer> + Send>,
}

impl std::fmt::Debug for ExpectedConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpectedConn")
            .field("orig_h", &self.orig_h)
            .field("resp_h", &self.resp_h)
            .field("resp_p", &self.resp_p)
            .finish_non_exhaustive()
    }
}

/// One application protocol on one connection.
pub trait AppAnalyzer: Send {
    /// Zeek service name once the protocol is confirmed (`"dns"`, `"http"`, `"ssl"`), for
    /// conn.log's `service`; `None` while unconfirmed.
    fn service(&self) -> Option<&'static str>;
    /// In-order payload: for TCP the reassembled stream of one side, for UDP one datagram.
    fn deliver(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        is_orig: bool,
        data: &[u8],
        out: &mut AppOutput<'_>,
    );
    /// `len` bytes of one side's TCP stream were never seen (a content gap).
    fn gap(
        &mut self,
        _conn: &ConnInfo,
        _ts: f64,
        _is_orig: bool,
        _len: u64,
        _out: &mut AppOutput<'_>,
    ) {
    }
    /// The connection ended (FIN/RST, inactivity timeout, or end of capture): flush
    /// pending transactions.
    fn finish(&mut self, conn: &ConnInfo, ts: f64, out: &mut AppOutput<'_>);
    /// True (once) if the last `deliver` showed the connection's roles are reversed: Zeek's
    /// DNS analyzer flips a connection whose first message is a response sent by the
    /// originator (unless the responder is a multicast address). The flow table then swaps
    /// originator and responder and passes the flipped [`ConnInfo`] (and `is_orig`) from the
    /// next call on; records pending in the analyzer are logged with that flipped view.
    fn take_role_flip(&mut self) -> bool {
        false
    }
    /// The logs (by `#path`) this analyzer writes besides weird.log.
    fn logs(&self) -> &'static [&'static str];
    /// Whether the analyzer gave up on a protocol violation (Zeek's DPD disables an analyzer
    /// whose protocol is violated early in the connection and takes it out of the service):
    /// conn.log's `service` is cleared; the analyzer still finishes at the connection's end.
    fn failed(&self) -> bool {
        false
    }
    /// Whether the connection's end must be seen when its timer fires rather than at the
    /// flow table's next periodic sweep: an FTP data connection's files end when Zeek
    /// removes the connection, and what they are (their MIME type) goes into the control
    /// connection's next ftp.log row, so the moment matters. Such connections are few.
    fn ends_promptly(&self) -> bool {
        false
    }
    /// weird.log's `source` for a weird this analyzer raised, when it is not the
    /// connection's service in upper case (Zeek names the analyzer that raised it: a
    /// sub-analyzer such as SMTP's `SMTP_BDAT`, or the TLS analyzer after STARTTLS).
    fn weird_source(&self, _name: &'static str) -> Option<&'static str> {
        None
    }
    /// Whether nothing the analyzer will still see can change what conn.log says of the
    /// connection (its `service`, its roles). Once this holds and none of [`logs`] nor
    /// weird.log is kept, the flow table stops feeding the analyzer (`--logs conn`).
    ///
    /// [`logs`]: AppAnalyzer::logs
    fn conn_settled(&self) -> bool {
        self.service().is_some()
    }
}

/// Picks an analyzer for a connection from its first payload bytes (`is_orig` says which side
/// sent them) and ports as a hint. Returns `None` when no protocol matches; the flow table
/// may call again with later payload until it gives up.
///
/// Detection looks at content: a TLS handshake record carrying a ClientHello/ServerHello
/// (or an SSLv2-compatible ClientHello; over UDP a DTLS handshake), an HTTP request line (or, from the responder, a
/// status line), an SSH version line (see [`ssh::looks_like_ssh`]), an FTP server greeting
/// and login reply (see [`ftp::looks_like_ftp`]), an SMTP `HELO`/`EHLO` (see
/// [`smtp::looks_like_smtp`]), a DNS header with a decodable question (over TCP behind its
/// 2-byte length), an NTP message on port 123 (Zeek registers NTP by port only), a DHCP
/// message (the magic cookie at offset 236, Zeek's `dhcp_cookie` signature).
/// Well-known DNS ports only admit DNS messages that carry no question. The flow table is
/// expected to deliver `data` again through [`AppAnalyzer::deliver`]: detection consumes
/// nothing.
pub fn detect(conn: &ConnInfo, is_orig: bool, data: &[u8]) -> Option<Box<dyn AppAnalyzer>> {
    let dns_port = dns::dns_port(conn);
    match conn.transport {
        Transport::Udp => {
            if ssl::looks_like_dtls(data) {
                return Some(Box::new(SslAnalyzer::new_dtls()));
            }
            if ntp::looks_like_ntp(conn, data) {
                return Some(Box::new(NtpAnalyzer::new()));
            }
            if dhcp::has_cookie(data) {
                return Some(Box::new(DhcpAnalyzer::new()));
            }
            dns::looks_like_dns(data, dns_port)
                .then(|| Box::new(DnsAnalyzer::new()) as Box<dyn AppAnalyzer>)
        }
        Transport::Tcp => {
            if ssl::looks_like_tls(data) {
                return Some(Box::new(SslAnalyzer::new()));
            }
            if ssh::looks_like_ssh(conn, is_orig, data) {
                return Some(Box::new(SshAnalyzer::new()));
            }
            if http::looks_like_http(is_orig, data) {
                return Some(Box::new(HttpAnalyzer::new()));
            }
            if ftp::looks_like_ftp(conn, is_orig, data) {
                return Some(Box::new(FtpAnalyzer::new()));
            }
            if smtp::looks_like_smtp(conn, is_orig, data) {
                return Some(Box::new(SmtpAnalyzer::new()));
            }
            let framed = be16(data, 0).and_then(|len| {
                let len = usize::from(len);
                data.get(2..(2 + len).min(data.len()))
                    .filter(|m| len >= 12 && m.len() >= 12)
            });
            match framed {
                Some(m) if dns::looks_like_dns(m, dns_port) => Some(Box::new(DnsAnalyzer::new())),
                _ => None,
            }
        }
    }
}

/// Renders raw protocol bytes the way Zeek's log writers show them: printable ASCII as is,
/// every other byte as `\xNN`.
pub(crate) fn escape_bytes(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..0x7f).contains(&b) {
            s.push(char::from(b));
        } else {
            s.push_str("\\x");
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    s
}

/// [`escape_bytes`] of a buffer the caller gives up: a name that needs no escape (nearly
/// every one) becomes the string without a copy.
pub(crate) fn escape_owned(bytes: Vec<u8>) -> String {
    if bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        String::from_utf8(bytes).unwrap_or_else(|e| escape_bytes(e.as_bytes()))
    } else {
        escape_bytes(&bytes)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::analyzer::log::tests::{checked_values, OwnedValue};
    use crate::analyzer::log::LogRow;

    /// A [`LogSink`] that keeps every line, with its log's path, after checking each value
    /// against its column's Zeek type.
    #[derive(Default)]
    pub(crate) struct Collect {
        pub rows: Vec<(&'static str, Vec<OwnedValue>)>,
    }

    impl LogSink for Collect {
        fn write(&mut self, row: &dyn LogRow) {
            self.rows.push((row.schema().path, checked_values(row)));
        }
    }

    impl Collect {
        pub(crate) fn of(&self, path: &str) -> Vec<&Vec<OwnedValue>> {
            self.rows
                .iter()
                .filter(|(p, _)| *p == path)
                .map(|(_, v)| v)
                .collect()
        }
    }

    /// Drives one analyzer on one connection the way the flow table does, collecting its
    /// log rows and weirds.
    pub(crate) struct Driver<A> {
        pub a: A,
        pub c: ConnInfo,
        pub sink: Collect,
        pub weirds: Vec<(&'static str, String)>,
        pub shared: SharedState,
    }

    impl<A: AppAnalyzer> Driver<A> {
        pub(crate) fn with(a: A, c: ConnInfo) -> Self {
            Driver {
                a,
                c,
                sink: Collect::default(),
                weirds: Vec::new(),
                shared: SharedState::default(),
            }
        }

        fn out(&mut self) -> (&mut A, &ConnInfo, AppOutput<'_>) {
            let out = AppOutput {
                logs: &mut self.sink,
                weirds: &mut self.weirds,
                shared: &mut self.shared,
            };
            (&mut self.a, &self.c, out)
        }

        pub(crate) fn send(&mut self, ts: f64, is_orig: bool, data: &[u8]) {
            let (a, c, mut out) = self.out();
            a.deliver(c, ts, is_orig, data, &mut out);
        }

        pub(crate) fn gap(&mut self, ts: f64, is_orig: bool, len: u64) {
            let (a, c, mut out) = self.out();
            a.gap(c, ts, is_orig, len, &mut out);
        }

        pub(crate) fn finish(&mut self, ts: f64) {
            let (a, c, mut out) = self.out();
            a.finish(c, ts, &mut out);
        }
    }

    pub(crate) fn conn(transport: Transport, resp_p: u16) -> ConnInfo {
        ConnInfo {
            uid: Uid::from_static("CtestUid"),
            orig_h: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            orig_p: 40000,
            resp_h: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            resp_p,
            transport,
        }
    }

    #[test]
    fn detect_chooses_by_content_not_port() {
        let tcp80 = conn(Transport::Tcp, 80);
        let tcp443 = conn(Transport::Tcp, 443);
        let get = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(detect(&tcp443, true, get).and_then(|a| a.service()), None);
        assert!(detect(&tcp443, true, get).is_some());
        assert!(detect(&tcp80, true, b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x03").is_some());
        assert!(detect(&tcp80, true, b"SSH-2.0-OpenSSH_8.9\r\n").is_none());
        assert!(detect(&conn(Transport::Udp, 53), true, b"\x00\x01garbage").is_none());
    }

    /// Deterministic xorshift generator for the mutation test.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// An SSH side: its version line, a KEXINIT whose ten lists are all `lists`, NEWKEYS
    /// and a chunk of ciphertext.
    fn ssh_flight(version: &[u8], lists: &str) -> Vec<u8> {
        let mut payload = vec![0x11; 16];
        for _ in 0..10 {
            payload.extend_from_slice(&(lists.len() as u32).to_be_bytes());
            payload.extend_from_slice(lists.as_bytes());
        }
        payload.extend_from_slice(&[0; 5]);
        let mut v = version.to_vec();
        v.extend_from_slice(&((payload.len() + 6) as u32).to_be_bytes());
        v.extend_from_slice(&[4, 20]);
        v.extend_from_slice(&payload);
        v.extend_from_slice(&[0; 4]);
        v.extend_from_slice(&[0, 0, 0, 12, 10, 21]);
        v.extend_from_slice(&[0; 10]);
        v.extend_from_slice(&[0x5a; 48]);
        v
    }

    /// An NTP message with this first byte (leap, version, mode), a MAC and an extension.
    fn ntp_message(first: u8) -> Vec<u8> {
        let mut m = vec![0u8; 48];
        m[0] = first;
        m[1] = 2;
        m[12..16].copy_from_slice(&[192, 0, 2, 1]);
        let mut ext = vec![0u8; 28];
        ext[2..4].copy_from_slice(&28u16.to_be_bytes());
        m.extend_from_slice(&ext);
        m.extend_from_slice(&[0; 20]);
        m
    }

    /// A DHCP message of this type with a host name, client id, lease and domain.
    fn dhcp_message(msg_type: u8) -> Vec<u8> {
        let mut m = vec![0u8; 236];
        m[0] = if msg_type == 2 { 2 } else { 1 };
        m[4..8].copy_from_slice(&[1, 2, 3, 4]);
        m[16..20].copy_from_slice(&[10, 0, 0, 9]);
        m[28..34].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        m.extend_from_slice(&[0x63, 0x82, 0x53, 0x63, 53, 1, msg_type, 12, 2, b'h', b'n']);
        m.extend_from_slice(&[
            61, 7, 1, 2, 0, 0, 0, 0, 1, 51, 4, 0, 0, 1, 0, 15, 2, b'e', 0,
        ]);
        m.extend_from_slice(&[81, 4, 0, 0, 0, b'f', 56, 1, b'm', 255]);
        m
    }

    /// Mutated and randomly split protocol messages never panic any analyzer, and every
    /// line they write fits its schema (checked by [`Collect`]).
    #[test]
    fn mutated_inputs_are_survived() {
        let mut seeds: Vec<(Transport, u16, Vec<u8>, Vec<u8>)> = vec![
            (
                Transport::Udp,
                53,
                b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x03com\x00\x00\x01\x00\x01".to_vec(),
                b"\x12\x34\x81\x80\x00\x01\x00\x02\x00\x00\x00\x00\x03www\x07example\x03com\x00\x00\x01\x00\x01\xc0\x0c\x00\x05\x00\x01\x00\x00\x01\x2c\x00\x06\x03web\xc0\x10\xc0\x2d\x00\x10\x00\x01\x00\x00\x00\x3c\x00\x04\x03abc".to_vec(),
            ),
            (
                Transport::Tcp,
                80,
                b"POST /a?b=%41 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n".to_vec(),
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 20\r\n\r\n\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x01\x00\x00\xff\xff\x00\x00\x00\x00\x00HTTP/1.0 404 No\r\n\r\nrest".to_vec(),
            ),
            (
                Transport::Tcp,
                443,
                b"\x16\x03\x01\x00\x2f\x01\x00\x00\x2b\x03\x03AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\x00\x00\x02\xc0\x2f\x01\x00\x00\x00\x14\x03\x03\x00\x01\x01\x17\x03\x03\x00\x02hi".to_vec(),
                b"\x16\x03\x03\x00\x2a\x02\x00\x00\x26\x03\x03BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\x00\xc0\x2f\x00\x16\x03\x03\x00\x0a\x0b\x00\x00\x06\x00\x00\x03\x00\x00\x01\x15\x03\x03\x00\x02\x02\x28".to_vec(),
            ),
            (Transport::Udp, 123, ntp_message(0x23), ntp_message(0x24)),
            (Transport::Udp, 67, dhcp_message(1), dhcp_message(2)),
        ];
        seeds.push((
            Transport::Tcp,
            22,
            ssh_flight(b"SSH-2.0-C\r\n", "curve25519-sha256,aes128-ctr"),
            ssh_flight(b"pre\r\nSSH-2.0-S\r\n", "aes128-ctr,curve25519-sha256"),
        ));
        seeds.push((
            Transport::Tcp,
            21,
            b"USER anonymous\r\nPASS a@b\r\nCWD /pub\r\nEPSV\r\nRETR x.txt\r\nPORT 10,0,0,1,4,1\r\nSTOR y\r\nQUIT\r\n".to_vec(),
            b"220 hi\r\n331 ok\r\n230-a\r\n 230 b\r\n230 c\r\n250 ok\r\n229 (|||5000|)\r\n150 (12 bytes)\r\n226 ok\r\n200 ok\r\n227 (10,0,0,2,4,2)\r\n221 bye\r\n".to_vec(),
        ));
        seeds.push((
            Transport::Tcp,
            25,
            b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--x\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\na=3Db=\r\n--x--\r\n.\r\nBDAT 5 LAST\r\nab\r\ncRSET\r\nSTARTTLS\r\n".to_vec(),
            b"220 mx\r\n250-mx\r\n250 CHUNKING\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n250 ok\r\n250 ok\r\n220 tls\r\n".to_vec(),
        ));
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..2500 {
            let (transport, port, orig, resp) = &seeds[round % seeds.len()];
            let c = conn(*transport, *port);
            let mutate = |rng: &mut Rng, data: &[u8]| {
                let mut d = data.to_vec();
                for _ in 0..rng.below(6) {
                    let i = rng.below(d.len());
                    match rng.below(3) {
                        0 => d[i] = rng.next() as u8,
                        1 => d.truncate(i),
                        _ => d.insert(i, rng.next() as u8),
                    }
                    if d.is_empty() {
                        break;
                    }
                }
                d
            };
            let orig = mutate(&mut rng, orig);
            let resp = mutate(&mut rng, resp);
            let mut analyzers: Vec<Box<dyn AppAnalyzer>> = vec![
                Box::new(DnsAnalyzer::new()),
                Box::new(HttpAnalyzer::new()),
                Box::new(SslAnalyzer::new()),
                Box::new(SslAnalyzer::new_dtls()),
                Box::new(SshAnalyzer::new()),
                Box::new(NtpAnalyzer::new()),
                Box::new(DhcpAnalyzer::new()),
                Box::new(FtpAnalyzer::new()),
                Box::new(SmtpAnalyzer::new()),
            ];
            analyzers.extend(detect(&c, true, &orig));
            let mut sink = Collect::default();
            let mut weirds = Vec::new();
            let mut shared = SharedState::default();
            for a in analyzers.iter_mut() {
                let mut out = AppOutput {
                    logs: &mut sink,
                    weirds: &mut weirds,
                    shared: &mut shared,
                };
                for (is_orig, data) in [(true, &orig), (false, &resp)] {
                    let mut rest = &data[..];
                    while !rest.is_empty() {
                        let n = 1 + rng.below(rest.len());
                        a.deliver(&c, 1.0, is_orig, &rest[..n], &mut out);
                        rest = &rest[n..];
                        if rng.below(10) == 0 {
                            a.gap(&c, 1.0, is_orig, rng.below(50) as u64, &mut out);
                        }
                    }
                }
                a.finish(&c, 2.0, &mut out);
            }
            shared.finish(&mut sink);
            assert!(
                sink.rows.len() <= 40,
                "round {round}: {} rows",
                sink.rows.len()
            );
        }
    }

    #[test]
    fn escape_bytes_matches_zeek_rendering() {
        assert_eq!(escape_bytes(b"a b\t\xff"), "a b\\x09\\xff");
        assert_eq!(escape_owned(b"a b\t\xff".to_vec()), "a b\\x09\\xff");
        assert_eq!(escape_owned(b"www.example.com".to_vec()), "www.example.com");
    }
}
