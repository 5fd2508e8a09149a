//! Configuration: the INI file (`docs/configuration.md`) turned into a typed [`Config`].
//!
//! Two phases, as ripgrep does it: `parse.rs` turns the INI text into a raw section/key map
//! (the `configparser` crate does the syntax), then every key is checked and converted into the
//! typed structs below. Errors are collected, not stopped at the first, and each names file,
//! section, key and value and says what would be valid. bui-monitor's `[Global]` and `[Burp]`
//! keys keep their meaning and defaults. `embedded.rs` holds the defaults used when there is no
//! file at all and creates the credentials they need; `check.rs` holds the non-fatal findings
//! and `pcapd check-config`; `values.rs` the parsers for booleans, durations, sizes and lists.

// ConfigError carries the whole location (file, section, key, value, what is valid), which is
// the point of it; it is built a handful of times per load, so its size costs nothing.
#![allow(clippy::result_large_err)]

mod check;
mod embedded;
pub mod keys;
mod live;
mod parse;
#[cfg(test)]
mod test_support;
mod values;

pub use crate::addr_range::AddrRange;
pub use check::{check_config, check_files};
pub use embedded::{default_state_dir, ensure_embedded_credentials, EmbeddedCredentials};
pub use embedded::{EMBEDDED_CERT_FILE, EMBEDDED_KEY_FILE, EMBEDDED_PASSWORD_FILE};
pub use live::LiveConfig;

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

/// Which analyzer a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Builtin,
    Zeek,
    Command,
    Burp,
}

