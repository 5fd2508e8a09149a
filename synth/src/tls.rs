//! TLS over one TCP connection (port 443): a ClientHello with SNI, ALPN, supported_versions
//! and an x25519 key_share; the server answers either TLS 1.3 (ServerHello, then encrypted
//! flight) or TLS 1.2 with TLS_ECDHE_RSA_WITH_AES_*_GCM (ServerHello, Certificate carrying a
//! real self-signed X.509 certificate, ServerKeyExchange, ServerHelloDone, then
//! ClientKeyExchange, ChangeCipherSpec and encrypted Finished both ways); then
//! application-data exchanges and an encrypted close_notify alert. After a STARTTLS (SMTP)
//! the same handshake runs without ALPN and the client sends the bulk (`TlsApp::upgraded`).

use super::rng::Rng;
use super::stream::ByteStream;
use super::tcp::{Dir, Ending, TcpApp, Turn};

/// A self-signed RSA-2048 certificate for *.example.com/.net/.org made once with openssl;
/// parsers dissect it as real X.509, which random bytes would not pass.
const CERTIFICATE_DER: &[u8] = include_bytes!("synthetic_cert.der");

const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
const CONTENT_ALERT: u8 = 21;
const CONTENT_HANDSHAKE: u8 = 22;
const CONTENT_APPLICATION_DATA: u8 = 23;

const HS_CLIENT_HELLO: u8 = 1;
const HS_SERVER_HELLO: u8 = 2;
const HS_CERTIFICATE: u8 = 11;
const HS_SERVER_KEY_EXCHANGE: u8 = 12;
const HS_SERVER_HELLO_DONE: u8 = 14;
const HS_CLIENT_KEY_EXCHANGE: u8 = 16;

const TLS10: u16 = 0x0301;
const TLS12: u16 = 0x0303;
const TLS13: u16 = 0x0304;
const GROUP_X25519: u16 = 0x001d;

pub const TLS_AES_128_GCM_SHA256: u16 = 0x1301;
pub const TLS_AES_256_GCM_SHA384: u16 = 0x1302;
pub const TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: u16 = 0xc02f;
pub const TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: u16 = 0xc030;

const CLIENT_CIPHERS: [u16; 15] = [
    0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c,
    0x009d, 0x002f, 0x0035,
];

