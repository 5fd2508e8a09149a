//! SMTP: mail transactions as Zeek's `base/protocols/smtp` scripts log them in `smtp.log`,
//! the MIME entities of each message as files (`SMTP` in `files.log`), and STARTTLS, after
//! which the connection is handed to the TLS analyzer.
//!
//! Zeek's split is followed. The analyzer part (`src/analyzer/protocol/smtp/SMTP.cc`) reads
//! client lines as commands, or as message lines between `DATA` and `.`, or as raw `BDAT`
//! chunks; it pairs each reply with the oldest command awaiting one (pipelining), tracks
//! the states that decide how lines are read (DATA, BDAT, AUTH, TLS, recovery after a
//! content gap), and feeds messages to the MIME reader ([`MimeMessage`]). The script part
//! (`main.zeek`, `entities.zeek`, `files.zeek`) keeps one record per transaction (`Info`):
//! commands fill the envelope, the top-level entity's headers the message fields, and the
//! record is written when the server acknowledges the end of the message, when a new `MAIL`
//! comes, or when the connection ends, provided the client did something.
//!
//! Layout: `parser` (lines, `BDAT` argument, address helpers), `consts` (commands, limits),
//! `log` (the smtp.log row); this file is the semantics.

mod consts;
mod log;
mod parser;

use std::collections::VecDeque;
use std::net::IpAddr;

use super::files::{self, header_filename, FileState, FuidGenerator, MimeEvent, MimeMessage};
use super::ssl::SslAnalyzer;
use super::text::Lines;
use super::{escape_bytes, AppAnalyzer, AppOutput, ConnInfo, Transport};
use crate::analyzer::log::{Set, Time, Vector};
use consts::{
    is_webmail_agent, Command, BDAT_MAX_LINE_LENGTH, MAX_CC_ADDRESSES,
    MAX_INVALID_MAIL_TRANSACTIONS, MAX_PATH_LENGTH, MAX_PENDING_COMMANDS, MAX_RCPTTO_ADDRESSES,
    MAX_TO_ADDRESSES,
};
pub use log::{SmtpRow, SMTP_SCHEMA};

/// Longest line kept per side; a longer one is cut there.
const MAX_LINE: usize = 64 * 1024;

/// The ports Zeek attaches its SMTP analyzer to without looking at the content.
const SMTP_PORTS: [u16; 2] = [25, 587];

/// Whether a connection's payload starts SMTP: a client `HELO`/`EHLO` line (Zeek's
/// `dpd_smtp_client` signature), or on SMTP's ports a server `220` greeting.
pub(crate) fn looks_like_smtp(conn: &ConnInfo, is_orig: bool, data: &[u8]) -> bool {
    if conn.transport != Transport::Tcp {
        return false;
    }
    if is_orig {
        return data.split(|&b| b == b'\n' || b == b'\r').any(|line| {
            let line = line.trim_ascii_start();
            line.len() >= 4
                && (line[..4].eq_ignore_ascii_case(b"HELO")
                    || line[..4].eq_ignore_ascii_case(b"EHLO"))
        });
    }
    SMTP_PORTS.contains(&conn.resp_p)
        && data.trim_ascii_start().starts_with(b"220")
        && data
            .trim_ascii_start()
            .get(3)
            .is_some_and(|b| b.is_ascii_whitespace() || *b == b'-')
}

/// How client lines are read (Zeek's `SMTP_State`, reduced to what changes the reading).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Commands,
    InData,
    InBdat,
    InAuth,
    InTls,
    /// Bytes went missing: client lines are not trusted until the server replies.
    AfterGap,
    GapRecovery,
}

/// The `BDAT` chunks of a message (Zeek's `SMTP_BDAT_Analyzer`): raw bytes cut into lines
/// at CRLF.
#[derive(Debug, Default)]
struct BdatChunks {
    remaining: u64,
    last: bool,
    buf: Vec<u8>,
}

