//! A real rsyslogd (Debian's `rsyslog` and `rsyslog-gnutls`) as the receiving end of the
//! syslog forwarder's tests. [`Rsyslog::start`] writes a config in a directory of the test's,
//! generates a CA and a server certificate with `openssl`, and runs `rsyslogd -n` on four
//! loopback listeners on free high ports: `imudp`, plain `imtcp`, `imptcp`, and `imtcp` with
//! the `gtls` stream driver (TLS, RFC 5425). Every message that arrives is written as one JSON
//! object per line (rsyslog's own `jsonf` escaping, so tabs and quotes in MSG cannot break the
//! format), and [`Rsyslog::received`] parses them back.
//!
//! What rsyslog 8.2302 (Debian 12) does with what it receives, as the tests below check:
//!
//! - Both RFC 5424 and RFC 3164 parse with the default parser chain: HOSTNAME and APP-NAME
//!   (3164: the TAG without `[pid]` and `:`) come out as sent, and so does PRI.
//! - RFC 3164: MSG keeps the space after `TAG:` (`bro25_conn: a` gives MSG ` a`); RFC 5424:
//!   MSG starts right after the structured data's separating space. A UTF-8 BOM is kept in MSG.
//! - Tabs arrive intact (`parser.escapeControlCharacterTab="off"`); every other control
//!   character is escaped on receipt: LF inside an octet-counted frame arrives as `#012`, a CR
//!   before the framing LF as `#015`.
//! - Both TCP inputs accept LF-framed and RFC 6587 octet-counted frames (`LEN SP MSG`) on the
//!   same connection, told apart by the frame's first byte (a digit means octet counting);
//!   so does the TLS input.
//! - UDP: a datagram of 65507 bytes (the IPv4 maximum) arrives whole with `maxMessageSize=64k`;
//!   over TCP a message of 65536 bytes (header included) does. Seen by hand, not tested: a
//!   longer one is truncated to 65536 bytes (rsyslogd logs "received oversize message") and
//!   the rest of its frame may arrive as a message of its own.
//! - TLS with `StreamDriver.AuthMode="anon"` (the server asks no client certificate; the
//!   client checks the server's against [`Rsyslog::ca_path`], names `127.0.0.1` and
//!   `localhost`): rsyslog then sets the GnuTLS priority `NORMAL:-VERS-TLS1.3:+ANON-DH:...`,
//!   so only TLS 1.2 is spoken and a TLS 1.3-only client is refused. `x509/name` or
//!   `x509/certvalid` on the server would require a client certificate (mutual TLS).
//!
//! Without rsyslogd or its gtls driver this fails with "run tests/setup.sh", it never skips.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use tokio_rustls::rustls;

use crate::harness::temp_dir;

const HINT: &str = "run tests/setup.sh (the README's test command does)";

/// How long rsyslogd may take from spawn to all four listeners bound.
const STARTUP_DEADLINE: Duration = Duration::from_secs(20);
/// How long rsyslogd may drain its main queue on SIGTERM (written into the config)...
const QUEUE_SHUTDOWN: Duration = Duration::from_secs(10);
/// ...and how long `stop` waits for it to exit before killing it and failing.
const STOP_DEADLINE: Duration = Duration::from_secs(20);
/// A port taken between choosing it and rsyslogd binding it: tries with fresh ports.
const START_ATTEMPTS: usize = 5;
/// What rsyslogd logs when a port is taken: imtcp and imptcp quote the errno, imudp does not.
const BIND_FAILURES: [&str; 2] = ["Address already in use", "Could not create udp listener"];
/// How often `wait_for` and the startup check look again.
const POLL: Duration = Duration::from_millis(20);

/// One message as rsyslog parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub pri: u8,
    pub hostname: String,
    /// RFC 5424 APP-NAME; for RFC 3164, the TAG without `[pid]` and the colon.
    pub app_name: String,
    /// The listener it arrived on: `"udp"`, `"tcp"` (imtcp), `"ptcp"` (imptcp) or `"tls"`.
    pub input: String,
    /// MSG as rsyslog stores it (RFC 3164: with the leading space; see the module comment).
    pub msg: String,
}

/// The four listeners' ports, kept across `stop` and `start_again`.
#[derive(Debug, Clone, Copy)]
struct Ports {
    udp: u16,
    tcp: u16,
    ptcp: u16,
    tls: u16,
}

