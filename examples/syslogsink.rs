//! syslogsink: the syslog receiver of `bench/brocapi.sh`, counting what each job's tag got.
//!
//! Listens on one port for UDP (one message per datagram) and TCP. On TCP each frame is
//! detected as RFC 6587 octet-counting (`LEN SP MSG`, the frame starts with a digit) or
//! non-transparent framing (`MSG LF`, starts with `<`), frame by frame, as rsyslog's imtcp
//! does. Messages are parsed as RFC 5424 (`<PRI>1 TS HOST APP PROCID MSGID SD MSG`) or RFC 3164
//! (`<PRI>Mmm dd hh:mm:ss HOST TAG: MSG`, an ISO timestamp tolerated). For each HOSTNAME (the
//! job's tag) it keeps the number of messages, the number of distinct (APP-NAME, MSG) pairs, so
//! that lines sent twice show up, the arrival time (Unix seconds) of the first and last message,
//! and the count per APP-NAME. Frames that do not parse are counted as malformed, and a TCP
//! connection whose framing is broken is closed.
//!
//! Control: a TCP port answering one request line: `stats [PREFIX]` gives one JSON line,
//! `{"messages", "malformed", "by_transport", "by_format", "by_pri", "tags": {TAG: {"lines",
//! "distinct", "first", "last", "apps"}}}`, limited to tags that start with PREFIX.
//! `--dump FILE` also writes every message as a JSON line (to check fields and tabs by eye).
//!
//! On start it prints `{"port": P, "control": Q}` on stdout (ports 0 = free ones).
//!
//! ```text
//! syslogsink --bind 127.0.0.1 --port 0 --control-port 0 [--dump messages.jsonl]
//! ```

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufWriter, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

#[derive(Parser, Debug)]
#[command(about = "Syslog receiver (UDP, TCP LF / octet-counted) counting lines per HOSTNAME")]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// UDP and TCP port; 0 = a free port (the same number for both).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Control port (`stats [PREFIX]`); 0 = a free port.
    #[arg(long, default_value_t = 0)]
    control_port: u16,
    /// Largest frame accepted (TCP message or its octet count), bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_frame: usize,
    /// Write every message as a JSON line to this file.
    #[arg(long)]
    dump: Option<PathBuf>,
}

/// The transport and framing a message arrived with.
#[derive(Clone, Copy)]
enum Transport {
    Udp,
    TcpLf,
    TcpOctet,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::TcpLf => "tcp-lf",
            Transport::TcpOctet => "tcp-octet-counting",
        }
    }
}

/// One parsed syslog message.
#[derive(Debug, PartialEq)]
struct Message<'a> {
    pri: u8,
    format: &'static str,
    hostname: &'a str,
    app: &'a str,
    msg: &'a str,
}

/// Per tag: what arrived.
#[derive(Default)]
struct TagStats {
    lines: u64,
    distinct: HashSet<u64>,
    first: f64,
    last: f64,
    apps: BTreeMap<String, u64>,
}

#[derive(Default)]
struct Sink {
    messages: u64,
    malformed: u64,
    by_transport: BTreeMap<&'static str, u64>,
    by_format: BTreeMap<&'static str, u64>,
    by_pri: BTreeMap<u8, u64>,
    tags: HashMap<String, TagStats>,
    dump: Option<BufWriter<File>>,
}

