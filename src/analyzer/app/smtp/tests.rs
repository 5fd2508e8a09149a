//! Tests of the SMTP analyzer: transactions and when they are written, message fields,
//! MIME entities as files, BDAT, STARTTLS.

use super::*;
use crate::analyzer::app::tests::{conn, Driver};
use crate::analyzer::log::tests::OwnedValue;

fn col<'a>(
    schema_fields: &[crate::analyzer::log::FieldSpec],
    row: &'a [OwnedValue],
    name: &str,
) -> &'a OwnedValue {
    let i = schema_fields
        .iter()
        .position(|f| f.name == name)
        .expect("column");
    &row[i]
}

fn smtp<'a>(row: &'a [OwnedValue], name: &str) -> &'a OwnedValue {
    col(SMTP_SCHEMA.fields, row, name)
}

fn files<'a>(row: &'a [OwnedValue], name: &str) -> &'a OwnedValue {
    col(crate::analyzer::app::FILES_SCHEMA.fields, row, name)
}

fn s(v: &str) -> OwnedValue {
    OwnedValue::Str(v.to_string())
}

/// Sends each `(is_orig, text)` as one segment, lines ending in CRLF.
fn session(steps: &[(bool, &str)]) -> Driver<SmtpAnalyzer> {
    let mut d = Driver::with(SmtpAnalyzer::new(), conn(Transport::Tcp, 25));
    for (i, (is_orig, text)) in steps.iter().enumerate() {
        let text = text.replace('\n', "\r\n");
        d.send(1.0 + i as f64, *is_orig, text.as_bytes());
    }
    d
}

const MAIL: &str = "From: \"A\" <a@example.org>\n\
To: b@example.org, \"C, D\" <c@example.org>\n\
Subject: two files\n\
Message-ID: <1@example.org>\n\
Received: from mx.example.org (mx [192.0.2.7]) by relay.example.org\n\
X-Mailer: test 1.0\n\
Content-Type: multipart/mixed; boundary=\"b1\"\n\
\n\
--b1\n\
Content-Type: text/plain\n\
\n\
hello\n\
--b1\n\
Content-Type: application/octet-stream; name=\"a.bin\"\n\
Content-Transfer-Encoding: base64\n\
\n\
AAECAwQ=\n\
--b1--\n\
.\n";

#[test]
fn a_mail_with_an_attachment() {
    let mut d = session(&[
        (false, "220 mx ESMTP\n"),
        (true, "EHLO client.example.org\n"),
        (false, "250-mx\n250 PIPELINING\n"),
        (
            true,
            "MAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\nRCPT TO:<c@example.org>\nDATA\n",
        ),
        (false, "250 OK\n250 OK\n250 OK\n354 go ahead\n"),
        (true, MAIL),
        (false, "250 queued as 42\n"),
        (true, "QUIT\n"),
        (false, "221 bye\n"),
    ]);
    assert_eq!(d.a.service(), Some("smtp"));
    d.finish(20.0);
    let rows = d.sink.of("smtp");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = rows[0];
    assert_eq!(smtp(r, "helo"), &s("client.example.org"));
    assert_eq!(smtp(r, "mailfrom"), &s("a@example.org"));
    assert_eq!(
        smtp(r, "rcptto"),
        &OwnedValue::Set(vec![s("b@example.org"), s("c@example.org")])
    );
    assert_eq!(
        smtp(r, "to"),
        &OwnedValue::Set(vec![s("b@example.org"), s("\"C, D\" <c@example.org>")])
    );
    assert_eq!(smtp(r, "subject"), &s("two files"));
    assert_eq!(smtp(r, "user_agent"), &s("test 1.0"));
    assert_eq!(smtp(r, "last_reply"), &s("250 queued as 42"));
    let path = OwnedValue::Vector(vec![
        OwnedValue::Addr(d.c.resp_h),
        OwnedValue::Addr(d.c.orig_h),
        OwnedValue::Addr("192.0.2.7".parse().unwrap()),
    ]);
    assert_eq!(smtp(r, "path"), &path);
    let files_rows = d.sink.of("files");
    assert_eq!(files_rows.len(), 2);
    assert_eq!(files(files_rows[0], "seen_bytes"), &OwnedValue::Count(5));
    assert_eq!(files(files_rows[0], "depth"), &OwnedValue::Count(2));
    assert_eq!(files(files_rows[1], "filename"), &s("a.bin"));
    assert_eq!(files(files_rows[1], "seen_bytes"), &OwnedValue::Count(5));
    assert_eq!(files(files_rows[1], "source"), &s("SMTP"));
    let OwnedValue::Vector(fuids) = smtp(r, "fuids") else {
        panic!("fuids is a vector");
    };
    assert_eq!(
        fuids,
        &vec![
            files(files_rows[0], "fuid").clone(),
            files(files_rows[1], "fuid").clone()
        ]
    );
}

