//! The client commands: `submit`, `status`, `wait`, `list`, `logs`, `fetch`, `cancel`, `pool`,
//! `ping`. Each reads its connection settings ([`settings_for`]), makes one connection, and
//! prints the answer for a person, or as JSON with `--json`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Map, Value};

use super::ConnArgs;
use crate::client::{dial_host, Client, ClientSettings, TlsTrust, DEFAULT_CHUNK};
use crate::config::{self, Config};
use crate::exit::{EXIT_JOB_NOT_DONE, EXIT_STILL_PENDING};

/// Connection settings: flags and environment over the config file (`-c`, else the default
/// file, else the embedded defaults' state directory, where `listen.addr` names the port).
pub fn settings_for(args: &ConnArgs) -> Result<ClientSettings> {
    let default = Path::new(config::DEFAULT_CONFIG_PATH);
    let (config, listen_addr) = match &args.config {
        Some(path) => (
            Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?,
            None,
        ),
        None if default.exists() => (
            Config::load(default).map_err(|e| anyhow::anyhow!("{e}"))?,
            None,
        ),
        None => {
            let state_dir = config::default_state_dir();
            let addr = std::fs::read_to_string(state_dir.join("listen.addr"))
                .ok()
                .and_then(|s| s.trim().parse::<std::net::SocketAddr>().ok());
            (Config::embedded(state_dir), addr)
        }
    };
    let host = args
        .host
        .clone()
        .unwrap_or_else(|| dial_host(listen_addr.map_or(config.global.bind, |a| a.ip())));
    let port = args
        .port
        .or(listen_addr.map(|a| a.port()))
        .unwrap_or(config.global.port);
    let password = match &args.password {
        Some(p) => p.clone(),
        None => config.password().with_context(|| {
            "no password: pass --password, set PCAPD_PASSWORD, or point -c at the daemon's config"
        })?,
    };
    let tls = if config.global.ssl {
        let ca = args
            .ca
            .clone()
            .or_else(|| config.global.sslcert.clone())
            .context(
                "ssl is on but no certificate to trust: pass --ca or set sslcert in the config",
            )?;
        Some(TlsTrust {
            ca,
            server_name: args.server_name.clone().unwrap_or_else(|| host.clone()),
        })
    } else {
        None
    };
    Ok(ClientSettings {
        host,
        port,
        password,
        tls,
        connect_timeout: Duration::from_secs(10),
        chunk: DEFAULT_CHUNK,
    })
}

async fn connect(args: &ConnArgs) -> Result<Client> {
    let settings = settings_for(args)?;
    let target = format!("{}:{}", settings.host, settings.port);
    Client::connect(settings)
        .await
        .with_context(|| format!("cannot reach pcapd at {target}"))
}

fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// One line per job for people.
fn job_line(job: &Value) -> String {
    let files: Vec<&str> = job["files"]
        .as_array()
        .map(|f| f.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    format!(
        "{}  {:<10} {:<16} {}",
        job["job_id"].as_str().unwrap_or("?"),
        job["state"].as_str().unwrap_or("?"),
        job["tag"].as_str().unwrap_or("-"),
        files.join(",")
    )
}

fn print_job(job: &Value) {
    println!("job      {}", job["job_id"].as_str().unwrap_or("?"));
    println!("state    {}", job["state"].as_str().unwrap_or("?"));
    if let Some(tag) = job["tag"].as_str() {
        println!("tag      {tag}");
    }
    for f in job["files"].as_array().into_iter().flatten() {
        println!(
            "file     {} ({} bytes, sha256 {})",
            f["name"].as_str().unwrap_or("?"),
            f["size"],
            f["sha256"].as_str().unwrap_or("?")
        );
    }
    for key in ["created_at", "started_at", "finished_at"] {
        if let Some(t) = job[key].as_str() {
            println!("{:<8} {t}", key.trim_end_matches("_at"));
        }
    }
    if let Some(p) = job["packets"].as_u64() {
        println!("packets  {p}");
    }
    for log in job["logs"].as_array().into_iter().flatten() {
        println!(
            "log      {} ({} lines, {} bytes)",
            log["name"].as_str().unwrap_or("?"),
            log["lines"],
            log["bytes"]
        );
    }
    if job["error"].is_object() {
        println!(
            "error    {}: {}",
            job["error"]["kind"].as_str().unwrap_or("?"),
            job["error"]["message"].as_str().unwrap_or("")
        );
    }
}

fn exit_for(job: &Value) -> i32 {
    match job["state"].as_str() {
        Some("done") => 0,
        Some("failed" | "timed_out" | "cancelled") => EXIT_JOB_NOT_DONE,
        state => {
            eprintln!(
                "pcapd: job {} is still {} (the wait timed out; wait again)",
                job["job_id"].as_str().unwrap_or("?"),
                state.unwrap_or("?")
            );
            EXIT_STILL_PENDING
        }
    }
}

/// Waits for a terminal state, showing progress on a terminal.
pub async fn wait_terminal(
    client: &mut Client,
    job_id: &str,
    limit: Option<Duration>,
    show: bool,
) -> Result<Value> {
    let start = std::time::Instant::now();
    loop {
        let step = limit.map_or(30.0, |l| {
            l.saturating_sub(start.elapsed())
                .as_secs_f64()
                .clamp(0.05, 30.0)
        });
        let job = client
            .call(
                "wait",
                json!({ "job_id": job_id, "timeout": if show { 1.0_f64.min(step) } else { step } }),
            )
            .await?;
        let terminal = matches!(
            job["state"].as_str(),
            Some("done" | "failed" | "timed_out" | "cancelled")
        );
        if show {
            let progress = match (
                job["progress"]["bytes"].as_u64(),
                job["progress"]["total"].as_u64(),
            ) {
                (Some(b), Some(t)) if t > 0 => format!(" {:>3}%", b * 100 / t),
                _ => String::new(),
            };
            eprint!(
                "\r\x1b[K{job_id} {}{progress}",
                job["state"].as_str().unwrap_or("?")
            );
            if terminal {
                eprintln!();
            }
        }
        if terminal || limit.is_some_and(|l| start.elapsed() >= l) {
            return Ok(job);
        }
    }
}

pub async fn submit(
    conn: &ConnArgs,
    tag: Option<&str>,
    wait: bool,
    ignore_checksums: bool,
    paths: bool,
    captures: &[PathBuf],
) -> Result<i32> {
    let mut client = connect(conn).await?;
    let mut options = Map::new();
    if ignore_checksums {
        options.insert("ignore_checksums".into(), json!(true));
    }
    let show = std::io::stderr().is_terminal() && !conn.json;
    let answer = if paths {
        let list: Vec<String> = captures
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let mut kwargs = json!({ "paths": list, "options": options });
        if let Some(tag) = tag {
            kwargs["tag"] = json!(tag);
        }
        client.call("submit", kwargs).await?
    } else {
        let mut progress = |sent: u64, total: u64| {
            if show && total > 0 {
                eprint!(
                    "\r\x1b[Kuploading {:>3}% ({sent} of {total} bytes)",
                    sent * 100 / total
                );
            }
        };
        let answer = client
            .submit_files(captures, tag, options, &mut progress)
            .await?;
        if show {
            eprintln!();
        }
        answer
    };
    let job_id = answer["job_id"]
        .as_str()
        .context("submit answer has no job_id")?
        .to_owned();
    if !wait {
        if conn.json {
            print_json(&answer);
        } else {
            println!("{job_id}");
        }
        return Ok(0);
    }
    let job = wait_terminal(&mut client, &job_id, None, show).await?;
    if conn.json {
        print_json(&job);
    } else {
        print_job(&job);
    }
    Ok(exit_for(&job))
}

/// `status` and `cancel`: one call with the job id, the job record printed.
async fn job_call(conn: &ConnArgs, func: &str, job_id: &str) -> Result<i32> {
    let job = connect(conn)
        .await?
        .call(func, json!({ "job_id": job_id }))
        .await?;
    if conn.json {
        print_json(&job)
    } else {
        print_job(&job)
    }
    Ok(0)
}

pub async fn status(conn: &ConnArgs, job_id: &str) -> Result<i32> {
    job_call(conn, "status", job_id).await
}

pub async fn wait(conn: &ConnArgs, job_id: &str, timeout: f64) -> Result<i32> {
    let mut client = connect(conn).await?;
    let limit = (timeout > 0.0).then(|| Duration::from_secs_f64(timeout));
    let show = std::io::stderr().is_terminal() && !conn.json;
    let job = wait_terminal(&mut client, job_id, limit, show).await?;
    if conn.json {
        print_json(&job)
    } else {
        print_job(&job)
    }
    Ok(exit_for(&job))
}

pub async fn list(
    conn: &ConnArgs,
    state: Option<&str>,
    tag: Option<&str>,
    limit: usize,
) -> Result<i32> {
    let answer = connect(conn)
        .await?
        .call(
            "list",
            json!({ "state": state, "tag": tag, "limit": limit }),
        )
        .await?;
    if conn.json {
        print_json(&answer);
    } else {
        for job in answer["jobs"].as_array().into_iter().flatten() {
            println!("{}", job_line(job));
        }
    }
    Ok(0)
}

pub async fn logs(conn: &ConnArgs, job_id: &str) -> Result<i32> {
    let answer = connect(conn)
        .await?
        .call("logs", json!({ "job_id": job_id }))
        .await?;
    if conn.json {
        print_json(&answer);
    } else {
        for log in answer["logs"].as_array().into_iter().flatten() {
            println!(
                "{:<16} {:>10} lines {:>12} bytes",
                log["name"].as_str().unwrap_or("?"),
                log["lines"],
                log["bytes"]
            );
        }
    }
    Ok(0)
}

/// Lists a job's extracted files; with `out`, downloads each under it.
pub async fn files(conn: &ConnArgs, job_id: &str, out: Option<&Path>) -> Result<i32> {
    let mut client = connect(conn).await?;
    let answer = client.call("files", json!({ "job_id": job_id })).await?;
    let files = answer["files"].as_array().cloned().unwrap_or_default();
    if let Some(dir) = out {
        for file in &files {
            let name = file["name"].as_str().unwrap_or_default();
            // The daemon's names are extract_files/ and plain components; checked again here.
            let safe = Path::new(name)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !safe {
                anyhow::bail!("the daemon listed a file name that leaves the directory: {name:?}");
            }
            let path = dir.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            let mut target = {
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o640)
                    .open(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?
            };
            fetch_into(&mut client, job_id, name, &mut target)
                .await
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    if conn.json {
        print_json(&answer);
    } else {
        for file in &files {
            println!(
                "{:>12} bytes  {}",
                file["bytes"],
                file["name"].as_str().unwrap_or("?")
            );
        }
    }
    Ok(0)
}

/// Streams a log to stdout in chunks.
pub async fn fetch(conn: &ConnArgs, job_id: &str, log: &str) -> Result<i32> {
    if conn.json {
        anyhow::bail!(
            "fetch writes the log itself, as the job wrote it; --json does not apply \
             (jobs write JSON logs with [Output] format = json)"
        );
    }
    let mut client = connect(conn).await?;
    let mut out = std::io::stdout().lock();
    fetch_into(&mut client, job_id, log, &mut out)
        .await
        .context("writing to stdout")?;
    out.flush()?;
    Ok(0)
}

/// Writes log (or extracted file) `name` of a job into `out`, chunk by chunk.
async fn fetch_into(
    client: &mut Client,
    job_id: &str,
    name: &str,
    out: &mut dyn Write,
) -> Result<()> {
    let mut offset = 0u64;
    loop {
        let chunk = client
            .call_raw(
                "fetch",
                json!({ "job_id": job_id, "log": name, "offset": offset }),
            )
            .await?;
        if chunk.is_empty() {
            return Ok(());
        }
        offset += chunk.len() as u64;
        out.write_all(&chunk)?;
    }
}

pub async fn cancel(conn: &ConnArgs, job_id: &str) -> Result<i32> {
    job_call(conn, "cancel", job_id).await
}

pub async fn cluster(conn: &ConnArgs) -> Result<i32> {
    let status = connect(conn).await?.call("cluster", json!({})).await?;
    if conn.json {
        print_json(&status);
        return Ok(0);
    }
    let queue = &status["queue"];
    let now = crate::output::syslog::now_secs();
    println!(
        "{:<24} {:>10} {:>5} {:>8} {:>8}",
        "host", "heartbeat", "pool", "running", "pending"
    );
    let mut nodes: Vec<(&String, &Value)> = queue["nodes"]
        .as_object()
        .map(|o| o.iter().collect())
        .unwrap_or_default();
    nodes.sort_by_key(|(name, _)| *name);
    for (name, info) in nodes {
        let age = info["at"]
            .as_f64()
            .map_or("-".to_string(), |at| format!("{:.0}s ago", now - at));
        println!(
            "{:<24} {:>10} {:>5} {:>8} {:>8}",
            name,
            age,
            info["pool"].as_u64().unwrap_or(0),
            info["running"].as_u64().unwrap_or(0),
            queue["pending"][name.as_str()].as_u64().unwrap_or(0)
        );
    }
    println!(
        "stream {} (group {}): {} entries, {} not yet read; this host is {}",
        status["stream"].as_str().unwrap_or("?"),
        status["group"].as_str().unwrap_or("?"),
        queue["length"],
        queue["waiting"],
        status["node"].as_str().unwrap_or("?")
    );
    let dead = queue["dead_lettered"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !dead.is_empty() {
        println!("dead-lettered ({}):", dead.len());
        for d in dead.iter().rev().take(10) {
            println!(
                "  {} {}",
                d["job_id"].as_str().unwrap_or("?"),
                d["reason"].as_str().unwrap_or("")
            );
        }
    }
    Ok(0)
}

pub async fn pool(conn: &ConnArgs) -> Result<i32> {
    let status = connect(conn).await?.call("pool", json!({})).await?;
    if conn.json {
        print_json(&status);
        return Ok(0);
    }
    println!(
        "{:<5} {:>8} {:<9} {:<38} {:>6} {:>8}",
        "slot", "pid", "state", "job", "done", "restarts"
    );
    for s in status["slots"].as_array().into_iter().flatten() {
        println!(
            "{:<5} {:>8} {:<9} {:<38} {:>6} {:>8}",
            // Numbers, not JSON values: a JSON value's Display ignores the column width.
            s["slot"].as_u64().unwrap_or(0),
            s["pid"].as_u64().map_or("-".into(), |p| p.to_string()),
            s["state"].as_str().unwrap_or("?"),
            s["job"].as_str().unwrap_or("-"),
            s["jobs_done"].as_u64().unwrap_or(0),
            s["restarts"].as_u64().unwrap_or(0)
        );
    }
    println!(
        "queue {} (max seen {}), accepted {}, rejected {}, timed out {}, crashed {}{}",
        status["queue_len"],
        status["max_queue_seen"],
        status["accepted"],
        status["rejected"],
        status["timed_out"],
        status["crashed"],
        if status["degraded"] == true {
            ", DEGRADED"
        } else {
            ""
        }
    );
    let disk = &status["disk"];
    if let (Some(free), Some(min_free)) = (disk["free"].as_u64(), disk["min_free"].as_u64()) {
        const MIB: f64 = (1 << 20) as f64;
        println!(
            "disk {:.0} MiB free (min_free {:.0} MiB){}",
            free as f64 / MIB,
            min_free as f64 / MIB,
            if disk["low"] == true {
                ": LOW, uploads refused and no job starts"
            } else {
                ""
            }
        );
    }
    let paused: Vec<&str> = status["dispatch_paused"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|reason| reason.as_str())
        .collect();
    if !paused.is_empty() {
        println!("dispatch paused: {}", paused.join(", "));
    }
    let queries = &status["queries"];
    if queries["received"].as_u64().unwrap_or(0) > 0 {
        println!(
            "burp queries {}: answered {}, warnings {}, failed {}, abandoned {}",
            queries["received"],
            queries["answered"],
            queries["warnings"],
            queries["failed"],
            queries["abandoned"]
        );
    }
    Ok(0)
}

pub async fn ping(conn: &ConnArgs) -> Result<i32> {
    let mut client = connect(conn).await?;
    let target = client.target();
    let answer = client.call("ping", json!({})).await?;
    if conn.json {
        print_json(&answer);
    } else {
        println!(
            "pcapd {} at {target}: up {:.0} s, backend {}",
            answer["version"].as_str().unwrap_or("?"),
            answer["uptime"].as_f64().unwrap_or(0.0),
            answer["backend"].as_str().unwrap_or("?")
        );
    }
    Ok(0)
}