/// One transaction's record (Zeek's `SMTP::Info`).
#[derive(Debug, Default)]
struct Info {
    ts: f64,
    trans_depth: u64,
    helo: Option<String>,
    mailfrom: Option<String>,
    rcptto: Option<Vec<String>>,
    date: Option<String>,
    from: Option<String>,
    to: Option<Vec<String>>,
    cc: Option<Vec<String>>,
    reply_to: Option<String>,
    msg_id: Option<String>,
    in_reply_to: Option<String>,
    subject: Option<String>,
    x_originating_ip: Option<IpAddr>,
    first_received: Option<String>,
    second_received: Option<String>,
    last_reply: Option<String>,
    path: Vec<IpAddr>,
    user_agent: Option<String>,
    tls: bool,
    fuids: Vec<String>,
    is_webmail: bool,
    process_received_from: bool,
    has_client_activity: bool,
    process_smtp_headers: bool,
    entity_count: u64,
}

/// The session's state across transactions (Zeek's `SMTP::State`).
#[derive(Debug, Default)]
struct Session {
    helo: Option<String>,
    messages_transferred: u64,
    trans_mail_from_seen: bool,
    trans_rcpt_to_seen: bool,
    invalid_transactions: u64,
    bdat_last_observed: bool,
    mime_depth: u64,
}

/// The SMTP analyzer of one connection.
#[derive(Debug)]
pub struct SmtpAnalyzer {
    lines: [Lines; 2],
    /// The line being read, kept between calls so that reading a line allocates nothing.
    line: Vec<u8>,
    state: State,
    confirmed: bool,
    /// The command the next reply answers, those queued behind it, and the one the last
    /// reply answered.
    first_cmd: Option<Command>,
    queued: VecDeque<Command>,
    last_replied: Option<Command>,
    /// The code of a multi-line reply in progress.
    pending_reply: u64,
    mail: Option<MimeMessage>,
    bdat: Option<BdatChunks>,
    tls: Option<Box<SslAnalyzer>>,
    /// Too many invalid transactions: Zeek disables the analyzer.
    disabled: bool,
    session: Session,
    info: Option<Info>,
    /// The entity being read (Zeek's `c$smtp$entity`): its file name, if a header gave one.
    entity: Option<Option<String>>,
    file: Option<FileState>,
    fuids: FuidGenerator,
    events: Vec<MimeEvent>,
}

impl Default for SmtpAnalyzer {
    fn default() -> Self {
        SmtpAnalyzer {
            lines: [Lines::new(MAX_LINE), Lines::new(MAX_LINE)],
            line: Vec::new(),
            state: State::Commands,
            confirmed: false,
            first_cmd: Some(Command::ConnEstablishment),
            queued: VecDeque::new(),
            last_replied: None,
            pending_reply: 0,
            mail: None,
            bdat: None,
            tls: None,
            disabled: false,
            session: Session::default(),
            info: None,
            entity: None,
            file: None,
            fuids: FuidGenerator::default(),
            events: Vec::new(),
        }
    }
}

impl SmtpAnalyzer {
    pub fn new() -> Self {
        Self::default()
    }

    // ---- the analyzer part (SMTP.cc) ----

    fn client_line(&mut self, conn: &ConnInfo, ts: f64, line: &[u8], out: &mut AppOutput<'_>) {
        match self.state {
            State::AfterGap => {}
            State::InData if line == b"." => {
                self.new_cmd(Command::EndOfData, out);
                self.update_state(conn, ts, Some(Command::EndOfData), 0, out);
                self.request(conn, ts, b".", b"", out);
            }
            State::InData => {
                let line = line.strip_prefix(b".").unwrap_or(line);
                if self.mail.is_none() {
                    self.begin_data(conn, ts, State::InData, out);
                }
                if let Some(m) = self.mail.as_mut() {
                    m.line(line, true, &mut self.events);
                }
                self.mime_events(conn, ts, out);
            }
            State::InAuth => self.new_cmd(Command::AuthAnswer, out),
            _ => {
                let c = parser::command(line);
                let Some(cmd) = c.command else {
                    return;
                };
                self.new_cmd(cmd, out);
                if !c.word.is_empty() || !c.arg.is_empty() {
                    self.request(conn, ts, &c.word, &c.arg, out);
                }
                let update = if cmd == Command::Bdat {
                    self.bdat_command(conn, ts, &c.arg, out)
                } else {
                    if self.bdat.is_some() {
                        out.weirds
                            .push(("smtp_missing_bdat_last_chunk", String::new()));
                        self.end_data(conn, ts, out);
                    }
                    true
                };
                if update {
                    self.update_state(conn, ts, Some(cmd), 0, out);
                }
            }
        }
    }