/// One TLS record.
fn record(content_type: u8, version: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(content_type);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A handshake message: type, 24-bit length, body.
fn handshake(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![msg_type];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(body);
    out
}

fn extension(out: &mut Vec<u8>, ext_type: u16, data: &[u8]) {
    out.extend_from_slice(&ext_type.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

fn u16_list(values: &[u16]) -> Vec<u8> {
    let mut out = ((values.len() * 2) as u16).to_be_bytes().to_vec();
    for v in values {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out
}

fn random_bytes<const N: usize>(rng: &mut Rng) -> [u8; N] {
    let mut out = [0u8; N];
    rng.fill(&mut out);
    out
}

/// The ClientHello record a current browser sends.
pub fn client_hello(sni: &str, alpn: &[&str], session_id: &[u8; 32], rng: &mut Rng) -> Vec<u8> {
    let mut body = TLS12.to_be_bytes().to_vec();
    body.extend_from_slice(&random_bytes::<32>(rng));
    body.push(32);
    body.extend_from_slice(session_id);
    body.extend_from_slice(&u16_list(&CLIENT_CIPHERS));
    body.extend_from_slice(&[1, 0]); // compression: null only

    let mut ext = Vec::new();
    let mut server_name = Vec::new();
    server_name.extend_from_slice(&((sni.len() + 3) as u16).to_be_bytes());
    server_name.push(0); // host_name
    server_name.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    server_name.extend_from_slice(sni.as_bytes());
    extension(&mut ext, 0, &server_name);
    extension(&mut ext, 23, &[]); // extended_master_secret
    extension(&mut ext, 0xff01, &[0]); // renegotiation_info
    extension(&mut ext, 10, &u16_list(&[GROUP_X25519, 0x0017, 0x0018]));
    extension(&mut ext, 11, &[1, 0]); // ec_point_formats: uncompressed
    extension(&mut ext, 35, &[]); // session_ticket
    let mut protocols = Vec::new();
    for proto in alpn {
        protocols.push(proto.len() as u8);
        protocols.extend_from_slice(proto.as_bytes());
    }
    if !protocols.is_empty() {
        let mut alpn_data = (protocols.len() as u16).to_be_bytes().to_vec();
        alpn_data.extend_from_slice(&protocols);
        extension(&mut ext, 16, &alpn_data);
    }
    extension(&mut ext, 5, &[1, 0, 0, 0, 0]); // status_request: OCSP
    extension(
        &mut ext,
        13,
        &u16_list(&[
            0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
        ]),
    );
    let mut key_share = 36u16.to_be_bytes().to_vec();
    key_share.extend_from_slice(&GROUP_X25519.to_be_bytes());
    key_share.extend_from_slice(&32u16.to_be_bytes());
    key_share.extend_from_slice(&random_bytes::<32>(rng));
    extension(&mut ext, 51, &key_share);
    extension(&mut ext, 43, &[4, 0x03, 0x04, 0x03, 0x03]); // supported_versions
    extension(&mut ext, 45, &[1, 1]); // psk_key_exchange_modes: psk_dhe_ke
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    record(CONTENT_HANDSHAKE, TLS10, &handshake(HS_CLIENT_HELLO, &body))
}

/// The ServerHello message (not yet wrapped in a record).
fn server_hello(
    version: u16,
    cipher: u16,
    session_id: &[u8; 32],
    alpn: &str,
    rng: &mut Rng,
) -> Vec<u8> {
    let mut body = TLS12.to_be_bytes().to_vec();
    body.extend_from_slice(&random_bytes::<32>(rng));
    body.push(32);
    body.extend_from_slice(session_id);
    body.extend_from_slice(&cipher.to_be_bytes());
    body.push(0);
    let mut ext = Vec::new();
    if version == TLS13 {
        extension(&mut ext, 43, &TLS13.to_be_bytes());
        let mut key_share = GROUP_X25519.to_be_bytes().to_vec();
        key_share.extend_from_slice(&32u16.to_be_bytes());
        key_share.extend_from_slice(&random_bytes::<32>(rng));
        extension(&mut ext, 51, &key_share);
    } else {
        extension(&mut ext, 0xff01, &[0]);
        extension(&mut ext, 11, &[1, 0]);
        if !alpn.is_empty() {
            let mut alpn_data = ((alpn.len() + 1) as u16).to_be_bytes().to_vec();
            alpn_data.push(alpn.len() as u8);
            alpn_data.extend_from_slice(alpn.as_bytes());
            extension(&mut ext, 16, &alpn_data);
        }
        extension(&mut ext, 23, &[]);
    }
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    handshake(HS_SERVER_HELLO, &body)
}

/// Certificate + ServerKeyExchange (x25519, rsa_pss_rsae_sha256) + ServerHelloDone.
fn tls12_server_flight_tail(rng: &mut Rng) -> Vec<u8> {
    let mut certs = Vec::new();
    certs.extend_from_slice(&(CERTIFICATE_DER.len() as u32).to_be_bytes()[1..]);
    certs.extend_from_slice(CERTIFICATE_DER);
    let mut cert_body = (certs.len() as u32).to_be_bytes()[1..].to_vec();
    cert_body.extend_from_slice(&certs);
    let mut out = handshake(HS_CERTIFICATE, &cert_body);

    let mut ske = vec![3]; // named_curve
    ske.extend_from_slice(&GROUP_X25519.to_be_bytes());
    ske.push(32);
    ske.extend_from_slice(&random_bytes::<32>(rng));
    ske.extend_from_slice(&0x0804u16.to_be_bytes());
    ske.extend_from_slice(&256u16.to_be_bytes());
    ske.extend_from_slice(&random_bytes::<256>(rng));
    out.extend_from_slice(&handshake(HS_SERVER_KEY_EXCHANGE, &ske));
    out.extend_from_slice(&handshake(HS_SERVER_HELLO_DONE, &[]));
    out
}

/// An encrypted record of `len` random bytes.
fn encrypted(content_type: u8, len: usize, rng: &mut Rng) -> Vec<u8> {
    let mut body = vec![0u8; len];
    rng.fill(&mut body);
    record(content_type, TLS12, &body)
}

enum Step {
    ClientHello,
    ServerFlight,
    ClientFinish,
    ServerFinish,
    Request,
    Response,
    Done,
}

pub struct TlsApp {
    sni: String,
    tls13: bool,
    cipher: u16,
    alpn: &'static str,
    session_id: [u8; 32],
    step: Step,
    exchanges_left: u32,
    max_body: u64,
    client_resets: bool,
    /// Started inside another protocol (STARTTLS): no ALPN, the client sends the big
    /// records and the server answers briefly, as a mail submission does.
    upgraded: bool,
}

impl TlsApp {
    pub fn new(sni: &str, max_body: u64, rng: &mut Rng) -> Self {
        let tls13 = rng.chance(600);
        let cipher = match (tls13, rng.chance(700)) {
            (true, true) => TLS_AES_128_GCM_SHA256,
            (true, false) => TLS_AES_256_GCM_SHA384,
            (false, true) => TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            (false, false) => TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        };
        TlsApp {
            sni: sni.to_string(),
            tls13,
            cipher,
            alpn: if rng.chance(700) { "h2" } else { "http/1.1" },
            session_id: random_bytes::<32>(rng),
            step: Step::ClientHello,
            exchanges_left: rng.range(1, 6) as u32,
            max_body,
            client_resets: rng.chance(80),
            upgraded: false,
        }
    }

    /// The same connection started by STARTTLS inside a plaintext protocol: no ALPN, bulk
    /// data from the client, `exchanges` exchanges, closed by the client's FIN.
    pub fn upgraded(mut self, exchanges: u32) -> Self {
        self.upgraded = true;
        self.alpn = "";
        self.exchanges_left = exchanges.max(1);
        self.client_resets = false;
        self
    }

    /// Record bytes of the client's request: a small request, or the bulk when upgraded.
    fn request_size(&self, rng: &mut Rng) -> u64 {
        if self.upgraded {
            self.response_size(rng)
        } else {
            rng.range(60, 900)
        }
    }

    /// Record bytes of the server's answer: a body, or a short status line when upgraded.
    fn answer_size(&self, rng: &mut Rng) -> u64 {
        if self.upgraded {
            rng.range(40, 200)
        } else {
            self.response_size(rng)
        }
    }

    fn response_size(&self, rng: &mut Rng) -> u64 {
        rng.log_uniform(300, self.max_body.max(300))
    }
}

impl TcpApp for TlsApp {
    fn next_turn(&mut self, rng: &mut Rng, _now: u64) -> Option<Turn> {
        let (dir, bytes, delay, next) = match self.step {
            Step::ClientHello => (
                Dir::ToServer,
                ByteStream::new().bytes(client_hello(
                    &self.sni,
                    if self.upgraded {
                        &[]
                    } else {
                        &["h2", "http/1.1"]
                    },
                    &self.session_id,
                    rng,
                )),
                rng.range(50, 1_000),
                Step::ServerFlight,
            ),
            Step::ServerFlight => {
                let version = if self.tls13 { TLS13 } else { TLS12 };
                let hello = server_hello(version, self.cipher, &self.session_id, self.alpn, rng);
                let mut flight = ByteStream::new();
                if self.tls13 {
                    flight = flight
                        .bytes(record(CONTENT_HANDSHAKE, TLS12, &hello))
                        .bytes(record(CONTENT_CHANGE_CIPHER_SPEC, TLS12, &[1]))
                        .bytes(encrypted(
                            CONTENT_APPLICATION_DATA,
                            rng.range(2_000, 4_500) as usize,
                            rng,
                        ));
                } else {
                    let mut messages = hello;
                    messages.extend_from_slice(&tls12_server_flight_tail(rng));
                    flight = flight.bytes(record(CONTENT_HANDSHAKE, TLS12, &messages));
                }
                (
                    Dir::ToClient,
                    flight,
                    rng.range(200, 5_000),
                    Step::ClientFinish,
                )
            }
            Step::ClientFinish => {
                let mut out = ByteStream::new();
                if self.tls13 {
                    out = out
                        .bytes(record(CONTENT_CHANGE_CIPHER_SPEC, TLS12, &[1]))
                        .bytes(encrypted(CONTENT_APPLICATION_DATA, 53, rng))
                        .bytes(encrypted(
                            CONTENT_APPLICATION_DATA,
                            rng.range(80, 700) as usize,
                            rng,
                        ));
                } else {
                    let mut cke = vec![32];
                    cke.extend_from_slice(&random_bytes::<32>(rng));
                    out = out
                        .bytes(record(
                            CONTENT_HANDSHAKE,
                            TLS12,
                            &handshake(HS_CLIENT_KEY_EXCHANGE, &cke),
                        ))
                        .bytes(record(CONTENT_CHANGE_CIPHER_SPEC, TLS12, &[1]))
                        .bytes(encrypted(CONTENT_HANDSHAKE, 40, rng));
                }
                (
                    Dir::ToServer,
                    out,
                    rng.range(100, 3_000),
                    Step::ServerFinish,
                )
            }
            Step::ServerFinish => {
                let mut out = ByteStream::new();
                let next = if self.tls13 {
                    // NewSessionTicket messages, then the answer to the first request.
                    out = out
                        .bytes(encrypted(
                            CONTENT_APPLICATION_DATA,
                            rng.range(200, 300) as usize,
                            rng,
                        ))
                        .bytes(encrypted(
                            CONTENT_APPLICATION_DATA,
                            rng.range(200, 300) as usize,
                            rng,
                        ))
                        .tls_records(self.answer_size(rng));
                    self.exchanges_left -= 1;
                    Step::Request
                } else {
                    out = out
                        .bytes(record(CONTENT_CHANGE_CIPHER_SPEC, TLS12, &[1]))
                        .bytes(encrypted(CONTENT_HANDSHAKE, 40, rng));
                    Step::Request
                };
                (Dir::ToClient, out, rng.range(100, 20_000), next)
            }
            Step::Request => {
                if self.exchanges_left == 0 {
                    let alert = encrypted(CONTENT_ALERT, 26, rng);
                    self.step = Step::Done;
                    return Some(Turn {
                        dir: Dir::ToServer,
                        stream: ByteStream::new().bytes(alert),
                        delay: rng.log_uniform(1_000, 2_000_000),
                    });
                }
                self.exchanges_left -= 1;
                (
                    Dir::ToServer,
                    ByteStream::new().tls_records(self.request_size(rng)),
                    rng.log_uniform(500, 1_500_000),
                    Step::Response,
                )
            }
            Step::Response => (
                Dir::ToClient,
                ByteStream::new().tls_records(self.answer_size(rng)),
                rng.log_uniform(200, 100_000),
                Step::Request,
            ),
            Step::Done => return None,
        };
        self.step = next;
        Some(Turn {
            dir,
            stream: bytes,
            delay,
        })
    }

    fn wind_down(&mut self) {
        self.exchanges_left = self.exchanges_left.min(1);
    }

    fn ending(&self) -> Ending {
        if self.client_resets {
            Ending::ClientRst
        } else {
            Ending::ClientFin
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks the extensions of a ClientHello record and returns (type, data) pairs.
    fn client_hello_extensions(rec: &[u8]) -> Vec<(u16, Vec<u8>)> {
        assert_eq!(rec[0], CONTENT_HANDSHAKE);
        let rec_len = u16::from_be_bytes([rec[3], rec[4]]) as usize;
        assert_eq!(rec_len + 5, rec.len(), "record length");
        let hs = &rec[5..];
        assert_eq!(hs[0], HS_CLIENT_HELLO);
        let hs_len = u32::from_be_bytes([0, hs[1], hs[2], hs[3]]) as usize;
        assert_eq!(hs_len + 4, hs.len(), "handshake length");
        let mut p = 4 + 2 + 32;
        p += 1 + hs[p] as usize; // session id
        p += 2 + u16::from_be_bytes([hs[p], hs[p + 1]]) as usize; // ciphers
        p += 1 + hs[p] as usize; // compression
        let ext_len = u16::from_be_bytes([hs[p], hs[p + 1]]) as usize;
        p += 2;
        assert_eq!(p + ext_len, hs.len(), "extensions length");
        let mut out = Vec::new();
        while p < hs.len() {
            let t = u16::from_be_bytes([hs[p], hs[p + 1]]);
            let l = u16::from_be_bytes([hs[p + 2], hs[p + 3]]) as usize;
            out.push((t, hs[p + 4..p + 4 + l].to_vec()));
            p += 4 + l;
        }
        out
    }

    #[test]
    fn client_hello_is_well_formed_with_sni_alpn_versions_and_key_share() {
        let mut rng = Rng::new(9);
        let rec = client_hello("www.example.com", &["h2", "http/1.1"], &[7; 32], &mut rng);
        let ext = client_hello_extensions(&rec);
        let find = |t: u16| {
            ext.iter()
                .find(|(et, _)| *et == t)
                .map(|(_, d)| d.clone())
                .unwrap()
        };
        let sni = find(0);
        assert_eq!(&sni[5..], b"www.example.com");
        assert_eq!(find(16), b"\x00\x0c\x02h2\x08http/1.1".to_vec());
        assert_eq!(find(43), vec![4, 3, 4, 3, 3]);
        let ks = find(51);
        assert_eq!(&ks[..6], &[0, 36, 0, 0x1d, 0, 32]);
        assert_eq!(ks.len(), 38);
    }

    #[test]
    fn tls12_server_flight_carries_the_certificate_and_framing_is_consistent() {
        let mut rng = Rng::new(2);
        let mut app = TlsApp::new("api.example.org", 50_000, &mut rng);
        app.tls13 = false;
        app.cipher = TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256;
        let mut turns = Vec::new();
        while let Some(turn) = app.next_turn(&mut rng, 0) {
            let mut bytes = Vec::new();
            let mut stream = turn.stream;
            while !stream.is_empty() {
                stream.fill(&mut bytes, 1460, &mut rng);
            }
            turns.push((turn.dir, bytes));
        }
        // Every turn is a whole number of well-framed records.
        for (_, bytes) in &turns {
            let mut p = 0;
            while p < bytes.len() {
                assert!((20..=23).contains(&bytes[p]));
                p += 5 + u16::from_be_bytes([bytes[p + 3], bytes[p + 4]]) as usize;
            }
            assert_eq!(p, bytes.len());
        }
        let flight = &turns[1].1;
        assert_eq!(turns[1].0, Dir::ToClient);
        assert_eq!(flight[5], HS_SERVER_HELLO);
        let cipher_at = 5 + 4 + 2 + 32 + 1 + 32;
        assert_eq!(&flight[cipher_at..cipher_at + 2], &[0xc0, 0x2f]);
        assert!(flight
            .windows(CERTIFICATE_DER.len())
            .any(|w| w == CERTIFICATE_DER));
        assert_eq!(turns.last().map(|t| t.1[0]), Some(CONTENT_ALERT));
    }
}
