//! SSH: the version exchange, the clear-text key exchange, and the summary Zeek writes to
//! `ssh.log` (versions, negotiated algorithms, host key fingerprint, direction, and the
//! authentication outcome guessed from the sizes of encrypted packets).
//!
//! Zeek's split is followed: the analyzer part (`src/analyzer/protocol/ssh/`) reads each
//! side's version line, then the binary packets until that side's NEWKEYS, picks the key
//! exchange family from both KEXINITs and hashes the host key of the server's reply; after
//! NEWKEYS it only sees the length of each delivered chunk of ciphertext, from which
//! [`AuthGuess`] infers `auth_success`. The script part (`base/protocols/ssh/main.zeek`)
//! opens the record at the first version line, negotiates each algorithm as the first of
//! the client's list the server also offers, and writes the line at once when
//! authentication succeeded, otherwise when the connection ends.
//!
//! Layout: `parser` (version lines, packets, KEXINIT, host key blob), `consts` (key-exchange
//! families, message numbers), `log` (the ssh.log row); this file is the semantics.

mod consts;
mod log;
mod parser;

use base64::Engine;
use sha2::{Digest, Sha256};

use super::{escape_bytes, AppAnalyzer, AppOutput, ConnInfo};
use crate::analyzer::log::{Enum, Time};
use crate::analyzer::site::is_local_addr;
use consts::{
    is_compression, kex_method, KexMethod, MSG_KEXINIT, MSG_NEWKEYS, SSH1_CMSG_SESSION_KEY,
};
pub use log::{SshRow, SSH_SCHEMA};
use parser::{
    host_key_blob, kex_init, line, ssh1_packet, ssh2_packet, wire, Announced, Framed, KexInit, Wire,
};

/// Most bytes buffered per side for an unfinished version line or key-exchange packet; a
/// side that needs more is given up with a weird.
const MAX_BUFFER: usize = 256 * 1024;

/// Whether a connection's payload starts SSH: Zeek's `dpd_ssh_client`/`dpd_ssh_server`
/// signatures (`SSH-1.` or `SSH-2.`, any case) seen from the server, or, on port 22 where
/// Zeek attaches the analyzer by port, the client's version line or a server version line
/// after other text (servers may print a banner first).
pub(crate) fn looks_like_ssh(conn: &ConnInfo, is_orig: bool, data: &[u8]) -> bool {
    let signature = |d: &[u8]| {
        d.len() >= 6
            && d[..4].eq_ignore_ascii_case(b"SSH-")
            && matches!(d[4], b'1' | b'2')
            && d[5] == b'.'
    };
    if conn.resp_p != 22 || conn.transport != super::Transport::Tcp {
        return !is_orig && signature(data);
    }
    if is_orig {
        return data.starts_with(b"SSH-");
    }
    signature(data) || data.split(|&b| b == b'\n').skip(1).any(signature)
}

/// Where one side's stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    /// Before (the server: up to and including) the version line.
    #[default]
    Version,
    /// Binary packets in the clear (the key exchange).
    Packets,
    /// After NEWKEYS (SSH-2) or the first SSH-1 message: only sizes are seen.
    Encrypted,
    /// Not SSH, or beyond what is buffered: ignored from here on.
    Lost,
}

#[derive(Debug, Default)]
struct Side {
    phase: Phase,
    buf: Vec<u8>,
    announced: Option<Announced>,
    kex_init: Option<KexInit>,
}

/// Zeek's `SSH::Info` while the connection lasts.
#[derive(Debug, Default)]
struct Session {
    ts: f64,
    version: Option<u64>,
    auth_success: Option<bool>,
    auth_attempts: u64,
    direction: Option<&'static str>,
    client: Option<String>,
    server: Option<String>,
    cipher_alg: Option<String>,
    mac_alg: Option<String>,
    compression_alg: Option<String>,
    kex_alg: Option<String>,
    host_key_alg: Option<String>,
    host_key_fingerprint: Option<String>,
    logged: bool,
}