    fn server_line(&mut self, conn: &ConnInfo, ts: f64, line: &[u8], out: &mut AppOutput<'_>) {
        let Some(r) = parser::reply(line) else {
            return;
        };
        if self.pending_reply != 0 && r.code != self.pending_reply {
            self.pending_reply = 0;
        }
        if self.pending_reply == 0 {
            self.new_reply(conn, ts, r.code, out);
        }
        self.pending_reply = if r.more { r.code } else { 0 };
        let cmd = self.last_replied.map_or("(UNKNOWN)", Command::reply_name);
        self.reply(conn, ts, r.code, cmd, &r.msg, self.pending_reply > 0, out);
    }

    fn new_cmd(&mut self, cmd: Command, out: &mut AppOutput<'_>) {
        if self.first_cmd.is_none() {
            self.first_cmd = Some(cmd);
            return;
        }
        if self.queued.len() == MAX_PENDING_COMMANDS {
            out.weirds
                .push(("smtp_excessive_pending_cmds", String::new()));
            self.queued.clear();
        }
        self.queued.push_back(cmd);
    }

    fn new_reply(&mut self, conn: &ConnInfo, ts: f64, code: u64, out: &mut AppOutput<'_>) {
        if self.state == State::AfterGap {
            self.state = State::GapRecovery;
            self.request(conn, ts, b"(UNKNOWN)", b"", out);
        }
        let cmd = self.first_cmd;
        self.last_replied = cmd;
        self.first_cmd = self.queued.pop_front();
        self.update_state(conn, ts, cmd, code, out);
    }

    /// Zeek's `UpdateState`, for what decides how lines are read; `code` 0 is the command
    /// itself.
    fn update_state(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        cmd: Option<Command>,
        code: u64,
        out: &mut AppOutput<'_>,
    ) {
        match cmd {
            Some(Command::Data) => match code {
                0 => self.begin_data(conn, ts, State::InData, out),
                354 => {}
                _ => {
                    if self.state == State::InData {
                        self.end_data(conn, ts, out);
                    }
                    self.state = State::Commands;
                }
            },
            Some(Command::Bdat) => {
                if code == 0 {
                    self.state = State::InBdat;
                }
            }
            Some(Command::EndOfData) => {
                if code == 0 {
                    self.end_data(conn, ts, out);
                    self.state = State::Commands;
                }
            }
            Some(Command::StartTls | Command::XAnonymousTls) => {
                if code == 220 {
                    self.start_tls();
                }
            }
            Some(Command::Auth | Command::AuthAnswer) => match code {
                334 => self.state = State::InAuth,
                0 => {}
                _ => self.state = State::Commands,
            },
            _ => {
                if self.state == State::GapRecovery && code == 354 {
                    self.begin_data(conn, ts, State::InData, out);
                }
            }
        }
    }

    fn begin_data(&mut self, conn: &ConnInfo, ts: f64, state: State, out: &mut AppOutput<'_>) {
        self.state = state;
        if let Some(mut m) = self.mail.take() {
            out.weirds
                .push(("smtp_nested_mail_transaction", String::new()));
            m.finish(&mut self.events);
            self.mime_events(conn, ts, out);
        }
        let content = files::content_needed(out.logs, "SMTP");
        self.mail = Some(MimeMessage::new(content, &mut self.events));
        self.mime_events(conn, ts, out);
    }

