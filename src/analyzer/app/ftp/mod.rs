//! FTP: the control connection's commands and replies as Zeek's `base/protocols/ftp`
//! scripts log them in `ftp.log`, and the data connections they announce, whose transfers
//! become files (`FTP_DATA` in `files.log`) and whose conn.log service is `ftp-data`.
//!
//! Zeek's split is followed: the analyzer part (`src/analyzer/protocol/ftp/FTP.cc`) turns
//! client lines into commands and server lines into (multi-line) replies; the script part
//! (`main.zeek`) queues commands until a reply matches one (by the codes each command
//! expects and by what the reply's text names), writes a command's row when the next
//! command comes (or at once when several are pending, or when the connection ends), and
//! only for `logged_commands`; a session that logged none gets one summary row at its end.
//! `PORT`/`EPRT` and the `227`/`229` replies announce a data connection
//! ([`super::ExpectedConn`]); the flow table gives the connection that matches it an
//! [`FtpDataAnalyzer`], whose file id and MIME type flow back into the control session's
//! next row through the shared [`Transfer`], as Zeek's `ftp_data_expected` shares the
//! session's record.
//!
//! `AUTH TLS` answered by `234` hands the rest of the control connection to the TLS
//! analyzer, as Zeek does.
//!
//! Layout: `parser` (lines, replies, address arguments, paths), `consts` (Zeek's tables),
//! `log` (the ftp.log row); this file is the semantics.

mod consts;
mod log;
mod parser;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

use super::files::{FileState, FuidGenerator};
use super::ssl::SslAnalyzer;
use super::text::Lines;
use super::{escape_bytes, AppAnalyzer, AppOutput, ConnInfo, ExpectedConn, Transport};
use crate::analyzer::log::Time;
use consts::{
    expects_reply, DIRECTORY_CMDS, FILE_CMDS, GUEST_IDS, HIDDEN_PASSWORD, LOGGED_COMMANDS,
    MAX_ARG_LENGTH, MAX_PASSWORD_LENGTH, MAX_PENDING_COMMANDS, MAX_REPLY_MSG_LENGTH,
    MAX_USER_LENGTH,
};
pub use log::{DataChannel, DataChannelColumns, FtpRow, FTP_SCHEMA};
use parser::{HostPort, InvalidCommand, Reply, ReplyReader};

/// Longest line kept per side; a longer one is cut there.
const MAX_LINE: usize = 16 * 1024;

/// A protocol violation only stops the analyzer within this many bytes of the connection
/// (Zeek's `DPD::ignore_violations_after`).
const IGNORE_VIOLATIONS_AFTER: u64 = 10 * 1024;

/// The ports Zeek attaches its FTP analyzer to without looking at the content.
const FTP_PORTS: [u16; 2] = [21, 2811];

/// Whether a connection's payload starts FTP: the server's greeting (`120`/`220`) followed by
/// a reply to a login (`230`/`331`), Zeek's `dpd_ftp_server` signature (a POP3 `USER` gets
/// no such reply), or on FTP's ports, where Zeek attaches the analyzer by port, any server
/// reply line. `data` is the responder's stream so far.
pub(crate) fn looks_like_ftp(conn: &ConnInfo, is_orig: bool, data: &[u8]) -> bool {
    if conn.transport != Transport::Tcp || is_orig {
        return false;
    }
    let code_then = |d: &[u8], codes: &[&[u8]]| {
        codes.iter().any(|c| d.starts_with(c)) && d.get(3).is_some_and(|b| !b.is_ascii_digit())
    };
    let greeting = data.trim_ascii_start();
    if FTP_PORTS.contains(&conn.resp_p) {
        return greeting.len() >= 4
            && greeting[..3].iter().all(u8::is_ascii_digit)
            && matches!(greeting[3], b' ' | b'-');
    }
    code_then(greeting, &[b"120", b"220"])
        && greeting
            .split(|&b| b == b'\n' || b == b'\r')
            .skip(1)
            .any(|line| code_then(line.trim_ascii_start(), &[b"230", b"331"]))
}

