//! SMTP over one TCP connection (port 25 relay, port 587 submission), as Postfix and Exim
//! answer a mail client: the 220 banner, EHLO and its multiline 250, then either STARTTLS
//! (220, then a TLS handshake and encrypted records, see `tls::TlsApp::upgraded`) or, in the
//! clear, one or more transactions: MAIL FROM, RCPT TO (one may be refused with 550), DATA,
//! 354, a MIME message (From/To/Subject/Date/Message-ID headers, a text part and one or two
//! base64 attachments), the final dot and the 250 "queued as"; QUIT and 221 last, after
//! which the server closes.
//!
//! Submission (587) always upgrades to TLS, as clients require; relays (25) for a share of
//! sessions. The message body is streamed (`ByteStream::base64_file`), so attachments of
//! any size cost no memory.

use std::collections::VecDeque;
use std::fmt::Write as _;

use super::http::http_date;
use super::rng::Rng;
use super::stream::{base64_lines_len, ByteStream};
use super::tcp::{Dir, Ending, TcpApp, Turn};
use super::tls::TlsApp;

const BANNERS: [&str; 3] = [
    "ESMTP Postfix (Debian/GNU)",
    "ESMTP Exim 4.96 #2",
    "Microsoft ESMTP MAIL Service ready",
];
const USER_AGENTS: [&str; 4] = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.11.0",
    "Microsoft Outlook 16.0",
    "Apple Mail (2.3774.600.62)",
    "Roundcube Webmail/1.6.6",
];
const PEOPLE: [&str; 8] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
];
const SUBJECTS: [&str; 6] = [
    "Quarterly report",
    "Re: meeting notes",
    "Invoice 2024-0457",
    "Fwd: scanned documents",
    "Photos from the offsite",
    "Updated contract draft",
];
/// Attachment kinds: MIME type, file extension and the magic bytes the file starts with.
const ATTACHMENTS: [(&str, &str, &[u8]); 4] = [
    ("application/pdf", "pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"),
    (
        "application/zip",
        "zip",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
    ),
    ("image/png", "png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
        b"PK\x03\x04\x14\x00\x06\x00\x08\x00",
    ),
];
const TEXT_LINES: [&str; 5] = [
    "Hello,",
    "please find the documents attached, as discussed on the phone.",
    "Let me know if anything is missing or if you need another format.",
    "Best regards,",
    "-- ",
];

/// A mail address at one of the synthetic domains.
fn address(rng: &mut Rng, domain: &str) -> String {
    format!("{}@{domain}", rng.choose(&PEOPLE))
}

/// The date of a message as RFC 5322 writes it (`http_date` with a numeric zone).
pub fn mail_date(unix_secs: u64) -> String {
    http_date(unix_secs).replace("GMT", "+0000")
}

