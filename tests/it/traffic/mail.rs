//! FTP and SMTP on loopback: pyftpdlib and aiosmtpd (from the venv tests/setup.sh makes)
//! with `curl` as the client, captured with `tcpdump` and analyzed with extraction on.
//!
//! - FTP: one login per transfer, each in its own mode: a passive download (EPSV), a passive
//!   upload (PASV), an active download (EPRT) and an active upload (PORT). ftp.log must show
//!   the data-channel commands and the transfers with the replies tshark decodes (for each
//!   command, the last reply before the next command, as Zeek pairs them), the user and the
//!   hidden password; the data connections are `ftp-data` in conn.log; each transfer is an
//!   `FTP_DATA` file whose SHA-256 and extracted bytes are those of the file sent.
//! - SMTP: one mail to two recipients with a text part and two base64 attachments that curl
//!   encodes. smtp.log must show the envelope and headers tshark decodes; each attachment is
//!   an `SMTP` file with its name, and its hash and extracted bytes are the file's.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{
    analyze_with, assert_complete_capture, capture, capture_filter, free_port, require_root_and,
    run, tshark, Started, HINT,
};
use crate::files::tsv_log;
use crate::harness::{temp_dir, write_file};

/// The python of the venv with pyftpdlib and aiosmtpd.
fn traffic_python() -> PathBuf {
    let env = std::env::var_os("PCAPD_TEST_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-env"));
    let python = env.join("traffic-venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing (pyftpdlib and aiosmtpd); {HINT}",
        python.display()
    );
    python
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deterministic bytes that no file signature matches.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

/// A loopback port whose next 40 ports exist too (the FTP data ports).
fn port_with_room() -> u16 {
    loop {
        let p = free_port();
        if p < 65000 {
            return p;
        }
    }
}

/// Waits until `port` accepts and greets with `greeting` (before any capture starts, so
/// the probe is not in it).
fn wait_for_greeting(server: &mut Started, port: u16, greeting: &[u8]) {
    server.wait_until("greeting", |_| {
        TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut probe| {
            let _ = probe.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 256];
            probe
                .read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(greeting))
        })
    });
}

/// The file the files.log row of `fuid` describes, with its extracted bytes.
fn file_row<'a>(
    files: &'a [BTreeMap<String, String>],
    fuid: &str,
    out: &Path,
) -> (&'a BTreeMap<String, String>, Vec<u8>) {
    let row = files
        .iter()
        .find(|f| f["fuid"] == fuid)
        .unwrap_or_else(|| panic!("no files.log row for {fuid}: {files:?}"));
    let extracted = out.join("extract_files").join(&row["extracted"]);
    let bytes =
        std::fs::read(&extracted).unwrap_or_else(|e| panic!("{}: {e}", extracted.display()));
    (row, bytes)
}

const FTP_SERVER: &str = r#"
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
root, port, low, high = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
authorizer = DummyAuthorizer()
authorizer.add_user("alice", "s3cret", root, perm="elradfmw")
FTPHandler.authorizer = authorizer
FTPHandler.passive_ports = range(low, high)
server = FTPServer(("127.0.0.1", port), FTPHandler)
server.serve_forever()
"#;

