//! Real traffic on loopback, captured and analyzed: ssh.log against Debian's OpenSSH and
//! x509.log/ssl.log against OpenSSL's TLS 1.2 server; ftp.log and smtp.log with their files
//! against pyftpdlib and aiosmtpd (module `mail`).
//!
//! Each test starts its server on 127.0.0.1 and a free high port with keys and config it
//! generates in its own directory, captures the port with `tcpdump` on `lo`, runs the real
//! client, stops what it started (by pid), and runs `pcapd analyze -C` on the capture
//! (loopback packets carry unfinished checksums, hence `-C`). The logs are checked against
//! what the test knows (the keys and certificate it made, which login should succeed) and
//! against `tshark`'s decoding of the same capture.
//!
//! - SSH: `sshd` (openssh-server) with a test host key and an `authorized_keys` of the test;
//!   `ssh` (openssh-client) logs in once with the authorized key (success) and once with
//!   another key (publickey refused). ssh.log must show both version strings as tshark reads
//!   them, each algorithm as the first of the client's KEXINIT list (tshark's) that the
//!   server's offers, the host key fingerprint that `ssh-keygen -l -E sha256` prints (cut to
//!   Zeek's 32 base64 characters), and `auth_success` T then F.
//! - TLS: `openssl s_server` with a certificate `openssl req` made (a known serial, a subject
//!   with an escaped comma, DNS and IP alternative names), `openssl s_client -tls1_2`. x509.log
//!   must show what `openssl x509` prints (serial, RFC 2253 subject and issuer, SHA-256
//!   fingerprint) and what tshark decodes (serial, DNS names); ssl.log lists the fingerprint.
//!
//! sshd and tcpdump need root (privilege separation, capturing). Without root or one of the
//! programs the tests fail with a hint ("run tests/setup.sh"), they never skip.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::files::tsv_log;
use crate::harness::{temp_dir, write_file, PCAPD};

pub(crate) const HINT: &str = "run tests/setup.sh as root (the README's test command does)";

/// How long a server or tcpdump may take to be ready.
const START_DEADLINE: Duration = Duration::from_secs(20);
/// How long a stopped process may take to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long one client run may take.
const CLIENT_DEADLINE: Duration = Duration::from_secs(60);

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

pub(crate) fn require_root_and(programs: &[&str]) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests capture with tcpdump and run sshd: they need root; {HINT}"
    );
    for p in programs {
        let found = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()))
            .unwrap_or(false)
            || Path::new(p).is_file();
        assert!(found, "{p} is not installed; {HINT}");
    }
}

/// A process this test started, stopped by its pid (SIGTERM, then SIGKILL after
/// [`STOP_GRACE`]) when dropped or [`Started::stop`]ped.
pub(crate) struct Started {
    name: &'static str,
    child: Option<Child>,
    stderr: PathBuf,
}

