//! Files out of the traffic, end to end: captures generated here carry HTTP bodies whose
//! bytes the test knows (an executable, a PDF, plain text, a gzip-encoded and a chunked
//! response, an upload, a body split over a retransmission); the builtin analyzer must log
//! their real digests and MIME types and extract them byte for byte, within `[Extract]`'s
//! bounds. tshark's `--export-objects http` is the independent cross-check (tests/setup.sh
//! installs it).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use pcapd::analyzer::{analyze, AnalyzeOptions, AnalyzeSummary};
use pcapd::config::{ExtractConfig, ExtractLayout};
use pcapd_synth::packet::{
    tcp_frame, Endpoint, IpFields, TcpHeader, TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN,
};
use pcapd_synth::{PacketSink, PcapWriter};
use sha2::{Digest, Sha256};

use crate::harness::temp_dir;

const MSS: usize = 1448;

/// One TCP connection written packet by packet into a capture.
struct Conn<'a, S: PacketSink> {
    sink: &'a mut S,
    client: Endpoint,
    server: Endpoint,
    seq: [u32; 2],
    ts: u64,
    frame: Vec<u8>,
}

impl<'a, S: PacketSink> Conn<'a, S> {
    /// A handshake between 10.0.0.1:`port` and 10.0.0.2:80 at `ts` microseconds.
    fn open(sink: &'a mut S, port: u16, ts: u64) -> Self {
        let ep = |last: u8, port: u16| Endpoint {
            mac: [2, 0, 0, 0, 0, last],
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
            port,
        };
        let mut c = Conn {
            sink,
            client: ep(1, port),
            server: ep(2, 80),
            seq: [1000, 50000],
            ts,
            frame: Vec::new(),
        };
        c.segment(true, TCP_SYN, &[]);
        c.seq[0] += 1;
        c.segment(false, TCP_SYN | TCP_ACK, &[]);
        c.seq[1] += 1;
        c.segment(true, TCP_ACK, &[]);
        c
    }

    fn segment(&mut self, from_client: bool, flags: u8, data: &[u8]) {
        let (from, to, seq, ack) = if from_client {
            (self.client, self.server, self.seq[0], self.seq[1])
        } else {
            (self.server, self.client, self.seq[1], self.seq[0])
        };
        let tcp = TcpHeader {
            seq,
            ack,
            flags,
            window: 65535,
        };
        let ip = IpFields { id: 1, ttl: 64 };
        tcp_frame(&mut self.frame, &from, &to, ip, tcp, &[], |seg| {
            seg.extend_from_slice(data)
        });
        self.ts += 100;
        self.sink.write_packet(self.ts, &self.frame).unwrap();
    }

    /// Sends `data` in MSS-sized segments; the segment at `retransmit` (if any) goes twice.
    fn send(&mut self, from_client: bool, data: &[u8], retransmit: Option<usize>) {
        let side = usize::from(!from_client);
        for (i, chunk) in data.chunks(MSS).enumerate() {
            self.segment(from_client, TCP_ACK | TCP_PSH, chunk);
            if retransmit == Some(i) {
                self.segment(from_client, TCP_ACK | TCP_PSH, chunk);
            }
            self.seq[side] = self.seq[side].wrapping_add(chunk.len() as u32);
        }
    }

    fn close(mut self) {
        self.segment(true, TCP_FIN | TCP_ACK, &[]);
        self.seq[0] += 1;
        self.segment(false, TCP_FIN | TCP_ACK, &[]);
        self.seq[1] += 1;
        self.segment(true, TCP_ACK, &[]);
    }
}

/// Deterministic bytes that do not compress (a xorshift stream).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn chunked(data: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in data.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// A payload the capture carries and what the analyzer must say of it.
pub struct Known {
    pub what: &'static str,
    pub body: Vec<u8>,
    pub mime: &'static str,
}

