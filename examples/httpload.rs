//! httpload: load generator for `bench/brocapi.sh`: Brocapi's `POST /submit/pcap` over HTTP/1.1.
//!
//! C clients share N jobs. Job `n` uploads `--files-per-job` captures (taken round-robin from
//! the CAPTURE list, so the figure is not tuned to one file) as multipart/form-data `file[]`
//! parts followed by a `tag` part of `TAG_PREFIX-n`, the order curl uses for Brocapi's README
//! example. The request is written by hand (no HTTP library between the bench and the server):
//! keep-alive when the server allows it, a new connection when it answers `Connection: close`
//! (gunicorn's sync workers do), optional TLS trusting exactly the given PEM certificate(s)
//! (`pcapd::tls::connector`, as pcapd's own client), an optional `Authorization` header.
//!
//! A job is acknowledged when the answer is 200 with Brocapi's body: `success: true`, a string
//! `job_id`, `files` = the uploaded file names and `tag` = the job's tag. Anything else is
//! recorded as an error with the status and the start of the body, and the client waits
//! `--retry-delay-ms` before its next job (so a server that is down, as in the bench's fault
//! run, is not hammered and the remaining jobs are spread over the outage).
//!
//! `--rate R` paces the starts (job n not before n / R seconds), for the bench's fault run.
//!
//! Every job becomes one JSON line in `--out` as it completes (flushed, so a script can follow
//! the run): `{n, tag, files, start, latency_ms, status, job_id, ok, error}` where `start` is the
//! Unix time (seconds) the request began, on the same clock as the syslog sink's arrival times.
//! The summary goes to stdout as one JSON line: `{jobs, ok, errors, c, wall_s, submits_per_s,
//! p50_ms, p99_ms, max_ms, statuses, client_cpu_s}`; latencies are those of acknowledged jobs.
//!
//! ```text
//! httpload --url http://127.0.0.1:8080/submit/pcap --jobs 200 --concurrency 16 \
//!     --tag-prefix b-1-c16 --out jobs.jsonl a.pcap b.pcap c.pcapng
//! httpload --url https://127.0.0.1:8443/submit/pcap --ca cert.pem \
//!     --authorization "Basic $(printf 'any:PASSWORD' | base64)" ...
//! ```

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Largest response head (status line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest response body accepted (answers are small JSON documents).
const MAX_BODY: usize = 1024 * 1024;
/// Size of the writes the upload is cut into (a 20 MB capture is not one giant write).
const WRITE_CHUNK: usize = 256 * 1024;

#[derive(Parser, Debug)]
#[command(about = "Submit captures to a Brocapi-style POST /submit/pcap, C clients, N jobs")]
struct Args {
    /// `http://HOST:PORT/PATH` or `https://...` (IPv6 hosts in brackets).
    #[arg(long)]
    url: String,
    /// Jobs in all.
    #[arg(long, default_value_t = 100)]
    jobs: usize,
    /// Clients submitting at once.
    #[arg(long, short = 'c', default_value_t = 1)]
    concurrency: usize,
    /// Captures per job (`file[]` parts).
    #[arg(long, default_value_t = 1)]
    files_per_job: usize,
    /// Job n gets the tag `PREFIX-n`; an empty prefix sends no tag part.
    #[arg(long, default_value = "httpload")]
    tag_prefix: String,
    /// PEM certificate(s) to trust for https (the server's own certificate works).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Value of an `Authorization` header sent with every request (`Basic ...`, `Bearer ...`).
    #[arg(long)]
    authorization: Option<String>,
    /// Per-job record file (JSON lines); none when unset.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Deadline of one request (connect, upload and answer), seconds.
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
    /// Pause of a client after a failed job, milliseconds.
    #[arg(long, default_value_t = 100)]
    retry_delay_ms: u64,
    /// Start job n no earlier than n / RATE seconds into the run (a steady stream of uploads,
    /// so that a fault in the middle of the run has submissions before and after it); 0 = as
    /// fast as the clients go.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Capture files, used round-robin.
    #[arg(required = true)]
    captures: Vec<PathBuf>,
}

/// Where and how to connect, parsed once from `--url`.
#[derive(Clone)]
struct Target {
    /// `host:port` for connect.
    addr: String,
    /// The `Host` header value.
    host_header: String,
    path: String,
    /// `Some` for https: the connector and the name the certificate is checked against.
    tls: Option<(TlsConnector, rustls_pki_types::ServerName<'static>)>,
}

impl Target {
    fn parse(url: &str, ca: Option<&Path>) -> Result<Target> {
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            bail!("--url {url:?}: must start with http:// or https://");
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let end = bracketed
                .find(']')
                .with_context(|| format!("--url {url:?}: unclosed ["))?;
            let port = bracketed[end + 1..].strip_prefix(':');
            (&bracketed[..end], port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port: u16 = match port {
            Some(p) => p
                .parse()
                .with_context(|| format!("--url {url:?}: bad port {p:?}"))?,
            None if https => 443,
            None => 80,
        };
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let tls = if https {
            let ca = ca.context("https needs --ca PEM (the certificate(s) to trust)")?;
            let connector = pcapd::tls::connector(ca)?;
            Some((connector, pcapd::tls::server_name(host)?))
        } else {
            None
        };
        Ok(Target {
            host_header: authority.to_owned(),
            addr,
            path: path.to_owned(),
            tls,
        })
    }
}

/// A capture loaded once and shared by every request that uploads it.
struct Capture {
    path: PathBuf,
    /// The `filename` of its part (the file's base name), which Brocapi echoes in `files`.
    name: String,
    bytes: Vec<u8>,
}

/// One piece of a request body: bytes made for this request, or a whole shared capture.
enum Piece {
    Owned(Vec<u8>),
    Capture(Arc<Capture>),
}

impl Piece {
    fn bytes(&self) -> &[u8] {
        match self {
            Piece::Owned(bytes) => bytes,
            Piece::Capture(capture) => &capture.bytes,
        }
    }
}

/// The multipart/form-data body of one job: `file[]` parts, then the `tag` part.
fn multipart(boundary: &str, files: &[Arc<Capture>], tag: Option<&str>) -> Vec<Piece> {
    let mut pieces = Vec::with_capacity(files.len() * 2 + 1);
    let mut head = String::new();
    for file in files {
        head.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file[]\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            file.name
        ));
        pieces.push(Piece::Owned(std::mem::take(&mut head).into_bytes()));
        pieces.push(Piece::Capture(file.clone()));
        head.push_str("\r\n");
    }
    if let Some(tag) = tag {
        head.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"tag\"\r\n\r\n{tag}\r\n"
        ));
    }
    head.push_str(&format!("--{boundary}--\r\n"));
    pieces.push(Piece::Owned(head.into_bytes()));
    pieces
}