impl Started {
    pub(crate) fn spawn(name: &'static str, dir: &Path, cmd: &mut Command) -> Started {
        let stderr = dir.join(format!("{name}.stderr"));
        let stdout = dir.join(format!("{name}.stdout"));
        let file =
            |p: &Path| std::fs::File::create(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        // stdin stays open as long as the process runs: `openssl s_server` ends its session
        // at end of input.
        let child = cmd
            .stdin(Stdio::piped())
            .stdout(file(&stdout))
            .stderr(file(&stderr))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({e}); {HINT}"));
        Started {
            name,
            child: Some(child),
            stderr,
        }
    }

    pub(crate) fn output(&self, which: &str) -> String {
        let path = self.stderr.with_file_name(format!("{}.{which}", self.name));
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// Waits until `ready` holds, failing with the process's stderr if it exits first or
    /// the deadline passes.
    pub(crate) fn wait_until(&mut self, what: &str, mut ready: impl FnMut(&Started) -> bool) {
        let start = Instant::now();
        while !ready(self) {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "{} exited ({status}) before {what}:\n{}",
                    self.name,
                    self.output("stderr")
                );
            }
            assert!(
                start.elapsed() < START_DEADLINE,
                "{} not {what} after {START_DEADLINE:?}:\n{}",
                self.name,
                self.output("stderr")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let start = Instant::now();
        while child.try_wait().ok().flatten().is_none() {
            if start.elapsed() > STOP_GRACE {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} ignored SIGTERM for {STOP_GRACE:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// tcpdump writing every packet of `port` on `lo` to `pcap`, ready once it says so.
pub(crate) fn capture(dir: &Path, port: u16, pcap: &Path) -> Started {
    capture_filter(dir, &format!("tcp port {port}"), pcap)
}

/// tcpdump writing the packets on `lo` that `filter` (a pcap filter) admits to `pcap`.
pub(crate) fn capture_filter(dir: &Path, filter: &str, pcap: &Path) -> Started {
    let mut tcpdump = Started::spawn(
        "tcpdump",
        dir,
        Command::new("tcpdump")
            // Immediate mode: packets reach the file as they come, not when a ring-buffer
            // block fills or times out (a block still pending at SIGTERM would be lost).
            .args(["-i", "lo", "--immediate-mode", "-U", "-s", "0", "-n"])
            // A 64 MiB kernel buffer: loopback packets are up to 64 KiB, and a busy machine
            // may be slow to drain them.
            .args(["-B", "65536", "-w"])
            .arg(pcap)
            .arg(filter),
    );
    tcpdump.wait_until("listening", |t| t.output("stderr").contains("listening on"));
    tcpdump
}

/// Fails if the stopped `tcpdump` reports packets the kernel dropped: a capture with holes
/// cannot be checked against what was sent.
pub(crate) fn assert_complete_capture(tcpdump: &Started) {
    let report = tcpdump.output("stderr");
    let dropped = report
        .lines()
        .find_map(|l| l.strip_suffix(" packets dropped by kernel"))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert_eq!(dropped, Some(0), "tcpdump lost packets:\n{report}");
}

/// Runs a command to its end, with a deadline; panics with its output if `ok` rejects
/// its exit code.
pub(crate) fn run(what: &str, cmd: &mut Command, ok: impl Fn(Option<i32>) -> bool) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what} ({e}); {HINT}"));
    drop(child.stdin.take());
    let start = Instant::now();
    while child.try_wait().ok().flatten().is_none() {
        if start.elapsed() > CLIENT_DEADLINE {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        ok(out.status.code()),
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub(crate) fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `pcapd analyze -C` of a capture into `out`.
fn analyze(pcap: &Path, out: &Path) {
    analyze_with(pcap, out, &[]);
}

/// `pcapd analyze -C` with more flags (`--extract '*'`).
pub(crate) fn analyze_with(pcap: &Path, out: &Path, flags: &[&str]) {
    run(
        "pcapd analyze",
        Command::new(PCAPD)
            .args(["analyze", "-C"])
            .args(flags)
            .arg("-o")
            .arg(out)
            .arg(pcap),
        |c| c == Some(0),
    );
}

/// tshark's first value of each field, per packet matching `filter`, with `port` decoded
/// as `proto`.
pub(crate) fn tshark(
    pcap: &Path,
    port: u16,
    proto: &str,
    filter: &str,
    fields: &[&str],
) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(pcap)
        .args(["-d", &format!("tcp.port=={port},{proto}"), "-Y", filter])
        .args(["-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = run("tshark", &mut cmd, |c| c == Some(0));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// Zeek's negotiation: the first of the client's algorithms the server also offers.
fn negotiated(client: &str, server: &str) -> String {
    let server: Vec<&str> = server.split(',').collect();
    client
        .split(',')
        .find(|c| server.contains(c))
        .unwrap_or("Algorithm negotiation failed")
        .to_string()
}

fn ssh_keygen(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    run(
        "ssh-keygen",
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&key),
        |c| c == Some(0),
    );
    key
}

#[test]
fn ssh_login_success_and_failure_against_openssh() {
    require_root_and(&["/usr/sbin/sshd", "ssh", "ssh-keygen", "tcpdump", "tshark"]);
    let dir = temp_dir("traffic-ssh");
    let host = ssh_keygen(&dir, "host_ed25519");
    let client = ssh_keygen(&dir, "client_ed25519");
    let stranger = ssh_keygen(&dir, "stranger_ed25519");
    let authorized = std::fs::read(client.with_extension("pub")).expect("client public key");
    let authorized_keys = write_file(&dir, "authorized_keys", &authorized);
    let port = free_port();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile {pid}\n\
         AuthorizedKeysFile {keys}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
         PermitRootLogin prohibit-password\nAllowUsers root\nCompression no\n",
        host = host.display(),
        pid = dir.join("sshd.pid").display(),
        keys = authorized_keys.display(),
    );
    let config = write_file(&dir, "sshd_config", config.as_bytes());
    // sshd's privilege separation directory (Debian creates it at boot, not on install).
    std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
    let mut sshd = Started::spawn(
        "sshd",
        &dir,
        Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config),
    );
    // Probed (up to sshd's version line) before the capture starts, so no data of the
    // probe is in it.
    sshd.wait_until("listening", |_| {
        TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut probe| {
            let _ = probe.set_read_timeout(Some(Duration::from_secs(5)));
            let mut banner = [0u8; 256];
            probe
                .read(&mut banner)
                .is_ok_and(|n| banner[..n].starts_with(b"SSH-"))
        })
    });
    let pcap = dir.join("ssh.pcap");
    let mut tcpdump = capture(&dir, port, &pcap);
    let login = |key: &Path, ok: fn(Option<i32>) -> bool| {
        run(
            "ssh",
            Command::new("ssh")
                .args(["-F", "/dev/null", "-o", "IdentitiesOnly=yes"])
                .args([
                    "-o",
                    "StrictHostKeyChecking=no",
                    "-o",
                    "UserKnownHostsFile=/dev/null",
                ])
                .args(["-o", "BatchMode=yes", "-o", "LogLevel=ERROR"])
                .args(["-p", &port.to_string(), "-i"])
                .arg(key)
                .args(["root@127.0.0.1", "true"]),
            ok,
        )
    };
    login(&client, |c| c == Some(0));
    login(&stranger, |c| c == Some(255));
    // Let the last packets reach the capture before stopping it.
    std::thread::sleep(Duration::from_millis(300));
    tcpdump.stop();
    sshd.stop();

    let out = dir.join("logs");
    analyze(&pcap, &out);
    let mut rows = tsv_log(&out.join("ssh.log"));
    assert_eq!(rows.len(), 2, "one ssh.log row per login: {rows:?}");
    rows.sort_by(|a, b| a["ts"].partial_cmp(&b["ts"]).expect("ts"));

    let fingerprint = text(&run(
        "ssh-keygen -l",
        Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(host.with_extension("pub")),
        |c| c == Some(0),
    ));
    let fingerprint = fingerprint
        .split_whitespace()
        .nth(1)
        .expect("ssh-keygen prints the fingerprint second");
    // Zeek writes "SHA256:" and the first 32 characters of the base64.
    let zeek_fingerprint = &fingerprint[..7 + 32];

    // tshark's view: per client port, the version lines and KEXINIT lists of both sides.
    let fields = [
        "tcp.srcport",
        "tcp.dstport",
        "ssh.protocol",
        "ssh.kex_algorithms",
        "ssh.server_host_key_algorithms",
        "ssh.encryption_algorithms_client_to_server",
        "ssh.mac_algorithms_client_to_server",
        "ssh.compression_algorithms_client_to_server",
    ];
    let packets = tshark(
        &pcap,
        port,
        "ssh",
        "ssh.protocol or ssh.kex_algorithms",
        &fields,
    );
    let mut by_conn: BTreeMap<(String, bool), BTreeMap<&str, String>> = BTreeMap::new();
    for p in &packets {
        let from_client = p[1] == port.to_string();
        let client_port = if from_client { &p[0] } else { &p[1] };
        let entry = by_conn
            .entry((client_port.clone(), from_client))
            .or_default();
        for (name, value) in fields.iter().zip(p).skip(2) {
            if !value.is_empty() {
                entry.insert(name, value.clone());
            }
        }
    }
    for (row, success) in rows.iter().zip(["T", "F"]) {
        let p = row["id.orig_p"].clone();
        let c = &by_conn[&(p.clone(), true)];
        let s = &by_conn[&(p.clone(), false)];
        assert_eq!(row["version"], "2");
        assert_eq!(row["client"], c["ssh.protocol"]);
        assert_eq!(row["server"], s["ssh.protocol"]);
        assert!(row["server"].starts_with("SSH-2.0-OpenSSH_"), "{row:?}");
        for (column, list) in [
            ("kex_alg", "ssh.kex_algorithms"),
            ("host_key_alg", "ssh.server_host_key_algorithms"),
            ("cipher_alg", "ssh.encryption_algorithms_client_to_server"),
            ("mac_alg", "ssh.mac_algorithms_client_to_server"),
            (
                "compression_alg",
                "ssh.compression_algorithms_client_to_server",
            ),
        ] {
            assert_eq!(row[column], negotiated(&c[list], &s[list]), "{column}");
        }
        assert_eq!(row["host_key_alg"], "ssh-ed25519");
        assert_eq!(row["compression_alg"], "none");
        assert_eq!(row["host_key_fingerprint"], zeek_fingerprint);
        assert_eq!(row["auth_success"], success, "{row:?}");
        assert!(row["auth_attempts"] != "0", "{row:?}");
        // Both ends are loopback (local): Zeek sets no direction.
        assert_eq!(row["direction"], "-");
    }
    // The logins' connections (the readiness probe's tail may be in the capture too).
    let conns = tsv_log(&out.join("conn.log"));
    for row in &rows {
        let conn = conns
            .iter()
            .find(|c| c["uid"] == row["uid"])
            .unwrap_or_else(|| panic!("no conn.log row for {row:?}: {conns:?}"));
        assert_eq!(conn["service"], "ssh", "{conn:?}");
    }
}

#[test]
fn tls12_certificate_against_openssl() {
    require_root_and(&["openssl", "tcpdump", "tshark"]);
    let dir = temp_dir("traffic-tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    run(
        "openssl req",
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
            ])
            .args(["-subj", "/C=DE/O=pcapd test, Inc./CN=tls.test"])
            .args([
                "-addext",
                "subjectAltName=DNS:tls.test,DNS:*.tls.test,IP:127.0.0.1",
            ])
            .args(["-set_serial", "0x5EED0F42", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
        |c| c == Some(0),
    );
    let port = free_port();
    let pcap = dir.join("tls.pcap");
    let mut tcpdump = capture(&dir, port, &pcap);
    let mut server = Started::spawn(
        "s_server",
        &dir,
        Command::new("openssl")
            .args(["s_server", "-accept", &format!("127.0.0.1:{port}"), "-cert"])
            .arg(&cert)
            .arg("-key")
            .arg(&key),
    );
    server.wait_until("accepting", |s| s.output("stdout").contains("ACCEPT"));
    run(
        "openssl s_client",
        Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args(["-tls1_2", "-servername", "tls.test", "-no_ign_eof"]),
        |c| c == Some(0),
    );
    std::thread::sleep(Duration::from_millis(300));
    server.stop();
    tcpdump.stop();

    let out = dir.join("logs");
    analyze(&pcap, &out);
    let x509 = tsv_log(&out.join("x509.log"));
    assert_eq!(x509.len(), 1, "x509.log: {x509:?}");
    let row = &x509[0];
    let openssl = |args: &[&str]| {
        text(&run(
            "openssl x509",
            Command::new("openssl")
                .args(["x509", "-noout", "-in"])
                .arg(&cert)
                .args(args),
            |c| c == Some(0),
        ))
    };
    assert_eq!(row["certificate.serial"], "5EED0F42");
    assert_eq!(
        format!("serial={}", row["certificate.serial"]),
        openssl(&["-serial"])
    );
    assert_eq!(
        format!("subject={}", row["certificate.subject"]),
        openssl(&["-subject", "-nameopt", "RFC2253"])
    );
    assert_eq!(
        format!("issuer={}", row["certificate.issuer"]),
        openssl(&["-issuer", "-nameopt", "RFC2253"])
    );
    assert_eq!(
        row["certificate.subject"],
        "CN=tls.test,O=pcapd test\\, Inc.,C=DE"
    );
    let fingerprint = openssl(&["-fingerprint", "-sha256"])
        .rsplit('=')
        .next()
        .expect("fingerprint")
        .replace(':', "")
        .to_ascii_lowercase();
    assert_eq!(row["fingerprint"], fingerprint);
    assert_eq!(row["certificate.version"], "3");
    assert_eq!(row["certificate.key_alg"], "rsaEncryption");
    assert_eq!(row["certificate.sig_alg"], "sha256WithRSAEncryption");
    assert_eq!(row["certificate.key_type"], "rsa");
    assert_eq!(row["certificate.key_length"], "2048");
    assert_eq!(row["certificate.exponent"], "65537");
    assert_eq!(row["san.dns"], "tls.test,*.tls.test");
    assert_eq!(row["san.ip"], "127.0.0.1");
    assert_eq!(row["host_cert"], "T");
    assert_eq!(row["client_cert"], "F");

    let decoded = tshark(
        &pcap,
        port,
        "tls",
        "x509af.serialNumber",
        &["x509af.serialNumber", "x509ce.dNSName"],
    );
    assert_eq!(decoded.len(), 1, "tshark: {decoded:?}");
    assert_eq!(
        decoded[0][0].to_ascii_uppercase(),
        row["certificate.serial"],
        "tshark's serial"
    );
    assert_eq!(
        Some(decoded[0][1].as_str()),
        row["san.dns"].split(',').next(),
        "tshark's first DNS name"
    );
    let ssl = tsv_log(&out.join("ssl.log"));
    assert_eq!(ssl.len(), 1, "ssl.log: {ssl:?}");
    assert_eq!(ssl[0]["version"], "TLSv12");
    assert_eq!(ssl[0]["cert_chain_fps"], fingerprint);
    assert_eq!(ssl[0]["client_cert_chain_fps"], "(empty)");
    assert_eq!(ssl[0]["sni_matches_cert"], "T");
}

mod mail;