impl BackendKind {
    /// The name as the config file spells it.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Builtin => "builtin",
            BackendKind::Zeek => "zeek",
            BackendKind::Command => "command",
            BackendKind::Burp => "burp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Tsv,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportMode {
    Copy,
    Move,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogProto {
    Udp,
    Tcp,
    Tls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogFormat {
    Rfc5424,
    Rfc3164,
}

/// `[Syslog] timestamp`: which time a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogTimestamp {
    /// When the line is sent.
    Send,
    /// The row's own `ts` (falls back to the send time for rows without one).
    Log,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogFraming {
    /// One message per line (TCP/TLS).
    NonTransparent,
    /// RFC 6587 octet counting (TCP/TLS).
    OctetCounting,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from; `None` for embedded defaults.
    pub source: Option<PathBuf>,
    pub global: GlobalConfig,
    pub worker: WorkerConfig,
    pub burp: BurpConfig,
    pub zeek: ZeekConfig,
    pub command: CommandConfig,
    pub output: OutputConfig,
    pub syslog: Option<SyslogConfig>,
    pub http: Option<HttpConfig>,
    /// `[Metrics]`, present = a metrics port of its own.
    pub metrics: Option<MetricsConfig>,
    pub cluster: Option<ClusterConfig>,
    pub jobs: JobsConfig,
    pub extract: ExtractConfig,
    pub detect: DetectConfig,
    pub analyzer: AnalyzerConfig,
    /// The keys as the file wrote them, for the reload diff ([`keys::restart_only_changes`]).
    pub(crate) settings: Settings,
}

/// The values a file wrote, by canonical section name and key (empty values left out: they
/// mean the default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    /// By the section's header as written in canonical case (`Global`, `Detector clamav`).
    sections: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

impl Settings {
    pub(crate) fn add_section(&mut self, section: &str) {
        self.sections.entry(section.to_owned()).or_default();
    }

    pub(crate) fn set(&mut self, section: &str, key: &str, value: &str) {
        if !value.is_empty() {
            self.sections
                .entry(section.to_owned())
                .or_default()
                .insert(key.to_owned(), value.to_owned());
        }
    }

    pub fn has_section(&self, section: &str) -> bool {
        self.sections.contains_key(section)
    }

    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections.get(section)?.get(key).map(String::as_str)
    }

    /// The headers of the sections `[KIND NAME]` (the detectors'), with their values.
    pub fn named(
        &self,
        kind: &str,
    ) -> impl Iterator<Item = (&str, &std::collections::BTreeMap<String, String>)> {
        let prefix = format!("{kind} ");
        self.sections
            .iter()
            .filter(move |(header, _)| header.starts_with(&prefix))
            .map(|(header, values)| (header.as_str(), values))
    }
}

/// `[Global]`: bui-monitor's keys plus pcapd's listener and storage keys.
#[derive(Debug, Clone)]
pub struct GlobalConfig {
    /// `port`, default 11111.
    pub port: u16,
    /// `bind`, default `::1`.
    pub bind: IpAddr,
    /// `pool`, default: number of CPUs; 1 to 4096.
    pub pool: usize,
    /// `ssl`, default true.
    pub ssl: bool,
    /// `sslcert` / `sslkey`: PEM files. With embedded defaults, generated in `state_dir`.
    pub sslcert: Option<PathBuf>,
    pub sslkey: Option<PathBuf>,
    /// `password` (inline) or `password_file` (first line): exactly one must be set; never logged.
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// `backend`, default builtin.
    pub backend: BackendKind,
    /// `state_dir`, default [`default_state_dir`]: `/var/lib/pcapd` as root, else a per-user
    /// directory (the same for files and embedded defaults).
    pub state_dir: PathBuf,
    /// `jobs_dir`, default `<state_dir>/jobs`.
    pub jobs_dir: PathBuf,
    /// `spool_dir`: the only place `paths` submissions may name; unset = `paths` refused.
    pub spool_dir: Option<PathBuf>,
    /// `max_connections`, default 1024.
    pub max_connections: usize,
    /// `max_queue`, default 1000.
    pub max_queue: usize,
    /// `max_request` bytes for a JSON request frame, default 1 MiB.
    pub max_request: u64,
    /// `max_chunk` bytes for one upload data frame, default 4 MiB.
    pub max_chunk: u64,
    /// `max_upload` bytes for one capture file, default 4 GiB.
    pub max_upload: u64,
    /// `handshake_timeout`, default 10 s.
    pub handshake_timeout: Duration,
    /// `login_timeout`: time from accept to a first request with the right password,
    /// default 10 s.
    pub login_timeout: Duration,
    /// `request_timeout`: time to read one whole frame once it started, default 60 s.
    pub request_timeout: Duration,
    /// `idle_timeout`: time a connection may sit between requests, default 300 s.
    pub idle_timeout: Duration,
    /// `auth_delay`: how late a wrong password is answered, default 1 s.
    pub auth_delay: Duration,
    /// `auth_exempt`: sources whose wrong passwords never hold back other checks from the
    /// same address (they are still answered late), default none.
    pub auth_exempt: Vec<AddrRange>,
    /// `min_free`: free space `jobs_dir`'s file system keeps, default 5% of it and at most
    /// 1 GiB: below it uploads are
    /// refused (`disk_full`) and no job starts.
    pub min_free: MinFree,
}

/// Free space to keep: bytes, or a share of the file system's size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinFree {
    /// The default: 5% of the file system, at most 1 GiB (small disks, like a tmpfs, keep
    /// their share; big ones do not hold back tens of gigabytes).
    Default,
    Bytes(u64),
    /// Percent of the file system's size, 0 to 100.
    Percent(f64),
}

impl MinFree {
    /// The bytes to keep on a file system of `total` bytes.
    pub fn bytes_of(self, total: u64) -> u64 {
        match self {
            MinFree::Default => (total / 20).min(1 << 30),
            MinFree::Bytes(bytes) => bytes,
            MinFree::Percent(percent) => (total as f64 * percent / 100.0) as u64,
        }
    }
}

