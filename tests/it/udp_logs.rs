//! dhcp.log and conn.log's `community_id` against real traffic and independent decoders.
//!
//! A [`Lab`] is two network namespaces joined by a veth pair (the tests run as root): a
//! server side at 10.99.<n>.1 and fd99::<n>:1, a client side with no address. Debian's
//! `dnsmasq` serves DHCP on the server side, busybox's `udhcpc` asks for a lease from the
//! client side, and `tcpdump` records the server's end of the veth.
//!
//! - dhcp.log of the lease is checked against what `tshark` decodes from the same capture:
//!   MAC, assigned address, lease time, host name, domain, the message types in order.
//! - `community_id` of every conn.log row, for every capture of the Zeek corpus and for a
//!   real capture holding DHCP, TCP (busybox `httpd` and `wget`), ICMP and ICMPv6 echo, and
//!   ICMP port unreachable (one-way), equals what the `communityid` package from PyPI
//!   computes (`tests/analyzer/community_ids.py`, run in the test venv); once more with a
//!   seed set through `[Analyzer] community_id_seed`.
//!
//! Needs iproute2, tcpdump, tshark, dnsmasq, busybox and the test venv with `communityid`,
//! which `tests/setup.sh` installs; without them these tests fail with that hint, never skip.
//! The veth's checksums are offloaded (tcpdump sees them before they are computed), so the
//! captures are analyzed with `-C`, as Zeek would be run on them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{temp_dir, PCAPD};

const HINT: &str = "run tests/setup.sh (the README's test command does)";
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// How long a lab command (a DHCP exchange, a download) may take.
const STEP_DEADLINE: &str = "30";
/// How long tcpdump gets to start listening.
const CAPTURE_START: Duration = Duration::from_secs(10);
/// How long the last packets get to reach tcpdump's file before it is stopped.
const CAPTURE_SETTLE: Duration = Duration::from_millis(500);

fn test_env() -> PathBuf {
    match std::env::var_os("PCAPD_TEST_ENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(ROOT).join("target/test-env"),
    }
}