/// What a data connection reports back to its control session: the id of the file it
/// carries and, once sniffed, its MIME type (Zeek's `file_over_new_connection` and
/// `file_sniff` handlers of `base/protocols/ftp/files.zeek`).
#[derive(Debug, Default)]
pub(crate) struct Transfer {
    fuid: Option<String>,
    mime_type: Option<&'static str>,
}

type SharedTransfer = Arc<Mutex<Transfer>>;

fn lock(t: &SharedTransfer) -> std::sync::MutexGuard<'_, Transfer> {
    t.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A command waiting for (or matched with) its reply (Zeek's `FTP::CmdArg`).
#[derive(Debug, Clone)]
struct CmdArg {
    ts: f64,
    cmd: String,
    arg: Vec<u8>,
    seq: u64,
    cwd_consumed: bool,
}

/// The control session as Zeek's `FTP::Info` holds it: fields of the row being built plus
/// the tracking state.
#[derive(Debug)]
struct Session {
    ts: f64,
    user: Vec<u8>,
    password: Option<Vec<u8>>,
    /// Zeek hides the password once a row was built for a non-guest user, and keeps it so.
    password_hidden: bool,
    command: Option<String>,
    arg: Option<Vec<u8>>,
    file_size: Option<u64>,
    reply_code: Option<u64>,
    reply_msg: Option<Vec<u8>>,
    data_channel: Option<DataChannel>,
    cwd: Vec<u8>,
    cmdarg: Option<CmdArg>,
    pending: BTreeMap<u64, CmdArg>,
    command_seq: u64,
    logged_command_seen: bool,
}

impl Session {
    /// Zeek's `set_ftp_session`: a new session queues the `<init>` shim the server's
    /// greeting answers.
    fn new(ts: f64) -> Self {
        let mut s = Session {
            ts,
            user: b"<unknown>".to_vec(),
            password: None,
            password_hidden: false,
            command: None,
            arg: None,
            file_size: None,
            reply_code: None,
            reply_msg: None,
            data_channel: None,
            cwd: b".".to_vec(),
            cmdarg: None,
            pending: BTreeMap::new(),
            command_seq: 0,
            logged_command_seen: false,
        };
        s.queue(ts, "<init>".into(), Vec::new());
        s
    }

    fn queue(&mut self, ts: f64, cmd: String, arg: Vec<u8>) {
        self.command_seq += 1;
        let seq = self.command_seq;
        self.pending.insert(
            seq,
            CmdArg {
                ts,
                cmd,
                arg,
                seq,
                cwd_consumed: false,
            },
        );
    }

    /// Zeek's `should_hide_password`.
    fn hides_password(&self) -> bool {
        let user = String::from_utf8_lossy(&self.user).to_ascii_lowercase();
        !GUEST_IDS.contains(&user.as_str())
    }

    /// The pending command a reply answers best (Zeek's `get_pending_cmd`): one that
    /// expects the code scores 100, its name in the text 20, its argument 10; ties go to
    /// the oldest.
    fn match_reply(&self, code: u64, msg: &[u8]) -> Option<CmdArg> {
        let found =
            |needle: &[u8]| needle.is_empty() || msg.windows(needle.len()).any(|w| w == needle);
        let mut best: Option<(i32, &CmdArg)> = None;
        for c in self.pending.values() {
            let mut score = 0;
            if code == 500 || expects_reply(&c.cmd, code) {
                score += 100;
            }
            if found(c.cmd.as_bytes()) {
                score += 20;
            }
            if found(&c.arg) {
                score += 10;
            }
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, c));
            }
        }
        best.map(|(_, c)| c.clone())
    }
}

