//! Load generator for `bench/burp.sh`: burp status queries (`backend = burp`), cache off.
//!
//! `persistent`: C connections to a running pcapd, each sending its queries one after the other
//! on the same connection (as pcapd allows and its own clients do), N queries in all.
//! `oneshot`: the same, but every query on a new connection that is closed after the answer
//! (one request per connection, as Burp-UI does): with `persistent` over the same transport it
//! gives the share of the connection setup (the TLS handshake) in the server's cost.
//! `pipes`: the limit, no network and no server: POOL children `BURPBIN -c BCONFCLI -a m`
//! spawned here and driven through their stdin/stdout by C requesters that share them (one
//! query at a time per child; an idle child takes the next waiting requester, FIFO).
//!
//! CA is the daemon's certificate (TLS) or `-` for plain TCP. QUERY defaults to `c:`.
//! Each mode prints one JSON line: {mode, n, c, rps, p50_ms, p99_ms, max_ms, errors,
//! client_cpu_pct, client_cpu_ms_per_req}, where errors counts `KO` answers (burp warnings) and
//! failed requests, and the CPU is burpload's own (children excluded: in `pipes` mode, the cost
//! of the driver without the children's).
//!
//! Usage: burpload persistent HOST PORT CA PASSWORD_FILE N C [QUERY]
//!        burpload oneshot HOST PORT CA PASSWORD_FILE N C [QUERY]
//!        burpload pipes BURPBIN BCONFCLI POOL N C [QUERY]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pcapd::client::{Client, ClientSettings, TlsTrust, DEFAULT_CHUNK};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, Mutex};

/// Per-answer deadline for the pipes mode (bui-monitor's and pcapd's `timeout` in the bench).
const TIMEOUT: Duration = Duration::from_secs(15);

fn query_line(args: &[String], at: usize) -> String {
    let q = args.get(at).map(String::as_str).unwrap_or("c:");
    format!("{}\n", q.trim_end_matches('\n'))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// This process's CPU time so far (user + system, all threads, children excluded), seconds.
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

/// Prints the result line from every requester's latencies (ms) and error count.
fn report(mode: &str, c: usize, start: (Instant, f64), results: Vec<(Vec<f64>, usize)>) {
    let wall = start.0.elapsed().as_secs_f64();
    let cpu = own_cpu() - start.1;
    let errors: usize = results.iter().map(|r| r.1).sum();
    let mut all: Vec<f64> = results.into_iter().flat_map(|r| r.0).collect();
    all.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{}",
        json!({
            "mode": mode, "n": all.len(), "c": c, "wall_s": wall,
            "rps": all.len() as f64 / wall,
            "p50_ms": percentile(&all, 50.0), "p99_ms": percentile(&all, 99.0),
            "max_ms": all.last().copied().unwrap_or(0.0), "errors": errors,
            "client_cpu_pct": 100.0 * cpu / wall,
            "client_cpu_ms_per_req": 1000.0 * cpu / all.len().max(1) as f64,
        })
    );
}

fn settings(args: &[String]) -> ClientSettings {
    let password = std::fs::read_to_string(&args[4])
        .expect("password file")
        .trim()
        .to_owned();
    ClientSettings {
        host: args[1].clone(),
        port: args[2].parse().expect("port"),
        password,
        tls: (args[3] != "-").then(|| TlsTrust {
            ca: PathBuf::from(&args[3]),
            server_name: args[1].clone(),
        }),
        connect_timeout: Duration::from_secs(30),
        chunk: DEFAULT_CHUNK,
    }
}

/// `persistent` and `oneshot`: C requesters over the network, N queries in all.
async fn network(args: Vec<String>, oneshot: bool) {
    let n: usize = args[5].parse().expect("N");
    let c: usize = args[6].parse().expect("C");
    let query = query_line(&args, 7);
    let base = settings(&args);
    let next = Arc::new(AtomicUsize::new(0));
    let start = (Instant::now(), own_cpu());
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (settings, next, query) = (base.clone(), next.clone(), query.clone());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0usize);
            let mut conn: Option<Client> = None;
            while next.fetch_add(1, Ordering::SeqCst) < n {
                let t0 = Instant::now();
                if conn.is_none() {
                    conn = Client::connect(settings.clone()).await.ok();
                }
                let answer = match conn.as_mut() {
                    Some(client) => client.query(&query, false).await,
                    None => Err(pcapd::client::ClientError::Protocol("no connection".into())),
                };
                match answer {
                    Ok(Some(_)) => {}
                    Ok(None) => errors += 1,
                    // A broken connection is counted and replaced.
                    Err(_) => {
                        errors += 1;
                        conn = None;
                    }
                }
                if oneshot {
                    conn = None; // dropping the client closes the connection
                }
                latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
            (latencies, errors)
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("requester task"));
    }
    report(
        if oneshot { "oneshot" } else { "persistent" },
        c,
        start,
        results,
    );
}