type Shared = Arc<Mutex<Sink>>;

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Sink {
    fn receive(&mut self, frame: &[u8], transport: Transport) {
        let now = unix_now();
        let text = String::from_utf8_lossy(frame);
        let Some(message) = parse(&text) else {
            self.malformed += 1;
            return;
        };
        self.messages += 1;
        *self.by_transport.entry(transport.name()).or_default() += 1;
        *self.by_format.entry(message.format).or_default() += 1;
        *self.by_pri.entry(message.pri).or_default() += 1;
        let mut hasher = DefaultHasher::new();
        (message.app, message.msg).hash(&mut hasher);
        let stats = match self.tags.get_mut(message.hostname) {
            Some(stats) => stats,
            None => {
                let stats = self.tags.entry(message.hostname.to_owned()).or_default();
                stats.first = now;
                stats
            }
        };
        stats.lines += 1;
        stats.distinct.insert(hasher.finish());
        stats.last = now;
        match stats.apps.get_mut(message.app) {
            Some(count) => *count += 1,
            None => {
                stats.apps.insert(message.app.to_owned(), 1);
            }
        }
        if let Some(dump) = self.dump.as_mut() {
            let line = json!({
                "t": now, "transport": transport.name(), "format": message.format,
                "pri": message.pri, "host": message.hostname, "app": message.app,
                "msg": message.msg,
            });
            // The dump is a debugging aid: a failed write must not stop the counting.
            let _ = writeln!(dump, "{line}");
        }
    }

    fn stats(&mut self, prefix: &str) -> Value {
        if let Some(dump) = self.dump.as_mut() {
            let _ = dump.flush();
        }
        let tags: serde_json::Map<String, Value> = self
            .tags
            .iter()
            .filter(|(tag, _)| tag.starts_with(prefix))
            .map(|(tag, s)| {
                (
                    tag.clone(),
                    json!({ "lines": s.lines, "distinct": s.distinct.len(), "first": s.first,
                            "last": s.last, "apps": s.apps }),
                )
            })
            .collect();
        json!({
            "messages": self.messages, "malformed": self.malformed,
            "by_transport": self.by_transport, "by_format": self.by_format,
            "by_pri": self.by_pri, "tags": tags,
        })
    }
}

/// `<PRI>` then RFC 5424 (`1 ` follows) or RFC 3164.
fn parse(text: &str) -> Option<Message<'_>> {
    let rest = text.strip_prefix('<')?;
    let close = rest.find('>')?;
    if close == 0 || close > 3 {
        return None;
    }
    let pri: u8 = rest[..close].parse().ok().filter(|p| *p <= 191)?;
    let rest = &rest[close + 1..];
    match rest.strip_prefix("1 ") {
        Some(rest) => parse_5424(pri, rest),
        None => parse_3164(pri, rest),
    }
}

/// `TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]`.
fn parse_5424(pri: u8, rest: &str) -> Option<Message<'_>> {
    let mut fields = rest.splitn(6, ' ');
    let _timestamp = fields.next()?;
    let hostname = fields.next()?;
    let app = fields.next()?;
    let _procid = fields.next()?;
    let _msgid = fields.next()?;
    let rest = fields.next()?;
    let after_sd = if let Some(after) = rest.strip_prefix('-') {
        after
    } else {
        skip_structured_data(rest)?
    };
    let msg = match after_sd.strip_prefix(' ') {
        Some(msg) => msg.strip_prefix('\u{feff}').unwrap_or(msg),
        None if after_sd.is_empty() => "",
        None => return None,
    };
    Some(Message {
        pri,
        format: "rfc5424",
        hostname,
        app,
        msg,
    })
}