/// A running (or stopped) rsyslogd with its config, certificates and output in one directory.
pub struct Rsyslog {
    dir: PathBuf,
    config: PathBuf,
    pid_file: PathBuf,
    /// The messages, one JSON object a line; appended to across restarts.
    output: PathBuf,
    /// rsyslogd's stdout and stderr (its internal messages), appended to across restarts.
    log: PathBuf,
    ca: PathBuf,
    ports: Ports,
    child: Option<Child>,
}

impl Rsyslog {
    /// Generates the certificates and config in `dir/rsyslog` and starts rsyslogd; returns
    /// once all four listeners are bound. Panics (with the hint) if rsyslogd or gtls is missing.
    pub fn start(dir: &Path) -> Rsyslog {
        let binary = rsyslogd();
        require_gtls_driver();
        let dir = dir.join("rsyslog");
        std::fs::create_dir_all(dir.join("work")).unwrap();
        let ca = generate_certificates(&dir);
        let mut rsyslog = Rsyslog {
            config: dir.join("rsyslog.conf"),
            pid_file: dir.join("rsyslogd.pid"),
            output: dir.join("received.jsonl"),
            log: dir.join("rsyslogd.log"),
            ca,
            ports: free_ports(),
            child: None,
            dir,
        };
        for attempt in 1..=START_ATTEMPTS {
            rsyslog.write_config(&binary);
            match rsyslog.spawn(&binary) {
                Ok(()) => return rsyslog,
                Err(StartError::PortTaken) if attempt < START_ATTEMPTS => {
                    rsyslog.ports = free_ports();
                }
                Err(e) => panic!("{}", rsyslog.explain(e)),
            }
        }
        unreachable!("the last attempt returns or panics");
    }

    /// Starts rsyslogd again after `stop`, on the same ports with the same config; the output
    /// file keeps what arrived before.
    pub fn start_again(&mut self) {
        assert!(
            self.child.is_none(),
            "start_again: rsyslogd is still running"
        );
        if let Err(e) = self.spawn(&rsyslogd()) {
            panic!("{}", self.explain(e));
        }
    }

    /// SIGTERM, then waits for rsyslogd to exit (it first drains its queue into the output).
    ///
    /// Hazard for "nothing lost" tests: bytes already in a TCP/TLS socket's receive buffer
    /// that rsyslogd has not read yet are discarded by the kernel when it closes the socket,
    /// although the sender's writes succeeded. A sender cannot see that, so stop at a point
    /// where what was sent has arrived (`wait_for`), or expect that window to be lost.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("stop: rsyslogd is not running");
        let pid = Pid::from_raw(child.id() as i32);
        kill(pid, Signal::SIGTERM).unwrap();
        let start = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > STOP_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "rsyslogd (pid {pid}) did not exit within {STOP_DEADLINE:?} of SIGTERM\n{}",
                    self.log()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    pub fn udp_port(&self) -> u16 {
        self.ports.udp
    }

    /// Plain `imtcp`: LF-framed and octet-counted frames.
    pub fn tcp_port(&self) -> u16 {
        self.ports.tcp
    }

    /// `imptcp`: LF-framed and octet-counted frames.
    pub fn ptcp_port(&self) -> u16 {
        self.ports.ptcp
    }

    /// `imtcp` with the gtls driver (RFC 5425).
    pub fn tls_port(&self) -> u16 {
        self.ports.tls
    }

    /// The PEM of the CA that signed the TLS listener's certificate: the client's trust anchor.
    pub fn ca_path(&self) -> &Path {
        &self.ca
    }