fn exe() -> Vec<u8> {
    // A DOS header whose e_lfanew points at a PE signature, then code-like noise.
    let mut b = vec![0u8; 0x80];
    b[..2].copy_from_slice(b"MZ");
    b[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    b.extend_from_slice(b"PE\0\0\x4c\x01\x03\x00");
    b.extend(noise(40_000, 7));
    b
}

fn pdf() -> Vec<u8> {
    let mut b =
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\nstream\n".to_vec();
    b.extend(noise(25_000, 11));
    b.extend_from_slice(b"\nendstream\n%%EOF\n");
    b
}

fn text(lines: usize) -> Vec<u8> {
    (0..lines)
        .map(|i| format!("line {i}: the quick brown fox jumps over the lazy dog\n"))
        .collect::<String>()
        .into_bytes()
}

/// Writes a response with `headers` and `wire_body` (already encoded) on a new connection
/// for GET `uri`.
fn exchange<S: PacketSink>(
    sink: &mut S,
    port: u16,
    request: &[u8],
    head: &str,
    wire_body: &[u8],
    retransmit: Option<usize>,
) {
    let mut c = Conn::open(sink, port, u64::from(port) * 1_000_000);
    c.send(true, request, None);
    let mut response = head.as_bytes().to_vec();
    response.extend_from_slice(wire_body);
    c.send(false, &response, retransmit);
    c.close();
}

fn get(uri: &str) -> Vec<u8> {
    format!("GET {uri} HTTP/1.1\r\nHost: files.test\r\nUser-Agent: it\r\n\r\n").into_bytes()
}

fn ok(content_type: &str, extra: &str, len: Option<usize>) -> String {
    let len = len.map_or(String::new(), |n| format!("Content-Length: {n}\r\n"));
    format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n{len}{extra}\r\n")
}

/// The capture of every known payload: returns its path and the payloads.
pub fn known_capture(dir: &Path, with_upload: bool) -> (PathBuf, Vec<Known>) {
    let path = dir.join("files.pcap");
    let mut sink = PcapWriter::new(BufWriter::new(File::create(&path).unwrap())).unwrap();
    let mut known = Vec::new();

    let body = exe();
    exchange(
        &mut sink,
        40001,
        &get("/setup.exe"),
        &ok("application/octet-stream", "", Some(body.len())),
        &body,
        None,
    );
    known.push(Known {
        what: "exe",
        body,
        mime: "application/x-dosexec",
    });

    let body = pdf();
    exchange(
        &mut sink,
        40002,
        &get("/doc.pdf"),
        &ok(
            "application/pdf",
            "Content-Disposition: attachment; filename=\"../../etc/cron.d/evil\"\r\n",
            Some(body.len()),
        ),
        &body,
        None,
    );
    known.push(Known {
        what: "pdf",
        body,
        mime: "application/pdf",
    });

    let body = text(200);
    exchange(
        &mut sink,
        40003,
        &get("/readme.txt"),
        &ok("text/plain", "", Some(body.len())),
        &body,
        None,
    );
    known.push(Known {
        what: "text",
        body,
        mime: "text/plain",
    });

    let body = text(3000);
    let wire = gzip(&body);
    exchange(
        &mut sink,
        40004,
        &get("/big.txt"),
        &ok("text/plain", "Content-Encoding: gzip\r\n", Some(wire.len())),
        &wire,
        None,
    );
    known.push(Known {
        what: "gzip",
        body,
        mime: "text/plain",
    });

    let body = pdf().into_iter().rev().chain(exe()).collect::<Vec<u8>>();
    let mut body_with_magic = b"%PDF-1.7\n".to_vec();
    body_with_magic.extend(body);
    let body = body_with_magic;
    exchange(
        &mut sink,
        40005,
        &get("/chunked.pdf"),
        &ok("application/pdf", "Transfer-Encoding: chunked\r\n", None),
        &chunked(&body, 5000),
        None,
    );
    known.push(Known {
        what: "chunked",
        body,
        mime: "application/pdf",
    });

    let body = exe()
        .into_iter()
        .chain(noise(20_000, 3))
        .collect::<Vec<u8>>();
    exchange(
        &mut sink,
        40006,
        &get("/retrans.exe"),
        &ok("application/octet-stream", "", Some(body.len())),
        &body,
        Some(5),
    );
    known.push(Known {
        what: "retransmitted",
        body,
        mime: "application/x-dosexec",
    });

    if with_upload {
        // Past 1 MiB: the parts of an upload stream through, none is held whole.
        let file = pdf()
            .into_iter()
            .chain(noise(2_500_000, 13))
            .collect::<Vec<u8>>();
        let mut form = b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"upload.pdf\"\r\nContent-Type: application/pdf\r\n\r\n".to_vec();
        form.extend_from_slice(&file);
        form.extend_from_slice(b"\r\n--XyZ--\r\n");
        let mut request = format!(
            "POST /upload HTTP/1.1\r\nHost: files.test\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n\r\n",
            form.len()
        )
        .into_bytes();
        request.extend_from_slice(&form);
        exchange(
            &mut sink,
            40007,
            &request,
            "HTTP/1.1 204 No Content\r\n\r\n",
            b"",
            None,
        );
        known.push(Known {
            what: "upload",
            body: file,
            mime: "application/pdf",
        });
    }
    sink.flush().unwrap();
    (path, known)
}

/// files.log as rows of column name → value.
pub fn files_log(out: &Path) -> Vec<BTreeMap<String, String>> {
    tsv_log(&out.join("files.log"))
}

/// A Zeek TSV log as rows of column name → value.
pub fn tsv_log(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} not written: {e}", path.display()));
    let fields: Vec<String> = text
        .lines()
        .find_map(|l| l.strip_prefix("#fields\t"))
        .expect("#fields header")
        .split('\t')
        .map(str::to_string)
        .collect();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            fields
                .iter()
                .cloned()
                .zip(l.split('\t').map(str::to_string))
                .collect()
        })
        .collect()
}