    fn end_data(&mut self, conn: &ConnInfo, ts: f64, out: &mut AppOutput<'_>) {
        if let Some(b) = self.bdat.take() {
            if b.remaining > 0 {
                out.weirds
                    .push(("smtp_bdat_remaining_at_end_data", String::new()));
            }
            if !b.buf.is_empty() {
                out.weirds
                    .push(("smtp_bdat_undelivered_at_done", String::new()));
                if let Some(m) = self.mail.as_mut() {
                    m.line(&b.buf, false, &mut self.events);
                }
            }
        }
        match self.mail.take() {
            Some(mut m) => {
                m.finish(&mut self.events);
                self.mime_events(conn, ts, out);
            }
            None => out
                .weirds
                .push(("smtp_unmatched_end_of_data", String::new())),
        }
    }

    /// A `BDAT` command: the next chunk's size; false if the argument is bad.
    fn bdat_command(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        arg: &[u8],
        out: &mut AppOutput<'_>,
    ) -> bool {
        let chunk = match parser::bdat_arg(arg) {
            Ok(c) => c,
            Err(e) => {
                out.weirds
                    .push(("smtp_invalid_bdat_command", e.to_string()));
                return false;
            }
        };
        if chunk.size > i64::MAX as u64 {
            out.weirds
                .push(("smtp_huge_bdat_chunk", chunk.size.to_string()));
            return false;
        }
        if self.bdat.is_none() {
            self.begin_data(conn, ts, State::InBdat, out);
            self.bdat = Some(BdatChunks::default());
        }
        if let Some(b) = self.bdat.as_mut() {
            b.remaining = chunk.size;
            b.last = chunk.last;
        }
        true
    }

    /// Raw chunk bytes: cut into lines at CRLF and read into the message.
    fn bdat_data(&mut self, conn: &ConnInfo, ts: f64, data: &[u8], out: &mut AppOutput<'_>) {
        let Some(b) = self.bdat.as_mut() else {
            return;
        };
        let Some(m) = self.mail.as_mut() else {
            return;
        };
        if b.buf.last() == Some(&b'\r') && data.first() != Some(&b'\n') {
            out.weirds.push(("smtp_bdat_line_cr_only", String::new()));
            m.line(&b.buf, false, &mut self.events);
            b.buf.clear();
        }
        b.buf.extend_from_slice(data);
        let mut start = 0;
        let mut i = 0;
        while i < b.buf.len() {
            if b.buf[i] == b'\r' && b.buf.get(i + 1) == Some(&b'\n') {
                m.line(&b.buf[start..i], true, &mut self.events);
                start = i + 2;
                i += 2;
                continue;
            }
            if b.buf[i] == b'\n' {
                out.weirds.push(("smtp_bdat_line_lf_only", String::new()));
                m.line(&b.buf[start..=i], false, &mut self.events);
                start = i + 1;
            } else if i - start >= BDAT_MAX_LINE_LENGTH {
                out.weirds
                    .push(("smtp_bdat_line_too_long", b.buf.len().to_string()));
                m.line(&b.buf[start..i], false, &mut self.events);
                start = i;
            }
            i += 1;
        }
        b.buf.drain(..start);
        b.remaining -= data.len() as u64;
        let finished = b.last && b.remaining == 0;
        if finished && !b.buf.is_empty() {
            m.line(&b.buf, false, &mut self.events);
            b.buf.clear();
        }
        self.mime_events(conn, ts, out);
        if finished {
            self.update_state(conn, ts, Some(Command::EndOfData), 0, out);
        }
    }

    fn start_tls(&mut self) {
        self.state = State::InTls;
        self.tls = Some(Box::new(SslAnalyzer::new()));
        // Zeek's `smtp_starttls` event.
        if let Some(info) = self.info.as_mut() {
            info.tls = true;
            info.has_client_activity = true;
        }
    }