/// The FTP control connection.
#[derive(Debug)]
pub struct FtpAnalyzer {
    lines: [Lines; 2],
    /// The line being read, kept between calls so that reading a line allocates nothing.
    line: Vec<u8>,
    replies: ReplyReader,
    session: Option<Session>,
    /// A valid command was seen (Zeek's analyzer confirmation).
    confirmed: bool,
    transfer: SharedTransfer,
    /// The argument of the last `AUTH` command.
    auth_requested: Option<Vec<u8>>,
    /// After `AUTH TLS` was accepted (`234`), the rest of the connection is TLS.
    tls: Option<Box<SslAnalyzer>>,
    /// Bytes delivered so far, both sides.
    seen: u64,
    /// A server line that is no reply came early in the connection: Zeek's DPD disables
    /// the analyzer and takes `ftp` out of the service.
    failed: bool,
}

impl Default for FtpAnalyzer {
    fn default() -> Self {
        FtpAnalyzer {
            lines: [Lines::new(MAX_LINE), Lines::new(MAX_LINE)],
            line: Vec::new(),
            replies: ReplyReader::default(),
            session: None,
            confirmed: false,
            transfer: SharedTransfer::default(),
            auth_requested: None,
            tls: None,
            seen: 0,
            failed: false,
        }
    }
}

impl FtpAnalyzer {
    pub fn new() -> Self {
        Self::default()
    }

    fn session(&mut self, ts: f64) -> &mut Session {
        self.session.get_or_insert_with(|| Session::new(ts))
    }

    fn request(&mut self, conn: &ConnInfo, ts: f64, line: &[u8], out: &mut AppOutput<'_>) {
        let parser::Command { cmd, mut arg } = match parser::command(line) {
            Ok(c) => c,
            Err(e) => {
                if self.confirmed {
                    out.weirds.push(match e {
                        InvalidCommand::NotAWord => ("FTP_invalid_command", String::new()),
                        InvalidCommand::TooLong(n) => (
                            "FTP_max_command_length_exceeded",
                            format!("{n} > {}", parser::MAX_COMMAND_LENGTH),
                        ),
                    });
                }
                return;
            }
        };
        self.confirmed = true;
        if cmd == "AUTH" {
            self.auth_requested = Some(arg.clone());
        }
        if let Some(s) = self.session.as_mut() {
            if let (Some(c), Some(_)) = (&s.cmdarg, s.reply_code) {
                if s.pending.remove(&c.seq).is_some() {
                    self.message(conn, out);
                }
            }
        }
        let s = self.session(ts);
        if s.pending.len() < MAX_PENDING_COMMANDS {
            s.queue(ts, cmd.clone(), arg.clone());
        } else {
            let n = s.pending.len();
            out.weirds
                .push(("FTP_too_many_pending_commands", n.to_string()));
        }
        match cmd.as_str() {
            "USER" => {
                if arg.len() > MAX_USER_LENGTH {
                    out.weirds
                        .push(("FTP_user_too_long", arg.len().to_string()));
                    arg.truncate(MAX_USER_LENGTH);
                }
                self.session(ts).user = arg;
            }
            "PASS" => {
                if arg.len() > MAX_PASSWORD_LENGTH {
                    out.weirds
                        .push(("FTP_password_too_long", arg.len().to_string()));
                    arg.truncate(MAX_PASSWORD_LENGTH);
                }
                let s = self.session(ts);
                s.password = Some(arg);
                s.password_hidden = false;
            }
            "PORT" | "EPRT" => {
                let data = if cmd == "PORT" {
                    parser::port_arg(&arg)
                } else {
                    parser::eprt_arg(&arg)
                };
                if let Some(HostPort { h, p }) = data {
                    let channel = DataChannel {
                        passive: false,
                        orig_h: conn.resp_h,
                        resp_h: h,
                        resp_p: p,
                    };
                    self.expect_data(channel, out);
                }
            }
            _ => {}
        }
    }