pub fn run(capture: &Path, out: &Path, extract: ExtractConfig) -> AnalyzeSummary {
    let opts = AnalyzeOptions {
        extract,
        ..AnalyzeOptions::default()
    };
    analyze(&[capture.to_path_buf()], out, &opts, &mut |_, _| {}).expect("analysis runs")
}

pub fn extract_all(layout: ExtractLayout) -> ExtractConfig {
    ExtractConfig {
        mime: vec!["*".into()],
        layout,
        ..ExtractConfig::default()
    }
}

#[test]
fn known_payloads_are_hashed_typed_and_extracted_byte_for_byte() {
    let dir = temp_dir("files-known");
    let (capture, known) = known_capture(&dir, true);
    let out = dir.join("logs");
    let summary = run(&capture, &out, extract_all(ExtractLayout::Mime));
    let rows = files_log(&out);
    for k in &known {
        let sha = sha256_hex(&k.body);
        let row = rows
            .iter()
            .find(|r| r["sha256"] == sha)
            .unwrap_or_else(|| panic!("{}: no files.log row with sha256 {sha}: {rows:#?}", k.what));
        assert_eq!(row["mime_type"], k.mime, "{}", k.what);
        assert_eq!(row["seen_bytes"], k.body.len().to_string(), "{}", k.what);
        assert_eq!(row["missing_bytes"], "0", "{}", k.what);
        assert_eq!(row["md5"].len(), 32, "{}", k.what);
        assert_eq!(row["sha1"].len(), 40, "{}", k.what);
        assert_eq!(row["extracted_cutoff"], "F", "{}", k.what);
        let name = &row["extracted"];
        assert!(
            name.starts_with(&format!("{}/extract-", k.mime)) && name.contains("-HTTP-F"),
            "{}: extracted as {name}",
            k.what
        );
        let stored = out.join("extract_files").join(name);
        assert_eq!(
            std::fs::read(&stored).unwrap(),
            k.body,
            "{}: {name}",
            k.what
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&stored).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "{}", k.what);
    }
    // The name from Content-Disposition is logged, never used for storage.
    let pdf = rows
        .iter()
        .find(|r| r["sha256"] == sha256_hex(&known[1].body))
        .unwrap();
    assert_eq!(pdf["filename"], "../../etc/cron.d/evil");
    assert!(!out.join("etc").exists() && !dir.join("etc").exists());
    assert_eq!(summary.files_extracted, rows.len() as u64);
    assert_eq!(summary.files_cutoff, 0);
    // Without [Extract], hashes are still there (the chosen ones) and nothing is written.
    let plain = dir.join("plain");
    let only_sha256 = ExtractConfig {
        hashes: vec!["sha256".into()],
        ..ExtractConfig::default()
    };
    let summary = run(&capture, &plain, only_sha256);
    assert_eq!(summary.files_extracted, 0);
    assert!(!plain.join("extract_files").exists());
    let rows = files_log(&plain);
    assert!(rows
        .iter()
        .all(|r| r["extracted"] == "-" && r["sha256"].len() == 64));
    assert!(rows.iter().all(|r| r["md5"] == "-" && r["sha1"] == "-"));
}