    // ---- the script part (main.zeek, entities.zeek, files.zeek) ----

    fn new_info(&self, conn: &ConnInfo, ts: f64) -> Info {
        Info {
            ts,
            trans_depth: self.session.messages_transferred + 1,
            helo: self.session.helo.clone(),
            path: vec![conn.resp_h, conn.orig_h],
            process_received_from: true,
            process_smtp_headers: true,
            ..Info::default()
        }
    }

    fn info(&mut self, conn: &ConnInfo, ts: f64) -> &mut Info {
        if self.info.is_none() {
            self.info = Some(self.new_info(conn, ts));
        }
        self.info.as_mut().expect("just set")
    }

    /// Zeek's `smtp_message`: writes the record if the client did something, and starts
    /// the next.
    fn message(&mut self, conn: &ConnInfo, ts: f64, out: &mut AppOutput<'_>) {
        if self.info.as_ref().is_some_and(|i| i.has_client_activity) {
            if let Some(info) = self.info.take() {
                write_row(&info, conn, out);
            }
            self.info = Some(self.new_info(conn, ts));
        }
    }

    fn transaction_invalid(&mut self, addl: &str, out: &mut AppOutput<'_>) {
        out.weirds
            .push(("smtp_mail_transaction_invalid", addl.to_string()));
        self.session.invalid_transactions += 1;
        if self.session.invalid_transactions > MAX_INVALID_MAIL_TRANSACTIONS && !self.disabled {
            out.weirds.push((
                "smtp_excessive_invalid_mail_transactions",
                format!(
                    "{}/{}",
                    self.session.invalid_transactions, MAX_INVALID_MAIL_TRANSACTIONS
                ),
            ));
            self.disabled = true;
        }
    }

    /// Zeek's `smtp_request` handler.
    fn request(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        word: &[u8],
        arg: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        self.confirmed = true;
        self.info(conn, ts);
        let upper = word.to_ascii_uppercase();
        match upper.as_slice() {
            b"HELO" | b"EHLO" => {
                let helo = escape_bytes(arg);
                self.session.helo = Some(helo.clone());
                self.info(conn, ts).helo = Some(helo);
            }
            b"RCPT" if arg.len() >= 3 && arg[..3].eq_ignore_ascii_case(b"TO:") => {
                let mut weird = false;
                let info = self.info(conn, ts);
                let rcptto = info.rcptto.get_or_insert_with(Vec::new);
                for addr in parser::email_addrs(arg) {
                    if rcptto.len() >= MAX_RCPTTO_ADDRESSES {
                        weird = true;
                        break;
                    }
                    let addr = remove_orcpt(&addr);
                    if !rcptto.contains(&addr) {
                        rcptto.push(addr);
                    }
                }
                info.has_client_activity = true;
                if weird {
                    out.weirds
                        .push(("smtp_too_many_rcptto_addresses", String::new()));
                }
                self.session.trans_rcpt_to_seen = true;
                if !self.session.trans_mail_from_seen {
                    self.transaction_invalid("rcpt to missing mail from", out);
                }
            }
            b"MAIL" if arg.len() >= 5 && arg[..5].eq_ignore_ascii_case(b"FROM:") => {
                self.message(conn, ts, out);
                let info = self.info(conn, ts);
                if let Some(from) = parser::email_addrs(arg).into_iter().next() {
                    info.mailfrom = Some(from);
                }
                info.has_client_activity = true;
                self.session.trans_mail_from_seen = true;
                self.session.trans_rcpt_to_seen = false;
            }
            b"DATA" | b"BDAT" => {
                if !self.session.trans_rcpt_to_seen {
                    self.transaction_invalid("data missing rcpt to", out);
                }
                if upper == b"BDAT" && arg.ends_with(b" LAST") {
                    self.session.trans_mail_from_seen = false;
                    self.session.trans_rcpt_to_seen = false;
                    self.session.bdat_last_observed = true;
                }
            }
            b"." => {
                self.session.trans_mail_from_seen = false;
                self.session.trans_rcpt_to_seen = false;
            }
            _ => {}
        }
    }