/// Zeek's guess at the authentication outcome from the sizes of encrypted chunks
/// (`SSH_Analyzer::ProcessEncrypted`): after the client's first encrypted data, the
/// server's first chunk is taken as SERVICE_ACCEPT; a chunk 16 bytes smaller is a
/// USERAUTH_SUCCESS; the first other chunk (unless it is much larger, a pre-auth banner)
/// sets the size of USERAUTH_FAILURE, and each later chunk of that size is a failed attempt.
#[derive(Debug, Default)]
struct AuthGuess {
    decided: bool,
    saw_client_data: bool,
    service_accept_size: Option<usize>,
    failure_size: Option<usize>,
    skipped_banner: bool,
}

impl AuthGuess {
    /// Takes the length of one chunk of ciphertext; returns an authentication attempt and
    /// whether it succeeded, when the chunk reads as one.
    fn chunk(&mut self, is_orig: bool, len: usize) -> Option<bool> {
        if self.decided {
            return None;
        }
        if is_orig {
            self.saw_client_data = true;
            return None;
        }
        if !self.saw_client_data {
            return None;
        }
        let Some(accept) = self.service_accept_size else {
            self.service_accept_size = Some(len);
            return None;
        };
        let is_success = len + 16 == accept;
        let Some(failure) = self.failure_size else {
            // "none" authentication succeeding at once.
            if is_success {
                self.decided = true;
                return Some(true);
            }
            if !self.skipped_banner && len > accept + 256 {
                self.skipped_banner = true;
                return None;
            }
            self.failure_size = Some(len);
            return None;
        };
        if len == failure {
            return Some(false);
        }
        if is_success {
            self.decided = true;
            return Some(true);
        }
        None
    }
}

/// The SSH analyzer of one connection.
#[derive(Debug, Default)]
pub struct SshAnalyzer {
    sides: [Side; 2],
    kex: Option<KexMethod>,
    confirmed: bool,
    had_gap: bool,
    session: Option<Session>,
    auth: AuthGuess,
}

/// SSH's fingerprint as Zeek's analyzer renders it: `SHA256:` and the base64 of the key's
/// SHA-256, cut (by a fixed-size buffer in Zeek) to 32 characters.
fn fingerprint(key: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(key));
    format!("SHA256:{}", &b64[..32])
}

/// The first of the client's algorithms that the server also offers (`SSH::find_alg`).
fn find_alg(client: &[String], server: &[String]) -> String {
    client
        .iter()
        .find(|c| server.contains(c))
        .cloned()
        .unwrap_or_else(|| "Algorithm negotiation failed".to_owned())
}

/// [`find_alg`] for both directions, spelled out when they differ.
fn find_bidirectional_alg(c2s: (&[String], &[String]), s2c: (&[String], &[String])) -> String {
    let to_server = find_alg(c2s.0, c2s.1);
    let to_client = find_alg(s2c.0, s2c.1);
    if to_server == to_client {
        to_server
    } else {
        format!("To server: {to_server}, to client: {to_client}")
    }
}

/// Zeek's `SSH::set_version`: the protocol version both version strings agree on, or a
/// weird when they cannot be reconciled.
fn session_version(client: &str, server: &str) -> Result<Option<u64>, &'static str> {
    if client.is_empty() || server.is_empty() {
        return Ok(None);
    }
    let (c, s) = (client.as_bytes(), server.as_bytes());
    if c.len() <= 4 || s.len() <= 4 {
        return Err("SSH_cannot_determine_version");
    }
    let is_199 = |v: &[u8]| v.len() > 7 && v[6] == b'9' && v[7] == b'9';
    Ok(match (c[4], s[4]) {
        (b'1', b'2') if is_199(c) => Some(2),
        (b'2', b'1') if is_199(s) => Some(2),
        (b'1', b'2') | (b'2', b'1') => return Err("SSH_version_mismatch"),
        (b'1', b'1') if is_199(s) && is_199(c) => Some(2),
        (b'1', b'1') => Some(1),
        (b'2', b'2') => Some(2),
        _ => None,
    })
}