/// `[Worker]`: the pool children.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `timeout`: base per-job deadline, default 600 s.
    pub timeout: Duration,
    /// `timeout_per_gb`: extra deadline per GiB of input, default 600 s.
    pub timeout_per_gb: Duration,
    /// `grace`: between SIGTERM and SIGKILL of a child group, and the SIGTERM drain, default 10 s.
    pub grace: Duration,
    /// `retries` after a crash, default 0.
    pub retries: u32,
    /// `max_jobs` before a child is recycled, default 0 (never).
    pub max_jobs: u64,
    /// `recycle_memory` RSS bytes before a child is recycled, default 0 (never).
    pub recycle_memory: u64,
    /// `memory_limit` bytes as RLIMIT_AS, default 0 (unlimited).
    pub memory_limit: u64,
    /// `env`: names of environment variables passed to children (all others dropped),
    /// default `PATH LANG LC_ALL TZ`.
    pub env: Vec<String>,
    /// `user` / `group` to run children as when pcapd runs as root.
    pub user: Option<String>,
    pub group: Option<String>,
    /// `max_restarts` within `restart_window` before a slot backs off, default 5 in 60 s.
    pub max_restarts: u32,
    pub restart_window: Duration,
    /// `max_line`: longest line accepted from a child, default 64 KiB.
    pub max_line: usize,
    /// `start_timeout`: time a new child has to say ready, default 30 s.
    pub start_timeout: Duration,
    /// `backoff_max`: cap of the restart backoff, default 60 s.
    pub backoff_max: Duration,
}

/// `[Burp]`, as bui-monitor.
#[derive(Debug, Clone)]
pub struct BurpConfig {
    /// `burpbin`, default `/usr/sbin/burp`.
    pub burpbin: PathBuf,
    /// `bconfcli`, default `/etc/burp/burp.conf`.
    pub bconfcli: PathBuf,
    /// `timeout`, default 15 s.
    pub timeout: Duration,
}

/// `[Zeek]`.
#[derive(Debug, Clone)]
pub struct ZeekConfig {
    /// `zeekbin`, default `zeek` (looked up on PATH at start).
    pub zeekbin: PathBuf,
    /// `scripts`: extra scripts/packages loaded after the trace, space separated.
    pub scripts: Vec<String>,
    /// `args`: extra arguments, space separated.
    pub args: Vec<String>,
}

/// `[Command]`.
#[derive(Debug, Clone, Default)]
pub struct CommandConfig {
    /// `command`: run with `sh -c`; `{pcaps}` and `{out}` substituted. Required for
    /// backend=command; must contain `{pcaps}` whenever set.
    pub command: Option<String>,
}

/// `[Output]`.
#[derive(Debug, Clone)]
pub struct OutputConfig {
    /// `format`, default tsv.
    pub format: LogFormat,
    /// `export_dir`: where finished logs are copied/moved to, unset = no export.
    pub export_dir: Option<PathBuf>,
    /// `export_mode`, default copy.
    pub export_mode: ExportMode,
    /// `export_files`: export the job's `extract_files/` with its logs, default false.
    pub export_files: bool,
}

/// `[Syslog]`, present = forwarding on.
#[derive(Debug, Clone)]
pub struct SyslogConfig {
    /// `host`, required.
    pub host: String,
    /// `port`, default 514 (udp/tcp) or 6514 (tls).
    pub port: u16,
    /// `proto`, default udp.
    pub proto: SyslogProto,
    /// `format`, default rfc5424.
    pub format: SyslogFormat,
    /// `framing` (tcp/tls only), default non-transparent for tcp, octet-counting for tls.
    pub framing: SyslogFraming,
    /// `prefix`: program name, `{log}` replaced by the log name, default `pcapd_{log}`.
    pub prefix: String,
    /// `exclude`: log names (without `.log`; a written `.log` is stripped) not forwarded,
    /// default `capture_loss stats loaded_scripts packet_filter reporter`.
    pub exclude: Vec<String>,
    /// `ca`: trust anchor for `proto = tls`, required (and checked readable) then.
    pub ca: Option<PathBuf>,
    /// `facility`, default daemon (3).
    pub facility: u8,
    /// `severity`, default notice (5): PRI 29 with the default facility, as Brocapi.
    pub severity: u8,
    /// `hostname`: the HOSTNAME of untagged jobs' lines, default this host's name.
    pub hostname: Option<String>,
    /// `timestamp`, default send.
    pub timestamp: SyslogTimestamp,
}

/// `[Http]`, present = gateway on.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `port`, default 8080; must differ from `[Global] port` on an overlapping address.
    pub port: u16,
    /// `bind`, default `[Global] bind`.
    pub bind: IpAddr,
    /// `ssl`, default `[Global] ssl`; uses `[Global] sslcert`/`sslkey`.
    pub ssl: bool,
    /// `metrics_auth`, default true: `GET /metrics` needs the password like the other routes.
    pub metrics_auth: bool,
}