#[test]
fn bdat_chunks_make_the_message() {
    let mut d = session(&[
        (false, "220 mx ESMTP\n"),
        (true, "EHLO c\n"),
        (false, "250 CHUNKING\n"),
        (true, "MAIL FROM:<a@x>\n"),
        (false, "250 OK\n"),
        (true, "RCPT TO:<b@y>\n"),
        (false, "250 OK\n"),
        (true, "BDAT 19\nSubject: hi\n\nbody"),
        (false, "250 OK\n"),
        (true, "BDAT 7 LAST\n text\n"),
        (false, "250 OK done\n"),
    ]);
    d.finish(20.0);
    let rows = d.sink.of("smtp");
    assert_eq!(rows.len(), 1);
    assert_eq!(smtp(rows[0], "subject"), &s("hi"));
    assert_eq!(smtp(rows[0], "last_reply"), &s("250 OK done"));
    let f = d.sink.of("files");
    assert_eq!(f.len(), 1);
    assert_eq!(files(f[0], "seen_bytes"), &OwnedValue::Count(11));
}

#[test]
fn starttls_hands_the_connection_to_tls() {
    let mut d = session(&[
        (false, "220 mx ESMTP\n"),
        (true, "EHLO c\n"),
        (false, "250 STARTTLS\n"),
        (true, "STARTTLS\n"),
        (false, "220 go ahead\n"),
    ]);
    let hello = b"\x16\x03\x01\x00\x2f\x01\x00\x00\x2b\x03\x03AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\x00\x00\x02\xc0\x2f\x01\x00\x00\x00";
    d.send(10.0, true, hello);
    let server_hello = b"\x16\x03\x03\x00\x2a\x02\x00\x00\x26\x03\x03BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\x00\xc0\x2f\x00";
    d.send(10.5, false, server_hello);
    assert_eq!(d.a.service(), Some("smtp,ssl"));
    d.finish(20.0);
    let rows = d.sink.of("smtp");
    assert_eq!(rows.len(), 1);
    assert_eq!(smtp(rows[0], "tls"), &OwnedValue::Bool(true));
    assert_eq!(smtp(rows[0], "helo"), &s("c"));
}

#[test]
fn detection() {
    let c = conn(Transport::Tcp, 2525);
    assert!(looks_like_smtp(&c, true, b"EHLO me\r\n"));
    assert!(looks_like_smtp(&c, true, b"helo me\r\n"));
    assert!(!looks_like_smtp(&c, false, b"220 mx ESMTP\r\n"));
    assert!(looks_like_smtp(
        &conn(Transport::Tcp, 25),
        false,
        b"220 mx ESMTP\r\n"
    ));
    assert!(!looks_like_smtp(&c, true, b"USER x\r\n"));
}

#[test]
fn weirds_name_the_analyzer_that_raised_them() {
    let a = SmtpAnalyzer::new();
    assert_eq!(
        a.weird_source("smtp_bdat_undelivered_at_done"),
        Some("SMTP_BDAT")
    );
    assert_eq!(
        a.weird_source("smtp_bdat_remaining_at_end_data"),
        Some("SMTP")
    );
    assert_eq!(
        a.weird_source("smtp_mail_transaction_invalid"),
        Some("SMTP")
    );
}

#[test]
fn webmail_user_agents_are_flagged() {
    let mut d = session(&[
        (false, "220 mx ESMTP\n"),
        (true, "HELO web\nMAIL FROM:<a@x>\nRCPT TO:<b@y>\nDATA\n"),
        (false, "250 ok\n250 ok\n250 ok\n354 go\n"),
        (
            true,
            "User-Agent: SquirrelMail/1.4.22\nSubject: s\n\nhi\n.\n",
        ),
        (false, "250 queued\n"),
    ]);
    d.finish(20.0);
    let rows = d.sink.of("smtp");
    assert_eq!(rows.len(), 1);
    assert_eq!(smtp(rows[0], "user_agent"), &s("SquirrelMail/1.4.22"));
    assert_eq!(smtp(rows[0], "is_webmail"), &OwnedValue::Bool(true));
}