    fn reply(&mut self, conn: &ConnInfo, ts: f64, reply: Reply, out: &mut AppOutput<'_>) {
        let Reply { code, msg, cont } = reply;
        let s = self.session(ts);
        if cont && code == 0 && s.reply_code.is_some() && !looks_like_reply_line(&msg) {
            return;
        }
        let Some(cmdarg) = s.match_reply(code, &msg) else {
            return;
        };
        s.reply_code = Some(code);
        s.reply_msg = Some(msg.clone());
        s.cmdarg = Some(cmdarg.clone());
        if cont {
            return;
        }
        let cmd = cmdarg.cmd.as_str();
        if (code == 150 && cmd == "RETR") || (code == 213 && cmd == "SIZE") {
            s.file_size = Some(parser::last_count(&msg));
        } else if matches!(code, 227 | 229) && matches!(cmd, "PASV" | "EPSV") {
            let data = if code == 227 {
                parser::pasv_reply(&msg)
            } else {
                parser::epsv_reply(&msg)
            };
            if let Some(HostPort { mut h, p }) = data {
                if code == 229 && h == IpAddr::V6(Ipv6Addr::UNSPECIFIED) {
                    h = conn.resp_h;
                }
                let channel = DataChannel {
                    passive: true,
                    orig_h: conn.orig_h,
                    resp_h: h,
                    resp_p: p,
                };
                self.expect_data(channel, out);
            }
        }
        let s = self.session(ts);
        if DIRECTORY_CMDS.contains(&(cmd, code)) && !cmdarg.cwd_consumed {
            if let Some(c) = s.cmdarg.as_mut() {
                c.cwd_consumed = true;
            }
            if let Some(c) = s.pending.get_mut(&cmdarg.seq) {
                c.cwd_consumed = true;
            }
            match cmd {
                "CWD" => s.cwd = parser::build_path_compressed(&s.cwd, &cmdarg.arg),
                "CDUP" => s.cwd = parser::build_path_compressed(&s.cwd, b"/.."),
                _ => s.cwd = parser::extract_path(&msg),
            }
            // Zeek's working directory grows without bound; pcapd keeps what an argument
            // may show.
            s.cwd.truncate(MAX_ARG_LENGTH);
        }
        if s.pending.len() > 1 {
            s.pending.remove(&cmdarg.seq);
            self.message(conn, out);
        }
    }

    /// Zeek's `add_expected_data_channel`: the channel goes with the session's next row,
    /// and the flow table is told to expect it.
    fn expect_data(&mut self, channel: DataChannel, out: &mut AppOutput<'_>) {
        if let Some(s) = self.session.as_mut() {
            s.data_channel = Some(channel);
        }
        let transfer = Arc::clone(&self.transfer);
        out.shared.expected.push(ExpectedConn {
            orig_h: channel.orig_h,
            resp_h: channel.resp_h,
            resp_p: channel.resp_p,
            start: Box::new(move || {
                Box::new(FtpDataAnalyzer::new(Arc::clone(&transfer))) as Box<dyn AppAnalyzer>
            }),
        });
    }

    /// Zeek's `ftp_message`: completes the row of the current command, writes it if the
    /// command is one Zeek logs, and clears the per-transfer fields.
    fn message(&mut self, conn: &ConnInfo, out: &mut AppOutput<'_>) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        let Some(c) = s.cmdarg.clone() else {
            return;
        };
        s.ts = c.ts;
        let mut arg = if FILE_CMDS.contains(&c.cmd.as_str()) {
            file_url(conn.resp_h, &s.cwd, &c.arg)
        } else {
            c.arg.clone()
        };
        if arg.len() > MAX_ARG_LENGTH {
            out.weirds.push(("FTP_arg_too_long", arg.len().to_string()));
            arg.truncate(MAX_ARG_LENGTH);
        }
        if let Some(m) = s.reply_msg.as_mut() {
            if m.len() > MAX_REPLY_MSG_LENGTH {
                out.weirds
                    .push(("FTP_reply_msg_too_long", m.len().to_string()));
                m.truncate(MAX_REPLY_MSG_LENGTH);
            }
        }
        let hide = s.hides_password();
        if c.cmd == "PASS" && hide {
            arg = HIDDEN_PASSWORD.as_bytes().to_vec();
        }
        s.arg = (!arg.is_empty()).then_some(arg);
        if s.password.is_some() && hide {
            s.password_hidden = true;
        }
        let logged = LOGGED_COMMANDS.contains(&c.cmd.as_str());
        s.command = Some(c.cmd);
        let mut transfer = lock(&self.transfer);
        if logged {
            write_row(s, &transfer, conn, out);
            s.logged_command_seen = true;
        }
        transfer.mime_type = None;
        transfer.fuid = None;
        s.file_size = None;
        s.data_channel = None;
    }
}

