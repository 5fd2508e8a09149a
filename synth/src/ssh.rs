//! SSH-2 over one TCP connection (port 22), shaped like OpenSSH, PuTTY or paramiko clients
//! talking to OpenSSH or Dropbear servers: the version lines, SSH_MSG_KEXINIT both ways with
//! each implementation's real algorithm name-lists, the key exchange the lists negotiate
//! (RFC 4253 §7.1: the client's first algorithm the server also offers; curve25519,
//! sntrup761x25519 or NIST ECDH, with key and signature sizes to match), NEWKEYS, then
//! encrypted packets: random bytes whose lengths follow the negotiated cipher and MAC for
//! the messages of the user-auth phase (public key or password; some sessions fail three
//! times and give up) and of a session channel that is either interactive (keystrokes,
//! echoes, command output) or a bulk scp/sftp transfer.
//!
//! The server's host key is derived from its name, so one server keeps one fingerprint.

use std::collections::VecDeque;

use super::net::fnv1a;
use super::rng::Rng;
use super::stream::ByteStream;
use super::tcp::{Dir, Ending, TcpApp, Turn};

const MSG_KEXINIT: u8 = 20;
const MSG_NEWKEYS: u8 = 21;
const MSG_KEX_ECDH_INIT: u8 = 30;
const MSG_KEX_ECDH_REPLY: u8 = 31;

/// One implementation's version string and KEXINIT name-lists (kex, host key, ciphers,
/// MACs, compression), as that version sends them.
struct Implementation {
    version: &'static str,
    kex: &'static str,
    host_key: &'static str,
    ciphers: &'static str,
    macs: &'static str,
    compression: &'static str,
}

const OPENSSH_MACS: &str = "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1";
const OPENSSH_CIPHERS: &str = "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com";

const CLIENTS: [Implementation; 4] = [
    Implementation {
        version: "SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13",
        kex: "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256,ext-info-c,kex-strict-c-v00@openssh.com",
        host_key: "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256",
        ciphers: OPENSSH_CIPHERS,
        macs: OPENSSH_MACS,
        compression: "none,zlib@openssh.com",
    },
    Implementation {
        version: "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3",
        kex: "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256,ext-info-c,kex-strict-c-v00@openssh.com",
        host_key: "ecdsa-sha2-nistp256,ssh-ed25519,rsa-sha2-512,rsa-sha2-256",
        ciphers: OPENSSH_CIPHERS,
        macs: OPENSSH_MACS,
        compression: "none,zlib@openssh.com",
    },
    Implementation {
        version: "SSH-2.0-PuTTY_Release_0.80",
        kex: "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group18-sha512,diffie-hellman-group17-sha512,diffie-hellman-group16-sha512,diffie-hellman-group15-sha512,diffie-hellman-group-exchange-sha256,diffie-hellman-group14-sha256,diffie-hellman-group14-sha1,rsa2048-sha256,ext-info-c,kex-strict-c-v00@openssh.com",
        host_key: "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,ssh-ed448,rsa-sha2-512,rsa-sha2-256,ssh-rsa",
        ciphers: "aes256-ctr,aes256-cbc,aes192-ctr,aes192-cbc,aes128-ctr,aes128-cbc,chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,3des-ctr,3des-cbc",
        macs: "hmac-sha2-256,hmac-sha1,hmac-sha1-96,hmac-md5,hmac-sha2-256-etm@openssh.com,hmac-sha1-etm@openssh.com",
        compression: "none,zlib,zlib@openssh.com",
    },
    Implementation {
        version: "SSH-2.0-paramiko_3.4.0",
        kex: "curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group16-sha512,diffie-hellman-group-exchange-sha256,diffie-hellman-group14-sha256,diffie-hellman-group-exchange-sha1,diffie-hellman-group14-sha1",
        host_key: "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa",
        ciphers: "aes128-ctr,aes192-ctr,aes256-ctr,aes128-cbc,aes192-cbc,aes256-cbc,3des-cbc",
        macs: "hmac-sha2-256,hmac-sha2-512,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1,hmac-md5",
        compression: "none",
    },
];