    /// Zeek's `smtp_reply` handlers (priority 5, then -5).
    #[allow(clippy::too_many_arguments)]
    fn reply(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        code: u64,
        cmd: &str,
        msg: &[u8],
        cont: bool,
        out: &mut AppOutput<'_>,
    ) {
        self.info(conn, ts).last_reply = Some(format!("{code} {}", escape_bytes(msg)));
        if cmd == "." || (!cont && cmd == "BDAT" && self.session.bdat_last_observed) {
            self.session.messages_transferred += 1;
            self.session.bdat_last_observed = false;
            self.message(conn, ts, out);
            self.info = Some(self.new_info(conn, ts));
        }
    }

    /// Applies what the MIME reader found: the message's fields, entity file names, and a
    /// file per entity with content.
    fn mime_events(&mut self, conn: &ConnInfo, ts: f64, out: &mut AppOutput<'_>) {
        for event in std::mem::take(&mut self.events) {
            match event {
                MimeEvent::BeginEntity => {
                    self.end_file(conn, out);
                    self.entity = Some(None);
                    self.session.mime_depth += 1;
                    if let Some(info) = self.info.as_mut() {
                        info.entity_count += 1;
                        if info.entity_count > 1 {
                            info.process_smtp_headers = false;
                        }
                    }
                }
                MimeEvent::Header { name, value } => self.header(&name, &value, out),
                MimeEvent::Data(data) => {
                    self.open_file(conn, ts);
                    if let Some(f) = self.file.as_mut() {
                        f.data(ts, &data, out.weirds);
                    }
                }
                MimeEvent::Gap(len) => {
                    self.open_file(conn, ts);
                    if let Some(f) = self.file.as_mut() {
                        f.gap(len);
                    }
                }
                MimeEvent::EndEntity => {
                    self.entity = None;
                    self.end_file(conn, out);
                }
            }
        }
    }

    /// The current entity's file, created at its first byte (Zeek's
    /// `file_over_new_connection` handlers of `entities.zeek` and `files.zeek`).
    fn open_file(&mut self, conn: &ConnInfo, ts: f64) {
        if self.file.is_some() {
            return;
        }
        let fuid = self.fuids.next(conn);
        if let Some(info) = self.info.as_mut().filter(|i| !i.tls) {
            info.fuids.push(fuid.clone());
        }
        let name = self.entity.clone().flatten();
        self.file = Some(
            FileState::new("SMTP", fuid, ts)
                .named(name)
                .at_depth(self.session.mime_depth),
        );
    }

    fn end_file(&mut self, conn: &ConnInfo, out: &mut AppOutput<'_>) {
        if let Some(mut f) = self.file.take() {
            f.end();
            f.write_log(conn, true, out.logs);
        }
    }