/// One `burp -a m` child with its pipes.
struct Burp {
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    _child: Child,
}

impl Burp {
    async fn spawn(burpbin: &str, bconfcli: &str) -> std::io::Result<Burp> {
        let mut child = Command::new(burpbin)
            .args(["-c", bconfcli, "-a", "m"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut burp = Burp {
            stdin: child.stdin.take().expect("stdin"),
            stdout: BufReader::new(child.stdout.take().expect("stdout")),
            _child: child,
        };
        // Same set-up as bui-monitor and pcapd: one-line JSON, then response markers (burp >=
        // 2.2.10). burp buffers stdin until it is `in monitor`; the startup loglines are skipped.
        burp.exchange("j:pretty-print-off\n", false).await?;
        burp.exchange("j:response-markers-on\n", true).await?;
        Ok(burp)
    }

    /// Sends one line and reads the answer: with `markers`, the JSON between
    /// `{"response-start"…}` and `{"response-end"…}`; without, the first JSON line that is not
    /// a logline. Returns whether it was an answer (not a `warning`).
    async fn exchange(&mut self, line: &str, markers: bool) -> std::io::Result<bool> {
        self.stdin.write_all(line.as_bytes()).await?;
        self.stdin.flush().await?;
        let mut answer = None;
        let mut buf = String::new();
        loop {
            buf.clear();
            let read = tokio::time::timeout(TIMEOUT, self.stdout.read_line(&mut buf)).await;
            match read {
                Err(_) => return Err(std::io::Error::other("burp did not answer in time")),
                Ok(Ok(0)) => return Err(std::io::Error::other("burp exited")),
                Ok(r) => r?,
            };
            let Ok(doc) = serde_json::from_str::<Value>(&buf) else {
                continue; // not JSON (startup noise)
            };
            if doc.get("logline").is_some() || doc.get("response-start").is_some() {
                continue;
            }
            if doc.get("response-end").is_some() {
                break;
            }
            answer = Some(doc.get("warning").is_none());
            if !markers {
                break;
            }
        }
        answer.ok_or_else(|| std::io::Error::other("empty answer"))
    }
}

/// `pipes`: the same children, no network and no server.
async fn pipes(args: Vec<String>) {
    let (burpbin, bconfcli) = (&args[1], &args[2]);
    let pool: usize = args[3].parse().expect("POOL");
    let n: usize = args[4].parse().expect("N");
    let c: usize = args[5].parse().expect("C");
    let query = query_line(&args, 6);
    // The idle children; a requester takes one (FIFO among waiting requesters) and puts it back.
    let (idle_tx, idle_rx) = mpsc::channel::<Burp>(pool);
    for _ in 0..pool {
        let burp = Burp::spawn(burpbin, bconfcli).await.expect("spawn burp");
        idle_tx.send(burp).await.expect("pool");
    }
    let idle_rx = Arc::new(Mutex::new(idle_rx));
    // Warm-up (not measured): one query per child.
    for _ in 0..pool {
        let mut burp = idle_rx.lock().await.recv().await.expect("pool");
        burp.exchange(&query, true).await.expect("warm-up query");
        idle_tx.send(burp).await.expect("pool");
    }
    let next = Arc::new(AtomicUsize::new(0));
    let start = (Instant::now(), own_cpu());
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (idle_tx, idle_rx, next, query) = (
            idle_tx.clone(),
            idle_rx.clone(),
            next.clone(),
            query.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0usize);
            while next.fetch_add(1, Ordering::SeqCst) < n {
                let t0 = Instant::now();
                let mut burp = idle_rx.lock().await.recv().await.expect("pool");
                match burp.exchange(&query, true).await {
                    Ok(true) => {}
                    Ok(false) => errors += 1,
                    Err(e) => panic!("burp child failed: {e}"),
                }
                idle_tx.send(burp).await.expect("pool");
                latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
            (latencies, errors)
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("requester task"));
    }
    report("pipes", c, start, results);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match args.first().map(String::as_str) {
        Some("persistent") if (7..=8).contains(&args.len()) => {
            runtime.block_on(network(args, false))
        }
        Some("oneshot") if (7..=8).contains(&args.len()) => runtime.block_on(network(args, true)),
        Some("pipes") if (6..=7).contains(&args.len()) => runtime.block_on(pipes(args)),
        _ => {
            eprintln!(
                "usage: burpload persistent HOST PORT CA|- PASSWORD_FILE N C [QUERY]\n       \
                 burpload oneshot HOST PORT CA|- PASSWORD_FILE N C [QUERY]\n       \
                 burpload pipes BURPBIN BCONFCLI POOL N C [QUERY]"
            );
            std::process::exit(2);
        }
    }
}