impl SshAnalyzer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Zeek's `SSH::set_session`: the record is opened once, stamped with the time of the
    /// first event that needed it.
    fn session(&mut self, conn: &ConnInfo, ts: f64) -> &mut Session {
        self.session.get_or_insert_with(|| {
            let orig_local = is_local_addr(conn.orig_h);
            let direction = (orig_local != is_local_addr(conn.resp_h)).then_some(if orig_local {
                "OUTBOUND"
            } else {
                "INBOUND"
            });
            Session {
                ts,
                direction,
                ..Session::default()
            }
        })
    }

    fn wire(&self) -> Option<Wire> {
        wire(self.sides[0].announced?, self.sides[1].announced?)
    }

    fn confirm(&mut self, conn: &ConnInfo, ts: f64) {
        self.confirmed = true;
        self.session(conn, ts);
    }

    fn version_line(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        is_orig: bool,
        text: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        let side = usize::from(!is_orig);
        self.sides[side].phase = Phase::Packets;
        self.sides[side].announced = Some(Announced::of(text));
        let version = escape_bytes(text);
        let s = self.session(conn, ts);
        if is_orig {
            s.client = Some(version);
        } else {
            s.server = Some(version);
        }
        let (client, server) = (
            s.client.as_deref().unwrap_or(""),
            s.server.as_deref().unwrap_or(""),
        );
        match session_version(client, server) {
            Ok(v) => s.version = v,
            Err(weird) => {
                s.version = None;
                out.weirds.push((weird, format!("{server} vs {client}")));
            }
        }
    }

    /// Zeek's `ssh_capabilities` handler and the analyzer's `update_kex`: once both sides'
    /// KEXINITs are in, the negotiated algorithms and the key-exchange family.
    fn negotiate(&mut self, out: &mut AppOutput<'_>) {
        let (Some(c), Some(s)) = (&self.sides[0].kex_init, &self.sides[1].kex_init) else {
            return;
        };
        let kex_alg = find_alg(&c.kex, &s.kex);
        let any_common = c.kex.iter().any(|a| s.kex.contains(a));
        let session_algs = [
            find_bidirectional_alg(
                (&c.cipher_c2s, &s.cipher_c2s),
                (&c.cipher_s2c, &s.cipher_s2c),
            ),
            find_bidirectional_alg((&c.mac_c2s, &s.mac_c2s), (&c.mac_s2c, &s.mac_s2c)),
            find_bidirectional_alg(
                (&c.compression_c2s, &s.compression_c2s),
                (&c.compression_s2c, &s.compression_s2c),
            ),
            find_alg(&c.host_key, &s.host_key),
        ];
        if any_common {
            self.kex = kex_method(&kex_alg);
            if self.kex.is_none() {
                out.weirds
                    .push(("ssh_unknown_kex_algorithm", kex_alg.clone()));
            }
        }
        if let Some(session) = self.session.as_mut() {
            let [cipher, mac, compression, host_key] = session_algs;
            session.cipher_alg = Some(cipher);
            session.mac_alg = Some(mac);
            session.compression_alg = Some(compression);
            session.kex_alg = Some(kex_alg);
            session.host_key_alg = Some(host_key);
        }
    }

    /// One clear-text SSH-2 packet.
    fn packet(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        side: usize,
        msg_type: u8,
        payload: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        match msg_type {
            MSG_NEWKEYS => {
                self.sides[side].phase = Phase::Encrypted;
                self.confirm(conn, ts);
            }
            // Only the first KEXINIT of each side counts; a re-keying one is encrypted.
            MSG_KEXINIT if self.sides[side].kex_init.is_none() && self.kex.is_none() => {
                if let Some(k) = kex_init(payload) {
                    self.sides[side].kex_init = Some(k);
                    self.negotiate(out);
                }
            }
            t if self.kex.and_then(KexMethod::host_key_message) == Some(t) => {
                if let (Some(key), Some(s)) = (host_key_blob(payload), self.session.as_mut()) {
                    s.host_key_fingerprint = Some(fingerprint(key));
                }
            }
            _ => {}
        }
    }

    /// Parses what one side has buffered; returns how many of its bytes came after the
    /// switch to encryption.
    fn parse(&mut self, conn: &ConnInfo, ts: f64, side: usize, out: &mut AppOutput<'_>) -> usize {
        let is_orig = side == 0;
        let mut buf = std::mem::take(&mut self.sides[side].buf);
        let mut pos = 0;
        let mut encrypted_tail = 0;
        loop {
            let rest = &buf[pos..];
            match self.sides[side].phase {
                Phase::Version => {
                    let Some((text, used)) = line(rest) else {
                        break;
                    };
                    pos += used;
                    if text.starts_with(b"SSH-") {
                        self.version_line(conn, ts, is_orig, text, out);
                    } else if is_orig {
                        // A client must open with its version (Zeek: a protocol violation).
                        self.sides[side].phase = Phase::Lost;
                    }
                    // The server may send other lines before its version.
                }
                Phase::Packets => {
                    let Some(wire) = self.wire() else {
                        // Zeek cannot frame packets before it knows both versions; what
                        // arrives meanwhile is dropped.
                        pos = buf.len();
                        break;
                    };
                    let (framed, n) = match wire {
                        Wire::Ssh2 => match ssh2_packet(rest) {
                            Framed::Whole(p, n) => {
                                self.packet(conn, ts, side, p.msg_type, p.payload, out);
                                (true, n)
                            }
                            Framed::Partial { total } => (false, total),
                            Framed::Malformed => {
                                self.sides[side].phase = Phase::Lost;
                                break;
                            }
                        },
                        // Any SSH-1 message ends the clear text of its side; the client's
                        // session key confirms the protocol.
                        Wire::Ssh1 => match ssh1_packet(rest) {
                            Framed::Whole(msg_type, n) => {
                                self.sides[side].phase = Phase::Encrypted;
                                if is_orig && msg_type == SSH1_CMSG_SESSION_KEY {
                                    self.confirm(conn, ts);
                                }
                                (true, n)
                            }
                            Framed::Partial { total } => (false, total),
                            Framed::Malformed => {
                                self.sides[side].phase = Phase::Lost;
                                break;
                            }
                        },
                    };
                    if !framed {
                        if n > MAX_BUFFER {
                            out.weirds
                                .push(("SSH_max_packet_length_exceeded", n.to_string()));
                            self.sides[side].phase = Phase::Lost;
                        }
                        break;
                    }
                    pos += n;
                }
                Phase::Encrypted => {
                    encrypted_tail = rest.len();
                    pos = buf.len();
                    break;
                }
                Phase::Lost => {
                    pos = buf.len();
                    break;
                }
            }
        }
        buf.drain(..pos);
        if buf.len() > MAX_BUFFER {
            out.weirds.push(("SSH_line_too_long", String::new()));
            self.sides[side].phase = Phase::Lost;
            buf = Vec::new();
        }
        self.sides[side].buf = buf;
        encrypted_tail
    }

    /// A chunk of ciphertext: Zeek's `ssh_auth_attempted` handlers.
    fn encrypted(&mut self, conn: &ConnInfo, is_orig: bool, len: usize, out: &mut AppOutput<'_>) {
        if self.wire() != Some(Wire::Ssh2) {
            return;
        }
        let Some(authenticated) = self.auth.chunk(is_orig, len) else {
            return;
        };
        let Some(s) = self.session.as_mut() else {
            return;
        };
        let counted = s.auth_success != Some(true)
            && !s.compression_alg.as_deref().is_some_and(is_compression);
        if counted {
            s.auth_success = Some(authenticated);
            s.auth_attempts += 1;
        }
        if authenticated && !s.logged {
            self.write(conn, out);
        }
    }

    fn write(&mut self, conn: &ConnInfo, out: &mut AppOutput<'_>) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        s.logged = true;
        out.logs.write(&SshRow {
            ts: Time(s.ts),
            id: conn.id(),
            version: s.version,
            auth_success: s.auth_success,
            auth_attempts: s.auth_attempts,
            direction: s.direction.map(Enum),
            client: s.client.as_deref(),
            server: s.server.as_deref(),
            cipher_alg: s.cipher_alg.as_deref(),
            mac_alg: s.mac_alg.as_deref(),
            compression_alg: s.compression_alg.as_deref(),
            kex_alg: s.kex_alg.as_deref(),
            host_key_alg: s.host_key_alg.as_deref(),
            host_key_fingerprint: s.host_key_fingerprint.as_deref(),
        });
    }
}