/// Whether an inner line of a multi-line reply looks like a reply of its own (three
/// digits, a space, ten printable characters): Zeek matches such lines with commands.
fn looks_like_reply_line(msg: &[u8]) -> bool {
    msg.len() >= 14
        && (b'1'..=b'9').contains(&msg[0])
        && msg[1..3].iter().all(u8::is_ascii_digit)
        && msg[3] == b' '
        && msg[4..14].iter().all(|b| (0x20..0x7f).contains(b))
}

/// `ftp://<server><path>` for a command that names a file (Zeek's `build_url_ftp`).
fn file_url(server: IpAddr, cwd: &[u8], arg: &[u8]) -> Vec<u8> {
    let mut path = parser::build_path_compressed(cwd, arg);
    if path.first() != Some(&b'/') {
        path.insert(0, b'/');
    }
    let host = match server {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    let mut url = format!("ftp://{host}").into_bytes();
    url.extend_from_slice(&path);
    url
}

fn write_row(s: &Session, transfer: &Transfer, conn: &ConnInfo, out: &mut AppOutput<'_>) {
    let user = escape_bytes(&s.user);
    let password = if s.password_hidden {
        s.password.as_ref().map(|_| HIDDEN_PASSWORD.to_string())
    } else {
        s.password.as_deref().map(escape_bytes)
    };
    let arg = s.arg.as_deref().map(escape_bytes);
    let reply_msg = s.reply_msg.as_deref().map(escape_bytes);
    out.logs.write(&FtpRow {
        ts: Time(s.ts),
        id: conn.id(),
        user: &user,
        password: password.as_deref(),
        command: s.command.as_deref(),
        arg: arg.as_deref(),
        mime_type: transfer.mime_type,
        file_size: s.file_size,
        reply_code: s.reply_code,
        reply_msg: reply_msg.as_deref(),
        data_channel: DataChannelColumns(s.data_channel),
        fuid: transfer.fuid.as_deref(),
    });
}

impl FtpAnalyzer {
    /// One non-empty line of either side: a command, or a reply line.
    fn line_read(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        is_orig: bool,
        line: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        if is_orig {
            self.request(conn, ts, line, out);
        } else if let Some(reply) = self.replies.line(line) {
            let code = reply.code;
            self.reply(conn, ts, reply, out);
            // Zeek's FTP analyzer hands the connection to TLS once `AUTH TLS` is
            // accepted (`ftp_starttls`).
            if code == 234 && self.auth_requested.as_deref() == Some(b"TLS") {
                self.tls = Some(Box::new(SslAnalyzer::new()));
            }
        } else if self.seen <= IGNORE_VIOLATIONS_AFTER {
            self.failed = true;
        }
    }
}

impl AppAnalyzer for FtpAnalyzer {
    fn service(&self) -> Option<&'static str> {
        match (self.confirmed && !self.failed, self.tls.as_ref()) {
            (true, Some(t)) if t.service().is_some() => Some("ftp,ssl"),
            (true, _) => Some("ftp"),
            _ => None,
        }
    }

    fn failed(&self) -> bool {
        self.failed
    }

    fn deliver(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        is_orig: bool,
        mut data: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        self.seen = self.seen.saturating_add(data.len() as u64);
        while !data.is_empty() && !self.failed {
            if let Some(tls) = self.tls.as_mut() {
                tls.deliver(conn, ts, is_orig, data, out);
                return;
            }
            let mut line = std::mem::take(&mut self.line);
            let complete = self.lines[usize::from(!is_orig)].next_line(&mut data, &mut line);
            if complete && !line.is_empty() {
                self.line_read(conn, ts, is_orig, &line, out);
            }
            self.line = line;
            if !complete {
                break;
            }
        }
    }

    fn gap(&mut self, conn: &ConnInfo, ts: f64, is_orig: bool, len: u64, out: &mut AppOutput<'_>) {
        if let Some(tls) = self.tls.as_mut() {
            tls.gap(conn, ts, is_orig, len, out);
            return;
        }
        // A line cut by missing bytes is no line.
        self.lines[usize::from(!is_orig)].take_partial();
    }

    fn finish(&mut self, conn: &ConnInfo, ts: f64, out: &mut AppOutput<'_>) {
        if let Some(tls) = self.tls.as_mut() {
            tls.finish(conn, ts, out);
        }
        let Some(s) = self.session.as_mut() else {
            return;
        };
        // Zeek's `finalize_ftp`: what is still pending is completed and logged.
        let pending: Vec<CmdArg> = std::mem::take(&mut s.pending).into_values().collect();
        for c in pending {
            if let Some(s) = self.session.as_mut() {
                s.cmdarg = Some(c);
            }
            self.message(conn, out);
        }
        if let Some(s) = self.session.as_ref() {
            if !s.logged_command_seen {
                write_row(s, &lock(&self.transfer), conn, out);
            }
        }
    }

    fn logs(&self) -> &'static [&'static str] {
        &["ftp", "ssl", "x509"]
    }

    fn weird_source(&self, name: &'static str) -> Option<&'static str> {
        if name.starts_with("FTP_") {
            Some("FTP")
        } else {
            self.tls.as_ref().map(|_| "SSL")
        }
    }

    fn conn_settled(&self) -> bool {
        // The data connections it announces depend on seeing every command.
        false
    }
}