    /// Zeek's `mime_one_header` handlers: the top-level entity's fields go to the record,
    /// every entity's file name to the entity.
    fn header(&mut self, name: &str, value: &[u8], out: &mut AppOutput<'_>) {
        if let Some(entity) = self.entity.as_mut() {
            let lower = value.to_ascii_lowercase();
            let names_file = match name {
                "CONTENT-DISPOSITION" => contains_assignment(&lower, b"filename", true),
                "CONTENT-TYPE" => contains_assignment(&lower, b"name", false),
                _ => false,
            };
            if names_file {
                *entity = header_filename(value).map(|n| escape_bytes(&n));
            }
        }
        // `software.zeek` (after `main.zeek` has taken a top-level User-Agent as the
        // message's): a User-Agent header, at any depth, marks webmail when the message's
        // user agent is a webmail front end's.
        if let Some(info) = self.info.as_mut().filter(|_| name == "USER-AGENT") {
            let agent = if info.process_smtp_headers {
                Some(escape_bytes(value))
            } else {
                info.user_agent.clone()
            };
            if agent.as_deref().is_some_and(is_webmail_agent) {
                info.is_webmail = true;
            }
        }
        let Some(info) = self.info.as_mut().filter(|i| i.process_smtp_headers) else {
            return;
        };
        let text = || escape_bytes(value);
        match name {
            "MESSAGE-ID" => info.msg_id = Some(text()),
            "RECEIVED" => {
                if let Some(first) = info.first_received.take() {
                    info.second_received = Some(first);
                }
                info.first_received = Some(text());
            }
            "IN-REPLY-TO" => info.in_reply_to = Some(text()),
            "SUBJECT" => info.subject = Some(text()),
            "FROM" => info.from = Some(text()),
            "REPLY-TO" => info.reply_to = Some(text()),
            "DATE" => info.date = Some(text()),
            "TO" | "CC" => {
                let (set, max, weird) = if name == "TO" {
                    (&mut info.to, MAX_TO_ADDRESSES, "smtp_too_many_to_addresses")
                } else {
                    (&mut info.cc, MAX_CC_ADDRESSES, "smtp_too_many_cc_addresses")
                };
                let set = set.get_or_insert_with(Vec::new);
                for addr in parser::mime_email_addresses(value) {
                    if set.len() >= max {
                        out.weirds.push((weird, String::new()));
                        break;
                    }
                    let addr = escape_bytes(addr.as_bytes());
                    if !set.contains(&addr) {
                        set.push(addr);
                    }
                }
            }
            "X-ORIGINATING-IP" => {
                if let Some(a) = parser::ip_addresses(value, false).first() {
                    info.x_originating_ip = Some(*a);
                }
            }
            "X-MAILER" | "USER-AGENT" | "X-USER-AGENT" => info.user_agent = Some(text()),
            _ => {}
        }
        if name == "RECEIVED" && info.process_received_from {
            // The second address of a Received header names the relay (the first its
            // own name), otherwise the only one.
            let ips = parser::ip_addresses(value, true);
            let Some(&ip) = ips.get(1).or(ips.first()) else {
                return;
            };
            if info.path.last() != Some(&ip) {
                if info.path.len() >= MAX_PATH_LENGTH {
                    out.weirds
                        .push(("smtp_max_path_length_exceeded", String::new()));
                    return;
                }
                info.path.push(ip);
            }
        }
    }
}

/// Whether `lower` holds `word`, blanks, (`*` if `star`), `=`: Zeek's tests for a file name
/// in Content-Disposition and Content-Type.
fn contains_assignment(lower: &[u8], word: &[u8], star: bool) -> bool {
    lower.windows(word.len()).enumerate().any(|(i, w)| {
        if w != word {
            return false;
        }
        let mut rest = lower[i + word.len()..].trim_ascii_start();
        if star {
            rest = rest.strip_prefix(b"*").unwrap_or(rest);
        }
        rest.first() == Some(&b'=')
    })
}

/// `ORCPT=rfc822;` removed from a recipient (Zeek's `gsub(…, /ORCPT=rfc822;?/, "")`).
fn remove_orcpt(addr: &str) -> String {
    let mut out = addr.replace("ORCPT=rfc822;", "");
    out = out.replace("ORCPT=rfc822", "");
    out
}