/// `[Metrics]`, present = Prometheus metrics on a port of their own (plain HTTP, no
/// password: bind it where only the scraper reaches).
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// `port`, default 9550.
    pub port: u16,
    /// `bind`, default 127.0.0.1.
    pub bind: IpAddr,
}

/// `[Cluster]`, present = this host shares one job queue (Redis Streams) with others.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `redis`: `redis://` or `rediss://` URL, required.
    pub redis: String,
    /// `password_file`: Redis password (first line), added to the URL.
    pub password_file: Option<PathBuf>,
    /// `stream`, default `pcapd:jobs`.
    pub stream: String,
    /// `group`, default `pcapd`.
    pub group: String,
    /// `node`: this host's name in the group, default the host name.
    pub node: Option<String>,
    /// `claim_after`, default 30 s.
    pub claim_after: Duration,
    /// `heartbeat`, default 5 s; at most half of `claim_after`.
    pub heartbeat: Duration,
    /// `max_deliveries`, default 3.
    pub max_deliveries: u32,
}

/// `[Jobs]`.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// `keep`: how long finished jobs are kept, default 7 days; zero = forever.
    pub keep: Duration,
    /// `max_disk`: bytes `jobs_dir` may hold before oldest finished jobs go, default 0 (no cap).
    pub max_disk: u64,
    /// `dedupe`: identical captures + options return the existing job, default false.
    pub dedupe: bool,
}

/// The sections `pcapd analyze --config` reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnalysisSections {
    pub extract: ExtractConfig,
    pub detect: DetectConfig,
    pub analyzer: AnalyzerConfig,
}

/// `[Extract]`: which files carried by the traffic are written under a job's
/// `extract_files/` (docs/files.md). The default (`mime` empty) extracts nothing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExtractConfig {
    /// `mime`: MIME type globs (`*` any run of characters, `*` alone = every file, also
    /// those without a type); empty = no extraction.
    pub mime: Vec<String>,
    /// `sources`: the files.log sources extracted from (`HTTP`, `SMTP`, `FTP`), default all.
    pub sources: Vec<String>,
    /// `max_file`: bytes written per file (Zeek's `FileExtract::default_limit`); the rest is
    /// cut and the file flagged `extracted_cutoff`.
    pub max_file: u64,
    /// `max_total`: bytes written per job; files past it are cut the same way.
    pub max_total: u64,
    /// `layout`: flat, or by MIME type (`extract_files/<type>/<subtype>/…`, BroAPT's store).
    pub layout: ExtractLayout,
    /// `hashes`: the digests files.log gets for every file (`md5`, `sha1`, `sha256`; `none`).
    #[serde(default = "all_hashes")]
    pub hashes: Vec<String>,
}

/// `[Analyzer]`: options of the builtin analyzer's logs (docs/analyzer.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AnalyzerConfig {
    /// `community_id`: conn.log ends with the Community ID v1 of each connection (as Zeek's
    /// `policy/protocols/conn/community-id-logging` adds it), default true.
    pub community_id: bool,
    /// `community_id_seed`: the Community ID seed, 0-65535, default 0 (Zeek's
    /// `CommunityID::seed`).
    pub community_id_seed: u16,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig {
            community_id: true,
            community_id_seed: 0,
        }
    }
}

impl AnalyzerConfig {
    /// The seed of conn.log's `community_id`, or `None` when the column is off.
    pub fn community_id(&self) -> Option<u16> {
        self.community_id.then_some(self.community_id_seed)
    }
}

/// The digests `[Extract] hashes` accepts, and its default (Zeek's `hash-all-files`).
pub const FILE_HASHES: &[&str] = &["md5", "sha1", "sha256"];

fn all_hashes() -> Vec<String> {
    FILE_HASHES.iter().map(|h| h.to_string()).collect()
}

/// `[Extract] layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExtractLayout {
    Flat,
    Mime,
}

