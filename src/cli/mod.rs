//! The command line: clap definitions and dispatch to the daemon, the client commands, the
//! analyzer and the worker.
//!
//! `main` stays thin: it parses [`Cli`], calls [`run`], and maps the result to an exit code.

pub mod client_cmds;
pub mod demo;
pub mod manual;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const ABOUT: &str =
    "Runs PCAP analysis jobs on a fixed pool of analyzer processes for many front ends.";

const LONG_ABOUT: &str = "\
pcapd keeps a fixed pool of long-lived analyzer processes and runs PCAP jobs on them for many
front ends at once (upload APIs, celery workers, this CLI, Burp-UI). Front ends connect over
TLS, authenticate with a shared password, upload capture files and fetch the job's state and
its Zeek-format logs. However many front ends connect, the number of analyzer processes stays
what the operator configured.

The daemon reads one INI file (-c FILE, else /etc/pcapd/pcapd.cfg if it exists). With no file
at all it runs on embedded defaults: loopback only, the builtin analyzer, and a state
directory (/var/lib/pcapd as root, else ~/.local/state/pcapd) holding the jobs, a generated
self-signed certificate and a generated password. Client commands read the same settings, so
on one machine `pcapd serve` in one terminal and `pcapd submit FILE` in another just work.";

const AFTER_HELP: &str = "\
EXAMPLES:
    pcapd demo                                  daemon + sample jobs on embedded defaults
    pcapd serve -c /etc/pcapd/pcapd.cfg         run the daemon (foreground)
    pcapd check-config -c /etc/pcapd/pcapd.cfg  validate a config file
    pcapd submit --tag sensor1 --wait a.pcap    upload, wait, print the job
    pcapd fetch JOB_ID conn.log | zeek-cut id.orig_h id.resp_h service
    pcapd analyze -o out/ trace.pcap            the builtin analyzer, no daemon
    pcapd --log-format json serve               log lines as JSON objects, for shippers
    pcapd completions bash > /etc/bash_completion.d/pcapd

EXIT STATUS:
    0   success
    1   runtime error (daemon unreachable, job not found, I/O error, ...)
    2   command-line usage error
    3   the waited-for job ended failed, timed_out or cancelled
    64  invalid configuration (check-config, serve)
    78  (worker) cannot start: a restart would not help

SIGNALS (serve):
    SIGTERM, SIGINT  stop accepting, let running jobs finish within [Worker] grace,
                     requeue the rest on disk, exit 0
    SIGHUP           reload password, TLS certificate, pool size and timeouts

ENVIRONMENT:
    PCAPD_HOST, PCAPD_PORT, PCAPD_PASSWORD, PCAPD_CA   override client connection settings
    RUST_LOG                                           log filter (default: info)

METRICS:
    Prometheus metrics at GET /metrics on the HTTP gateway ([Http]), or on a port of their
    own ([Metrics] port, loopback by default); see docs/operations.md.

See pcapd.cfg(5) for the configuration keys, and docs/ in the source tree (installed under
/usr/share/doc/pcapd): protocol.md, configuration.md, operations.md, analyzer.md.";