#[test]
fn tshark_exports_the_same_files() {
    let dir = temp_dir("files-tshark");
    let (capture, known) = known_capture(&dir, false);
    let out = dir.join("logs");
    run(&capture, &out, extract_all(ExtractLayout::Flat));
    let export = dir.join("tshark");
    std::fs::create_dir_all(&export).unwrap();
    let result = Command::new("tshark")
        .arg("-r")
        .arg(&capture)
        .arg("-q")
        .arg("--export-objects")
        .arg(format!("http,{}", export.display()))
        .output()
        .unwrap_or_else(|e| panic!("tshark does not run ({e}): run tests/setup.sh"));
    assert!(
        result.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let theirs: BTreeSet<String> = std::fs::read_dir(&export)
        .unwrap()
        .map(|e| sha256_hex(&std::fs::read(e.unwrap().path()).unwrap()))
        .collect();
    let ours: BTreeSet<String> = files_log(&out)
        .into_iter()
        .map(|r| r["sha256"].clone())
        .collect();
    let extracted: BTreeSet<String> = std::fs::read_dir(out.join("extract_files"))
        .unwrap()
        .map(|e| sha256_hex(&std::fs::read(e.unwrap().path()).unwrap()))
        .collect();
    let known: BTreeSet<String> = known.iter().map(|k| sha256_hex(&k.body)).collect();
    assert_eq!(theirs, known, "tshark's objects are the known payloads");
    assert_eq!(ours, theirs);
    assert_eq!(extracted, theirs);
}

/// One response of `body` on `wire` encoding in a capture of its own.
fn single_response(dir: &Path, head: &str, wire: &[u8]) -> PathBuf {
    let path = dir.join("one.pcap");
    let mut sink = PcapWriter::new(BufWriter::new(File::create(&path).unwrap())).unwrap();
    exchange(&mut sink, 41000, &get("/x"), head, wire, None);
    sink.flush().unwrap();
    path
}

#[test]
fn a_100_mb_body_is_cut_at_max_file() {
    let dir = temp_dir("files-big");
    let body = noise(100 << 20, 5);
    let capture = single_response(
        &dir,
        &ok("application/octet-stream", "", Some(body.len())),
        &body,
    );
    let out = dir.join("logs");
    let extract = ExtractConfig {
        max_file: 10 << 20,
        ..extract_all(ExtractLayout::Flat)
    };
    let summary = run(&capture, &out, extract);
    let rows = files_log(&out);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["seen_bytes"], (100u64 << 20).to_string());
    assert_eq!(
        row["sha256"],
        sha256_hex(&body),
        "hashing covers the whole file"
    );
    assert_eq!(row["extracted_cutoff"], "T");
    assert_eq!(row["extracted_size"], (10u64 << 20).to_string());
    let stored = std::fs::read(out.join("extract_files").join(&row["extracted"])).unwrap();
    assert_eq!(stored.len(), 10 << 20);
    assert!(stored[..] == body[..10 << 20]);
    assert_eq!((summary.files_extracted, summary.files_cutoff), (1, 1));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_gzip_bomb_cannot_pass_max_file() {
    let dir = temp_dir("files-bomb");
    let decoded: u64 = 256 << 20;
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(decoded >> 20) {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "{} bytes on the wire", bomb.len());
    let capture = single_response(
        &dir,
        &ok("text/plain", "Content-Encoding: gzip\r\n", Some(bomb.len())),
        &bomb,
    );
    let out = dir.join("logs");
    let extract = ExtractConfig {
        max_file: 1 << 20,
        ..extract_all(ExtractLayout::Flat)
    };
    run(&capture, &out, extract);
    let row = &files_log(&out)[0];
    assert_eq!(row["seen_bytes"], decoded.to_string());
    assert_eq!(row["extracted_cutoff"], "T");
    assert_eq!(row["extracted_size"], (1u64 << 20).to_string());
    let stored = out.join("extract_files").join(&row["extracted"]);
    assert_eq!(std::fs::metadata(stored).unwrap().len(), 1 << 20);
}

#[test]
fn max_total_bounds_a_job_and_globs_choose_types() {
    let dir = temp_dir("files-total");
    let (capture, known) = known_capture(&dir, true);
    let out = dir.join("logs");
    // exe + pdf + chunked pdf + retransmitted exe + upload are application/*; text is not.
    let budget = 100_000u64;
    let extract = ExtractConfig {
        mime: vec!["application/*".into()],
        max_total: budget,
        ..ExtractConfig::default()
    };
    let summary = run(&capture, &out, extract);
    let rows = files_log(&out);
    let stored: u64 = rows
        .iter()
        .filter(|r| r["extracted"] != "-")
        .map(|r| {
            std::fs::metadata(out.join("extract_files").join(&r["extracted"]))
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(stored, budget);
    for k in &known {
        let row = rows
            .iter()
            .find(|r| r["sha256"] == sha256_hex(&k.body))
            .unwrap();
        if k.mime == "text/plain" {
            assert_eq!(row["extracted"], "-", "{}", k.what);
        } else {
            assert_ne!(row["extracted"], "-", "{}", k.what);
        }
    }
    let cut = rows.iter().filter(|r| r["extracted_cutoff"] == "T").count() as u64;
    assert!(cut >= 1);
    assert_eq!(summary.files_cutoff, cut);

    // A glob that matches nothing extracts nothing.
    let none = dir.join("none");
    let extract = ExtractConfig {
        mime: vec!["video/*".into()],
        ..ExtractConfig::default()
    };
    assert_eq!(run(&capture, &none, extract).files_extracted, 0);
    assert!(!none.join("extract_files").exists());
}

/// Both doors and the CLI: `files` and `fetch extract_files/…` over TLS, `GET /jobs/ID/files`
/// and `GET /jobs/ID/files/NAME` (with ranges) over HTTP, `pcapd files JOB -o DIR`.
#[tokio::test(flavor = "multi_thread")]
async fn extracted_files_come_out_through_both_doors_and_the_cli() {
    use crate::gateway::{gateway_spec, Gateway};
    use crate::harness::{wait_done, TestDaemon};
    use serde_json::json;

    let dir = temp_dir("files-doors");
    let (capture, known) = known_capture(&dir, true);
    let daemon = TestDaemon::start(
        "files-doors",
        &gateway_spec("[Extract]\nmime = application/*\nlayout = mime\n"),
    );
    let mut client = daemon.client().await;
    let answer = client
        .submit_files(
            std::slice::from_ref(&capture),
            None,
            Default::default(),
            &mut |_, _| {},
        )
        .await
        .unwrap();
    let id = answer["job_id"].as_str().unwrap().to_owned();
    let job = wait_done(&mut client, &id, Duration::from_secs(60)).await;
    assert_eq!(job["state"], "done", "{job}");
    let logs_dir = daemon.dir.join("state/jobs").join(&id).join("logs");

    // TLS: the list, then each file by fetch.
    let listed = client.call("files", json!({ "job_id": id })).await.unwrap();
    let files = listed["files"].as_array().unwrap().clone();
    let wanted: BTreeSet<String> = known
        .iter()
        .filter(|k| k.mime.starts_with("application/"))
        .map(|k| sha256_hex(&k.body))
        .collect();
    assert_eq!(files.len(), wanted.len(), "{listed}");
    let mut got = BTreeSet::new();
    for f in &files {
        let name = f["name"].as_str().unwrap();
        assert!(name.starts_with("extract_files/application/"), "{name}");
        let bytes = client
            .call_raw("fetch", json!({ "job_id": id, "log": name }))
            .await
            .unwrap();
        assert_eq!(bytes.len() as u64, f["bytes"].as_u64().unwrap());
        assert_eq!(bytes, std::fs::read(logs_dir.join(name)).unwrap());
        got.insert(sha256_hex(&bytes));
    }
    assert_eq!(got, wanted);
    let escape = client
        .call_raw(
            "fetch",
            json!({ "job_id": id, "log": "extract_files/../job.json" }),
        )
        .await
        .unwrap_err();
    assert_eq!(escape.code(), Some("bad_request"), "{escape}");

    // HTTP: the same list, a file whole and in part.
    let gw = Gateway::new(&daemon);
    let http_list = gw.curl(&format!("/jobs/{id}/files"), &[]).json();
    assert_eq!(http_list["files"], listed["files"]);
    let name = files[0]["name"].as_str().unwrap();
    let rest = name.strip_prefix("extract_files/").unwrap();
    let on_disk = std::fs::read(logs_dir.join(name)).unwrap();
    let whole = gw.curl(&format!("/jobs/{id}/files/{rest}"), &[]);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, on_disk);
    assert_eq!(
        whole.header("content-type").as_deref(),
        Some("application/octet-stream")
    );
    let part = gw.curl(
        &format!("/jobs/{id}/files/{rest}"),
        &["-H", "Range: bytes=100-1099"],
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.body, on_disk[100..1100]);
    let missing = gw.curl(&format!("/jobs/{id}/files/application/pdf/nothing"), &[]);
    assert_eq!(missing.status, 404);

    // The CLI: the list, and every file downloaded.
    let out = dir.join("downloaded");
    let cli = daemon.cli(&["files", &id, "-o", out.to_str().unwrap()]);
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let text = String::from_utf8_lossy(&cli.stdout);
    for f in &files {
        let name = f["name"].as_str().unwrap();
        assert!(text.contains(name), "{text}");
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            std::fs::read(logs_dir.join(name)).unwrap()
        );
    }
}

/// `pcapd analyze` standalone: [Extract] and a detector from a config file, a flag on top.
#[test]
fn analyze_cli_extracts_and_detects_from_a_config_file() {
    let dir = temp_dir("files-cli");
    let (capture, known) = known_capture(&dir, false);
    let rules = dir.join("r.yar");
    std::fs::write(
        &rules,
        "rule catalog { strings: $a = \"/Type /Catalog\" condition: $a }\n",
    )
    .unwrap();
    let cfg = dir.join("files.cfg");
    std::fs::write(
        &cfg,
        format!(
            "[Extract]\nmime = application/*\n[Detector yara]\ncommand = yara {} {{file}}\nhit_output = true\n",
            rules.display()
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let run = Command::new(crate::harness::PCAPD)
        .args(["analyze", "--json", "-o"])
        .arg(&out)
        .arg("-c")
        .arg(&cfg)
        .args(["--extract-layout", "mime"])
        .arg(&capture)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let applications = known
        .iter()
        .filter(|k| k.mime.starts_with("application/"))
        .count();
    assert_eq!(summary["files_extracted"], applications as u64);
    assert_eq!(summary["detect"]["runs"], applications as u64);
    assert_eq!(summary["detect"]["hits"], 1, "{summary}");
    assert!(out.join("extract_files/application/pdf").is_dir());
    let detect = std::fs::read_to_string(out.join("detect.log")).unwrap();
    assert!(detect.contains("\tyara\thit\t"), "{detect}");
    // A bad config is refused with its location.
    std::fs::write(
        &cfg,
        "[Detector y]\ncommand = yara {rules} {file}\nhit_output = true\n",
    )
    .unwrap();
    let refused = Command::new(crate::harness::PCAPD)
        .args(["analyze", "-o"])
        .arg(&out)
        .arg("-c")
        .arg(&cfg)
        .arg(&capture)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(64));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("[Detector y] command") && err.contains("{rules}"),
        "{err}"
    );
}
