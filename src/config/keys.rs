//! Every configuration key in one table: its section, name, default as the sample shows it,
//! whether a reload (SIGHUP) applies it, and the lines that document it.
//!
//! Derived from this table: the set of keys the parser accepts (anything else is an error),
//! the sample configuration (`share/pcapd/etc/pcapd.sample.cfg` is [`sample`]'s output, which
//! a test holds byte for byte; `pcapd sample-config` prints it), and the keys a reload
//! reports as needing a restart ([`restart_only_changes`]). The typed value of each key is
//! read in `parse.rs`; a test there checks that every key here is read and no other.

use super::Config;
use Reload::{Live, Restart};

/// Whether a reload (SIGHUP) applies a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// Applied by a reload: read where it is used, or handed to the part that uses it.
    Live,
    /// Set up at start (a listener, the store, the worker command line): a changed value
    /// is reported and waits for the next start.
    Restart,
}

/// One key of a section.
#[derive(Debug)]
pub struct Key {
    pub name: &'static str,
    /// As the sample shows it; empty when the default is derived or there is none (for a
    /// detector's keys, the sample's example).
    pub default: &'static str,
    pub reload: Reload,
    /// The sample's explanation lines before the key (none when the key shares the lines of
    /// the key before it).
    pub doc: &'static [&'static str],
}

/// One section and its keys, in the sample's order.
#[derive(Debug)]
pub struct SectionDef {
    pub name: &'static str,
    /// The header as the sample shows it (`[Detector clamav]` for the detectors' sections,
    /// which any name may follow).
    pub header: &'static str,
    /// Turned on by its presence (`[Syslog]`, `[Http]`, `[Cluster]`): the sample shows its
    /// header commented out.
    pub optional: bool,
    pub doc: &'static [&'static str],
    pub keys: &'static [Key],
}

impl SectionDef {
    pub fn key(&self, name: &str) -> Option<&'static Key> {
        self.keys.iter().find(|key| key.name == name)
    }

    /// The key names, comma-separated (for "valid keys" messages).
    pub fn key_names(&self) -> String {
        let names: Vec<&str> = self.keys.iter().map(|key| key.name).collect();
        names.join(", ")
    }
}

/// The section named `name` (canonical spelling).
pub fn section(name: &str) -> Option<&'static SectionDef> {
    SECTIONS.iter().find(|section| section.name == name)
}

/// The sample configuration: the introduction, then every section and key with its default
/// commented out.
pub fn sample() -> String {
    let mut text = String::from(SAMPLE_INTRO);
    for section in SECTIONS {
        text.push('\n');
        for line in section.doc {
            push_doc(&mut text, line);
        }
        let comment = if section.optional { "#" } else { "" };
        text.push_str(&format!("{comment}[{}]\n", section.header));
        for key in section.keys {
            for line in key.doc {
                push_doc(&mut text, line);
            }
            match key.default {
                "" => text.push_str(&format!("#{} =\n", key.name)),
                default => text.push_str(&format!("#{} = {default}\n", key.name)),
            }
        }
    }
    text
}

fn push_doc(text: &mut String, line: &str) {
    match line {
        "" => text.push_str("##\n"),
        line => text.push_str(&format!("## {line}\n")),
    }
}

/// The keys a reload cannot apply whose value differs between the running configuration
/// and the new one, as `[Section] key`; a section turned on or off counts as its own change.
pub fn restart_only_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut changed = Vec::new();
    for section in SECTIONS {
        if section.header != section.name {
            // `[KIND NAME]` sections, any number: each added, removed or changed one counts.
            let old_named: Vec<_> = old.settings.named(section.name).collect();
            let new_named: Vec<_> = new.settings.named(section.name).collect();
            for (header, values) in &old_named {
                if new_named.iter().all(|(h, v)| h != header || v != values) {
                    changed.push(format!("[{header}]"));
                }
            }
            for (header, _) in &new_named {
                if old_named.iter().all(|(h, _)| h != header) {
                    changed.push(format!("[{header}]"));
                }
            }
            continue;
        }
        if section.optional
            && old.settings.has_section(section.name) != new.settings.has_section(section.name)
        {
            changed.push(format!("[{}]", section.name));
            continue;
        }
        for key in section.keys.iter().filter(|key| key.reload == Restart) {
            if old.settings.get(section.name, key.name) != new.settings.get(section.name, key.name)
            {
                changed.push(format!("[{}] {}", section.name, key.name));
            }
        }
    }
    changed
}