/// The whole DATA payload of one message, up to and including the final `.` line.
fn message(
    from: &str,
    to: &[String],
    user_agent: &str,
    max_attachment: u64,
    now_us: u64,
    rng: &mut Rng,
) -> ByteStream {
    let boundary = format!("------------{:016x}", rng.next_u64());
    let domain = from.split('@').nth(1).unwrap_or("example.com");
    let mut head = String::with_capacity(1024);
    let _ = write!(
        head,
        "Date: {}\r\nFrom: {} <{from}>\r\nTo: {}\r\nSubject: {}\r\nMessage-ID: <{:08x}.{:04x}@{domain}>\r\nUser-Agent: {user_agent}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\nThis is a multi-part message in MIME format.\r\n--{boundary}\r\nContent-Type: text/plain; charset=UTF-8; format=flowed\r\nContent-Transfer-Encoding: 7bit\r\n\r\n",
        mail_date(now_us / 1_000_000),
        from.split('@').next().unwrap_or("user"),
        to.join(", "),
        rng.choose(&SUBJECTS),
        rng.next_u32(),
        rng.range(0, 0xFFFF),
    );
    for _ in 0..rng.range(1, 4) {
        for line in TEXT_LINES {
            head.push_str(line);
            head.push_str("\r\n");
        }
    }
    let mut stream = ByteStream::new().bytes(head.into_bytes());
    for _ in 0..rng.range(1, 2) {
        let (mime, ext, magic) = rng.choose(&ATTACHMENTS);
        let name = format!("document-{}.{ext}", rng.range(100, 9_999));
        let part = format!(
            "\r\n--{boundary}\r\nContent-Type: {mime}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        );
        let raw = rng.log_uniform(2_000, max_attachment.max(2_000));
        stream = stream.bytes(part.into_bytes()).base64_file(magic, raw);
    }
    stream.bytes(format!("\r\n--{boundary}--\r\n.\r\n").into_bytes())
}

/// The SMTP conversation: turns queued one phase ahead.
pub struct SmtpApp {
    server_name: String,
    client_name: String,
    sender_domain: String,
    rcpt_domain: String,
    user_agent: &'static str,
    banner: &'static str,
    starttls: bool,
    transactions_left: u32,
    max_attachment: u64,
    queue: VecDeque<Turn>,
    phase: Phase,
    tls: Option<TlsApp>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Greeting,
    Transactions,
    Quit,
    Done,
}

fn turn(dir: Dir, text: String, delay: u64) -> Turn {
    Turn {
        dir,
        stream: ByteStream::new().bytes(text.into_bytes()),
        delay,
    }
}

impl SmtpApp {
    /// A session to `server_name` on `port` (587 is submission and always upgrades).
    pub fn new(server_name: &str, port: u16, max_attachment: u64, rng: &mut Rng) -> Self {
        let domain = server_name
            .split_once('.')
            .map_or(server_name, |(_, d)| d)
            .to_string();
        let submission = port == 587;
        let sender_domain = if submission {
            domain.clone()
        } else {
            (*rng.pick(&["corp.example", "example.org", "shop.test"])).to_string()
        };
        SmtpApp {
            server_name: server_name.to_string(),
            client_name: format!("ws{:02}.corp.example", rng.range(1, 60)),
            sender_domain,
            rcpt_domain: domain,
            user_agent: rng.choose(&USER_AGENTS),
            banner: rng.choose(&BANNERS),
            starttls: submission || rng.chance(300),
            transactions_left: if rng.chance(750) {
                1
            } else {
                rng.range(2, 4) as u32
            },
            max_attachment,
            queue: VecDeque::new(),
            phase: Phase::Greeting,
            tls: None,
        }
    }

    /// Queues the banner, EHLO and its answer, and STARTTLS if the session upgrades.
    fn greeting(&mut self, rng: &mut Rng) {
        let server = &self.server_name;
        self.queue.push_back(turn(
            Dir::ToClient,
            format!("220 {server} {}\r\n", self.banner),
            rng.range(200, 3_000),
        ));
        self.queue.push_back(turn(
            Dir::ToServer,
            format!("EHLO {}\r\n", self.client_name),
            rng.range(100, 2_000),
        ));
        let mut ehlo = format!("250-{server}\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n");
        ehlo.push_str("250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n");
        ehlo.push_str("250-8BITMIME\r\n250-DSN\r\n250 SMTPUTF8\r\n");
        self.queue
            .push_back(turn(Dir::ToClient, ehlo, rng.range(100, 2_000)));
        if self.starttls {
            self.queue.push_back(turn(
                Dir::ToServer,
                "STARTTLS\r\n".to_string(),
                rng.range(100, 2_000),
            ));
            self.queue.push_back(turn(
                Dir::ToClient,
                "220 2.0.0 Ready to start TLS\r\n".to_string(),
                rng.range(100, 2_000),
            ));
        }
    }

    /// Queues one mail transaction: envelope, DATA, the message and its acceptance.
    fn transaction(&mut self, rng: &mut Rng, now: u64) {
        let from = address(rng, &self.sender_domain);
        let recipients: Vec<String> = (0..rng.range(1, 3))
            .map(|_| address(rng, &self.rcpt_domain))
            .collect();
        let body = message(
            &from,
            &recipients,
            self.user_agent,
            self.max_attachment,
            now,
            rng,
        );
        let size = body.remaining();
        self.queue.push_back(turn(
            Dir::ToServer,
            format!("MAIL FROM:<{from}> SIZE={size}\r\n"),
            rng.log_uniform(200, 500_000),
        ));
        self.queue.push_back(turn(
            Dir::ToClient,
            "250 2.1.0 Ok\r\n".to_string(),
            rng.range(100, 3_000),
        ));
        for rcpt in &recipients {
            self.queue.push_back(turn(
                Dir::ToServer,
                format!("RCPT TO:<{rcpt}>\r\n"),
                rng.range(100, 2_000),
            ));
            let answer = if recipients.len() > 1 && rng.chance(100) {
                format!("550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown\r\n")
            } else {
                "250 2.1.5 Ok\r\n".to_string()
            };
            self.queue
                .push_back(turn(Dir::ToClient, answer, rng.range(100, 5_000)));
        }
        self.queue.push_back(turn(
            Dir::ToServer,
            "DATA\r\n".to_string(),
            rng.range(100, 2_000),
        ));
        self.queue.push_back(turn(
            Dir::ToClient,
            "354 End data with <CR><LF>.<CR><LF>\r\n".to_string(),
            rng.range(100, 2_000),
        ));
        self.queue.push_back(Turn {
            dir: Dir::ToServer,
            stream: body,
            delay: rng.range(100, 5_000),
        });
        self.queue.push_back(turn(
            Dir::ToClient,
            format!("250 2.0.0 Ok: queued as {:011X}\r\n", rng.next_u64() >> 20),
            rng.range(1_000, 200_000),
        ));
    }

    /// Record bytes of a message sent over TLS: what the clear-text transaction would take.
    fn tls_message_size(&self, rng: &mut Rng) -> u64 {
        let attachment = rng.log_uniform(2_000, self.max_attachment.max(2_000));
        base64_lines_len(attachment) + rng.range(1_500, 4_000)
    }
}

impl TcpApp for SmtpApp {
    fn next_turn(&mut self, rng: &mut Rng, now: u64) -> Option<Turn> {
        loop {
            if let Some(tls) = &mut self.tls {
                return tls.next_turn(rng, now);
            }
            if let Some(turn) = self.queue.pop_front() {
                return Some(turn);
            }
            match self.phase {
                Phase::Greeting => {
                    self.greeting(rng);
                    self.phase = Phase::Transactions;
                }
                Phase::Transactions if self.starttls => {
                    let max = self.tls_message_size(rng);
                    let exchanges = self.transactions_left;
                    self.tls = Some(TlsApp::new(&self.server_name, max, rng).upgraded(exchanges));
                }
                Phase::Transactions if self.transactions_left > 0 => {
                    self.transactions_left -= 1;
                    self.transaction(rng, now);
                }
                Phase::Transactions => self.phase = Phase::Quit,
                Phase::Quit => {
                    self.queue.push_back(turn(
                        Dir::ToServer,
                        "QUIT\r\n".to_string(),
                        rng.log_uniform(200, 200_000),
                    ));
                    self.queue.push_back(turn(
                        Dir::ToClient,
                        "221 2.0.0 Bye\r\n".to_string(),
                        rng.range(100, 2_000),
                    ));
                    self.phase = Phase::Done;
                }
                Phase::Done => return None,
            }
        }
    }

    fn ending(&self) -> Ending {
        match &self.tls {
            Some(tls) => tls.ending(),
            None => Ending::ServerFin,
        }
    }

    fn wind_down(&mut self) {
        self.transactions_left = self.transactions_left.min(1);
        if let Some(tls) = &mut self.tls {
            tls.wind_down();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::tests::base64_decode;

    /// Runs the whole conversation and returns each side's bytes in turn order.
    fn transcript(app: &mut SmtpApp, rng: &mut Rng) -> Vec<(Dir, Vec<u8>)> {
        let mut turns = Vec::new();
        let mut now = 1_714_564_800_000_000;
        while let Some(mut turn) = app.next_turn(rng, now) {
            let mut bytes = Vec::new();
            while !turn.stream.is_empty() {
                turn.stream.fill(&mut bytes, 1460, rng);
            }
            now += turn.delay;
            turns.push((turn.dir, bytes));
        }
        turns
    }

    #[test]
    fn plaintext_session_is_a_well_formed_dialogue_with_a_mime_message() {
        let mut rng = Rng::new(11);
        let mut app = SmtpApp::new("mail.example.com", 25, 50_000, &mut rng);
        app.starttls = false;
        app.transactions_left = 2;
        let turns = transcript(&mut app, &mut rng);
        let text = |i: usize| String::from_utf8_lossy(&turns[i].1).into_owned();
        assert!(text(0).starts_with("220 mail.example.com "));
        assert!(text(1).starts_with("EHLO ws"));
        let ehlo = text(2);
        let lines: Vec<&str> = ehlo.split_terminator("\r\n").collect();
        assert!(lines[..lines.len() - 1]
            .iter()
            .all(|l| l.starts_with("250-")));
        assert!(lines.last().unwrap().starts_with("250 "));
        // Client commands and server replies alternate; every reply line is a 3-digit code.
        let mut datas = 0;
        for pair in turns.windows(2) {
            assert_ne!(pair[0].0, pair[1].0, "sides alternate");
        }
        for (i, (dir, bytes)) in turns.iter().enumerate() {
            let t = String::from_utf8_lossy(bytes);
            assert!(t.ends_with("\r\n"));
            if *dir == Dir::ToClient {
                assert!(t.as_bytes()[..3].iter().all(u8::is_ascii_digit), "{t}");
            } else if t.starts_with("DATA") {
                datas += 1;
                assert!(text(i + 1).starts_with("354 "));
                let msg = text(i + 2);
                assert!(msg.ends_with("\r\n.\r\n"));
                for header in ["Date: ", "From: ", "To: ", "Subject: ", "Message-ID: <"] {
                    assert!(msg.contains(&format!("\r\n{header}")) || msg.starts_with(header));
                }
                // Every attachment decodes and starts with its type's magic bytes.
                let parts: Vec<&str> = msg
                    .split("Content-Transfer-Encoding: base64\r\n\r\n")
                    .collect();
                assert!((2..=3).contains(&parts.len()), "one or two attachments");
                for part in &parts[1..] {
                    let b64: String = part
                        .split("\r\n")
                        .take_while(|l| !l.is_empty() && !l.starts_with("--"))
                        .collect();
                    let raw = base64_decode(b64.as_bytes());
                    assert!(ATTACHMENTS
                        .iter()
                        .any(|(_, _, magic)| raw.starts_with(magic)));
                }
                assert!(text(i + 3).starts_with("250 2.0.0 Ok: queued as "));
            }
        }
        assert_eq!(datas, 2);
        assert_eq!(text(turns.len() - 2), "QUIT\r\n");
        assert!(text(turns.len() - 1).starts_with("221 "));
        assert_eq!(app.ending(), Ending::ServerFin);
    }

    #[test]
    fn submission_upgrades_with_starttls_then_sends_tls_records() {
        let mut rng = Rng::new(12);
        let mut app = SmtpApp::new("mail.example.net", 587, 50_000, &mut rng);
        let turns = transcript(&mut app, &mut rng);
        let starttls = turns
            .iter()
            .position(|(_, b)| b == b"STARTTLS\r\n")
            .expect("STARTTLS sent");
        assert_eq!(turns[starttls + 1].1, b"220 2.0.0 Ready to start TLS\r\n");
        let hello = &turns[starttls + 2];
        assert_eq!(hello.0, Dir::ToServer);
        assert_eq!(&hello.1[..1], &[22], "a TLS handshake record follows");
        assert!(turns[starttls + 2..]
            .iter()
            .all(|(_, b)| b[0] >= 20 && b[0] <= 23));
        assert_eq!(app.ending(), Ending::ClientFin);
    }
}