const SERVERS: [Implementation; 3] = [
    Implementation {
        version: "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3",
        kex: "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256,kex-strict-s-v00@openssh.com",
        host_key: "rsa-sha2-512,rsa-sha2-256,ecdsa-sha2-nistp256,ssh-ed25519",
        ciphers: OPENSSH_CIPHERS,
        macs: OPENSSH_MACS,
        compression: "none,zlib@openssh.com",
    },
    Implementation {
        version: "SSH-2.0-OpenSSH_8.4p1 Debian-5+deb11u3",
        kex: "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256",
        host_key: "rsa-sha2-512,rsa-sha2-256,ssh-rsa,ecdsa-sha2-nistp256,ssh-ed25519",
        ciphers: OPENSSH_CIPHERS,
        macs: OPENSSH_MACS,
        compression: "none,zlib@openssh.com",
    },
    Implementation {
        version: "SSH-2.0-dropbear_2022.83",
        kex: "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp521,ecdh-sha2-nistp384,ecdh-sha2-nistp256,diffie-hellman-group14-sha256,kexguess2@matt.ucc.asn.au",
        host_key: "ecdsa-sha2-nistp256,ssh-ed25519,rsa-sha2-256,ssh-rsa",
        ciphers: "chacha20-poly1305@openssh.com,aes128-ctr,aes256-ctr",
        macs: "hmac-sha1,hmac-sha2-256",
        compression: "zlib@openssh.com,none",
    },
];

