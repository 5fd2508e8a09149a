//! Tests of the FTP analyzer: command/reply matching, what is logged and when, passwords,
//! data channels and the files of data connections.

use super::*;
use crate::analyzer::app::tests::{conn, Driver};
use crate::analyzer::log::tests::OwnedValue;

fn s(v: &str) -> OwnedValue {
    OwnedValue::Str(v.to_string())
}

/// Column `name` of an ftp.log row.
fn col<'a>(row: &'a [OwnedValue], name: &str) -> &'a OwnedValue {
    let i = FTP_SCHEMA
        .fields
        .iter()
        .position(|f| f.name == name)
        .expect("column");
    &row[i]
}

fn session(lines: &[(bool, &str)]) -> Driver<FtpAnalyzer> {
    let mut d = Driver::with(FtpAnalyzer::new(), conn(Transport::Tcp, 21));
    for (i, (is_orig, line)) in lines.iter().enumerate() {
        d.send(1.0 + i as f64, *is_orig, format!("{line}\r\n").as_bytes());
    }
    d
}

#[test]
fn passive_download_is_logged_with_its_data_channel_and_size() {
    let mut d = session(&[
        (false, "220 ready"),
        (true, "USER anonymous"),
        (false, "331 Guest login ok"),
        (true, "PASS me@x"),
        (false, "230-Welcome"),
        (false, " to the server"),
        (false, "230 Logged in."),
        (true, "PWD"),
        (false, "257 \"/pub\" is the current directory."),
        (true, "PASV"),
        (false, "227 Entering Passive Mode (10,0,0,2,19,137)."),
        (true, "RETR a.txt"),
        (
            false,
            "150 Opening BINARY mode data connection for 'a.txt' (77 bytes).",
        ),
        (false, "226 Transfer complete."),
        (true, "QUIT"),
        (false, "221 Goodbye."),
    ]);
    assert_eq!(d.a.service(), Some("ftp"));
    assert_eq!(d.shared.expected.len(), 1);
    let e = &d.shared.expected[0];
    assert_eq!(
        (e.orig_h, e.resp_h, e.resp_p),
        (d.c.orig_h, d.c.resp_h, 5001)
    );
    d.finish(20.0);
    let rows = d.sink.of("ftp");
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (pasv, retr) = (rows[0], rows[1]);
    assert_eq!(col(pasv, "command"), &s("PASV"));
    assert_eq!(col(pasv, "reply_code"), &OwnedValue::Count(227));
    assert_eq!(col(pasv, "data_channel.passive"), &OwnedValue::Bool(true));
    assert_eq!(col(pasv, "data_channel.resp_p"), &OwnedValue::Port(5001));
    assert_eq!(col(pasv, "password"), &s("me@x"));
    assert_eq!(col(retr, "command"), &s("RETR"));
    assert_eq!(col(retr, "arg"), &s("ftp://10.0.0.2/pub/a.txt"));
    assert_eq!(col(retr, "file_size"), &OwnedValue::Count(77));
    assert_eq!(col(retr, "reply_code"), &OwnedValue::Count(226));
    assert_eq!(col(retr, "data_channel.passive"), &OwnedValue::Unset);
}

#[test]
fn login_only_sessions_get_one_row_with_the_password_hidden() {
    let mut d = session(&[
        (false, "220 ready"),
        (true, "USER bro"),
        (false, "331 Password required for bro."),
        (true, "PASS secret"),
        (false, "530 Login incorrect."),
        (true, "QUIT"),
        (false, "221 Goodbye."),
    ]);
    d.finish(9.0);
    let rows = d.sink.of("ftp");
    assert_eq!(rows.len(), 1);
    assert_eq!(col(rows[0], "user"), &s("bro"));
    assert_eq!(col(rows[0], "password"), &s("<hidden>"));
    assert_eq!(col(rows[0], "command"), &s("QUIT"));
    assert_eq!(col(rows[0], "reply_msg"), &s("Goodbye."));
}

#[test]
fn active_mode_announces_the_server_connecting_back() {
    let mut d = session(&[
        (false, "220 ready"),
        (true, "USER u"),
        (true, "EPRT |1|10.0.0.1|50000|"),
        (false, "200 EPRT command successful."),
        (true, "xx"),
    ]);
    assert_eq!(d.shared.expected.len(), 1);
    let e = &d.shared.expected[0];
    assert_eq!(
        (e.orig_h, e.resp_h, e.resp_p),
        (d.c.resp_h, d.c.orig_h, 50000)
    );
    assert_eq!(d.weirds, vec![("FTP_invalid_command", String::new())]);
    d.finish(9.0);
    let rows = d.sink.of("ftp");
    assert_eq!(col(rows[0], "command"), &s("EPRT"));
    assert_eq!(
        col(rows[0], "data_channel.passive"),
        &OwnedValue::Bool(false)
    );
}