impl AppAnalyzer for SshAnalyzer {
    fn service(&self) -> Option<&'static str> {
        self.confirmed.then_some("ssh")
    }

    fn deliver(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        is_orig: bool,
        data: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        // Zeek stops after a content gap, and detaches once a success was logged.
        if self.had_gap || self.session.as_ref().is_some_and(|s| s.logged) {
            return;
        }
        let side = usize::from(!is_orig);
        match self.sides[side].phase {
            Phase::Lost => {}
            Phase::Encrypted => self.encrypted(conn, is_orig, data.len(), out),
            Phase::Version | Phase::Packets => {
                self.sides[side].buf.extend_from_slice(data);
                let tail = self.parse(conn, ts, side, out);
                if tail > 0 {
                    self.encrypted(conn, is_orig, tail, out);
                }
            }
        }
    }

    fn gap(
        &mut self,
        _conn: &ConnInfo,
        _ts: f64,
        _is_orig: bool,
        _len: u64,
        _out: &mut AppOutput<'_>,
    ) {
        self.had_gap = true;
    }

    fn finish(&mut self, conn: &ConnInfo, _ts: f64, out: &mut AppOutput<'_>) {
        // `SSH::finalize_ssh`: a failure or an undecided session is logged as it stands.
        if self.session.as_ref().is_some_and(|s| !s.logged) {
            self.write(conn, out);
        }
    }

    fn logs(&self) -> &'static [&'static str] {
        &["ssh"]
    }
}