#[test]
fn ftp_transfers_active_and_passive_against_pyftpdlib() {
    require_root_and(&["tcpdump", "tshark", "curl"]);
    let python = traffic_python();
    let dir = temp_dir("traffic-ftp");
    let root = dir.join("root");
    std::fs::create_dir_all(&root).expect("server root");
    let download = noise(120_000, 0x5eed);
    write_file(&root, "down.bin", &download);
    let upload: Vec<u8> = (0..500)
        .flat_map(|i| format!("line {i} of the upload\r\n").into_bytes())
        .collect();
    let upload_file = write_file(&dir, "up.txt", &upload);
    let script = write_file(&dir, "ftp_server.py", FTP_SERVER.as_bytes());

    let port = port_with_room();
    let (passive, active) = (port + 1, port + 21);
    let mut server = Started::spawn(
        "pyftpdlib",
        &dir,
        Command::new(&python)
            .arg(&script)
            .arg(&root)
            .args([port, passive, passive + 20].map(|p| p.to_string())),
    );
    wait_for_greeting(&mut server, port, b"220");
    let pcap = dir.join("ftp.pcap");
    let filter = format!(
        "tcp and (port {port} or portrange {passive}-{})",
        active + 19
    );
    let mut tcpdump = capture_filter(&dir, &filter, &pcap);
    let url = |name: &str| format!("ftp://127.0.0.1:{port}/{name}");
    let got = dir.join("got.bin");
    let curl = |args: &[&str]| {
        run(
            "curl",
            Command::new("curl")
                .args(["-sS", "--user", "alice:s3cret"])
                .args(args),
            |c| c == Some(0),
        )
    };
    let active_ports = |from: u16| format!("127.0.0.1:{from}-{}", from + 9);
    let got_s = got.to_str().expect("utf-8 path");
    let up_s = upload_file.to_str().expect("utf-8 path");
    curl(&[&url("down.bin"), "-o", got_s]);
    curl(&["--disable-epsv", "-T", up_s, &url("up1.txt")]);
    curl(&["-P", &active_ports(active), &url("down.bin"), "-o", got_s]);
    curl(&[
        "-P",
        &active_ports(active + 10),
        "--disable-eprt",
        "-T",
        up_s,
        &url("up2.txt"),
    ]);
    std::thread::sleep(Duration::from_millis(300));
    tcpdump.stop();
    server.stop();
    assert_complete_capture(&tcpdump);
    assert_eq!(std::fs::read(&got).expect("downloaded"), download);
    assert_eq!(
        std::fs::read(root.join("up2.txt")).expect("uploaded"),
        upload
    );

    let out = dir.join("logs");
    analyze_with(&pcap, &out, &["--extract", "*"]);
    let mut rows = tsv_log(&out.join("ftp.log"));
    rows.sort_by(|a, b| a["ts"].partial_cmp(&b["ts"]).expect("ts"));
    let commands: Vec<&str> = rows.iter().map(|r| r["command"].as_str()).collect();
    assert_eq!(
        commands,
        ["EPSV", "RETR", "PASV", "STOR", "EPRT", "RETR", "PORT", "STOR"],
        "{rows:?}"
    );
    let conns = tsv_log(&out.join("conn.log"));
    let files = tsv_log(&out.join("files.log"));

    // tshark's view of each control connection: commands with their argument, and for
    // each the last reply before the next command.
    let decoded = tshark(
        &pcap,
        port,
        "ftp",
        "ftp",
        &[
            "tcp.srcport",
            "tcp.dstport",
            "ftp.request.command",
            "ftp.request.arg",
            "ftp.response.code",
        ],
    );
    let mut sessions: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    for p in &decoded {
        let from_client = p[1] == port.to_string();
        let client = if from_client { &p[0] } else { &p[1] };
        let s = sessions.entry(client.clone()).or_default();
        if from_client && !p[2].is_empty() {
            s.push((p[2].clone(), p[3].clone(), String::new()));
        } else if !from_client && !p[4].is_empty() {
            if let Some(last) = s.last_mut() {
                last.2 = p[4].clone();
            }
        }
    }
    assert_eq!(sessions.len(), 4, "{sessions:?}");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["user"], "alice", "{row:?}");
        assert_eq!(row["password"], "<hidden>", "{row:?}");
        let session = &sessions[&row["id.orig_p"]];
        let (_, arg, reply) = session
            .iter()
            .find(|(cmd, _, _)| *cmd == row["command"])
            .unwrap_or_else(|| panic!("tshark saw no {} in {session:?}", row["command"]));
        assert_eq!(&row["reply_code"], reply, "{row:?}");
        let conn = conns.iter().find(|c| c["uid"] == row["uid"]).expect("conn");
        assert_eq!(conn["service"], "ftp");
        if i % 2 == 0 {
            // The data-channel command: the data connection it announced is ftp-data.
            if matches!(row["command"].as_str(), "EPRT" | "PORT") {
                assert_eq!(&row["arg"], arg, "{row:?}");
                assert_eq!(row["data_channel.passive"], "F");
            } else {
                assert_eq!(row["data_channel.passive"], "T");
            }
            let data = conns
                .iter()
                .find(|c| c["id.resp_p"] == row["data_channel.resp_p"])
                .unwrap_or_else(|| panic!("no data connection for {row:?}: {conns:?}"));
            assert_eq!(data["service"], "ftp-data", "{data:?}");
            assert_eq!(data["id.orig_h"], row["data_channel.orig_h"]);
            continue;
        }
        // The transfer: its file is the one sent, hashed and extracted.
        let expected: &[u8] = if row["command"] == "RETR" {
            &download
        } else {
            &upload
        };
        let name = if row["command"] == "RETR" {
            "down.bin"
        } else {
            "up"
        };
        assert!(row["arg"].starts_with("ftp://127.0.0.1/"), "{row:?}");
        assert!(row["arg"].contains(name), "{row:?}");
        let (file, bytes) = file_row(&files, &row["fuid"], &out);
        assert_eq!(file["source"], "FTP_DATA");
        assert_eq!(file["sha256"], sha256_hex(expected), "{file:?}");
        assert_eq!(file["seen_bytes"], expected.len().to_string());
        assert_eq!(file["missing_bytes"], "0");
        assert!(bytes == expected, "extracted {} differs", file["extracted"]);
        let data = conns
            .iter()
            .find(|c| c["uid"] == file["uid"])
            .expect("conn");
        assert_eq!(data["service"], "ftp-data", "{data:?}");
    }
    let text_files: Vec<_> = files
        .iter()
        .filter(|f| f["sha256"] == sha256_hex(&upload))
        .collect();
    assert!(
        text_files.iter().all(|f| f["mime_type"] == "text/plain"),
        "{text_files:?}"
    );
}