#[test]
fn data_connections_report_their_file_to_the_session() {
    let mut control = session(&[
        (false, "220 ready"),
        (true, "USER anonymous"),
        (false, "230 Guest login ok."),
        (true, "EPSV"),
        (false, "229 Entering Extended Passive Mode (|||6000|)"),
        (true, "RETR big.txt"),
        (false, "150 Opening (5000 bytes)."),
    ]);
    let e = control.shared.expected.pop().expect("a data channel");
    let mut data = Driver::with(DataProbe((e.start)()), conn(Transport::Tcp, 6000));
    let body = "line of text\n".repeat(400);
    data.send(10.0, false, body.as_bytes());
    control.send(11.0, false, b"226 Transfer complete.\r\n");
    control.send(12.0, true, b"QUIT\r\n");
    data.finish(13.0);
    control.finish(14.0);
    let files = data.sink.of("files");
    assert_eq!(files.len(), 1);
    let rows = control.sink.of("ftp");
    let retr = rows.last().expect("the RETR row");
    assert_eq!(col(retr, "command"), &s("RETR"));
    assert_eq!(col(retr, "mime_type"), &s("text/plain"));
    assert!(matches!(col(retr, "fuid"), OwnedValue::Str(f) if f.starts_with('F')));
}

/// Lets the boxed analyzer the flow table would attach run under the test driver.
struct DataProbe(Box<dyn AppAnalyzer>);

impl AppAnalyzer for DataProbe {
    fn service(&self) -> Option<&'static str> {
        self.0.service()
    }
    fn deliver(&mut self, c: &ConnInfo, ts: f64, o: bool, d: &[u8], out: &mut AppOutput<'_>) {
        self.0.deliver(c, ts, o, d, out)
    }
    fn finish(&mut self, c: &ConnInfo, ts: f64, out: &mut AppOutput<'_>) {
        self.0.finish(c, ts, out)
    }
    fn logs(&self) -> &'static [&'static str] {
        self.0.logs()
    }
}

#[test]
fn detection_needs_a_login_reply_or_the_ftp_port() {
    let c = conn(Transport::Tcp, 2121);
    assert!(!looks_like_ftp(&c, false, b"220 ready\r\n"));
    assert!(looks_like_ftp(
        &c,
        false,
        b"220-hi\r\n220 ready\r\n331 Password required\r\n"
    ));
    assert!(!looks_like_ftp(&c, false, b"+OK POP3\r\n+OK\r\n"));
    assert!(!looks_like_ftp(&c, true, b"USER anonymous\r\n"));
    assert!(looks_like_ftp(
        &conn(Transport::Tcp, 21),
        false,
        b"220 ready\r\n"
    ));
}

#[test]
fn auth_tls_hands_the_connection_to_tls() {
    let mut d = session(&[
        (false, "220 ready"),
        (true, "AUTH TLS"),
        (false, "234 AUTH TLS successful"),
    ]);
    let hello = b"\x16\x03\x01\x00\x2f\x01\x00\x00\x2b\x03\x03AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\x00\x00\x02\xc0\x2f\x01\x00\x00\x00";
    d.send(10.0, true, hello);
    let server_hello = b"\x16\x03\x03\x00\x2a\x02\x00\x00\x26\x03\x03BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\x00\xc0\x2f\x00";
    d.send(10.5, false, server_hello);
    assert_eq!(d.a.service(), Some("ftp,ssl"));
    d.finish(20.0);
    assert_eq!(d.sink.of("ssl").len(), 1);
    assert!(d.weirds.is_empty(), "{:?}", d.weirds);
}

#[test]
fn a_reply_line_without_a_code_disables_the_analyzer() {
    let mut d = session(&[
        (false, "220 ready"),
        (true, "USER alice"),
        (false, "331 Password please"),
        (true, ""),
        (true, "PASS x"),
        (false, "whatever this is"),
        (true, "QUIT"),
        (false, "221 Bye"),
    ]);
    assert!(d.a.failed());
    assert_eq!(d.a.service(), None);
    assert!(d.weirds.is_empty(), "{:?}", d.weirds);
    d.finish(20.0);
    // The summary row shows the session as it stood when the analyzer stopped.
    let rows = d.sink.of("ftp");
    assert_eq!(rows.len(), 1);
    assert_eq!(col(rows[0], "reply_code"), &OwnedValue::Count(331));
}