    /// rsyslogd's own messages so far (bind errors, TLS handshake errors, ...).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every message that arrived since `start`, across restarts, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        let bytes = match std::fs::read(&self.output) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("read {}: {e}", self.output.display()),
        };
        let text = String::from_utf8_lossy(&bytes);
        // A line without its newline is still being written: it is read next time.
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .map(|line| {
                parse_line(line)
                    .unwrap_or_else(|e| panic!("{}: bad line {line:?}: {e}", self.output.display()))
            })
            .collect()
    }

    /// Polls until at least `n` messages arrived; returns them all. Panics after `timeout`
    /// with what did arrive and rsyslogd's log. To check that no more than `n` arrive, look
    /// at `received()` again after a quiet period.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            if start.elapsed() > timeout {
                panic!(
                    "{} of {n} messages arrived within {timeout:?}: {received:#?}\n\
                     ---- rsyslogd log ----\n{}",
                    received.len(),
                    self.log()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    fn write_config(&self, binary: &Path) {
        std::fs::write(&self.config, config(&self.dir, &self.ca, self.ports)).unwrap();
        // -N1 reports an unknown parameter as an error; a normal start would only log it.
        let check = Command::new(binary)
            .args(["-N1", "-f"])
            .arg(&self.config)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}; {HINT}", binary.display()));
        assert!(
            check.status.success(),
            "rsyslogd rejects {}:\n{}{}",
            self.config.display(),
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
    }

    /// Runs rsyslogd in the foreground in its own process group and waits until it has bound
    /// all four listeners (its sockets, by inode, in /proc/net).
    fn spawn(&mut self, binary: &Path) -> Result<(), StartError> {
        // A pid file left by a killed instance would stop this one.
        let _ = std::fs::remove_file(&self.pid_file);
        let log_start = std::fs::metadata(&self.log).map_or(0, |m| m.len() as usize);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut child = Command::new(binary)
            // -C: stay in the cwd instead of chdir("/") (every path is absolute anyway).
            .args(["-n", "-C", "-f"])
            .arg(&self.config)
            .arg("-i")
            .arg(&self.pid_file)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}; {HINT}", binary.display()));
        let start = Instant::now();
        let result = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Err(StartError::Exited(status));
            }
            let log = self.log();
            let this_run = log.get(log_start..).unwrap_or("");
            if BIND_FAILURES.iter().any(|text| this_run.contains(text)) {
                break Err(StartError::PortTaken);
            }
            // Unreadable /proc/PID/fd: rsyslogd is just starting or just exited; look again.
            let missing = missing_listeners(child.id(), self.ports)
                .unwrap_or_else(|_| vec!["udp", "tcp", "ptcp", "tls"]);
            if missing.is_empty() {
                break Ok(());
            }
            if start.elapsed() > STARTUP_DEADLINE {
                break Err(StartError::NotListening(missing));
            }
            std::thread::sleep(POLL);
        };
        match result {
            Ok(()) => {
                self.child = Some(child);
                Ok(())
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    fn explain(&self, error: StartError) -> String {
        let what = match error {
            StartError::Exited(status) => {
                format!("rsyslogd exited at startup ({status}); {HINT}")
            }
            StartError::PortTaken => {
                format!("a port of {:?} is taken by another process", self.ports)
            }
            StartError::NotListening(missing) => format!(
                "rsyslogd did not bind {} within {STARTUP_DEADLINE:?} (a missing `gtls` driver \
                 leaves `tls` unbound); {HINT}",
                missing.join(", ")
            ),
        };
        format!(
            "{what}\nconfig: {}\n---- rsyslogd log ----\n{}",
            self.config.display(),
            self.log()
        )
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- rsyslogd log ({}) ----\n{}",
                self.dir.display(),
                self.log()
            );
        }
    }
}

#[derive(Debug)]
enum StartError {
    Exited(std::process::ExitStatus),
    PortTaken,
    NotListening(Vec<&'static str>),
}

/// The rsyslogd binary (`/usr/sbin` may not be on a test's PATH).
fn rsyslogd() -> PathBuf {
    let sbin = PathBuf::from("/usr/sbin/rsyslogd");
    if sbin.exists() {
        return sbin;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("rsyslogd"))
        .find(|candidate| candidate.exists());
    on_path.unwrap_or_else(|| panic!("rsyslogd is not installed (Debian's rsyslog): {HINT}"))
}

/// rsyslog-gnutls's driver, beside rsyslog's other modules (`/usr/lib/<triplet>/rsyslog`).
fn require_gtls_driver() {
    let mut module_dirs = vec![
        PathBuf::from("/usr/lib/rsyslog"),
        PathBuf::from("/usr/lib64/rsyslog"),
    ];
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        module_dirs.extend(entries.flatten().map(|e| e.path().join("rsyslog")));
    }
    let found = module_dirs
        .iter()
        .any(|dir| dir.join("lmnsd_gtls.so").exists());
    assert!(
        found,
        "rsyslog's gtls driver lmnsd_gtls.so is not installed (Debian's rsyslog-gnutls): {HINT}"
    );
}