#[cfg(test)]
mod tests {
    use super::parser::tests::{kex_init_payload, packet, string};
    use super::*;
    use crate::analyzer::app::tests::{conn, Driver};
    use crate::analyzer::app::Transport;
    use crate::analyzer::log::tests::OwnedValue;

    fn s(v: &str) -> OwnedValue {
        OwnedValue::Str(v.into())
    }

    const CLIENT_LISTS: [&str; 10] = [
        "curve25519-sha256,ecdh-sha2-nistp256",
        "ssh-ed25519,rsa-sha2-512",
        "chacha20-poly1305@openssh.com,aes128-ctr",
        "chacha20-poly1305@openssh.com,aes128-ctr",
        "hmac-sha2-256-etm@openssh.com,hmac-sha2-256",
        "hmac-sha2-256-etm@openssh.com,hmac-sha2-256",
        "none,zlib@openssh.com",
        "none,zlib@openssh.com",
        "",
        "",
    ];
    const SERVER_LISTS: [&str; 10] = [
        "ecdh-sha2-nistp256,curve25519-sha256",
        "rsa-sha2-512,ssh-ed25519",
        "aes128-ctr",
        "aes128-ctr,chacha20-poly1305@openssh.com",
        "hmac-sha2-256",
        "hmac-sha2-256",
        "none",
        "none",
        "",
        "",
    ];