/// Skips `[id param="value" ...]...`, where `\"`, `\\` and `\]` are escaped in values.
fn skip_structured_data(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while bytes.get(i) == Some(&b'[') {
        let mut in_value = false;
        i += 1;
        loop {
            match *bytes.get(i)? {
                b'\\' if in_value => i += 1,
                b'"' => in_value = !in_value,
                b']' if !in_value => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    if i == 0 {
        return None;
    }
    Some(&text[i..])
}

/// `Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG` (an ISO timestamp is accepted too).
fn parse_3164(pri: u8, rest: &str) -> Option<Message<'_>> {
    let rest = if is_bsd_timestamp(rest) {
        rest.get(16..)?
    } else if rest.starts_with(|c: char| c.is_ascii_digit()) {
        rest.split_once(' ')?.1
    } else {
        return None;
    };
    let (hostname, rest) = rest.split_once(' ')?;
    let end = rest.find([':', '[', ' '])?;
    let app = &rest[..end];
    let rest = &rest[end..];
    let rest = match rest.strip_prefix('[') {
        Some(pid) => &pid[pid.find(']')? + 1..],
        None => rest,
    };
    let msg = rest.strip_prefix(':')?;
    let msg = msg.strip_prefix(' ').unwrap_or(msg);
    Some(Message {
        pri,
        format: "rfc3164",
        hostname,
        app,
        msg,
    })
}

/// `Mmm dd hh:mm:ss ` (the day space-padded or zero-padded).
fn is_bsd_timestamp(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 16
        && b[0].is_ascii_uppercase()
        && b[1].is_ascii_lowercase()
        && b[2].is_ascii_lowercase()
        && b[3] == b' '
        && (b[4] == b' ' || b[4].is_ascii_digit())
        && b[5].is_ascii_digit()
        && b[6] == b' '
        && b[7].is_ascii_digit()
        && b[8].is_ascii_digit()
        && b[9] == b':'
        && b[12] == b':'
        && b[15] == b' '
}

/// Reads frames off one TCP connection until it closes or its framing breaks; a broken frame
/// is counted as malformed and closes the connection, an I/O error (a sender killed) only
/// closes it.
async fn serve_tcp(stream: TcpStream, sink: Shared, max_frame: usize, peer: SocketAddr) {
    match read_frames(stream, &sink, max_frame).await {
        Ok(Ok(())) => {}
        Ok(Err(framing)) => {
            sink.lock().unwrap_or_else(|e| e.into_inner()).malformed += 1;
            eprintln!("syslogsink: {peer}: {framing}; connection closed");
        }
        Err(io) => eprintln!("syslogsink: {peer}: {io}; connection closed"),
    }
}

/// The frames of one connection: `Ok(Err(reason))` when the framing broke.
async fn read_frames(
    stream: TcpStream,
    sink: &Shared,
    max_frame: usize,
) -> std::io::Result<Result<(), String>> {
    let mut reader = BufReader::with_capacity(256 * 1024, stream);
    let mut frame = Vec::new();
    loop {
        let first = match reader.fill_buf().await?.first() {
            Some(b) => *b,
            None => return Ok(Ok(())),
        };
        frame.clear();
        let transport = if first.is_ascii_digit() {
            // Octet counting: `LEN SP` then exactly LEN bytes.
            let mut digits = Vec::new();
            (&mut reader).take(12).read_until(b' ', &mut digits).await?;
            let len: Option<usize> = std::str::from_utf8(digits.strip_suffix(b" ").unwrap_or(&[]))
                .ok()
                .and_then(|d| d.parse().ok());
            let Some(len) = len else {
                let digits = String::from_utf8_lossy(&digits);
                return Ok(Err(format!("bad octet count {digits:?}")));
            };
            if len > max_frame {
                return Ok(Err(format!(
                    "octet count {len} over --max-frame {max_frame}"
                )));
            }
            frame.resize(len, 0);
            reader.read_exact(&mut frame).await?;
            Transport::TcpOctet
        } else {
            let n = (&mut reader)
                .take(max_frame as u64 + 1)
                .read_until(b'\n', &mut frame)
                .await?;
            if n > max_frame {
                return Ok(Err(format!("a line over --max-frame {max_frame}")));
            }
            if frame.last() != Some(&b'\n') {
                // The connection ended inside a message: count it, as rsyslog would.
                if !frame.is_empty() {
                    sink.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .receive(&frame, Transport::TcpLf);
                }
                return Ok(Ok(()));
            }
            frame.pop();
            if frame.last() == Some(&b'\r') {
                frame.pop();
            }
            if frame.is_empty() {
                continue;
            }
            Transport::TcpLf
        };
        sink.lock()
            .unwrap_or_else(|e| e.into_inner())
            .receive(&frame, transport);
    }
}

async fn serve_udp(socket: UdpSocket, sink: Shared) {
    let mut buf = vec![0u8; 65536];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, _)) => {
                let mut frame = &buf[..n];
                while let Some(stripped) = frame.strip_suffix(b"\n") {
                    frame = stripped;
                }
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .receive(frame, Transport::Udp);
            }
            Err(e) => eprintln!("syslogsink: udp: {e}"),
        }
    }
}