const SAMPLE_INTRO: &str = "## pcapd configuration file (sample)\n##\n## Copy it to /etc/pcapd/pcapd.cfg (or pass -c FILE), then uncomment and change what you need.\n## Lines starting with '##' explain; lines starting with a single '#' are settings shown with\n## their default value: remove the '#' to change one. A setting left empty ('key =') also\n## means \"the default\". Comments take whole lines only: a '#' or ';' after a value is part of\n## the value. Section and key names are case-insensitive. Unknown sections or keys are errors.\n##\n## Durations: seconds ('30'), or a number with ms, s, m, h or d ('250ms', '5m', '2h', '7d').\n## Sizes: bytes ('65536'), or a number with K, M, G or T, powers of 1024 ('512K', '4G', '1.5G';\n## 'KiB'/'KB' etc. mean the same).\n## Booleans: true/false, yes/no, on/off, 1/0.\n## Lists: names separated by commas and/or spaces.\n##\n## Check a file with: pcapd check-config -c /etc/pcapd/pcapd.cfg   (exit 0 = good, 64 = errors)\n## The [Global] keys port, bind, pool, ssl, sslcert, sslkey, password and the [Burp] section\n## mean what they mean in bui-monitor's buimonitor.cfg: a bui-monitor configuration works once\n## 'backend = burp' is added to [Global].\n";