/// `[Detect]` and the `[Detector NAME]` sections: commands run on each extracted file of
/// the MIME types they name, after the analysis, in the job's worker slot (docs/files.md).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DetectConfig {
    /// `[Detect] timeout`: per file and detector, default 60s.
    pub timeout: Duration,
    /// `[Detect] max_output`: bytes of a detector's output kept, default 64K; the rest is read
    /// and dropped.
    pub max_output: u64,
    pub detectors: Vec<DetectorConfig>,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            timeout: Duration::from_secs(60),
            max_output: 64 << 10,
            detectors: Vec::new(),
        }
    }
}

/// One `[Detector NAME]` section.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DetectorConfig {
    pub name: String,
    /// `mime`: globs of the types it runs on, default `*`.
    pub mime: Vec<String>,
    /// `command`: run by `/bin/sh -c` with `{file}`, `{mime}`, `{fuid}` replaced
    /// (shell-quoted).
    pub command: String,
    /// `hit_exit`: the exit status that means "found"; 0 means clean, any other an error.
    pub hit_exit: Option<i32>,
    /// `hit_output`: any output (with exit 0) means "found".
    pub hit_output: bool,
}

/// The placeholders a detector's command may use.
pub const DETECTOR_PLACEHOLDERS: &[&str] = &["file", "mime", "fuid"];

/// The sources `[Extract] sources` accepts.
pub const EXTRACT_SOURCES: &[&str] = &["HTTP", "SMTP", "FTP"];

impl Default for ExtractConfig {
    fn default() -> Self {
        ExtractConfig {
            mime: Vec::new(),
            sources: EXTRACT_SOURCES.iter().map(|s| s.to_string()).collect(),
            max_file: 100 << 20,
            max_total: 1 << 30,
            layout: ExtractLayout::Flat,
            hashes: all_hashes(),
        }
    }
}

impl ExtractConfig {
    /// `[Extract]` from command-line values (`pcapd analyze --extract …`), checked as the
    /// config file's keys are; `None` keeps a key's default. The error names the flag.
    pub fn from_flags(
        base: ExtractConfig,
        mime: Option<&str>,
        sources: Option<&str>,
        max_file: Option<&str>,
        max_total: Option<&str>,
        layout: Option<&str>,
        hashes: Option<&str>,
    ) -> Result<ExtractConfig, String> {
        let mut config = base;
        let problem = |flag: &str, value: &str, p: values::ValueProblem| {
            format!("--{flag} {value}: {} (valid: {})", p.problem, p.valid)
        };
        if let Some(v) = mime {
            config.mime = parse::parse_mime_globs(v).map_err(|p| problem("extract", v, p))?;
        }
        if let Some(v) = sources {
            config.sources =
                parse::parse_extract_sources(v).map_err(|p| problem("extract-sources", v, p))?;
        }
        for (flag, value, slot) in [
            ("extract-max-file", max_file, &mut config.max_file),
            ("extract-max-total", max_total, &mut config.max_total),
        ] {
            if let Some(v) = value {
                *slot = values::parse_size(v)
                    .and_then(|n| {
                        if n == 0 {
                            Err(values::ValueProblem::new("too small", "at least 1 byte"))
                        } else {
                            Ok(n)
                        }
                    })
                    .map_err(|p| problem(flag, v, p))?;
            }
        }
        if let Some(v) = hashes {
            config.hashes = parse::parse_hashes(v).map_err(|p| problem("hashes", v, p))?;
        }
        if let Some(v) = layout {
            config.layout = values::parse_choice(
                v,
                &[("flat", ExtractLayout::Flat), ("mime", ExtractLayout::Mime)],
            )
            .map_err(|p| problem("extract-layout", v, p))?;
        }
        Ok(config)
    }

    /// Whether any file can be extracted at all.
    pub fn enabled(&self) -> bool {
        !self.mime.is_empty() && !self.sources.is_empty()
    }
}

/// Where `pcapd serve` and the client commands look for a config file when `-c` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/pcapd/pcapd.cfg";