/// Runs a command to completion; panics with its output (and the setup hint) on failure.
fn run(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown} ({e}): {HINT}"));
    assert!(
        out.status.success(),
        "{shown} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces joined by a veth pair, and the daemons started in them; all removed on
/// drop (children killed by pid, namespaces deleted, which deletes the veth).
struct Lab {
    server: String,
    client: String,
    /// Third byte of the server's 10.99.x.1 and group of its fd99::x:1.
    net: u8,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Lab {
    fn new(name: &str, net: u8) -> Lab {
        let tag = format!("{}{}", std::process::id() % 100_000, name);
        let lab = Lab {
            server: format!("pd{tag}s"),
            client: format!("pd{tag}c"),
            net,
            dir: temp_dir(&format!("udp-logs-{name}")),
            children: Vec::new(),
        };
        let (s, c) = (lab.server.as_str(), lab.client.as_str());
        let ip = |args: &[&str]| run(Command::new("ip").args(args));
        ip(&["netns", "add", s]);
        ip(&["netns", "add", c]);
        ip(&[
            "link", "add", "pdveth-s", "netns", s, "type", "veth", "peer", "name", "pdveth-c",
            "netns", c,
        ]);
        let v4 = format!("10.99.{net}.1/24");
        let v6 = format!("fd99::{net}:1/64");
        ip(&["-n", s, "addr", "add", &v4, "dev", "pdveth-s"]);
        ip(&["-n", s, "addr", "add", &v6, "dev", "pdveth-s", "nodad"]);
        for (ns, dev) in [(s, "pdveth-s"), (c, "pdveth-c")] {
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        lab
    }

    fn in_ns(&self, ns: &str, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program]);
        cmd
    }

    fn spawn(&mut self, ns: &str, program: &str, args: &[&str], log: &str) {
        let log = std::fs::File::create(self.dir.join(log)).expect("log file");
        let child = self
            .in_ns(ns, program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program} ({e}): {HINT}"));
        self.children.push(child);
    }

    /// Starts tcpdump on the server's end of the veth (packets matching `filter`, a pcap
    /// filter; empty = all) and waits until it listens.
    fn capture(&mut self, filter: &str) -> PathBuf {
        let pcap = self.dir.join("lab.pcap");
        let server = self.server.clone();
        let path = pcap.to_string_lossy().into_owned();
        self.spawn(
            &server,
            "tcpdump",
            &[
                "-i",
                "pdveth-s",
                "--immediate-mode",
                "-U",
                "-n",
                "-w",
                &path,
                filter,
            ],
            "tcpdump.log",
        );
        let started = Instant::now();
        loop {
            let log = std::fs::read_to_string(self.dir.join("tcpdump.log")).unwrap_or_default();
            if log.contains("listening on") {
                return pcap;
            }
            assert!(
                started.elapsed() < CAPTURE_START,
                "tcpdump did not start: {log}; {HINT}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// dnsmasq serving DHCP (no DNS) on the server side: a 2 h lease, domain pcapd.test.
    fn dhcp_server(&mut self) {
        let net = self.net;
        let range = format!("10.99.{net}.50,10.99.{net}.60,255.255.255.0,2h");
        let leases = self.dir.join("leases").to_string_lossy().into_owned();
        let server = self.server.clone();
        self.spawn(
            &server,
            "dnsmasq",
            &[
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--port=0",
                "--interface=pdveth-s",
                "--bind-interfaces",
                "--no-ping",
                &format!("--dhcp-range={range}"),
                &format!("--dhcp-leasefile={leases}"),
                "--dhcp-option=option:domain-name,pcapd.test",
            ],
            "dnsmasq.log",
        );
    }

    /// One DHCP exchange from the client side (the lease is not configured on the link).
    fn dhcp_client(&self, host_name: &str) {
        let hostname = format!("hostname:{host_name}");
        run(Command::new("timeout").args([
            STEP_DEADLINE,
            "ip",
            "netns",
            "exec",
            &self.client,
            "busybox",
            "udhcpc",
            "-i",
            "pdveth-c",
            "-n",
            "-q",
            "-f",
            "-s",
            "/bin/true",
            "-t",
            "10",
            "-T",
            "1",
            "-x",
            &hostname,
        ]));
    }

    /// Stops the children (tcpdump flushes its file on SIGTERM) and waits for them.
    fn stop(&mut self) {
        if self.children.is_empty() {
            return;
        }
        std::thread::sleep(CAPTURE_SETTLE);
        for child in &mut self.children {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        for mut child in self.children.drain(..) {
            let _ = child.wait();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop();
        for ns in [&self.server, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// The rows of a Zeek TSV log, by column name.
fn tsv_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut fields: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for line in text.lines() {
        if let Some(names) = line.strip_prefix("#fields\t") {
            fields = names.split('\t').map(str::to_owned).collect();
        } else if !line.starts_with('#') {
            rows.push(
                fields
                    .iter()
                    .cloned()
                    .zip(line.split('\t').map(str::to_owned))
                    .collect(),
            );
        }
    }
    rows
}

fn analyze(capture: &Path, out: &Path, extra: &[&str]) {
    run(Command::new(PCAPD)
        .args(["analyze", "-C", "-o"])
        .arg(out)
        .args(extra)
        .arg(capture));
}

/// tshark's decode of each DHCP message: xid, message type, chaddr, yiaddr, lease, host name,
/// domain, requested address.
fn tshark_dhcp(capture: &Path) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(capture)
        .args(["-Y", "dhcp", "-T", "fields", "-E", "separator=|"]);
    for field in [
        "dhcp.id",
        "dhcp.option.dhcp",
        "dhcp.hw.mac_addr",
        "dhcp.ip.your",
        "dhcp.option.ip_address_lease_time",
        "dhcp.option.hostname",
        "dhcp.option.domain_name",
        "dhcp.option.requested_ip_address",
    ] {
        cmd.args(["-e", field]);
    }
    run(&mut cmd)
        .lines()
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect()
}

fn message_type_name(code: &str) -> &'static str {
    match code {
        "1" => "DISCOVER",
        "2" => "OFFER",
        "3" => "REQUEST",
        "4" => "DECLINE",
        "5" => "ACK",
        "6" => "NAK",
        "7" => "RELEASE",
        "8" => "INFORM",
        _ => "other",
    }
}

#[test]
fn dhcp_log_of_a_dnsmasq_lease_matches_tshark() {
    let mut lab = Lab::new("dhcp", 1);
    // Without the link's IPv6 neighbour discovery.
    let capture = lab.capture("udp port 67 or udp port 68");
    lab.dhcp_server();
    lab.dhcp_client("pcapd-client");
    lab.stop();
    let out = lab.dir.join("logs");
    analyze(&capture, &out, &[]);

    let decoded = tshark_dhcp(&capture);
    let ack = decoded
        .iter()
        .find(|m| m[1] == "5")
        .unwrap_or_else(|| panic!("tshark saw no DHCP ACK in the capture: {decoded:?}"));
    let xid = &ack[0];
    let exchange: Vec<&Vec<String>> = decoded.iter().filter(|m| &m[0] == xid).collect();
    let request = exchange
        .iter()
        .find(|m| m[1] == "3")
        .expect("tshark saw the REQUEST");
    let types: Vec<&str> = exchange.iter().map(|m| message_type_name(&m[1])).collect();

    let rows = tsv_rows(&out.join("dhcp.log"));
    let lease = rows
        .iter()
        .find(|r| r["msg_types"].split(',').any(|t| t == "ACK"))
        .unwrap_or_else(|| panic!("no dhcp.log row with the ACK: {rows:?}"));
    // tshark writes the MAC once per field holding it (chaddr, client identifier).
    let mac = ack[2].split(',').next().unwrap_or_default();
    assert_eq!(lease["mac"], mac);
    assert_eq!(lease["assigned_addr"], ack[3]);
    assert_eq!(lease["lease_time"], format!("{}.000000", ack[4]));
    assert_eq!(lease["host_name"], request[5]);
    assert_eq!(lease["host_name"], "pcapd-client");
    assert_eq!(lease["domain"], ack[6]);
    assert_eq!(lease["requested_addr"], request[7]);
    assert_eq!(lease["server_addr"], format!("10.99.{}.1", lab.net));
    assert_eq!(lease["msg_types"], types.join(","));
    // Every DHCP connection is one of the lease's.
    let conns = tsv_rows(&out.join("conn.log"));
    let uids: Vec<&str> = lease["uids"].split(',').collect();
    assert!(!conns.is_empty());
    for conn in &conns {
        assert_eq!(conn["service"], "dhcp", "{conn:?}");
        assert!(
            uids.contains(&conn["uid"].as_str()),
            "{conn:?} not in {uids:?}"
        );
    }
}

/// Runs the `communityid` package over conn.log files; returns (rows, mismatches).
fn check_community_ids(logs: &[PathBuf], seed: u16) -> (u64, Vec<serde_json::Value>) {
    let python = test_env().join("venv/bin/python");
    assert!(python.exists(), "{} is missing: {HINT}", python.display());
    let out = run(Command::new(&python)
        .arg(Path::new(ROOT).join("tests/analyzer/community_ids.py"))
        .arg(format!("--seed={seed}"))
        .args(logs));
    let summary: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("community_ids.py printed {out:?}: {e}"));
    let rows = summary["rows"].as_u64().expect("rows");
    let mismatches = summary["mismatches"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    (rows, mismatches)
}

/// A real capture of DHCP, TCP, ICMP and ICMPv6 echo, and ICMP port unreachable.
fn mixed_capture(lab: &mut Lab) -> PathBuf {
    let capture = lab.capture("");
    lab.dhcp_server();
    lab.dhcp_client("pcapd-mixed");
    let server = lab.server.clone();
    let www = lab.dir.join("www");
    std::fs::create_dir_all(&www).expect("www dir");
    std::fs::write(www.join("index.html"), "hello from the lab\n").expect("index.html");
    let www = www.to_string_lossy().into_owned();
    lab.spawn(
        &server,
        "busybox",
        &["httpd", "-f", "-p", "8080", "-h", &www],
        "httpd.log",
    );
    // The client's lease is not on its link: give it an address to talk from.
    let client = lab.client.clone();
    let net = lab.net;
    run(Command::new("ip").args([
        "-n",
        &client,
        "addr",
        "add",
        &format!("10.99.{net}.2/24"),
        "dev",
        "pdveth-c",
    ]));
    run(Command::new("ip").args([
        "-n",
        &client,
        "addr",
        "add",
        &format!("fd99::{net}:2/64"),
        "dev",
        "pdveth-c",
        "nodad",
    ]));
    let in_client = |args: &[&str]| {
        run(Command::new("timeout")
            .args([STEP_DEADLINE, "ip", "netns", "exec", &client, "busybox"])
            .args(args))
    };
    let server_v4 = format!("10.99.{net}.1");
    let server_v6 = format!("fd99::{net}:1");
    in_client(&["ping", "-c", "2", "-W", "2", &server_v4]);
    in_client(&["ping6", "-c", "2", "-W", "2", &server_v6]);
    let url = format!("http://{server_v4}:8080/index.html");
    // httpd may need a moment to listen: retry the download for a few seconds.
    let started = Instant::now();
    loop {
        let ok = Command::new("timeout")
            .args([
                STEP_DEADLINE,
                "ip",
                "netns",
                "exec",
                &client,
                "busybox",
                "wget",
            ])
            .args(["-q", "-O", "-", &url])
            .output()
            .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"hello"));
        if ok {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "busybox wget {url} never succeeded: {HINT}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A datagram to a closed port: ICMP port unreachable, a one-way ICMP flow.
    let _ = Command::new("timeout")
        .args(["5", "ip", "netns", "exec", &client, "bash", "-c"])
        .arg(format!("echo x > /dev/udp/{server_v4}/9"))
        .stdin(Stdio::null())
        .output();
    lab.stop();
    capture
}

#[test]
fn community_id_equals_the_communityid_package() {
    let dir = temp_dir("udp-logs-cid");
    let mut logs = Vec::new();
    // Every capture of the Zeek corpus and of the samples.
    let corpus = Path::new(ROOT).join("../shared/zeek-corpus");
    assert!(
        corpus.join("compare.py").is_file(),
        "the Zeek reference corpus is missing: expected {}",
        corpus.display()
    );
    let mut captures: Vec<PathBuf> = Vec::new();
    for source in [corpus, Path::new(ROOT).join("share/pcapd/samples")] {
        let mut found: Vec<PathBuf> = walk(&source)
            .into_iter()
            .filter(|p| {
                let name = p.to_string_lossy();
                name.ends_with(".pcap") || name.ends_with(".pcapng")
            })
            .collect();
        found.sort();
        captures.extend(found);
    }
    assert!(captures.len() > 40, "{captures:?}");
    for (i, capture) in captures.iter().enumerate() {
        let out = dir.join(format!("c{i}"));
        analyze(capture, &out, &[]);
        if out.join("conn.log").exists() {
            logs.push(out.join("conn.log"));
        }
    }
    // And a real capture.
    let mut lab = Lab::new("cid", 2);
    let real = mixed_capture(&mut lab);
    let out = dir.join("real");
    analyze(&real, &out, &[]);
    let real_rows = tsv_rows(&out.join("conn.log"));
    let protos: Vec<(&str, &str)> = real_rows
        .iter()
        .map(|r| (r["proto"].as_str(), r["ip_proto"].as_str()))
        .collect();
    for want in [("udp", "17"), ("tcp", "6"), ("icmp", "1"), ("icmp", "58")] {
        assert!(protos.contains(&want), "no {want:?} row in {protos:?}");
    }
    assert!(
        real_rows
            .iter()
            .any(|r| r["ip_proto"] == "1" && r["id.orig_p"] == "3"),
        "no ICMP unreachable row: {real_rows:?}"
    );
    logs.push(out.join("conn.log"));

    let (rows, mismatches) = check_community_ids(&logs, 0);
    assert!(rows > 200, "only {rows} conn rows checked");
    assert!(mismatches.is_empty(), "{mismatches:#?}");

    // A seed from the configuration.
    let config = dir.join("seed.cfg");
    std::fs::write(&config, "[Analyzer]\ncommunity_id_seed = 4242\n").expect("config");
    let seeded = dir.join("seeded");
    analyze(&real, &seeded, &["-c", &config.to_string_lossy()]);
    let (rows, mismatches) = check_community_ids(&[seeded.join("conn.log")], 4242);
    assert_eq!(rows, real_rows.len() as u64);
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    let unseeded: Vec<String> = real_rows
        .iter()
        .map(|r| r["community_id"].clone())
        .collect();
    let with_seed: Vec<String> = tsv_rows(&seeded.join("conn.log"))
        .iter()
        .map(|r| r["community_id"].clone())
        .collect();
    assert!(unseeded.iter().zip(&with_seed).all(|(a, b)| a != b));

    // Turned off: no column at all.
    std::fs::write(&config, "[Analyzer]\ncommunity_id = false\n").expect("config");
    let off = dir.join("off");
    analyze(&real, &off, &["-c", &config.to_string_lossy()]);
    let header = std::fs::read_to_string(off.join("conn.log")).expect("conn.log");
    assert!(!header.contains("community_id"), "{header}");
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