/// Every section pcapd knows, in the sample's order; anything else in a file is an error.
pub const SECTIONS: &[SectionDef] = &[
    SectionDef {
        name: "Global",
        header: "Global",
        optional: false,
        doc: &[],
        keys: &[
            Key {
                name: "port",
                default: "11111",
                reload: Restart,
                doc: &[
                    "On which port is the application listening",
                ],
            },
            Key {
                name: "bind",
                default: "::1",
                reload: Restart,
                doc: &[
                    "On which address is the application listening (an IP address; '::' or '0.0.0.0' = all).",
                    "'::1' is the default for local IPv6;",
                    "set it to '127.0.0.1' if you want to listen on local IPv4 address",
                ],
            },
            Key {
                name: "pool",
                default: "",
                reload: Live,
                doc: &[
                    "Pool size: number of analyzer processes (for backend = burp: 'burp -a m' processes).",
                    "Empty = the number of CPUs. From 1 to 4096.",
                ],
            },
            Key {
                name: "ssl",
                default: "true",
                reload: Restart,
                doc: &[
                    "enable SSL (TLS). Needs sslcert and sslkey.",
                ],
            },
            Key {
                name: "sslcert",
                default: "",
                reload: Live,
                doc: &[
                    "ssl cert: PEM file with the certificate chain, e.g. /etc/pcapd/cert.pem (required when ssl = true)",
                ],
            },
            Key {
                name: "sslkey",
                default: "",
                reload: Live,
                doc: &[
                    "ssl key: PEM file with the private key, e.g. /etc/pcapd/key.pem (required when ssl = true)",
                ],
            },
            Key {
                name: "password",
                default: "",
                reload: Live,
                doc: &[
                    "The shared secret between the front ends and pcapd. Required: set password or",
                    "password_file, not both. Keep this file unreadable to others (chmod 0600) when set here.",
                ],
            },
            Key {
                name: "password_file",
                default: "",
                reload: Live,
                doc: &[
                    "A file whose first line is the password, e.g. /etc/pcapd/password (mode 0600).",
                    "Read again on SIGHUP, so the password can be rotated without a restart.",
                ],
            },
            Key {
                name: "backend",
                default: "builtin",
                reload: Restart,
                doc: &[
                    "The analyzer: builtin (Zeek-compatible logs, nothing to install), zeek, command, burp",
                ],
            },
            Key {
                name: "state_dir",
                default: "",
                reload: Restart,
                doc: &[
                    "Where pcapd keeps its state. Empty = /var/lib/pcapd when run as root, else",
                    "$XDG_STATE_HOME/pcapd or ~/.local/state/pcapd.",
                ],
            },
            Key {
                name: "jobs_dir",
                default: "",
                reload: Restart,
                doc: &[
                    "Where the job directories live. Empty = <state_dir>/jobs",
                ],
            },
            Key {
                name: "spool_dir",
                default: "",
                reload: Live,
                doc: &[
                    "The only directory under which 'submit' may name captures by path (no upload).",
                    "Empty = submissions by path are refused. Must exist.",
                ],
            },
            Key {
                name: "max_connections",
                default: "1024",
                reload: Restart,
                doc: &[
                    "Most client connections open at once; further clients wait to be accepted.",
                ],
            },
            Key {
                name: "max_queue",
                default: "1000",
                reload: Restart,
                doc: &[
                    "Most jobs waiting for a worker; a submission beyond it is answered 'queue_full'.",
                ],
            },
            Key {
                name: "max_request",
                default: "1M",
                reload: Restart,
                doc: &[
                    "Largest JSON request frame (at least 1K).",
                ],
            },
            Key {
                name: "max_chunk",
                default: "4M",
                reload: Restart,
                doc: &[
                    "Largest data frame of an upload (at least 1K).",
                ],
            },
            Key {
                name: "max_upload",
                default: "4G",
                reload: Live,
                doc: &[
                    "Largest capture file one submission may upload.",
                ],
            },
            Key {
                name: "handshake_timeout",
                default: "10s",
                reload: Restart,
                doc: &[
                    "Time a client has to complete the TLS handshake.",
                ],
            },
            Key {
                name: "login_timeout",
                default: "10s",
                reload: Restart,
                doc: &[
                    "Time a new connection has, from accept, to send a first request with the right password;",
                    "until it has, it is also among the at most max_connections/2 unauthenticated connections,",
                    "of which the oldest is closed to make room for a new one.",
                ],
            },
            Key {
                name: "request_timeout",
                default: "60s",
                reload: Restart,
                doc: &[
                    "Time to read one whole request frame once its first byte arrived.",
                ],
            },
            Key {
                name: "idle_timeout",
                default: "300s",
                reload: Restart,
                doc: &[
                    "Time a connection may sit idle between requests before it is closed.",
                ],
            },
            Key {
                name: "auth_delay",
                default: "1s",
                reload: Restart,
                doc: &[
                    "How late a wrong password is answered (slows down guessing). 0 = at once.",
                ],
            },
            Key {
                name: "min_free",
                default: "",
                reload: Live,
                doc: &[
                    "Free space to keep on the file system of jobs_dir: a size ('2G') or a share of",
                    "the file system ('5%'). Below it, uploads are refused at once (disk_full; HTTP",
                    "507) and no queued job starts, so running jobs keep room for their results;",
                    "both resume by themselves when space returns. Empty = 5% of the file system,",
                    "at most 1G.",
                ],
            },
            Key {
                name: "auth_exempt",
                default: "",
                reload: Live,
                doc: &[
                    "Sources (addresses and CIDR ranges, comma-separated) whose wrong passwords are answered",
                    "late but never hold back other checks from the same address; for front ends that share",
                    "an address, so one misconfigured after a password rotation cannot lock out the rest.",
                    "Guesses from these sources are not rate-limited per address. Default: none.",
                    "e.g. auth_exempt = 10.1.0.0/24, fd00:1::/64, 192.0.2.7",
                ],
            },
        ],
    },
    SectionDef {
        name: "Worker",
        header: "Worker",
        optional: false,
        doc: &[],
        keys: &[
            Key {
                name: "timeout",
                default: "600s",
                reload: Live,
                doc: &[
                    "Base deadline of one job; the job ends 'timed_out' when it runs longer.",
                ],
            },
            Key {
                name: "timeout_per_gb",
                default: "600s",
                reload: Live,
                doc: &[
                    "Extra deadline per GiB of captures in the job (big captures get more time). 0 = none.",
                ],
            },
            Key {
                name: "grace",
                default: "10s",
                reload: Live,
                doc: &[
                    "Time between SIGTERM and SIGKILL when a worker is stopped, and the shutdown drain time.",
                ],
            },
            Key {
                name: "retries",
                default: "0",
                reload: Live,
                doc: &[
                    "How many times a job is retried after its worker crashed. 0 = never.",
                ],
            },
            Key {
                name: "max_jobs",
                default: "0",
                reload: Live,
                doc: &[
                    "Replace a worker after this many jobs. 0 = never.",
                ],
            },
            Key {
                name: "recycle_memory",
                default: "0",
                reload: Live,
                doc: &[
                    "Replace a worker (between jobs) when its resident memory passes this size. 0 = never.",
                ],
            },
            Key {
                name: "memory_limit",
                default: "0",
                reload: Restart,
                doc: &[
                    "Address-space limit (RLIMIT_AS) of each worker and its analyzer. 0 = unlimited.",
                ],
            },
            Key {
                name: "env",
                default: "PATH, LANG, LC_ALL, TZ",
                reload: Restart,
                doc: &[
                    "Environment variables passed to workers; all others are removed.",
                ],
            },
            Key {
                name: "user",
                default: "",
                reload: Restart,
                doc: &[
                    "User and group the workers run as when pcapd runs as root (names or numeric ids).",
                    "Empty = pcapd's own.",
                ],
            },
            Key {
                name: "group",
                default: "",
                reload: Restart,
                doc: &[],
            },
            Key {
                name: "max_restarts",
                default: "5",
                reload: Live,
                doc: &[
                    "More than max_restarts worker starts within restart_window put that pool slot in backoff.",
                ],
            },
            Key {
                name: "restart_window",
                default: "60s",
                reload: Live,
                doc: &[],
            },
            Key {
                name: "max_line",
                default: "64K",
                reload: Restart,
                doc: &[
                    "Longest line a worker may write (at least 1K).",
                ],
            },
            Key {
                name: "start_timeout",
                default: "30s",
                reload: Live,
                doc: &[
                    "Time a new worker has to report ready.",
                ],
            },
            Key {
                name: "backoff_max",
                default: "60s",
                reload: Live,
                doc: &[
                    "Longest wait between two restarts of a failing worker.",
                ],
            },
        ],
    },
    SectionDef {
        name: "Burp",
        header: "Burp",
        optional: false,
        doc: &["burp backend specific options (backend = burp), as in bui-monitor"],
        keys: &[
            Key {
                name: "burpbin",
                default: "/usr/sbin/burp",
                reload: Restart,
                doc: &[
                    "burp binary",
                ],
            },
            Key {
                name: "bconfcli",
                default: "/etc/burp/burp.conf",
                reload: Restart,
                doc: &[
                    "burp client configuration file used for the restoration",
                ],
            },
            Key {
                name: "timeout",
                default: "15",
                reload: Restart,
                doc: &[
                    "how many time to wait for the monitor to answer (in seconds); a child that does not",
                    "answer a query in time is killed and replaced, and the query answered KO",
                ],
            },
        ],
    },
    SectionDef {
        name: "Zeek",
        header: "Zeek",
        optional: false,
        doc: &["zeek backend specific options (backend = zeek)"],
        keys: &[
            Key {
                name: "zeekbin",
                default: "zeek",
                reload: Restart,
                doc: &[
                    "The zeek binary (a bare name is looked up on PATH)",
                ],
            },
            Key {
                name: "scripts",
                default: "",
                reload: Restart,
                doc: &[
                    "Scripts or packages loaded after the traces, e.g. 'local frameworks/files/hash-all-files'",
                ],
            },
            Key {
                name: "args",
                default: "",
                reload: Restart,
                doc: &[
                    "Extra command-line arguments for zeek, separated by spaces",
                ],
            },
        ],
    },
    SectionDef {
        name: "Command",
        header: "Command",
        optional: false,
        doc: &["command backend specific options (backend = command)"],
        keys: &[
            Key {
                name: "command",
                default: "",
                reload: Restart,
                doc: &[
                    "A command line run with 'sh -c' once per job. {pcaps} becomes the job's capture paths",
                    "(quoted, separated by spaces) and {out} its log directory. Required for backend = command,",
                    "e.g. command = tshark -r {pcaps} -w {out}/out.pcapng",
                ],
            },
        ],
    },
    SectionDef {
        name: "Output",
        header: "Output",
        optional: false,
        doc: &[],
        keys: &[
            Key {
                name: "format",
                default: "tsv",
                reload: Restart,
                doc: &[
                    "Format of the builtin analyzer's logs: tsv (Zeek's TSV with header lines) or json",
                ],
            },
            Key {
                name: "export_dir",
                default: "",
                reload: Restart,
                doc: &[
                    "Where the logs of a done job are copied or moved to, as <export_dir>/<tag or job id>/<job id>/,",
                    "complete or not at all (assembled in <export_dir>/.pcapd-staging/, then renamed). Empty = no export.",
                ],
            },
            Key {
                name: "export_mode",
                default: "copy",
                reload: Restart,
                doc: &[
                    "copy or move",
                ],
            },
            Key {
                name: "export_files",
                default: "false",
                reload: Restart,
                doc: &[
                    "Export the job's extracted files (logs/extract_files/, docs/files.md) with its logs",
                ],
            },
        ],
    },
    SectionDef {
        name: "Syslog",
        header: "Syslog",
        optional: true,
        doc: &[
            "Forward every log line to a syslog server: uncomment the section header (its presence turns",
            "forwarding on) and set host.",
        ],
        keys: &[
            Key {
                name: "host",
                default: "",
                reload: Restart,
                doc: &[
                    "The syslog server (required)",
                ],
            },
            Key {
                name: "port",
                default: "",
                reload: Restart,
                doc: &[
                    "Empty = 514 for udp and tcp, 6514 for tls",
                ],
            },
            Key {
                name: "proto",
                default: "udp",
                reload: Restart,
                doc: &[
                    "udp, tcp or tls",
                ],
            },
            Key {
                name: "format",
                default: "rfc5424",
                reload: Restart,
                doc: &[
                    "rfc5424 or rfc3164 (the layout Brocapi used)",
                ],
            },
            Key {
                name: "framing",
                default: "",
                reload: Restart,
                doc: &[
                    "For tcp and tls: non-transparent (one message per line) or octet-counting (RFC 6587).",
                    "Empty = non-transparent for tcp, octet-counting for tls (RFC 5425).",
                ],
            },
            Key {
                name: "prefix",
                default: "pcapd_{log}",
                reload: Restart,
                doc: &[
                    "Syslog program name (APP-NAME); {log} (or Brocapi's %s) becomes the log name (http, dns...)",
                ],
            },
            Key {
                name: "exclude",
                default: "capture_loss, stats, loaded_scripts, packet_filter, reporter",
                reload: Restart,
                doc: &[
                    "Logs not forwarded (Brocapi's log_blacklist; names with or without .log)",
                ],
            },
            Key {
                name: "ca",
                default: "",
                reload: Restart,
                doc: &[
                    "PEM file of the CA that signed the server's certificate (required for proto = tls)",
                ],
            },
            Key {
                name: "facility",
                default: "daemon",
                reload: Restart,
                doc: &[
                    "Facility and severity of every line: daemon.notice is PRI 29, as Brocapi",
                ],
            },
            Key {
                name: "severity",
                default: "notice",
                reload: Restart,
                doc: &[],
            },
            Key {
                name: "hostname",
                default: "",
                reload: Restart,
                doc: &[
                    "HOSTNAME of jobs without a tag (a tagged job's lines carry its tag). Empty = this host's name",
                ],
            },
            Key {
                name: "timestamp",
                default: "send",
                reload: Restart,
                doc: &[
                    "The time each line carries: send (when it is sent) or log (the row's own ts)",
                ],
            },
        ],
    },
    SectionDef {
        name: "Http",
        header: "Http",
        optional: true,
        doc: &[
            "The HTTP gateway (Brocapi's POST /submit/pcap, and GET /jobs, /jobs/ID, /jobs/ID/logs,",
            "/jobs/ID/logs/NAME, /pool, /healthz, DELETE /jobs/ID; see docs/integrations.md):",
            "uncomment the section header to turn it on.",
        ],
        keys: &[
            Key {
                name: "port",
                default: "8080",
                reload: Restart,
                doc: &[],
            },
            Key {
                name: "bind",
                default: "",
                reload: Restart,
                doc: &[
                    "Empty = [Global] bind",
                ],
            },
            Key {
                name: "ssl",
                default: "",
                reload: Restart,
                doc: &[
                    "Empty = [Global] ssl (the gateway uses [Global] sslcert and sslkey)",
                ],
            },
            Key {
                name: "metrics_auth",
                default: "true",
                reload: Restart,
                doc: &[
                    "GET /metrics (Prometheus) needs the password like the other routes; false lets a",
                    "scraper on a trusted network in without it",
                ],
            },
        ],
    },
    SectionDef {
        name: "Metrics",
        header: "Metrics",
        optional: true,
        doc: &[
            "Prometheus metrics (GET /metrics, docs/operations.md) on a port of their own, plain HTTP",
            "without a password: for a daemon without [Http], or to keep scrapers off the gateway.",
            "Uncomment the section header to turn it on; bind it where only the scraper reaches.",
        ],
        keys: &[
            Key {
                name: "port",
                default: "9550",
                reload: Restart,
                doc: &[],
            },
            Key {
                name: "bind",
                default: "127.0.0.1",
                reload: Restart,
                doc: &[],
            },
        ],
    },
    SectionDef {
        name: "Cluster",
        header: "Cluster",
        optional: true,
        doc: &[
            "Several hosts sharing one job queue on Redis Streams (docs/cluster.md): uncomment the",
            "section header to turn it on. jobs_dir must then be a file system every host mounts.",
        ],
        keys: &[
            Key {
                name: "redis",
                default: "",
                reload: Restart,
                doc: &[
                    "redis://HOST:PORT/DB, or rediss:// for TLS (required)",
                ],
            },
            Key {
                name: "password_file",
                default: "",
                reload: Restart,
                doc: &[
                    "File whose first line is the Redis password (added to the URL)",
                ],
            },
            Key {
                name: "stream",
                default: "pcapd:jobs",
                reload: Restart,
                doc: &[
                    "The stream of job entries and the consumer group every host reads with",
                ],
            },
            Key {
                name: "group",
                default: "pcapd",
                reload: Restart,
                doc: &[],
            },
            Key {
                name: "node",
                default: "",
                reload: Restart,
                doc: &[
                    "This host's name in the group. Empty = the host name",
                ],
            },
            Key {
                name: "claim_after",
                default: "30s",
                reload: Restart,
                doc: &[
                    "A job whose owner sent no heartbeat this long is taken over by a live host",
                ],
            },
            Key {
                name: "heartbeat",
                default: "5s",
                reload: Restart,
                doc: &[
                    "How often a host heartbeats its running jobs (at most half of claim_after)",
                ],
            },
            Key {
                name: "max_deliveries",
                default: "3",
                reload: Restart,
                doc: &[
                    "Deliveries (runs whose host died or whose worker crashed) before a job fails, dead-lettered",
                ],
            },
        ],
    },
    SectionDef {
        name: "Jobs",
        header: "Jobs",
        optional: false,
        doc: &[],
        keys: &[
            Key {
                name: "keep",
                default: "7d",
                reload: Live,
                doc: &[
                    "How long finished jobs are kept. 0 = forever.",
                ],
            },
            Key {
                name: "max_disk",
                default: "0",
                reload: Live,
                doc: &[
                    "Most bytes jobs_dir may hold; the oldest finished jobs are removed beyond it. 0 = no cap.",
                ],
            },
            Key {
                name: "dedupe",
                default: "false",
                reload: Live,
                doc: &[
                    "A resubmission of identical captures with the same options returns the existing job.",
                ],
            },
        ],
    },
    SectionDef {
        name: "Analyzer",
        header: "Analyzer",
        optional: false,
        doc: &[],
        keys: &[
            Key {
                name: "community_id",
                default: "true",
                reload: Restart,
                doc: &[
                    "The builtin analyzer's conn.log ends with community_id, the Community ID v1 flow hash that",
                    "Suricata, Zeek and Arkime also write (docs/analyzer.md). false = no such column.",
                ],
            },
            Key {
                name: "community_id_seed",
                default: "0",
                reload: Restart,
                doc: &[
                    "The Community ID seed, 0-65535: tools whose IDs are joined must use the same one.",
                ],
            },
        ],
    },
    SectionDef {
        name: "Extract",
        header: "Extract",
        optional: false,
        doc: &[],
        keys: &[
            Key {
                name: "mime",
                default: "",
                reload: Restart,
                doc: &[
                    "Which files carried by the traffic the builtin analyzer writes under the job's",
                    "logs/extract_files/ (docs/files.md). MIME type globs, comma-separated: application/pdf,",
                    "application/*, * (every file, also those without a type). Empty = none.",
                ],
            },
            Key {
                name: "sources",
                default: "HTTP, SMTP, FTP",
                reload: Restart,
                doc: &[
                    "The protocols files are taken from: HTTP, SMTP, FTP. Empty = all.",
                ],
            },
            Key {
                name: "max_file",
                default: "100M",
                reload: Restart,
                doc: &[
                    "Bytes written per file (Zeek's extract limit); the rest is cut, extracted_cutoff = T.",
                ],
            },
            Key {
                name: "max_total",
                default: "1G",
                reload: Restart,
                doc: &[
                    "Bytes written per job; files past it are cut the same way.",
                ],
            },
            Key {
                name: "layout",
                default: "flat",
                reload: Restart,
                doc: &[
                    "flat (extract_files/extract-<ts>-<source>-<fuid>) or mime (extract_files/<type>/<subtype>/...)",
                ],
            },
            Key {
                name: "hashes",
                default: "md5, sha1, sha256",
                reload: Restart,
                doc: &[
                    "The digests files.log gets for every file (extracted or not): md5, sha1, sha256, or none.",
                    "MD5 costs the most; sha256 alone keeps the analyzer fastest.",
                ],
            },
        ],
    },
    SectionDef {
        name: "Detect",
        header: "Detect",
        optional: false,
        doc: &[],
        keys: &[
            Key {
                name: "timeout",
                default: "60s",
                reload: Restart,
                doc: &[
                    "Detectors run on each extracted file after the analysis, in the job's worker slot: at most",
                    "this long per file and detector (then killed, verdict timeout).",
                ],
            },
            Key {
                name: "max_output",
                default: "64K",
                reload: Restart,
                doc: &[
                    "Bytes of a detector's output kept for detect.log; the rest is read and dropped.",
                ],
            },
        ],
    },
    SectionDef {
        name: "Detector",
        header: "Detector clamav",
        optional: true,
        doc: &[
            "One [Detector NAME] section per detector (any NAME). Its command runs with /bin/sh on each",
            "extracted file of the MIME types it names; {file}, {mime} and {fuid} are replaced",
            "(shell-quoted) and given as PCAPD_FILE, PCAPD_MIME and PCAPD_FUID in its environment.",
        ],
        keys: &[
            Key {
                name: "mime",
                default: "application/x-dosexec, application/pdf",
                reload: Restart,
                doc: &[
                    "MIME type globs; * = every extracted file",
                ],
            },
            Key {
                name: "command",
                default: "clamscan --no-summary -d /etc/pcapd/sigs {file}",
                reload: Restart,
                doc: &[],
            },
            Key {
                name: "hit_exit",
                default: "1",
                reload: Restart,
                doc: &[
                    "This exit status means \"found\"; 0 = clean; any other = error",
                ],
            },
            Key {
                name: "hit_output",
                default: "false",
                reload: Restart,
                doc: &[
                    "Any output (with exit 0) means \"found\"",
                ],
            },
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_sample_is_the_tables() {
        let shipped = include_str!("../../share/pcapd/etc/pcapd.sample.cfg");
        assert_eq!(
            shipped,
            sample(),
            "share/pcapd/etc/pcapd.sample.cfg differs from the key table: \
             regenerate it with `pcapd sample-config > share/pcapd/etc/pcapd.sample.cfg`"
        );
    }

    fn config(text: &str) -> Config {
        super::super::parse::parse_config(text, std::path::Path::new("t.cfg"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    const BASE: &str = "[Global]\npassword = pw\nssl = false\nport = 1200\n";

    #[test]
    fn a_reload_reports_the_restart_keys_that_changed_and_only_those() {
        let old = config(BASE);
        let same = config(BASE);
        assert!(restart_only_changes(&old, &same).is_empty());
        let new = config(&format!(
            "{BASE}pool = 3\nbind = 127.0.0.1\n[Worker]\ntimeout = 5s\nmemory_limit = 1G\n"
        ));
        assert_eq!(
            restart_only_changes(&old, &new),
            ["[Global] bind", "[Worker] memory_limit"]
        );
    }

    #[test]
    fn turning_a_section_on_is_a_change() {
        let old = config(BASE);
        let new = config(&format!("{BASE}[Http]\n"));
        assert_eq!(restart_only_changes(&old, &new), ["[Http]"]);
        assert_eq!(restart_only_changes(&new, &old), ["[Http]"]);
    }

    #[test]
    fn names_are_unique_and_lowercase() {
        let mut sections = std::collections::BTreeSet::new();
        for section in SECTIONS {
            assert!(sections.insert(section.name), "[{}] twice", section.name);
            let mut keys = std::collections::BTreeSet::new();
            for key in section.keys {
                assert_eq!(key.name, key.name.to_lowercase());
                assert!(
                    keys.insert(key.name),
                    "[{}] {} twice",
                    section.name,
                    key.name
                );
            }
        }
    }
}