/// RFC 4253 §7.1: the first name on the client's list that is also on the server's.
pub fn negotiate(client: &'static str, server: &str) -> Option<&'static str> {
    client
        .split(',')
        .find(|name| server.split(',').any(|s| s == *name))
}

/// The ephemeral public values of a key exchange: (client's, server's) lengths.
fn exchange_value_lens(kex: &str) -> (usize, usize) {
    match kex {
        // sntrup761 public key / ciphertext, each followed by an x25519 key.
        "sntrup761x25519-sha512@openssh.com" => (1158 + 32, 1039 + 32),
        "ecdh-sha2-nistp256" => (65, 65),
        "ecdh-sha2-nistp384" => (97, 97),
        "ecdh-sha2-nistp521" => (133, 133),
        // curve25519-sha256 and its libssh.org alias.
        _ => (32, 32),
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// An SSH `string`: length, then the bytes.
fn put_string(out: &mut Vec<u8>, data: &[u8]) {
    put_u32(out, data.len() as u32);
    out.extend_from_slice(data);
}

fn random_string(out: &mut Vec<u8>, len: usize, rng: &mut Rng) {
    put_u32(out, len as u32);
    let start = out.len();
    out.resize(start + len, 0);
    rng.fill(&mut out[start..]);
}

/// A binary packet before NEWKEYS (RFC 4253 §6): length, padding length, payload and 4 to
/// 11 bytes of random padding so the whole is a multiple of 8.
pub fn clear_packet(payload: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut padding = 8 - (5 + payload.len()) % 8;
    if padding < 4 {
        padding += 8;
    }
    let mut out = Vec::with_capacity(5 + payload.len() + padding);
    put_u32(&mut out, (1 + payload.len() + padding) as u32);
    out.push(padding as u8);
    out.extend_from_slice(payload);
    let start = out.len();
    out.resize(start + padding, 0);
    rng.fill(&mut out[start..]);
    out
}

/// SSH_MSG_KEXINIT with an implementation's lists (the same both directions).
fn kexinit(imp: &Implementation, rng: &mut Rng) -> Vec<u8> {
    let mut payload = vec![MSG_KEXINIT];
    let start = payload.len();
    payload.resize(start + 16, 0);
    rng.fill(&mut payload[start..]);
    for list in [
        imp.kex,
        imp.host_key,
        imp.ciphers,
        imp.ciphers,
        imp.macs,
        imp.macs,
        imp.compression,
        imp.compression,
        "",
        "",
    ] {
        put_string(&mut payload, list.as_bytes());
    }
    payload.push(0); // first_kex_packet_follows
    put_u32(&mut payload, 0);
    clear_packet(&payload, rng)
}

/// The server's public host key blob and the length of a signature blob made with it.
fn host_key_blob(alg: &str, server_name: &str) -> (Vec<u8>, usize) {
    let mut key_rng = Rng::new(fnv1a(server_name));
    let mut blob = Vec::new();
    let signature_len = match alg {
        "ecdsa-sha2-nistp256" => {
            put_string(&mut blob, alg.as_bytes());
            put_string(&mut blob, b"nistp256");
            let mut point = vec![4u8; 65];
            key_rng.fill(&mut point[1..]);
            put_string(&mut blob, &point);
            // string alg, string (mpint r, mpint s)
            4 + alg.len() + 4 + 2 * (4 + 33)
        }
        "rsa-sha2-512" | "rsa-sha2-256" | "ssh-rsa" => {
            put_string(&mut blob, b"ssh-rsa");
            put_string(&mut blob, &[1, 0, 1]);
            let mut modulus = vec![0u8; 385];
            key_rng.fill(&mut modulus[1..]);
            modulus[1] |= 0x80;
            put_string(&mut blob, &modulus);
            4 + alg.len() + 4 + 384
        }
        _ => {
            put_string(&mut blob, b"ssh-ed25519");
            random_string(&mut blob, 32, &mut key_rng);
            4 + 11 + 4 + 64
        }
    };
    (blob, signature_len)
}

/// How long an encrypted packet with a `payload`-byte payload is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Framing {
    /// Cipher block the padded packet is a multiple of.
    block: usize,
    /// Bytes of the packet length in the clear before the padded part (AEAD and -etm).
    clear_length: usize,
    /// The MAC or AEAD tag.
    tag: usize,
}

impl Framing {
    fn new(cipher: &str, mac: &str) -> Framing {
        let aead = cipher.contains("gcm") || cipher.starts_with("chacha20");
        let block = if cipher.starts_with("chacha20") || cipher.starts_with("3des") {
            8
        } else {
            16
        };
        let tag = if aead {
            16
        } else if mac.starts_with("umac-64") || mac.ends_with("-96") {
            if mac.starts_with("umac-64") {
                8
            } else {
                12
            }
        } else if mac.contains("sha2-512") {
            64
        } else if mac.contains("sha2-256") || mac.starts_with("umac-128") {
            if mac.starts_with("umac-128") {
                16
            } else {
                32
            }
        } else if mac.contains("md5") {
            16
        } else {
            20
        };
        let clear_length = if aead || mac.contains("-etm@") { 4 } else { 0 };
        Framing {
            block,
            clear_length,
            tag,
        }
    }

    /// Wire length of one packet carrying `payload` bytes.
    fn packet_len(&self, payload: usize) -> u64 {
        let unpadded = 1 + payload + 4 - self.clear_length;
        let mut padding = self.block - unpadded % self.block;
        if padding < 4 {
            padding += self.block;
        }
        (4 + 1 + payload + padding + self.tag) as u64
    }
}

/// Largest channel-data payload OpenSSH packs into one packet (32 KiB window chunks).
const MAX_CHANNEL_DATA: usize = 32_768;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Versions,
    KeyExchange,
    Auth,
    Channel,
    Work,
    Close,
    Done,
}

/// The SSH conversation: turns queued one phase ahead.
pub struct SshApp {
    server_name: String,
    client: &'static Implementation,
    server: &'static Implementation,
    framing: Framing,
    password_fails: bool,
    bulk: bool,
    commands_left: u32,
    max_transfer: u64,
    phase: Phase,
    queue: VecDeque<Turn>,
}

fn turn(dir: Dir, stream: ByteStream, delay: u64) -> Turn {
    Turn { dir, stream, delay }
}

impl SshApp {
    pub fn new(server_name: &str, max_transfer: u64, rng: &mut Rng) -> Self {
        let client = rng.pick(&CLIENTS);
        let server = rng.pick(&SERVERS);
        let cipher = negotiate(client.ciphers, server.ciphers).unwrap_or("aes128-ctr");
        let mac = negotiate(client.macs, server.macs).unwrap_or("hmac-sha2-256");
        SshApp {
            server_name: server_name.to_string(),
            client,
            server,
            framing: Framing::new(cipher, mac),
            password_fails: rng.chance(150),
            bulk: rng.chance(350),
            commands_left: rng.range(1, 12) as u32,
            max_transfer,
            phase: Phase::Versions,
            queue: VecDeque::new(),
        }
    }

    /// Encrypted packets with these payload sizes, as one turn.
    fn encrypted(&self, dir: Dir, payloads: &[usize], delay: u64) -> Turn {
        let len = payloads.iter().map(|p| self.framing.packet_len(*p)).sum();
        turn(dir, ByteStream::new().random(len), delay)
    }

    /// Wire bytes of `data` bytes of channel data (header of 9 bytes per packet).
    fn channel_data_len(&self, data: u64) -> u64 {
        let full = data / MAX_CHANNEL_DATA as u64;
        let rest = (data % MAX_CHANNEL_DATA as u64) as usize;
        full * self.framing.packet_len(9 + MAX_CHANNEL_DATA)
            + if rest > 0 {
                self.framing.packet_len(9 + rest)
            } else {
                0
            }
    }

    fn key_exchange(&mut self, rng: &mut Rng) {
        let kex = negotiate(self.client.kex, self.server.kex).unwrap_or("curve25519-sha256");
        let host_alg =
            negotiate(self.client.host_key, self.server.host_key).unwrap_or("ssh-ed25519");
        let (client_len, server_len) = exchange_value_lens(kex);
        let q = &mut self.queue;
        q.push_back(turn(
            Dir::ToServer,
            ByteStream::new().bytes(kexinit(self.client, rng)),
            rng.range(100, 2_000),
        ));
        q.push_back(turn(
            Dir::ToClient,
            ByteStream::new().bytes(kexinit(self.server, rng)),
            rng.range(100, 2_000),
        ));
        let mut init = vec![MSG_KEX_ECDH_INIT];
        random_string(&mut init, client_len, rng);
        q.push_back(turn(
            Dir::ToServer,
            ByteStream::new().bytes(clear_packet(&init, rng)),
            rng.range(200, 3_000),
        ));
        let (key, signature_len) = host_key_blob(host_alg, &self.server_name);
        let mut reply = vec![MSG_KEX_ECDH_REPLY];
        put_string(&mut reply, &key);
        random_string(&mut reply, server_len, rng);
        let mut signature = Vec::new();
        put_string(&mut signature, host_alg.as_bytes());
        random_string(&mut signature, signature_len - 8 - host_alg.len(), rng);
        put_string(&mut reply, &signature);
        let mut flight = clear_packet(&reply, rng);
        flight.extend_from_slice(&clear_packet(&[MSG_NEWKEYS], rng));
        let mut flight = ByteStream::new().bytes(flight);
        if self.client.kex.contains("ext-info-c") {
            // RFC 8308: EXT_INFO (server-sig-algs, ...) as the first encrypted packet, right
            // after the server's NEWKEYS.
            flight = flight.random(self.framing.packet_len(rng.range(250, 290) as usize));
        }
        q.push_back(turn(Dir::ToClient, flight, rng.range(1_000, 30_000)));
        q.push_back(turn(
            Dir::ToServer,
            ByteStream::new().bytes(clear_packet(&[MSG_NEWKEYS], rng)),
            rng.range(100, 2_000),
        ));
    }

    fn auth(&mut self, rng: &mut Rng) {
        let turns = [
            // SERVICE_REQUEST ssh-userauth and SERVICE_ACCEPT. Zeek infers the auth outcome
            // from the server's packet sizes relative to this SERVICE_ACCEPT.
            self.encrypted(Dir::ToServer, &[17], rng.range(100, 2_000)),
            self.encrypted(Dir::ToClient, &[17], rng.range(100, 2_000)),
            // USERAUTH_REQUEST "none"; FAILURE "publickey,password".
            self.encrypted(
                Dir::ToServer,
                &[rng.range(34, 44) as usize],
                rng.range(100, 2_000),
            ),
            self.encrypted(Dir::ToClient, &[24], rng.range(100, 2_000)),
        ];
        self.queue.extend(turns);
        if self.password_fails {
            for _ in 0..3 {
                let attempt = self.encrypted(
                    Dir::ToServer,
                    &[rng.range(58, 72) as usize],
                    rng.log_uniform(300_000, 6_000_000),
                );
                // A failed password costs OpenSSH a delay before FAILURE.
                let failure = self.encrypted(Dir::ToClient, &[24], rng.range(1_500_000, 2_500_000));
                self.queue.extend([attempt, failure]);
            }
            self.phase = Phase::Done;
            return;
        }
        let turns = [
            // publickey query, PK_OK, the signed request, USERAUTH_SUCCESS.
            self.encrypted(
                Dir::ToServer,
                &[rng.range(120, 140) as usize],
                rng.range(100, 3_000),
            ),
            self.encrypted(
                Dir::ToClient,
                &[rng.range(80, 100) as usize],
                rng.range(100, 2_000),
            ),
            self.encrypted(
                Dir::ToServer,
                &[rng.range(215, 235) as usize],
                rng.range(500, 30_000),
            ),
            self.encrypted(Dir::ToClient, &[1], rng.range(1_000, 20_000)),
        ];
        self.queue.extend(turns);
        self.phase = Phase::Channel;
    }

    fn channel(&mut self, rng: &mut Rng) {
        let turns = [
            // CHANNEL_OPEN session; OPEN_CONFIRMATION and the hostkeys-00 global request.
            self.encrypted(Dir::ToServer, &[24], rng.range(100, 2_000)),
            self.encrypted(
                Dir::ToClient,
                &[17, rng.range(500, 900) as usize],
                rng.range(100, 2_000),
            ),
        ];
        self.queue.extend(turns);
        let turns = if self.bulk {
            // exec "scp -f ..." or the sftp subsystem, and its CHANNEL_SUCCESS.
            [
                self.encrypted(
                    Dir::ToServer,
                    &[rng.range(40, 120) as usize],
                    rng.range(100, 2_000),
                ),
                self.encrypted(Dir::ToClient, &[5, 9], rng.range(100, 2_000)),
            ]
        } else {
            // pty-req, env LANG, shell; window adjust, success and the login banner.
            [
                self.encrypted(
                    Dir::ToServer,
                    &[rng.range(240, 280) as usize, 44, 18],
                    rng.range(100, 2_000),
                ),
                self.encrypted(
                    Dir::ToClient,
                    &[9, 5, rng.range(400, 1_400) as usize],
                    rng.range(10_000, 200_000),
                ),
            ]
        };
        self.queue.extend(turns);
        self.phase = Phase::Work;
    }

    /// One interactive command line (keystrokes and echoes, then its output) or the bulk
    /// transfer.
    fn work(&mut self, rng: &mut Rng) {
        if self.bulk {
            let size = rng.log_uniform(10_000, self.max_transfer.max(10_000));
            let upload = rng.chance(300);
            let (dir, ack_dir) = if upload {
                (Dir::ToServer, Dir::ToClient)
            } else {
                (Dir::ToClient, Dir::ToServer)
            };
            let data = self.channel_data_len(size);
            self.queue.push_back(turn(
                dir,
                ByteStream::new().random(data),
                rng.range(1_000, 50_000),
            ));
            // The receiver's WINDOW_ADJUSTs, one per 2 MiB consumed.
            let adjusts = (size >> 21) as usize + 1;
            let acks = vec![9; adjusts];
            let ack = self.encrypted(ack_dir, &acks, rng.range(100, 5_000));
            self.queue.push_back(ack);
            self.commands_left = 0;
            return;
        }
        for _ in 0..rng.range(2, 30) {
            let key = self.encrypted(Dir::ToServer, &[10], rng.log_uniform(60_000, 600_000));
            let echo = self.encrypted(Dir::ToClient, &[10], rng.range(200, 2_000));
            self.queue.extend([key, echo]);
        }
        let enter = self.encrypted(Dir::ToServer, &[10], rng.log_uniform(100_000, 900_000));
        self.queue.push_back(enter);
        let output = rng.log_uniform(20, 20_000);
        let len = self.channel_data_len(output);
        self.queue.push_back(turn(
            Dir::ToClient,
            ByteStream::new().random(len),
            rng.log_uniform(2_000, 500_000),
        ));
        self.commands_left = self.commands_left.saturating_sub(1);
    }

    fn close(&mut self, rng: &mut Rng) {
        let turns = [
            // exit / EOF; exit-status, EOF and CLOSE; the client's CLOSE.
            self.encrypted(Dir::ToServer, &[10, 5], rng.log_uniform(200_000, 3_000_000)),
            self.encrypted(Dir::ToClient, &[26, 5, 5], rng.range(1_000, 20_000)),
            self.encrypted(Dir::ToServer, &[5], rng.range(100, 2_000)),
        ];
        self.queue.extend(turns);
    }
}

impl TcpApp for SshApp {
    fn next_turn(&mut self, rng: &mut Rng, _now: u64) -> Option<Turn> {
        loop {
            if let Some(turn) = self.queue.pop_front() {
                return Some(turn);
            }
            match self.phase {
                Phase::Versions => {
                    let client = format!("{}\r\n", self.client.version);
                    let server = format!("{}\r\n", self.server.version);
                    self.queue.push_back(turn(
                        Dir::ToServer,
                        ByteStream::new().bytes(client.into_bytes()),
                        rng.range(100, 2_000),
                    ));
                    self.queue.push_back(turn(
                        Dir::ToClient,
                        ByteStream::new().bytes(server.into_bytes()),
                        rng.range(500, 5_000),
                    ));
                    self.phase = Phase::KeyExchange;
                }
                Phase::KeyExchange => {
                    self.key_exchange(rng);
                    self.phase = Phase::Auth;
                }
                Phase::Auth => self.auth(rng),
                Phase::Channel => self.channel(rng),
                Phase::Work if self.commands_left > 0 => self.work(rng),
                Phase::Work => self.phase = Phase::Close,
                Phase::Close => {
                    self.close(rng);
                    self.phase = Phase::Done;
                }
                Phase::Done => return None,
            }
        }
    }

    fn ending(&self) -> Ending {
        Ending::ClientFin
    }

    fn wind_down(&mut self) {
        self.commands_left = self.commands_left.min(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(stream: &mut ByteStream, rng: &mut Rng) -> Vec<u8> {
        let mut out = Vec::new();
        while !stream.is_empty() {
            stream.fill(&mut out, 1460, rng);
        }
        out
    }

    /// Splits clear-text binary packets into their payloads, checking the framing; stops
    /// after `limit` packets (what follows NEWKEYS is encrypted).
    fn payloads_upto(mut bytes: &[u8], limit: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !bytes.is_empty() && out.len() < limit {
            let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
            let padding = usize::from(bytes[4]);
            assert_eq!((4 + len) % 8, 0, "packets are a multiple of 8");
            assert!((4..=255).contains(&padding));
            out.push(bytes[5..4 + len - padding].to_vec());
            bytes = &bytes[4 + len..];
        }
        out
    }

    fn payloads(bytes: &[u8]) -> Vec<Vec<u8>> {
        payloads_upto(bytes, usize::MAX)
    }

    fn name_lists(kexinit: &[u8]) -> Vec<String> {
        let mut pos = 17;
        let mut lists = Vec::new();
        for _ in 0..10 {
            let len = u32::from_be_bytes(kexinit[pos..pos + 4].try_into().unwrap()) as usize;
            lists.push(String::from_utf8(kexinit[pos + 4..pos + 4 + len].to_vec()).unwrap());
            pos += 4 + len;
        }
        assert_eq!(
            kexinit.len(),
            pos + 5,
            "first_kex_packet_follows and reserved"
        );
        lists
    }

    #[test]
    fn negotiation_takes_the_clients_first_common_algorithm() {
        assert_eq!(
            negotiate(CLIENTS[3].kex, SERVERS[0].kex),
            Some("curve25519-sha256@libssh.org")
        );
        assert_eq!(
            negotiate(CLIENTS[0].kex, SERVERS[0].kex),
            Some("sntrup761x25519-sha512@openssh.com")
        );
        assert_eq!(
            negotiate(CLIENTS[0].kex, SERVERS[1].kex),
            Some("curve25519-sha256")
        );
        for client in &CLIENTS {
            for server in &SERVERS {
                for (c, s) in [
                    (client.kex, server.kex),
                    (client.host_key, server.host_key),
                    (client.ciphers, server.ciphers),
                    (client.macs, server.macs),
                    (client.compression, server.compression),
                ] {
                    assert!(negotiate(c, s).is_some(), "{c} / {s}");
                }
            }
        }
    }

    #[test]
    fn session_opens_with_version_lines_kexinit_ecdh_and_newkeys() {
        for seed in 0..12 {
            let mut rng = Rng::new(seed);
            let mut app = SshApp::new("git.example.org", 100_000, &mut rng);
            let mut turns = Vec::new();
            while let Some(mut turn) = app.next_turn(&mut rng, 0) {
                let bytes = drain(&mut turn.stream, &mut rng);
                turns.push((turn.dir, bytes));
            }
            let version = |i: usize| String::from_utf8(turns[i].1.clone()).unwrap();
            assert!(version(0).starts_with("SSH-2.0-") && version(0).ends_with("\r\n"));
            assert!(version(1).starts_with("SSH-2.0-") && version(1).ends_with("\r\n"));
            let client_kex = payloads(&turns[2].1);
            let server_kex = payloads(&turns[3].1);
            assert_eq!(
                (client_kex[0][0], server_kex[0][0]),
                (MSG_KEXINIT, MSG_KEXINIT)
            );
            let lists = name_lists(&client_kex[0]);
            assert_eq!(lists[0], app.client.kex);
            assert_eq!(lists[2], lists[3]);
            assert_eq!(name_lists(&server_kex[0])[1], app.server.host_key);
            let init = payloads(&turns[4].1);
            assert_eq!(init[0][0], MSG_KEX_ECDH_INIT);
            let kex = negotiate(app.client.kex, app.server.kex).unwrap();
            assert_eq!(init[0].len(), 1 + 4 + exchange_value_lens(kex).0);
            let reply = payloads_upto(&turns[5].1, 2);
            assert_eq!(
                (reply[0][0], reply[1].as_slice()),
                (MSG_KEX_ECDH_REPLY, &[MSG_NEWKEYS][..])
            );
            assert_eq!(payloads(&turns[6].1), vec![vec![MSG_NEWKEYS]]);
            assert!(turns.len() > 12, "an encrypted phase follows");
        }
    }

    /// Byte counts of the server's turns after its NEWKEYS flight.
    fn server_turns_after_kex(seed: u64, password_fails: bool) -> Vec<usize> {
        let mut rng = Rng::new(seed);
        let mut app = SshApp::new("git.example.org", 100_000, &mut rng);
        app.password_fails = password_fails;
        let mut lens = Vec::new();
        let mut index = 0;
        while let Some(mut turn) = app.next_turn(&mut rng, 0) {
            let bytes = drain(&mut turn.stream, &mut rng);
            if index > 6 && turn.dir == Dir::ToClient {
                lens.push(bytes.len());
            }
            index += 1;
        }
        lens
    }

    /// Zeek's SSH analyzer infers the outcome from sizes: USERAUTH_SUCCESS is 16 bytes
    /// shorter than SERVICE_ACCEPT, failures repeat the first FAILURE's size.
    #[test]
    fn auth_packet_sizes_tell_success_from_failure_as_zeek_infers_it() {
        for seed in 0..20 {
            let ok = server_turns_after_kex(seed, false);
            let accept = ok[0];
            assert!(ok.iter().any(|&len| len + 16 == accept), "{ok:?}");
            let failed = server_turns_after_kex(seed, true);
            let failure = failed[1];
            assert_eq!(failed.iter().filter(|&&len| len == failure).count(), 4);
            assert!(!failed.iter().any(|&len| len + 16 == failed[0]));
        }
    }

    #[test]
    fn encrypted_packet_lengths_follow_the_cipher() {
        let chacha = Framing::new("chacha20-poly1305@openssh.com", "umac-64-etm@openssh.com");
        // A keystroke: 1 + 10 + 5 padding = 16 after the clear length, plus the tag.
        assert_eq!(chacha.packet_len(10), 4 + 1 + 10 + 5 + 16);
        // Without -etm the length is encrypted too: 4 + 1 + 10 + 17 = 32, then the MAC.
        let ctr = Framing::new("aes128-ctr", "hmac-sha2-256");
        assert_eq!(ctr.packet_len(10), 32 + 32);
    }
}