async fn serve_control(stream: TcpStream, sink: Shared) -> Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    (&mut reader).take(4096).read_line(&mut line).await?;
    let mut words = line.split_whitespace();
    let answer = match words.next() {
        Some("stats") => {
            let prefix = words.next().unwrap_or("");
            sink.lock().unwrap_or_else(|e| e.into_inner()).stats(prefix)
        }
        _ => json!({ "error": "requests: stats [PREFIX]" }),
    };
    let mut stream = reader.into_inner();
    stream.write_all(format!("{answer}\n").as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}

/// Binds TCP and UDP on the same port number (a free one when `port` is 0).
async fn bind_pair(ip: IpAddr, port: u16) -> Result<(TcpListener, UdpSocket)> {
    for _ in 0..50 {
        let tcp = TcpListener::bind(SocketAddr::new(ip, port)).await?;
        let chosen = tcp.local_addr()?.port();
        match UdpSocket::bind(SocketAddr::new(ip, chosen)).await {
            Ok(udp) => return Ok((tcp, udp)),
            Err(e) if port != 0 => return Err(e).context(format!("udp port {chosen}")),
            Err(_) => continue,
        }
    }
    bail!("no port free for both TCP and UDP")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let dump = match &args.dump {
        Some(path) => Some(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let sink: Shared = Arc::new(Mutex::new(Sink {
        dump,
        ..Sink::default()
    }));
    let (tcp, udp) = bind_pair(args.bind, args.port).await?;
    let control = TcpListener::bind(SocketAddr::new(args.bind, args.control_port)).await?;
    println!(
        "{}",
        json!({ "port": tcp.local_addr()?.port(), "control": control.local_addr()?.port() })
    );
    std::io::stdout().flush()?;
    tokio::spawn(serve_udp(udp, sink.clone()));
    let control_sink = sink.clone();
    tokio::spawn(async move {
        loop {
            if let Ok((stream, _)) = control.accept().await {
                let sink = control_sink.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve_control(stream, sink).await {
                        eprintln!("syslogsink: control: {e:#}");
                    }
                });
            }
        }
    });
    let max_frame = args.max_frame;
    loop {
        match tcp.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(serve_tcp(stream, sink.clone(), max_frame, peer));
            }
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                eprintln!("syslogsink: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3164_brocapi_layout() {
        let m = parse("<29>Dec  2 00:02:29 b-1-0 bro25_conn: 1714564800.000025\tC7M\t-").unwrap();
        assert_eq!(
            m,
            Message {
                pri: 29,
                format: "rfc3164",
                hostname: "b-1-0",
                app: "bro25_conn",
                msg: "1714564800.000025\tC7M\t-"
            }
        );
        let m = parse("<13>2026-12-02T00:02:29Z host app[42]: x").unwrap();
        assert_eq!((m.hostname, m.app, m.msg), ("host", "app", "x"));
    }

    #[test]
    fn rfc5424_with_and_without_structured_data() {
        let m = parse("<29>1 2026-12-02T00:02:29.1Z p-1 pcapd_dns - - - a\tb").unwrap();
        assert_eq!(
            (m.hostname, m.app, m.msg, m.format),
            ("p-1", "pcapd_dns", "a\tb", "rfc5424")
        );
        let m = parse("<29>1 - h a - - [x@1 k=\"v\\]\"][y@2] \u{feff}m").unwrap();
        assert_eq!(m.msg, "m");
        assert!(parse("<29>1 - h a - - [x@1 k=\"v\"").is_none());
        assert!(parse("no pri").is_none());
        assert!(parse("<300>1 - h a - - - m").is_none());
    }
}