    /// A connection through NEWKEYS: versions, both KEXINITs, the ECDH exchange.
    fn handshake(d: &mut Driver<SshAnalyzer>) {
        d.send(1.0, false, b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n");
        d.send(1.1, true, b"SSH-2.0-OpenSSH_9.7\r\n");
        d.send(1.2, true, &packet(20, &kex_init_payload(CLIENT_LISTS)));
        d.send(1.2, false, &packet(20, &kex_init_payload(SERVER_LISTS)));
        d.send(1.3, true, &packet(30, &string(&[4; 32])));
        let mut reply = string(b"host key blob");
        reply.extend(string(&[5; 32]));
        reply.extend(string(b"signature"));
        let mut flight = packet(31, &reply);
        flight.extend(packet(21, &[]));
        d.send(1.4, false, &flight);
        d.send(1.5, true, &packet(21, &[]));
    }

    fn driver(resp_p: u16) -> Driver<SshAnalyzer> {
        Driver::with(SshAnalyzer::new(), conn(Transport::Tcp, resp_p))
    }

    #[test]
    fn negotiation_fingerprint_and_success() {
        let mut d = driver(22);
        handshake(&mut d);
        assert_eq!(d.a.service(), Some("ssh"));
        assert!(d.sink.rows.is_empty());
        // SERVICE_REQUEST/ACCEPT, a failed password (failure size 64), a second failure, then
        // success (accept - 16).
        d.send(2.0, true, &[0; 52]);
        d.send(2.0, false, &[0; 52]);
        d.send(2.1, true, &[0; 100]);
        d.send(2.1, false, &[0; 64]);
        d.send(2.2, true, &[0; 100]);
        d.send(2.2, false, &[0; 64]);
        d.send(2.3, true, &[0; 100]);
        d.send(2.3, false, &[0; 36]);
        let rows = d.sink.of("ssh");
        assert_eq!(rows.len(), 1, "a success is logged at once");
        let row = rows[0].clone();
        assert_eq!(row[6], OwnedValue::Count(2));
        assert_eq!(row[7], OwnedValue::Bool(true));
        assert_eq!(row[8], OwnedValue::Count(2));
        // 10.0.0.1 → 10.0.0.2: both local, no direction.
        assert_eq!(row[9], OwnedValue::Unset);
        assert_eq!(row[10], s("SSH-2.0-OpenSSH_9.7"));
        assert_eq!(row[11], s("SSH-2.0-OpenSSH_9.2p1 Debian-2"));
        assert_eq!(
            row[12],
            s("To server: aes128-ctr, to client: chacha20-poly1305@openssh.com")
        );
        assert_eq!(row[13], s("hmac-sha2-256"));
        assert_eq!(row[14], s("none"));
        assert_eq!(row[15], s("curve25519-sha256"));
        assert_eq!(row[16], s("ssh-ed25519"));
        assert_eq!(row[17], s(&fingerprint(b"host key blob")));
        d.finish(3.0);
        assert_eq!(d.sink.of("ssh").len(), 1);
    }

    #[test]
    fn failures_are_logged_when_the_connection_ends() {
        let mut d = driver(22);
        handshake(&mut d);
        d.send(2.0, true, &[0; 52]);
        d.send(2.0, false, &[0; 52]);
        d.send(2.1, false, &[0; 64]);
        d.send(2.2, false, &[0; 64]);
        d.send(2.3, false, &[0; 64]);
        assert!(d.sink.rows.is_empty());
        d.finish(3.0);
        let row = d.sink.of("ssh")[0].clone();
        assert_eq!(row[7], OwnedValue::Bool(false));
        assert_eq!(row[8], OwnedValue::Count(2));
    }

    #[test]
    fn half_duplex_client_and_pre_banner() {
        let mut d = driver(22);
        d.c.resp_h = "131.159.21.1".parse().expect("addr");
        d.send(1.0, true, b"SSH-2.0-OpenSSH_5.9\r\n");
        d.send(1.1, true, &packet(20, &kex_init_payload(CLIENT_LISTS)));
        d.send(1.2, true, &packet(21, &[]));
        d.finish(2.0);
        let row = d.sink.of("ssh")[0].clone();
        assert_eq!(row[6], OwnedValue::Unset);
        assert_eq!(row[9], OwnedValue::Enum("OUTBOUND".into()));
        assert_eq!(row[11], OwnedValue::Unset);
        assert_eq!(row[12], OwnedValue::Unset);
        assert_eq!(
            d.a.service(),
            None,
            "nothing is framed without both versions"
        );

        let mut d = driver(22);
        d.send(1.0, false, b"Welcome\r\nto the host\r\nSSH-2.0-S\r\n");
        d.send(1.0, true, b"SSH-1.5-C\r\n");
        d.finish(2.0);
        let row = d.sink.of("ssh")[0].clone();
        assert_eq!(row[11], s("SSH-2.0-S"));
        assert_eq!(row[6], OwnedValue::Unset);
        assert_eq!(d.weirds[0].0, "SSH_version_mismatch");
    }

    #[test]
    fn ssh1_confirms_on_the_session_key() {
        let mut d = driver(22);
        d.send(1.0, false, b"SSH-1.99-OpenSSH_6.6\n");
        d.send(1.0, true, b"SSH-1.5-OpenSSH_6.2\n");
        let mut session_key = vec![0, 0, 0, 9];
        session_key.extend_from_slice(&[0; 7]);
        session_key.push(3);
        session_key.extend_from_slice(&[0; 8]);
        d.send(1.1, true, &session_key);
        assert_eq!(d.a.service(), Some("ssh"));
        d.finish(2.0);
        let row = d.sink.of("ssh")[0].clone();
        assert_eq!(row[6], OwnedValue::Count(1));
        assert_eq!(row[7], OwnedValue::Unset);
        assert_eq!(row[8], OwnedValue::Count(0));
    }

    #[test]
    fn compression_hides_the_outcome_and_gaps_stop_the_analysis() {
        let mut d = driver(22);
        let mut client = CLIENT_LISTS;
        client[6] = "zlib@openssh.com";
        client[7] = "zlib@openssh.com";
        let mut server = SERVER_LISTS;
        server[6] = "zlib@openssh.com,none";
        server[7] = "zlib@openssh.com,none";
        d.send(1.0, false, b"SSH-2.0-S\r\n");
        d.send(1.0, true, b"SSH-2.0-C\r\n");
        d.send(1.0, true, &packet(20, &kex_init_payload(client)));
        d.send(1.0, false, &packet(20, &kex_init_payload(server)));
        d.send(1.0, false, &packet(21, &[]));
        d.send(1.0, true, &packet(21, &[]));
        d.send(2.0, true, &[0; 52]);
        d.send(2.0, false, &[0; 52]);
        d.send(2.3, false, &[0; 36]);
        let row = d.sink.of("ssh")[0].clone();
        assert_eq!(row[7], OwnedValue::Unset);
        assert_eq!(row[8], OwnedValue::Count(0));
        assert_eq!(row[14], s("zlib@openssh.com"));

        let mut d = driver(22);
        d.send(1.0, false, b"SSH-2.0-S\r\n");
        d.gap(1.0, true, 10);
        d.send(1.0, true, b"SSH-2.0-C\r\n");
        d.finish(2.0);
        assert_eq!(d.sink.of("ssh")[0][10], OwnedValue::Unset);
    }

    #[test]
    fn detection() {
        let c22 = conn(Transport::Tcp, 22);
        let c2200 = conn(Transport::Tcp, 2200);
        assert!(looks_like_ssh(&c22, true, b"SSH-2.0-x\r\n"));
        assert!(looks_like_ssh(&c22, false, b"hello\r\nSSH-2.0-x\r\n"));
        assert!(!looks_like_ssh(&c22, true, b"\x00\x00\x01\x00garbage"));
        assert!(looks_like_ssh(&c2200, false, b"ssh-1.99-x\r\n"));
        assert!(!looks_like_ssh(&c2200, true, b"SSH-2.0-x\r\n"));
        assert!(!looks_like_ssh(&c2200, false, b"SSH-3.0"));
    }

    #[test]
    fn zeek_fingerprint_is_cut_to_32_base64_characters() {
        let fp = fingerprint(b"");
        // SHA-256 of nothing: 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=
        assert_eq!(fp, "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NM");
    }
}