/// A boundary that cannot occur in a capture by accident, different for every job.
fn boundary(n: usize) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("------------------------httpload{nanos:08x}{n:08x}")
}

/// One client's connection: plain TCP or TLS, behind one buffered reader.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type Conn = BufReader<Box<dyn Io>>;

async fn connect(target: &Target) -> Result<Conn> {
    let tcp = TcpStream::connect(&target.addr)
        .await
        .with_context(|| format!("connect {}", target.addr))?;
    tcp.set_nodelay(true)?;
    let io: Box<dyn Io> = match &target.tls {
        Some((connector, name)) => Box::new(
            connector
                .connect(name.clone(), tcp)
                .await
                .context("TLS handshake")?,
        ),
        None => Box::new(tcp),
    };
    Ok(BufReader::new(io))
}

/// What the server answered.
struct Answer {
    status: u16,
    body: Vec<u8>,
    /// The server closes the connection after this answer (or spoke HTTP/1.0).
    close: bool,
}

/// Why one request failed; `Stale` means nothing of the answer arrived on a reused connection,
/// which is what a server closing an idle keep-alive connection looks like.
enum RequestError {
    Stale(anyhow::Error),
    Failed(anyhow::Error),
}

async fn send_request(
    conn: &mut Conn,
    target: &Target,
    extra_headers: &str,
    boundary: &str,
    body: &[Piece],
) -> Result<(), anyhow::Error> {
    let length: usize = body.iter().map(|p| p.bytes().len()).sum();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: httpload\r\nAccept: */*\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n{extra_headers}\r\n",
        target.path, target.host_header
    );
    let io = conn.get_mut();
    io.write_all(head.as_bytes()).await?;
    for piece in body {
        for chunk in piece.bytes().chunks(WRITE_CHUNK) {
            io.write_all(chunk).await?;
        }
    }
    io.flush().await?;
    Ok(())
}

/// Reads one HTTP/1.x response: status line, headers, then a body framed by
/// `Content-Length`, `Transfer-Encoding: chunked` or the end of the connection.
async fn read_answer(conn: &mut Conn) -> Result<Answer, RequestError> {
    let mut head = Vec::new();
    // The status line: nothing at all here on a reused connection is a stale connection.
    let n = read_line(conn, &mut head)
        .await
        .map_err(RequestError::Stale)?;
    if n == 0 {
        return Err(RequestError::Stale(anyhow::anyhow!(
            "connection closed before the answer"
        )));
    }
    let fail = RequestError::Failed;
    let status_line = String::from_utf8_lossy(&head).trim_end().to_owned();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| fail(anyhow::anyhow!("bad status line {status_line:?}")))?;
    if !version.starts_with("HTTP/1.") {
        return Err(fail(anyhow::anyhow!("bad status line {status_line:?}")));
    }
    let mut close = version == "HTTP/1.0";
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut total = head.len();
    loop {
        let mut line = Vec::new();
        let n = read_line(conn, &mut line).await.map_err(fail)?;
        total += n;
        if n == 0 {
            return Err(fail(anyhow::anyhow!("connection closed in the headers")));
        }
        if total > MAX_HEAD {
            return Err(fail(anyhow::anyhow!("response head over {MAX_HEAD} bytes")));
        }
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(fail(anyhow::anyhow!("bad header line {line:?}")));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(
                    value
                        .parse()
                        .map_err(|_| fail(anyhow::anyhow!("bad Content-Length {value:?}")))?,
                )
            }
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "connection" => {
                let value = value.to_ascii_lowercase();
                if value.contains("close") {
                    close = true;
                } else if value.contains("keep-alive") {
                    close = false;
                }
            }
            _ => {}
        }
    }
    let body = if status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if chunked {
        read_chunked(conn).await.map_err(fail)?
    } else if let Some(length) = length {
        if length > MAX_BODY {
            return Err(fail(anyhow::anyhow!("response body of {length} bytes")));
        }
        let mut body = vec![0; length];
        conn.read_exact(&mut body)
            .await
            .map_err(|e| fail(e.into()))?;
        body
    } else {
        close = true;
        let mut body = Vec::new();
        conn.take(MAX_BODY as u64 + 1)
            .read_to_end(&mut body)
            .await
            .map_err(|e| fail(e.into()))?;
        body
    };
    Ok(Answer {
        status,
        body,
        close,
    })
}

/// One line including its `\n`, at most MAX_HEAD bytes; returns the bytes read (0 at EOF).
async fn read_line(conn: &mut Conn, line: &mut Vec<u8>) -> Result<usize> {
    let n = (&mut *conn)
        .take(MAX_HEAD as u64)
        .read_until(b'\n', line)
        .await?;
    if n > 0 && !line.ends_with(b"\n") {
        bail!("line over {MAX_HEAD} bytes or cut by the end of the connection");
    }
    Ok(n)
}

async fn read_chunked(conn: &mut Conn) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = Vec::new();
        read_line(conn, &mut line).await?;
        let text = String::from_utf8_lossy(&line);
        let size_text = text.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut trailer = Vec::new();
                if read_line(conn, &mut trailer).await? == 0 || trailer.trim_ascii().is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY {
            bail!("chunked body over {MAX_BODY} bytes");
        }
        let start = body.len();
        body.resize(start + size, 0);
        conn.read_exact(&mut body[start..]).await?;
        let mut crlf = Vec::new();
        read_line(conn, &mut crlf).await?;
    }
}

/// One job's outcome, as written to `--out`.
struct Outcome {
    latency_ms: f64,
    status: u16,
    job_id: Option<String>,
    error: Option<String>,
}

/// Checks Brocapi's body: `success`, `job_id`, and the files and tag echoed back.
fn acknowledged(answer: &Answer, files: &[Arc<Capture>], tag: Option<&str>) -> Result<String> {
    let text = String::from_utf8_lossy(&answer.body);
    let snippet: String = text.chars().take(200).collect();
    if answer.status != 200 {
        bail!("HTTP {}: {snippet}", answer.status);
    }
    let body: Value =
        serde_json::from_slice(&answer.body).with_context(|| format!("not JSON: {snippet}"))?;
    if body["success"] != Value::Bool(true) {
        bail!("success is not true: {snippet}");
    }
    let job_id = body["job_id"]
        .as_str()
        .with_context(|| format!("no job_id: {snippet}"))?
        .to_owned();
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    if body["files"] != json!(names) {
        bail!("files {} for {names:?}", body["files"]);
    }
    if body["tag"] != json!(tag) {
        bail!("tag {} for {tag:?}", body["tag"]);
    }
    Ok(job_id)
}

/// One request and its answer on `conn`.
async fn exchange(
    conn: &mut Conn,
    target: &Target,
    extra_headers: &str,
    boundary: &str,
    body: &[Piece],
) -> Result<Answer, RequestError> {
    send_request(conn, target, extra_headers, boundary, body)
        .await
        .map_err(RequestError::Stale)?;
    read_answer(conn).await
}

/// Sends one job on the kept connection, or on a new one when there is none or the server had
/// closed it while it was idle; keeps the connection for the next job when the server allows.
async fn submit(
    conn: &mut Option<Conn>,
    target: &Target,
    extra_headers: &str,
    files: &[Arc<Capture>],
    tag: Option<&str>,
    n: usize,
) -> Result<Answer> {
    let boundary = boundary(n);
    let body = multipart(&boundary, files, tag);
    if let Some(mut kept) = conn.take() {
        match exchange(&mut kept, target, extra_headers, &boundary, &body).await {
            Ok(answer) => {
                if !answer.close {
                    *conn = Some(kept);
                }
                return Ok(answer);
            }
            // Nothing of an answer came back: the server had closed the idle connection.
            Err(RequestError::Stale(_)) => {}
            Err(RequestError::Failed(e)) => return Err(e),
        }
    }
    let mut fresh = connect(target).await?;
    match exchange(&mut fresh, target, extra_headers, &boundary, &body).await {
        Ok(answer) => {
            if !answer.close {
                *conn = Some(fresh);
            }
            Ok(answer)
        }
        Err(RequestError::Stale(e) | RequestError::Failed(e)) => Err(e),
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// This process's CPU time so far (user + system, all threads), seconds.
fn own_cpu() -> f64 {
    // SAFETY: rusage is plain data (all zeroes is valid) and getrusage only writes into it.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn load_captures(paths: &[PathBuf]) -> Result<Vec<Arc<Capture>>> {
    paths
        .iter()
        .map(|path| {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("{}: no UTF-8 file name", path.display()))?
                .to_owned();
            if name.contains(['"', '\r', '\n']) {
                bail!("{}: a file name with quotes or line breaks", path.display());
            }
            Ok(Arc::new(Capture {
                path: path.clone(),
                name,
                bytes,
            }))
        })
        .collect()
}

/// Per-job records, written and flushed as jobs complete.
type Records = Arc<Mutex<Option<std::io::BufWriter<File>>>>;

fn record(records: &Records, line: &Value) {
    let mut guard = records.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(out) = guard.as_mut() {
        // A failed write loses a record, not the run; the summary still counts the job.
        let _ = writeln!(out, "{line}").and_then(|_| out.flush());
    }
}

async fn run(args: Args) -> Result<Value> {
    if args.concurrency == 0 || args.files_per_job == 0 {
        bail!("--concurrency and --files-per-job must be at least 1");
    }
    let target = Arc::new(Target::parse(&args.url, args.ca.as_deref())?);
    let captures = Arc::new(load_captures(&args.captures)?);
    let extra_headers = Arc::new(match &args.authorization {
        Some(value) => format!("Authorization: {value}\r\n"),
        None => String::new(),
    });
    let records: Records = Arc::new(Mutex::new(match &args.out {
        Some(path) => Some(std::io::BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    }));
    let next = Arc::new(AtomicUsize::new(0));
    let timeout = Duration::from_secs_f64(args.timeout);
    let retry_delay = Duration::from_millis(args.retry_delay_ms);
    let rate = args.rate;
    if !(rate >= 0.0 && rate.is_finite()) {
        bail!("--rate must be a number of jobs per second, 0 for no pacing");
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.min(args.jobs.max(1)) {
        let (target, captures, extra_headers, records, next) = (
            target.clone(),
            captures.clone(),
            extra_headers.clone(),
            records.clone(),
            next.clone(),
        );
        let (jobs, files_per_job, prefix) =
            (args.jobs, args.files_per_job, args.tag_prefix.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn: Option<Conn> = None;
            let mut outcomes = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= jobs {
                    break;
                }
                if rate > 0.0 {
                    let due = started + Duration::from_secs_f64(n as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let files: Vec<Arc<Capture>> = (0..files_per_job)
                    .map(|j| captures[(n * files_per_job + j) % captures.len()].clone())
                    .collect();
                let tag = (!prefix.is_empty()).then(|| format!("{prefix}-{n}"));
                let start = unix_now();
                let t0 = Instant::now();
                let result = tokio::time::timeout(
                    timeout,
                    submit(
                        &mut conn,
                        &target,
                        &extra_headers,
                        &files,
                        tag.as_deref(),
                        n,
                    ),
                )
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {timeout:?}")));
                let latency_ms = t0.elapsed().as_secs_f64() * 1000.0;
                let outcome = match result {
                    Ok(answer) => match acknowledged(&answer, &files, tag.as_deref()) {
                        Ok(job_id) => Outcome {
                            latency_ms,
                            status: answer.status,
                            job_id: Some(job_id),
                            error: None,
                        },
                        Err(e) => Outcome {
                            latency_ms,
                            status: answer.status,
                            job_id: None,
                            error: Some(format!("{e:#}")),
                        },
                    },
                    Err(e) => {
                        conn = None;
                        Outcome {
                            latency_ms,
                            status: 0,
                            job_id: None,
                            error: Some(format!("{e:#}")),
                        }
                    }
                };
                let files: Vec<String> =
                    files.iter().map(|f| f.path.display().to_string()).collect();
                record(
                    &records,
                    &json!({
                        "n": n, "tag": tag, "files": files, "start": start,
                        "latency_ms": outcome.latency_ms, "status": outcome.status,
                        "job_id": outcome.job_id, "ok": outcome.error.is_none(),
                        "error": outcome.error,
                    }),
                );
                let failed = outcome.error.is_some();
                outcomes.push(outcome);
                if failed {
                    tokio::time::sleep(retry_delay).await;
                }
            }
            outcomes
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await.context("client task")?);
    }
    let wall = started.elapsed().as_secs_f64();
    let mut latencies: Vec<f64> = outcomes
        .iter()
        .filter(|o| o.error.is_none())
        .map(|o| o.latency_ms)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for o in &outcomes {
        *statuses.entry(o.status.to_string()).or_default() += 1;
    }
    let first_errors: Vec<&str> = outcomes
        .iter()
        .filter_map(|o| o.error.as_deref())
        .take(3)
        .collect();
    Ok(json!({
        "jobs": outcomes.len(), "ok": latencies.len(), "errors": outcomes.len() - latencies.len(),
        "c": args.concurrency, "wall_s": wall,
        "submits_per_s": latencies.len() as f64 / wall,
        "p50_ms": percentile(&latencies, 50.0), "p99_ms": percentile(&latencies, 99.0),
        "max_ms": latencies.last().copied().unwrap_or(0.0),
        "statuses": statuses, "first_errors": first_errors, "client_cpu_s": own_cpu(),
    }))
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match run(args).await {
        Ok(summary) => println!("{summary}"),
        Err(e) => {
            eprintln!("httpload: {e:#}");
            std::process::exit(1);
        }
    }
}