#[derive(Debug, Parser)]
#[command(name = "pcapd", version, about = ABOUT, long_about = LONG_ABOUT, after_long_help = AFTER_HELP)]
pub struct Cli {
    /// pcapd's own log lines on stderr: text, or json (one JSON object per line, for log
    /// shippers).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground (systemd runs it so).
    Serve {
        /// Config file (default /etc/pcapd/pcapd.cfg if present, else embedded defaults).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Validate a config file: print every problem, exit 0 or 64.
    CheckConfig {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print the sample configuration: every section and key, documented, with its default.
    SampleConfig,
    /// Create a self-signed certificate (cert.pem, key.pem; localhost, 127.0.0.1, ::1) and a
    /// random password (password) in DIR, mode 0700, unless they are there; print their paths.
    /// For a config's sslcert, sslkey and password_file (the Debian package runs it).
    InitCredentials {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Write the man pages (pcapd.1, pcapd-SUBCOMMAND.1, pcapd.cfg.5) into DIR.
    Manpages {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print the completion script for a shell (bash, zsh, fish).
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Tour on embedded defaults: start a daemon, submit the sample captures, print a summary.
    Demo {
        /// State directory for the demo daemon (default: a fresh temporary directory).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Captures to submit instead of the bundled samples.
        #[arg(value_name = "CAPTURE")]
        captures: Vec<PathBuf>,
    },
    /// Upload captures as one job.
    Submit {
        #[command(flatten)]
        conn: ConnArgs,
        /// Tag for the job (printable ASCII, no spaces, at most 64 characters).
        #[arg(long)]
        tag: Option<String>,
        /// Wait for the job to finish (progress on a terminal), exit 3 unless it ends done.
        #[arg(long)]
        wait: bool,
        /// Ignore IP/TCP/UDP checksums (like zeek -C).
        #[arg(short = 'C', long)]
        ignore_checksums: bool,
        /// Submit paths under the daemon's spool_dir instead of uploading them.
        #[arg(long)]
        paths: bool,
        /// Capture files (pcap or pcapng); together they are one job, merged in time order.
        #[arg(required = true, value_name = "CAPTURE")]
        captures: Vec<PathBuf>,
    },
    /// Show a job.
    Status {
        #[command(flatten)]
        conn: ConnArgs,
        job_id: String,
    },
    /// Wait for a job to finish; exit 3 if it ends other than done, 75 if --timeout ran out.
    Wait {
        #[command(flatten)]
        conn: ConnArgs,
        /// Give up after this many seconds, fractions allowed (0 = wait forever).
        #[arg(long, default_value_t = 0.0, value_parser = non_negative_seconds)]
        timeout: f64,
        job_id: String,
    },
    /// List jobs, newest first.
    List {
        #[command(flatten)]
        conn: ConnArgs,
        /// Only jobs in this state (queued, running, done, failed, timed_out, cancelled).
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        tag: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// List the logs a job produced.
    Logs {
        #[command(flatten)]
        conn: ConnArgs,
        job_id: String,
    },
    /// List the files a job extracted (docs/files.md); with --out, download them all.
    Files {
        #[command(flatten)]
        conn: ConnArgs,
        job_id: String,
        /// Write every file under DIR (names as listed: extract_files/…), mode 0640.
        #[arg(short, long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Write one log (or extracted file: extract_files/…) of a job to stdout.
    Fetch {
        #[command(flatten)]
        conn: ConnArgs,
        job_id: String,
        /// Log name, e.g. conn.log.
        log: String,
    },
    /// Cancel a queued or running job.
    Cancel {
        #[command(flatten)]
        conn: ConnArgs,
        job_id: String,
    },
    /// Show the worker pool: every slot and the counters.
    Pool {
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// With [Cluster]: the hosts sharing the job queue (last heartbeat, pool, running jobs),
    /// the queue's length, what each host holds pending, and dead-lettered jobs.
    Cluster {
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Check the daemon answers; print its version and uptime.
    Ping {
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Run the builtin analyzer on captures, no daemon: Zeek-format logs into DIR.
    Analyze {
        /// Output directory (created if missing).
        #[arg(short, long, value_name = "DIR")]
        out: PathBuf,
        /// Ignore checksums, as zeek -C.
        #[arg(short = 'C', long)]
        ignore_checksums: bool,
        /// Write JSON lines instead of Zeek TSV.
        #[arg(long)]
        json_logs: bool,
        /// Only these logs, comma-separated (e.g. conn or conn,dns).
        #[arg(long, value_delimiter = ',', value_name = "LIST")]
        logs: Option<Vec<String>>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        extract: ExtractArgs,
        /// Capture files (pcap or pcapng), read as one capture in time order.
        #[arg(required = true, value_name = "CAPTURE")]
        captures: Vec<PathBuf>,
    },
    /// The pool child (started by `serve`; speaks JSON lines on stdin/stdout).
    #[command(hide = true)]
    Worker {
        /// Worker settings as JSON (written by the daemon).
        #[arg(long)]
        settings: String,
    },
}

/// How a client command reaches the daemon.
#[derive(Debug, Args, Clone)]
pub struct ConnArgs {
    /// Config file to read host, port, password and certificate from.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Daemon address (default: from the config's bind).
    #[arg(long, env = "PCAPD_HOST")]
    pub host: Option<String>,
    /// Daemon port (default: from the config, 11111).
    #[arg(long, env = "PCAPD_PORT")]
    pub port: Option<u16>,
    /// Password (default: from the config or its password_file). A flag is visible to other
    /// local users in `ps`; prefer the config or PCAPD_PASSWORD.
    #[arg(long, env = "PCAPD_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Certificate to trust (default: the daemon's sslcert from the config).
    #[arg(long, env = "PCAPD_CA", value_name = "PEM")]
    pub ca: Option<PathBuf>,
    /// Name the certificate must be valid for (default: the host).
    #[arg(long)]
    pub server_name: Option<String>,
    /// Print answers as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `analyze --logs`: names the analyzer writes (`conn` or `conn.log`), anything else refused.
fn only_logs(names: Vec<String>) -> Result<std::collections::BTreeSet<String>, String> {
    let known = crate::analyzer::log_names();
    names
        .into_iter()
        .map(|name| {
            let stem = name.trim_end_matches(".log");
            if known.contains(&stem) {
                Ok(stem.to_owned())
            } else {
                Err(format!(
                    "--logs {name:?}: no such log (valid: {})",
                    known.join(", ")
                ))
            }
        })
        .collect()
}

/// `--timeout`: seconds, fractions allowed, not negative.
fn non_negative_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => Ok(seconds),
        _ => Err(format!(
            "{text:?} is not a number of seconds (e.g. 30 or 1.5)"
        )),
    }
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    init_tracing(
        matches!(cli.command, Command::Worker { .. } | Command::Demo { .. }),
        cli.log_format,
    );
    match cli.command {
        Command::Worker { settings } => {
            match crate::backend::WorkerSettings::from_json(&settings) {
                Ok(settings) => crate::worker::run(settings),
                Err(e) => {
                    eprintln!("pcapd worker: invalid --settings: {e}");
                    crate::exit::EXIT_CANNOT_START
                }
            }
        }
        Command::CheckConfig { config } => {
            crate::config::check_config(&config, &mut std::io::stdout(), &mut std::io::stderr())
        }
        Command::SampleConfig => {
            print!("{}", crate::config::keys::sample());
            crate::exit::EXIT_OK
        }
        Command::InitCredentials { dir } => {
            match crate::config::ensure_embedded_credentials(&dir) {
                Ok(made) => {
                    println!("sslcert = {}", made.cert.display());
                    println!("sslkey = {}", made.key.display());
                    println!("password_file = {}", made.password_file.display());
                    crate::exit::EXIT_OK
                }
                Err(e) => {
                    eprintln!("pcapd init-credentials: {e}");
                    crate::exit::EXIT_FAILURE
                }
            }
        }
        Command::Manpages { dir } => match manual::write_man_pages(&dir) {
            Ok(pages) => {
                for page in pages {
                    println!("{}", page.display());
                }
                crate::exit::EXIT_OK
            }
            Err(e) => {
                eprintln!("pcapd manpages: cannot write into {}: {e}", dir.display());
                crate::exit::EXIT_FAILURE
            }
        },
        Command::Completions { shell } => {
            manual::write_completions(shell, &mut std::io::stdout());
            crate::exit::EXIT_OK
        }
        Command::Analyze {
            out,
            ignore_checksums,
            json_logs,
            logs,
            json,
            extract,
            captures,
        } => analyze(
            &out,
            ignore_checksums,
            json_logs,
            logs,
            json,
            &extract,
            &captures,
        ),
        command => {
            // One thread: the daemon's work is I/O and bookkeeping (the analyzers are its
            // children, blocking store work runs on tokio's blocking pool). A multi-thread
            // scheduler spent about a third more CPU per request, parking and waking threads
            // (bench/burp.sh), and bought nothing the children do not already get.
            //
            // Blocking work (the store's reads, writes and fsyncs) runs on a pool bounded at
            // BLOCKING_THREADS: tokio's default (512, one thread per concurrent call) grew the
            // daemon by a thread, its stack and its malloc arena per concurrent client under
            // load (4 -> 55 threads and 2 -> 16 MiB of anonymous memory in the memory soak),
            // and more threads buy nothing on a disk that fsyncs one at a time.
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .max_blocking_threads(BLOCKING_THREADS)
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("pcapd: cannot start the async runtime: {e}");
                    return 1;
                }
            };
            runtime.block_on(run_async(command))
        }
    }
}

/// Threads for blocking work (store I/O) at most; see where the runtime is built.
const BLOCKING_THREADS: usize = 8;

/// Whether a client command was asked for JSON (its errors are JSON on stdout too).
fn wants_json(command: &Command) -> bool {
    match command {
        Command::Submit { conn, .. }
        | Command::Status { conn, .. }
        | Command::Wait { conn, .. }
        | Command::List { conn, .. }
        | Command::Logs { conn, .. }
        | Command::Files { conn, .. }
        | Command::Fetch { conn, .. }
        | Command::Cancel { conn, .. }
        | Command::Pool { conn }
        | Command::Cluster { conn }
        | Command::Ping { conn } => conn.json,
        _ => false,
    }
}

async fn run_async(command: Command) -> i32 {
    let json = wants_json(&command);
    let result: anyhow::Result<i32> = match command {
        Command::Serve { config } => match crate::daemon::serve_main(config).await {
            Ok(code) => Ok(code),
            Err(e) => {
                eprintln!("pcapd: {e}");
                return e.exit_code();
            }
        },
        Command::Demo {
            state_dir,
            captures,
        } => demo::run(state_dir, captures).await,
        Command::Submit {
            conn,
            tag,
            wait,
            ignore_checksums,
            paths,
            captures,
        } => {
            client_cmds::submit(
                &conn,
                tag.as_deref(),
                wait,
                ignore_checksums,
                paths,
                &captures,
            )
            .await
        }
        Command::Status { conn, job_id } => client_cmds::status(&conn, &job_id).await,
        Command::Wait {
            conn,
            timeout,
            job_id,
        } => client_cmds::wait(&conn, &job_id, timeout).await,
        Command::List {
            conn,
            state,
            tag,
            limit,
        } => client_cmds::list(&conn, state.as_deref(), tag.as_deref(), limit).await,
        Command::Logs { conn, job_id } => client_cmds::logs(&conn, &job_id).await,
        Command::Files { conn, job_id, out } => {
            client_cmds::files(&conn, &job_id, out.as_deref()).await
        }
        Command::Fetch { conn, job_id, log } => client_cmds::fetch(&conn, &job_id, &log).await,
        Command::Cancel { conn, job_id } => client_cmds::cancel(&conn, &job_id).await,
        Command::Pool { conn } => client_cmds::pool(&conn).await,
        Command::Cluster { conn } => client_cmds::cluster(&conn).await,
        Command::Ping { conn } => client_cmds::ping(&conn).await,
        Command::Worker { .. }
        | Command::CheckConfig { .. }
        | Command::SampleConfig
        | Command::InitCredentials { .. }
        | Command::Manpages { .. }
        | Command::Completions { .. }
        | Command::Analyze { .. } => {
            unreachable!("handled synchronously")
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pcapd: {e:#}");
            if json {
                let code = e
                    .downcast_ref::<crate::client::ClientError>()
                    .and_then(|c| c.code())
                    .unwrap_or("client_error");
                println!(
                    "{}",
                    serde_json::json!({ "error": code, "message": format!("{e:#}") })
                );
            }
            crate::exit::EXIT_FAILURE
        }
    }
}

/// `pcapd analyze`'s `[Extract]` flags (docs/files.md); without `--extract` nothing is
/// extracted.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ExtractArgs {
    /// Take [Extract], [Detect], [Detector NAME] and [Analyzer] from this pcapd config file (other
    /// sections are not read); the --extract flags override its [Extract] keys. Detectors run
    /// on the extracted files after the analysis and write DIR/detect.log.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Write the files of these MIME types (globs, comma-separated; * = all) under
    /// DIR/extract_files/.
    #[arg(long, value_name = "GLOBS")]
    extract: Option<String>,
    /// Sources to extract from: HTTP, SMTP, FTP (default all).
    #[arg(long, value_name = "LIST")]
    extract_sources: Option<String>,
    /// Bytes written per file, e.g. 10M (default 100M); the rest is cut off.
    #[arg(long, value_name = "SIZE")]
    extract_max_file: Option<String>,
    /// Bytes written per run (default 1G).
    #[arg(long, value_name = "SIZE")]
    extract_max_total: Option<String>,
    /// flat or mime (extract_files/<type>/<subtype>/…).
    #[arg(long, value_name = "LAYOUT")]
    extract_layout: Option<String>,
    /// Digests files.log gets: md5, sha1, sha256 (comma-separated; default all) or none.
    #[arg(long, value_name = "LIST")]
    hashes: Option<String>,
}

fn analyze(
    out: &std::path::Path,
    ignore_checksums: bool,
    json_logs: bool,
    logs: Option<Vec<String>>,
    json: bool,
    extract: &ExtractArgs,
    captures: &[PathBuf],
) -> i32 {
    use crate::analyzer::{analyze, AnalyzeOptions};
    use crate::config::{AnalysisSections, Config, ExtractConfig, LogFormat};
    let sections = match &extract.config {
        Some(path) => match Config::load_files_sections(path) {
            Ok(sections) => sections,
            Err(e) => {
                eprintln!("pcapd analyze: {e}");
                return crate::exit::EXIT_CONFIG;
            }
        },
        None => AnalysisSections::default(),
    };
    let AnalysisSections {
        extract: base,
        detect,
        analyzer,
    } = sections;
    let format = if json_logs {
        LogFormat::Json
    } else {
        LogFormat::Tsv
    };
    let extract = match ExtractConfig::from_flags(
        base,
        extract.extract.as_deref(),
        extract.extract_sources.as_deref(),
        extract.extract_max_file.as_deref(),
        extract.extract_max_total.as_deref(),
        extract.extract_layout.as_deref(),
        extract.hashes.as_deref(),
    ) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("pcapd analyze: {e}");
            return crate::exit::EXIT_CONFIG;
        }
    };
    if let Err(e) = std::fs::create_dir_all(out) {
        eprintln!("pcapd analyze: cannot create {}: {e}", out.display());
        return 1;
    }
    let opts = AnalyzeOptions {
        ignore_checksums,
        format,
        only_logs: match logs.map(only_logs).transpose() {
            Ok(only) => only,
            Err(e) => {
                eprintln!("pcapd analyze: {e}");
                return crate::exit::EXIT_CONFIG;
            }
        },
        extract,
        community_id: analyzer.community_id(),
    };
    match analyze(captures, out, &opts, &mut |_, _| {}) {
        Ok(mut summary) => {
            let mut detected = None;
            if !detect.detectors.is_empty() {
                match crate::detect::run_detectors(out, format, &detect) {
                    Ok(d) => {
                        summary.logs.extend(d.logs.iter().cloned());
                        detected = Some(d);
                    }
                    Err(e) => summary.warnings.push(format!("detectors did not run: {e}")),
                }
            }
            if json {
                let mut value = serde_json::to_value(&summary).unwrap_or_default();
                if let Some(d) = &detected {
                    value["detect"] = serde_json::json!({
                        "files": d.files, "runs": d.runs, "hits": d.hits,
                        "errors": d.errors, "timeouts": d.timeouts,
                    });
                }
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                );
            } else {
                println!(
                    "{} packets, {} bytes, {} connections; logs: {}",
                    summary.packets,
                    summary.bytes,
                    summary.connections,
                    summary.logs.join(" ")
                );
                if summary.files_extracted > 0 {
                    println!(
                        "{} files extracted ({} cut off)",
                        summary.files_extracted, summary.files_cutoff
                    );
                }
                if let Some(d) = &detected {
                    println!(
                        "detectors: {} runs, {} hits, {} errors, {} timeouts",
                        d.runs, d.hits, d.errors, d.timeouts
                    );
                }
                for w in &summary.warnings {
                    eprintln!("warning: {w}");
                }
            }
            crate::exit::EXIT_OK
        }
        Err(e) => {
            eprintln!("pcapd analyze: {e}");
            if e.kind() == "bad_input" {
                crate::exit::EXIT_BAD_INPUT
            } else {
                crate::exit::EXIT_FAILURE
            }
        }
    }
}

/// Logs go to stderr; `RUST_LOG` filters (default `info`). Workers log at `warn` unless told
/// otherwise, because their stderr is copied into the daemon's log; so does the demo, whose
/// output is its summary. `json`: one object per line (`timestamp`, `level`, `fields` with
/// `message`, the span list), tracing's JSON formatter.
fn init_tracing(quiet: bool, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let default = if quiet { "warn" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        // Colours for a terminal only: a journal or a log file gets plain text.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}