/// One problem found in a config file: where it is and what would be valid.
///
/// Displayed as `FILE: [Section] key = value: problem (valid: ...)`; the parts that do not
/// apply are left out. The value of `password` is never shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    /// The config file, or the file the problem is about (e.g. a `password_file`).
    pub file: PathBuf,
    /// The section as the operator knows it (`Global`, `Worker`, ...), or as written when unknown.
    pub section: Option<String>,
    pub key: Option<String>,
    /// The value as written; `password` values are replaced before they get here.
    pub value: Option<String>,
    pub problem: String,
    /// What would be accepted instead, when that can be said in a few words.
    pub valid: Option<String>,
}

impl ConfigError {
    /// The one-line message: `FILE: [Section] key = value: problem (valid: ...)`.
    fn render(&self) -> String {
        let mut line = self.file.display().to_string();
        if self.section.is_some() || self.key.is_some() {
            line.push(':');
        }
        if let Some(section) = &self.section {
            line.push_str(&format!(" [{section}]"));
        }
        if let Some(key) = &self.key {
            line.push_str(&format!(" {key}"));
            match self.value.as_deref() {
                Some("") => line.push_str(" = \"\""),
                Some(value) => line.push_str(&format!(" = {value}")),
                None => {}
            }
        }
        line.push_str(&format!(": {}", self.problem));
        if let Some(valid) = &self.valid {
            line.push_str(&format!(" (valid: {valid})"));
        }
        line
    }

    /// A problem with a whole file (unreadable, not INI), not with one key.
    pub fn file_problem(file: &Path, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            section: None,
            key: None,
            value: None,
            problem: problem.into(),
            valid: None,
        }
    }
}

/// Every problem found in one config file, in file order of sections and key order within.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Whether either front door speaks TLS.
    pub fn uses_tls(&self) -> bool {
        self.global.ssl || self.http.as_ref().is_some_and(|h| h.ssl)
    }

    /// The certificate and key files, when either front door speaks TLS (a valid config then
    /// has both; the one place that decides).
    pub fn tls_files(&self) -> Option<(&Path, &Path)> {
        match (self.uses_tls(), &self.global.sslcert, &self.global.sslkey) {
            (true, Some(cert), Some(key)) => Some((cert, key)),
            _ => None,
        }
    }

    /// Reads and validates a file. All problems are collected.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let bytes = std::fs::read(path).map_err(|error| {
            ConfigErrors(vec![ConfigError::file_problem(
                path,
                format!("cannot read the config file: {error}"),
            )])
        })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            ConfigErrors(vec![ConfigError::file_problem(
                path,
                "the config file is not UTF-8 text",
            )])
        })?;
        Config::parse(&text, path)
    }

    /// Only the analysis sections of a config file (`[Extract]`, `[Detect]`, `[Detector NAME]`,
    /// `[Analyzer]`), for `pcapd analyze --config`: other known sections are not read, so a
    /// file without the daemon's credentials will do.
    pub fn load_files_sections(path: &Path) -> Result<AnalysisSections, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            ConfigErrors(vec![ConfigError::file_problem(
                path,
                format!("cannot read the config file: {error}"),
            )])
        })?;
        parse::parse_files_sections(&text, path)
    }

    /// Same as [`Config::load`], from text (`path` is used in messages and for the
    /// world-readable check of an inline `password`).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        parse::parse_config(text, path)
    }

    /// Embedded defaults: loopback (127.0.0.1, port 11111), ssl on, builtin backend,
    /// pool = CPUs, `state_dir` as given, `jobs_dir` = `state_dir/jobs`, and
    /// sslcert/sslkey/password_file inside `state_dir` (see [`ensure_embedded_credentials`],
    /// which creates them).
    pub fn embedded(state_dir: PathBuf) -> Config {
        embedded::embedded_config(state_dir)
    }

    /// Non-fatal findings, e.g. a password in a world-readable file, ssl = false with a
    /// non-loopback bind.
    pub fn warnings(&self) -> Vec<String> {
        check::warnings(self)
    }

    /// The password: the `password` key, or the first line of `password_file` (read on every
    /// call, so a SIGHUP reload sees a rotated file). The error names the file.
    pub fn password(&self) -> Result<String, ConfigError> {
        parse::read_password(self)
    }
}