/// Four ports free right now: the TCP ones held together so they differ.
fn free_ports() -> Ports {
    let tcp: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = |l: &TcpListener| l.local_addr().unwrap().port();
    Ports {
        udp: udp.local_addr().unwrap().port(),
        tcp: port(&tcp[0]),
        ptcp: port(&tcp[1]),
        tls: port(&tcp[2]),
    }
}

/// A CA and a server certificate it signed for `127.0.0.1` (SAN IP:127.0.0.1, DNS:localhost),
/// ECDSA P-256, in `dir`; returns the CA's path. WebPKI (rustls) needs v3 certificates, the CA
/// marked CA, and the name in the SAN.
fn generate_certificates(dir: &Path) -> PathBuf {
    // Each command is one line of words: no argument here contains a space.
    let openssl = |command: &str| {
        let args: Vec<&str> = command.split_whitespace().collect();
        let out = Command::new("openssl")
            .args(&args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("openssl: {e}; {HINT}"));
        assert!(
            out.status.success(),
            "openssl {command}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    openssl(&format!(
        "req -x509 {key} -keyout ca.key -out ca.pem -days 3650 -subj /CN=pcapd-test-rsyslog-CA \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
    ));
    openssl(&format!(
        "req -new {key} -keyout server.key -out server.csr -subj /CN=127.0.0.1"
    ));
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n\
         subjectKeyIdentifier=hash\n\
         authorityKeyIdentifier=keyid,issuer\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
         -days 3650 -extfile server.ext",
    );
    dir.join("ca.pem")
}

/// The config: globals first (`maxMessageSize` must precede the inputs), then the output
/// ruleset every input is bound to. rsyslogd's internal messages have no action in the
/// default ruleset, so in the foreground it writes them to stderr (the log file).
fn config(dir: &Path, ca: &Path, ports: Ports) -> String {
    let path = |name: &str| dir.join(name).display().to_string();
    let shutdown_ms = QUEUE_SHUTDOWN.as_millis();
    // Inputs: no rate limit (imudp/imtcp/imptcp default to none, but a forwarder test must
    // not depend on that); a large UDP receive buffer so a burst is not dropped by the kernel.
    let common = r#"ruleset="harness" ratelimit.interval="0""#;
    format!(
        r#"# Written by tests/it/rsyslog.rs; no imuxsock/imklog: this rsyslogd only listens.
global(
  workDirectory="{work}"
  maxMessageSize="64k"
  parser.escapeControlCharacterTab="off"
  net.enableDNS="off"
  preserveFQDN="on"
  defaultNetstreamDriverCAFile="{ca}"
  defaultNetstreamDriverCertFile="{cert}"
  defaultNetstreamDriverKeyFile="{key}"
)
main_queue(queue.timeoutShutdown="{shutdown_ms}")

module(load="imudp")
module(load="imtcp")
module(load="imptcp")

template(name="harness_json" type="list" option.jsonf="on") {{
  property(outname="pri" name="pri" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app_name" name="app-name" format="jsonf")
  property(outname="input" name="inputname" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}}

ruleset(name="harness") {{
  action(type="omfile" file="{output}" template="harness_json")
}}

input(type="imudp" name="udp" address="127.0.0.1" port="{udp}" rcvbufSize="4m" {common})
input(type="imtcp" name="tcp" address="127.0.0.1" port="{tcp}" {common})
input(type="imptcp" name="ptcp" address="127.0.0.1" port="{ptcp}" {common})
input(type="imtcp" name="tls" address="127.0.0.1" port="{tls}" {common}
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
"#,
        work = path("work"),
        ca = ca.display(),
        cert = path("server.pem"),
        key = path("server.key"),
        output = path("received.jsonl"),
        udp = ports.udp,
        tcp = ports.tcp,
        ptcp = ports.ptcp,
        tls = ports.tls,
    )
}

/// One output line. `jsonf` writes every property as a JSON string, PRI included.
fn parse_line(line: &str) -> Result<Received, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let field = |name: &str| {
        value[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no string {name:?}"))
    };
    let pri = match &value["pri"] {
        Value::String(s) => s.parse().map_err(|e| format!("pri {s:?}: {e}"))?,
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(|| format!("pri {n}"))?,
        other => return Err(format!("pri {other}")),
    };
    Ok(Received {
        pri,
        hostname: field("hostname")?,
        app_name: field("app_name")?,
        input: field("input")?,
        msg: field("msg")?,
    })
}

/// Which sockets of `ports` process `pid` does not yet have bound: its socket inodes matched
/// against /proc/net/{tcp,udp} (a port bound by someone else does not count).
fn missing_listeners(pid: u32, ports: Ports) -> std::io::Result<Vec<&'static str>> {
    let mut inodes = HashSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let Ok(target) = std::fs::read_link(fd?.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|rest| rest.strip_suffix(']'))
        {
            inodes.insert(inode.to_owned());
        }
    }
    let bound = |table: &str, port: u16, state: &str| -> std::io::Result<bool> {
        let text = std::fs::read_to_string(table)?;
        let local = format!("0100007F:{port:04X}");
        Ok(text.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 9
                && fields[1] == local
                && fields[3] == state
                && inodes.contains(fields[9])
        }))
    };
    let mut missing = Vec::new();
    // TCP_LISTEN is 0A; an unconnected UDP socket is 07 (TCP_CLOSE).
    for (name, table, port, state) in [
        ("udp", "/proc/net/udp", ports.udp, "07"),
        ("tcp", "/proc/net/tcp", ports.tcp, "0A"),
        ("ptcp", "/proc/net/tcp", ports.ptcp, "0A"),
        ("tls", "/proc/net/tcp", ports.tls, "0A"),
    ] {
        if !bound(table, port, state)? {
            missing.push(name);
        }
    }
    Ok(missing)
}