fn write_row(info: &Info, conn: &ConnInfo, out: &mut AppOutput<'_>) {
    out.logs.write(&SmtpRow {
        ts: Time(info.ts),
        id: conn.id(),
        trans_depth: info.trans_depth,
        helo: info.helo.as_deref(),
        mailfrom: info.mailfrom.as_deref(),
        rcptto: info.rcptto.as_deref().map(Set),
        date: info.date.as_deref(),
        from: info.from.as_deref(),
        to: info.to.as_deref().map(Set),
        cc: info.cc.as_deref().map(Set),
        reply_to: info.reply_to.as_deref(),
        msg_id: info.msg_id.as_deref(),
        in_reply_to: info.in_reply_to.as_deref(),
        subject: info.subject.as_deref(),
        x_originating_ip: info.x_originating_ip,
        first_received: info.first_received.as_deref(),
        second_received: info.second_received.as_deref(),
        last_reply: info.last_reply.as_deref(),
        path: Some(Vector(&info.path)),
        user_agent: info.user_agent.as_deref(),
        tls: info.tls,
        fuids: Vector(&info.fuids),
        is_webmail: info.is_webmail,
    });
}

impl AppAnalyzer for SmtpAnalyzer {
    fn service(&self) -> Option<&'static str> {
        match (self.confirmed, self.tls.as_ref()) {
            (true, Some(t)) if t.service().is_some() => Some("smtp,ssl"),
            (true, _) => Some("smtp"),
            _ => None,
        }
    }

    fn deliver(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        is_orig: bool,
        mut data: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        if self.disabled {
            return;
        }
        let side = usize::from(!is_orig);
        while !data.is_empty() {
            if let Some(tls) = self.tls.as_mut() {
                tls.deliver(conn, ts, is_orig, data, out);
                return;
            }
            if is_orig {
                if let Some(remaining) = self.bdat.as_ref().map(|b| b.remaining) {
                    if remaining > 0 {
                        let n = data
                            .len()
                            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                        self.bdat_data(conn, ts, &data[..n], out);
                        data = &data[n..];
                        continue;
                    }
                }
            }
            let mut line = std::mem::take(&mut self.line);
            if !self.lines[side].next_line(&mut data, &mut line) {
                self.line = line;
                break;
            }
            // Zeek drops every CR at a line's end, not just the one before the LF.
            while line.last() == Some(&b'\r') {
                line.pop();
            }
            if is_orig {
                self.client_line(conn, ts, &line, out);
            } else {
                self.server_line(conn, ts, &line, out);
            }
            self.line = line;
        }
    }

    fn gap(&mut self, conn: &ConnInfo, ts: f64, is_orig: bool, len: u64, out: &mut AppOutput<'_>) {
        if let Some(tls) = self.tls.as_mut() {
            tls.gap(conn, ts, is_orig, len, out);
            return;
        }
        if matches!(self.state, State::InData | State::InBdat) {
            if let Some(m) = self.mail.as_mut() {
                m.gap(len, &mut self.events);
            }
            self.mime_events(conn, ts, out);
            self.end_data(conn, ts, out);
        }
        self.lines[usize::from(!is_orig)].take_partial();
        self.queued.clear();
        self.first_cmd = None;
        self.last_replied = None;
        self.state = State::AfterGap;
    }

    fn finish(&mut self, conn: &ConnInfo, ts: f64, out: &mut AppOutput<'_>) {
        if let Some(tls) = self.tls.as_mut() {
            tls.finish(conn, ts, out);
        }
        if self.mail.is_some() {
            self.end_data(conn, ts, out);
        }
        self.end_file(conn, out);
        if self.info.as_ref().is_some_and(|i| i.has_client_activity) {
            if let Some(info) = self.info.take() {
                write_row(&info, conn, out);
            }
        }
    }

    fn logs(&self) -> &'static [&'static str] {
        &["smtp", "files", "ssl", "x509"]
    }

    fn weird_source(&self, name: &'static str) -> Option<&'static str> {
        match name {
            // Raised by Zeek's SMTP analyzer itself when a message ends early.
            "smtp_bdat_remaining_at_end_data" => Some("SMTP"),
            // Raised by its BDAT sub-analyzer, which cuts chunks into lines.
            n if n.starts_with("smtp_bdat_") => Some("SMTP_BDAT"),
            n if n.starts_with("smtp_") => Some("SMTP"),
            _ if self.tls.is_some() => Some("SSL"),
            _ => None,
        }
    }

    fn conn_settled(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests;