/// A data connection announced on an FTP control connection (Zeek's `FTP_Data` file
/// analyzer): what each side sends is a file, `FTP_DATA` in files.log.
#[derive(Debug)]
pub struct FtpDataAnalyzer {
    transfer: SharedTransfer,
    fuids: FuidGenerator,
    /// The file of each side (originator, responder), and whether its MIME type was
    /// reported to the control session.
    files: [Option<(FileState, bool)>; 2],
}

impl FtpDataAnalyzer {
    fn new(transfer: SharedTransfer) -> Self {
        FtpDataAnalyzer {
            transfer,
            fuids: FuidGenerator::default(),
            files: [None, None],
        }
    }

    /// Tells the control session the file's type once it is sniffed.
    fn report_mime(transfer: &SharedTransfer, file: &mut (FileState, bool)) {
        if !file.1 && file.0.sniffed() {
            file.1 = true;
            if let Some(mime) = file.0.mime() {
                lock(transfer).mime_type = Some(mime);
            }
        }
    }
}

impl AppAnalyzer for FtpDataAnalyzer {
    fn service(&self) -> Option<&'static str> {
        Some("ftp-data")
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
        if self.files[side].is_none() {
            let fuid = self.fuids.next(conn);
            lock(&self.transfer).fuid = Some(fuid.clone());
            self.files[side] = Some((FileState::new("FTP_DATA", fuid, ts), false));
        }
        if let Some(file) = self.files[side].as_mut() {
            file.0.data(ts, data, out.weirds);
            Self::report_mime(&self.transfer, file);
        }
    }

    fn gap(
        &mut self,
        _conn: &ConnInfo,
        _ts: f64,
        is_orig: bool,
        len: u64,
        _out: &mut AppOutput<'_>,
    ) {
        if let Some(file) = self.files[usize::from(!is_orig)].as_mut() {
            file.0.gap(len);
            Self::report_mime(&self.transfer, file);
        }
    }

    fn finish(&mut self, conn: &ConnInfo, _ts: f64, out: &mut AppOutput<'_>) {
        for (side, slot) in self.files.iter_mut().enumerate() {
            if let Some(mut file) = slot.take() {
                file.0.end();
                Self::report_mime(&self.transfer, &mut file);
                file.0.write_log(conn, side == 0, out.logs);
            }
        }
    }

    fn logs(&self) -> &'static [&'static str] {
        // The MIME type of a transfer goes into the control connection's ftp.log row.
        &["files", "ftp"]
    }

    fn ends_promptly(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests;