// ---- tests of the harness itself ------------------------------------------------------

/// Per socket operation in the hand-written senders below.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
const ARRIVAL: Duration = Duration::from_secs(20);
/// After the expected count arrived, how long nothing more may arrive.
const QUIET: Duration = Duration::from_millis(500);

const PAYLOAD: &str = "1.2.3.4\tfoo\tbar";

fn rfc5424(msg: &str) -> String {
    format!("<29>1 2026-12-02T10:00:00.123456Z mytag bro25_conn - - - {msg}")
}

fn rfc3164(msg: &str) -> String {
    format!("<29>Dec  2 10:00:00 mytag bro25_conn: {msg}")
}

/// RFC 6587 octet counting: `LEN SP MSG`.
fn octet_counted(message: &str) -> String {
    format!("{} {message}", message.len())
}

fn tcp(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

fn send_udp(port: u16, message: &[u8]) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sent = socket.send_to(message, ("127.0.0.1", port)).unwrap();
    assert_eq!(sent, message.len());
}

fn send_tcp(port: u16, bytes: &[u8]) {
    let mut stream = tcp(port);
    stream.write_all(bytes).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    // rsyslog closes its side once it has read to EOF; wait for that.
    let _ = stream.read_to_end(&mut Vec::new());
}

/// A strict WebPKI client trusting only the harness's CA, limited to `versions`.
fn tls_client(
    ca: &Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Handshakes with the TLS listener as `server_name`; returns the stream or the error.
fn tls_connect(
    rsyslog: &Rsyslog,
    server_name: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, std::io::Error> {
    let name = rustls_pki_types::ServerName::try_from(server_name.to_owned()).unwrap();
    let conn =
        rustls::ClientConnection::new(tls_client(rsyslog.ca_path(), versions), name).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, tcp(rsyslog.tls_port()));
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// Sends `bytes` over TLS and closes with close_notify, as a well-behaved RFC 5425 sender.
fn send_tls(rsyslog: &Rsyslog, server_name: &str, bytes: &[u8]) -> rustls::ProtocolVersion {
    let mut stream = tls_connect(rsyslog, server_name, rustls::DEFAULT_VERSIONS)
        .unwrap_or_else(|e| panic!("TLS handshake as {server_name}: {e}\n{}", rsyslog.log()));
    let version = stream.conn.protocol_version().unwrap();
    stream.write_all(bytes).unwrap();
    stream.conn.send_close_notify();
    stream.flush().unwrap();
    stream.sock.shutdown(std::net::Shutdown::Write).unwrap();
    let _ = stream.sock.read_to_end(&mut Vec::new());
    version
}

/// Waits for exactly `expected` (in any order), then checks that nothing more arrives.
fn assert_exactly(rsyslog: &Rsyslog, expected: &[Received]) {
    rsyslog.wait_for(expected.len(), ARRIVAL);
    std::thread::sleep(QUIET);
    let mut got = rsyslog.received();
    let mut want = expected.to_vec();
    let key = |r: &Received| (r.input.clone(), r.msg.clone());
    got.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(got, want, "what arrived (left) vs what was sent (right)");
}

fn expected(input: &str, msg: String) -> Received {
    Received {
        pri: 29,
        hostname: "mytag".into(),
        app_name: "bro25_conn".into(),
        input: input.into(),
        msg,
    }
}

/// Messages in both formats for each way in: returns what the harness must report.
fn send_everywhere(rsyslog: &Rsyslog, round: &str) -> Vec<Received> {
    let mut want = Vec::new();
    let mut both = |input: &str, how: &str| {
        let body = format!("{PAYLOAD}\t{round}-{how}");
        // RFC 3164's MSG keeps the space after "TAG:"; RFC 5424's has none.
        want.push(expected(input, format!("{body}-5424")));
        want.push(expected(input, format!(" {body}-3164")));
        (
            rfc5424(&format!("{body}-5424")),
            rfc3164(&format!("{body}-3164")),
        )
    };

    let (a, b) = both("udp", "udp");
    send_udp(rsyslog.udp_port(), a.as_bytes());
    send_udp(rsyslog.udp_port(), b.as_bytes());

    for (input, port) in [("tcp", rsyslog.tcp_port()), ("ptcp", rsyslog.ptcp_port())] {
        // LF framing and octet counting, first on their own connections, then mixed on one.
        let (a, b) = both(input, "lf");
        send_tcp(port, format!("{a}\n{b}\n").as_bytes());
        let (a, b) = both(input, "octets");
        send_tcp(
            port,
            format!("{}{}", octet_counted(&a), octet_counted(&b)).as_bytes(),
        );
        let (a, b) = both(input, "mixed");
        send_tcp(port, format!("{}{b}\n", octet_counted(&a)).as_bytes());
    }

    // RFC 5425 is octet-counted; the certificate names both the IP and localhost.
    for name in ["127.0.0.1", "localhost"] {
        let (a, b) = both("tls", &format!("octets-{name}"));
        let frames = format!("{}{}", octet_counted(&a), octet_counted(&b));
        let version = send_tls(rsyslog, name, frames.as_bytes());
        assert_eq!(
            version,
            rustls::ProtocolVersion::TLSv1_2,
            "see the module comment"
        );
    }
    want
}

#[test]
fn rsyslog_harness_gets_5424_and_3164_exactly_once_over_udp_tcp_ptcp_and_tls() {
    let rsyslog = Rsyslog::start(&temp_dir("rsyslog-every-input"));
    let want = send_everywhere(&rsyslog, "first");
    assert_exactly(&rsyslog, &want);
}

/// Stock rsyslog with authMode anon answers a TLS 1.3-only ClientHello with TLS 1.2: a
/// forwarder that allows only TLS 1.3 cannot talk to it. And the name check is real.
#[test]
fn rsyslog_harness_tls_listener_speaks_only_tls_1_2_and_its_certificate_names_127_0_0_1() {
    let rsyslog = Rsyslog::start(&temp_dir("rsyslog-tls-versions"));
    let rustls_error = |e: std::io::Error| {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .cloned()
            .unwrap_or_else(|| panic!("not a TLS error: {e}"))
    };

    let tls13_only = tls_connect(&rsyslog, "127.0.0.1", &[&rustls::version::TLS13]);
    let error = rustls_error(tls13_only.expect_err("a TLS 1.3-only handshake succeeded"));
    assert_eq!(
        error,
        rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
        )
    );

    let wrong_name = tls_connect(&rsyslog, "example.com", rustls::DEFAULT_VERSIONS);
    let error = rustls_error(wrong_name.expect_err("the certificate accepted as example.com"));
    assert!(
        matches!(error, rustls::Error::InvalidCertificate(_)),
        "{error:?}"
    );
}

#[test]
fn rsyslog_harness_stop_then_start_again_on_the_same_ports_keeps_what_arrived() {
    let mut rsyslog = Rsyslog::start(&temp_dir("rsyslog-restart"));
    let ports = (
        rsyslog.udp_port(),
        rsyslog.tcp_port(),
        rsyslog.ptcp_port(),
        rsyslog.tls_port(),
    );
    let mut want = send_everywhere(&rsyslog, "before");
    assert_exactly(&rsyslog, &want);

    rsyslog.stop();
    for port in [ports.1, ports.2, ports.3] {
        let refused = TcpStream::connect(("127.0.0.1", port));
        assert!(refused.is_err(), "port {port} still accepts after stop");
    }

    rsyslog.start_again();
    assert_eq!(
        ports,
        (
            rsyslog.udp_port(),
            rsyslog.tcp_port(),
            rsyslog.ptcp_port(),
            rsyslog.tls_port()
        )
    );
    want.extend(send_everywhere(&rsyslog, "after"));
    assert_exactly(&rsyslog, &want);
}

/// The largest UDP datagram, a 64 KiB octet-counted TCP frame, JSON-hostile characters and a
/// burst of 5000 messages all arrive whole and once: no rate limit, no truncation.
#[test]
fn rsyslog_harness_takes_the_largest_messages_and_bursts_whole() {
    let rsyslog = Rsyslog::start(&temp_dir("rsyslog-large"));
    let mut want = Vec::new();

    let header = rfc5424("");
    let udp_max = 65507; // 65535 - 20 (IPv4) - 8 (UDP)
    let udp_body = "u".repeat(udp_max - header.len());
    send_udp(rsyslog.udp_port(), rfc5424(&udp_body).as_bytes());
    want.push(expected("udp", udp_body));

    let tcp_body = "t".repeat(64 * 1024 - header.len());
    send_tcp(
        rsyslog.tcp_port(),
        octet_counted(&rfc5424(&tcp_body)).as_bytes(),
    );
    want.push(expected("tcp", tcp_body));

    let hostile = "quote \" backslash \\ slash / unicode é ✓ brace } tab\tend".to_owned();
    send_tcp(
        rsyslog.ptcp_port(),
        format!("{}\n", rfc5424(&hostile)).as_bytes(),
    );
    want.push(expected("ptcp", hostile));

    let burst: String = (0..5000)
        .map(|i| octet_counted(&rfc5424(&format!("{PAYLOAD}\tburst {i}"))))
        .collect();
    send_tcp(rsyslog.tcp_port(), burst.as_bytes());
    want.extend((0..5000).map(|i| expected("tcp", format!("{PAYLOAD}\tburst {i}"))));

    assert_exactly(&rsyslog, &want);
}

/// A port taken while rsyslogd was stopped fails `start_again` at once with that reason
/// (rsyslogd itself would run on without the listener), for UDP and for TCP.
#[test]
fn rsyslog_harness_start_again_fails_fast_when_a_port_was_taken() {
    let mut rsyslog = Rsyslog::start(&temp_dir("rsyslog-port-taken"));
    rsyslog.stop();
    for protocol in ["udp", "tcp"] {
        let _holder: Box<dyn std::any::Any> = match protocol {
            "udp" => Box::new(UdpSocket::bind(("127.0.0.1", rsyslog.udp_port())).unwrap()),
            _ => Box::new(TcpListener::bind(("127.0.0.1", rsyslog.tcp_port())).unwrap()),
        };
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rsyslog.start_again();
        }));
        let message = outcome
            .err()
            .and_then(|payload| payload.downcast::<String>().ok())
            .unwrap_or_else(|| panic!("start_again with the {protocol} port taken"));
        assert!(message.contains("is taken by another process"), "{message}");
        assert!(
            started.elapsed() < STARTUP_DEADLINE / 2,
            "{:?}",
            started.elapsed()
        );
        assert!(rsyslog.child.is_none());
    }
}

/// rsyslog's escaping of control characters other than tab, its handling of a BOM and of a
/// 3164 `TAG[pid]:`, pinned so a forwarder test knows what to expect.
#[test]
fn rsyslog_harness_escapes_control_characters_but_tab_and_keeps_the_bom() {
    let rsyslog = Rsyslog::start(&temp_dir("rsyslog-escapes"));
    let frames = [
        octet_counted(&rfc5424("line\nbreak\u{1}soh\ttab")),
        octet_counted(&rfc5424("\u{feff}after a BOM")),
        octet_counted("<29>Dec  2 10:00:00 mytag bro25_conn[4242]: with a pid"),
        format!("{}\r\n", rfc5424("crlf")),
    ];
    send_tcp(rsyslog.tcp_port(), frames.concat().as_bytes());
    let want = [
        "line#012break#001soh\ttab",
        "\u{feff}after a BOM",
        " with a pid",
        "crlf#015",
    ]
    .map(|msg| expected("tcp", msg.to_owned()));
    assert_exactly(&rsyslog, &want);
}