#[test]
fn smtp_mail_with_two_attachments_against_aiosmtpd() {
    require_root_and(&["tcpdump", "tshark", "curl"]);
    let python = traffic_python();
    let dir = temp_dir("traffic-smtp");
    let binary = noise(50_000, 0xa77ac4);
    let text: Vec<u8> = (0..300)
        .flat_map(|i| format!("report line {i}: all quiet\n").into_bytes())
        .collect();
    let a = write_file(&dir, "a.bin", &binary);
    let b = write_file(&dir, "b.txt", &text);
    let port = free_port();
    let mut server = Started::spawn(
        "aiosmtpd",
        &dir,
        Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Sink"]),
    );
    wait_for_greeting(&mut server, port, b"220");
    let pcap = dir.join("smtp.pcap");
    let mut tcpdump = capture(&dir, port, &pcap);
    run(
        "curl",
        Command::new("curl")
            .args(["-sS", &format!("smtp://127.0.0.1:{port}/client.example")])
            .args(["--mail-from", "alice@example.org"])
            .args([
                "--mail-rcpt",
                "bob@example.org",
                "--mail-rcpt",
                "carol@example.org",
            ])
            .args([
                "-H",
                "Subject: two attachments",
                "-H",
                "From: Alice <alice@example.org>",
            ])
            .args([
                "-H",
                "To: Bob <bob@example.org>",
                "-H",
                "Cc: carol@example.org",
            ])
            .args(["-F", "=Hello Bob, two files attached.;type=text/plain"])
            .args(["-F", &format!("a=@{};encoder=base64", a.display())])
            .args([
                "-F",
                &format!("b=@{};type=text/plain;encoder=base64", b.display()),
            ]),
        |c| c == Some(0),
    );
    std::thread::sleep(Duration::from_millis(300));
    tcpdump.stop();
    server.stop();
    assert_complete_capture(&tcpdump);

    let out = dir.join("logs");
    analyze_with(&pcap, &out, &["--extract", "*"]);
    let rows = tsv_log(&out.join("smtp.log"));
    assert_eq!(rows.len(), 1, "smtp.log: {rows:?}");
    let row = &rows[0];

    let requests = tshark(
        &pcap,
        port,
        "smtp",
        "smtp.req",
        &["smtp.req.command", "smtp.req.parameter"],
    );
    let param = |cmd: &str| -> Vec<String> {
        requests
            .iter()
            .filter(|r| r[0] == cmd)
            .map(|r| r[1].clone())
            .collect()
    };
    let address = |p: &str| {
        p.split_once('<')
            .and_then(|(_, rest)| rest.split_once('>'))
            .map(|(addr, _)| addr.to_string())
            .unwrap_or_default()
    };
    assert_eq!(row["helo"], param("EHLO")[0]);
    assert_eq!(row["mailfrom"], address(&param("MAIL")[0]));
    let mut rcpt: Vec<String> = param("RCPT").iter().map(|p| address(p)).collect();
    rcpt.sort();
    let mut logged: Vec<&str> = row["rcptto"].split(',').collect();
    logged.sort();
    assert_eq!(logged, rcpt);
    let headers = tshark(
        &pcap,
        port,
        "smtp",
        "imf",
        &["imf.subject", "imf.from", "imf.to", "imf.cc"],
    );
    assert_eq!(headers.len(), 1, "tshark imf: {headers:?}");
    assert_eq!(row["subject"], headers[0][0]);
    assert_eq!(row["from"], headers[0][1]);
    assert_eq!(row["to"], headers[0][2]);
    assert_eq!(row["cc"], headers[0][3]);
    assert_eq!(row["tls"], "F");
    assert!(row["last_reply"].starts_with("250"), "{row:?}");
    assert_eq!(row["path"], "127.0.0.1,127.0.0.1");

    let files = tsv_log(&out.join("files.log"));
    let fuids: Vec<&str> = row["fuids"].split(',').collect();
    assert_eq!(fuids.len(), 3, "the text part and two attachments: {row:?}");
    let (body, body_bytes) = file_row(&files, fuids[0], &out);
    assert_eq!(body_bytes, b"Hello Bob, two files attached.");
    assert_eq!(body["mime_type"], "text/plain");
    for (fuid, name, content, mime) in [
        (fuids[1], "a.bin", &binary, "-"),
        (fuids[2], "b.txt", &text, "text/plain"),
    ] {
        let (file, bytes) = file_row(&files, fuid, &out);
        assert_eq!(file["source"], "SMTP");
        assert_eq!(file["filename"], name);
        assert_eq!(file["mime_type"], mime, "{file:?}");
        assert_eq!(file["sha256"], sha256_hex(content), "{file:?}");
        assert_eq!(file["seen_bytes"], content.len().to_string());
        assert!(&bytes == content, "extracted {name} differs");
        assert_eq!(file["uid"], row["uid"]);
    }
    let conns = tsv_log(&out.join("conn.log"));
    let conn = conns.iter().find(|c| c["uid"] == row["uid"]).expect("conn");
    assert_eq!(conn["service"], "smtp");
}
