//! The defaults compiled into pcapd, and the credentials the no-config-file mode generates.
//!
//! [`file_defaults`] is what every key means when a config file leaves it out; the parser
//! starts from it. [`embedded_config`] is the configuration `pcapd serve` runs on with no file
//! at all: loopback only, TLS with a self-signed certificate and a random password, both kept
//! in the state directory so the local CLI finds them. [`ensure_embedded_credentials`] creates
//! those files once, atomically, under an exclusive lock so a daemon and a client starting at
//! the same moment cannot end up with a certificate that does not match its key.

use std::fs::{self, OpenOptions};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use super::{
    AnalyzerConfig, BackendKind, BurpConfig, CommandConfig, Config, ConfigError, DetectConfig,
    ExportMode, ExtractConfig, GlobalConfig, JobsConfig, LogFormat, MinFree, OutputConfig,
    WorkerConfig, ZeekConfig,
};

/// The certificate file inside the state directory (embedded defaults).
pub const EMBEDDED_CERT_FILE: &str = "cert.pem";
/// The private key file inside the state directory (embedded defaults), mode 0600.
pub const EMBEDDED_KEY_FILE: &str = "key.pem";
/// The password file inside the state directory (embedded defaults), mode 0600.
pub const EMBEDDED_PASSWORD_FILE: &str = "password";
/// Held with `flock` while credentials are checked or created.
const CREDENTIALS_LOCK_FILE: &str = ".credentials.lock";

/// bui-monitor's port.
pub(crate) const DEFAULT_PORT: u16 = 11111;
/// `[Http] port` when the section leaves it out.
pub(crate) const DEFAULT_HTTP_PORT: u16 = 8080;
/// `[Metrics] port` when the section leaves it out.
pub(crate) const DEFAULT_METRICS_PORT: u16 = 9550;
/// `[Syslog] port` for udp and tcp (RFC 5426, RFC 6587).
pub(crate) const SYSLOG_PORT: u16 = 514;
/// `[Syslog] port` for tls (RFC 5425).
pub(crate) const SYSLOG_TLS_PORT: u16 = 6514;
/// `[Syslog] prefix`: Brocapi's `bro25_%s` with pcapd's name.
pub(crate) const DEFAULT_SYSLOG_PREFIX: &str = "pcapd_{log}";
/// `[Syslog] exclude`: Brocapi's `log_blacklist`, logs that describe the run, not the traffic.
pub(crate) const DEFAULT_SYSLOG_EXCLUDE: &[&str] = &[
    "capture_loss",
    "stats",
    "loaded_scripts",
    "packet_filter",
    "reporter",
];
/// `[Cluster] stream`: the Redis stream of job entries.
pub(crate) const DEFAULT_CLUSTER_STREAM: &str = "pcapd:jobs";
/// `[Cluster] group`: the consumer group every host reads with.
pub(crate) const DEFAULT_CLUSTER_GROUP: &str = "pcapd";
/// `[Cluster] claim_after`: a job without its owner's heartbeat this long is taken over.
pub(crate) const DEFAULT_CLAIM_AFTER: Duration = Duration::from_secs(30);
/// `[Cluster] heartbeat`.
pub(crate) const DEFAULT_CLUSTER_HEARTBEAT: Duration = Duration::from_secs(5);
/// `[Cluster] max_deliveries`: runs of a job whose host died before it is dead-lettered.
pub(crate) const DEFAULT_MAX_DELIVERIES: u32 = 3;
/// `[Syslog] facility`: daemon, as Brocapi.
pub(crate) const DEFAULT_SYSLOG_FACILITY: u8 = 3;
/// `[Syslog] severity`: notice, as Brocapi (PRI 29).
pub(crate) const DEFAULT_SYSLOG_SEVERITY: u8 = 5;
/// `[Worker] env`: enough for `sh -c` and for tools to find their locale and time zone.
pub(crate) const DEFAULT_WORKER_ENV: &[&str] = &["PATH", "LANG", "LC_ALL", "TZ"];
/// Length of the generated password, in characters of the URL-safe base64 alphabet.
const GENERATED_PASSWORD_CHARS: usize = 32;

/// The files [`ensure_embedded_credentials`] made or found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedCredentials {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub password_file: PathBuf,
}

/// Default state dir: systemd's `$STATE_DIRECTORY` (the unit's `StateDirectory=`; the first
/// of a colon-separated list) when set, else `/var/lib/pcapd` when root, else
/// `$XDG_STATE_HOME/pcapd` or `~/.local/state/pcapd` (the XDG base directory rules: a
/// relative `XDG_STATE_HOME` is ignored).
pub fn default_state_dir() -> PathBuf {
    if let Some(dirs) = std::env::var_os("STATE_DIRECTORY") {
        let first = PathBuf::from(dirs.to_string_lossy().split(':').next().unwrap_or(""));
        if first.is_absolute() {
            return first;
        }
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/pcapd");
    }
    if let Some(state_home) = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from) {
        if state_home.is_absolute() {
            return state_home.join("pcapd");
        }
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|home| home.is_absolute())
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|user| user.dir)
        });
    match home {
        Some(home) => home.join(".local/state/pcapd"),
        // No home at all (a bare service account): a private directory per user.
        None => std::env::temp_dir().join(format!("pcapd-{}", nix::unistd::getuid())),
    }
}

/// The number of CPUs, the default `pool`; 1 if the system will not say.
pub(crate) fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// What every key means when the config file leaves it out (the documented defaults).
/// `[Syslog]` and `[Http]` are off: their presence in a file turns them on.
pub(crate) fn file_defaults(state_dir: PathBuf) -> Config {
    let jobs_dir = state_dir.join("jobs");
    Config {
        source: None,
        global: GlobalConfig {
            port: DEFAULT_PORT,
            bind: IpAddr::V6(Ipv6Addr::LOCALHOST),
            pool: cpu_count(),
            ssl: true,
            sslcert: None,
            sslkey: None,
            password: None,
            password_file: None,
            backend: BackendKind::Builtin,
            state_dir,
            jobs_dir,
            spool_dir: None,
            max_connections: 1024,
            max_queue: 1000,
            max_request: 1 << 20,
            max_chunk: 4 << 20,
            max_upload: 4 << 30,
            handshake_timeout: Duration::from_secs(10),
            login_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(300),
            auth_delay: Duration::from_secs(1),
            auth_exempt: Vec::new(),
            min_free: MinFree::Default,
        },
        worker: WorkerConfig {
            timeout: Duration::from_secs(600),
            timeout_per_gb: Duration::from_secs(600),
            grace: Duration::from_secs(10),
            retries: 0,
            max_jobs: 0,
            recycle_memory: 0,
            memory_limit: 0,
            env: DEFAULT_WORKER_ENV
                .iter()
                .map(|name| name.to_string())
                .collect(),
            user: None,
            group: None,
            max_restarts: 5,
            restart_window: Duration::from_secs(60),
            max_line: 64 << 10,
            start_timeout: Duration::from_secs(30),
            backoff_max: Duration::from_secs(60),
        },
        burp: BurpConfig {
            burpbin: PathBuf::from("/usr/sbin/burp"),
            bconfcli: PathBuf::from("/etc/burp/burp.conf"),
            timeout: Duration::from_secs(15),
        },
        zeek: ZeekConfig {
            zeekbin: PathBuf::from("zeek"),
            scripts: Vec::new(),
            args: Vec::new(),
        },
        command: CommandConfig::default(),
        output: OutputConfig {
            format: LogFormat::Tsv,
            export_dir: None,
            export_mode: ExportMode::Copy,
            export_files: false,
        },
        syslog: None,
        http: None,
        metrics: None,
        cluster: None,
        jobs: JobsConfig {
            keep: Duration::from_secs(7 * 86400),
            max_disk: 0,
            dedupe: false,
        },
        settings: Default::default(),
        extract: ExtractConfig::default(),
        detect: DetectConfig::default(),
        analyzer: AnalyzerConfig::default(),
    }
}

/// The configuration for running with no file: the file defaults, but IPv4 loopback (present
/// on every host, unlike `::1`) and credentials inside `state_dir`.
pub(crate) fn embedded_config(state_dir: PathBuf) -> Config {
    let mut config = file_defaults(state_dir.clone());
    config.global.bind = IpAddr::V4(Ipv4Addr::LOCALHOST);
    config.global.sslcert = Some(state_dir.join(EMBEDDED_CERT_FILE));
    config.global.sslkey = Some(state_dir.join(EMBEDDED_KEY_FILE));
    config.global.password_file = Some(state_dir.join(EMBEDDED_PASSWORD_FILE));
    config
}

/// Creates (once; reuses if present) the embedded credentials in `state_dir`: a self-signed
/// certificate + key (SANs: localhost, 127.0.0.1, ::1) as `cert.pem`/`key.pem` (key mode 0600)
/// and a random password (32 URL-safe characters) in `password` (mode 0600); the directory is
/// made mode 0700. Files are written atomically (temp, fsync, rename, fsync dir).
pub fn ensure_embedded_credentials(state_dir: &Path) -> Result<EmbeddedCredentials, ConfigError> {
    let credentials = EmbeddedCredentials {
        cert: state_dir.join(EMBEDDED_CERT_FILE),
        key: state_dir.join(EMBEDDED_KEY_FILE),
        password_file: state_dir.join(EMBEDDED_PASSWORD_FILE),
    };
    fs::create_dir_all(state_dir)
        .map_err(|error| credential_error(state_dir, "cannot create the state directory", error))?;
    // The directory holds the private key and the password: nobody else may list or enter it.
    fs::set_permissions(state_dir, fs::Permissions::from_mode(0o700))
        .map_err(|error| credential_error(state_dir, "cannot make the directory private", error))?;

    let lock_path = state_dir.join(CREDENTIALS_LOCK_FILE);
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|error| credential_error(&lock_path, "cannot open the lock file", error))?;
    // Released when `_lock` drops at the end of this function.
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive).map_err(|(_, errno)| {
        credential_error(&lock_path, "cannot lock", std::io::Error::from(errno))
    })?;

    if !(holds_data(&credentials.cert) && holds_data(&credentials.key)) {
        let names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        let generated = rcgen::generate_simple_self_signed(names).map_err(|error| {
            ConfigError::file_problem(
                &credentials.cert,
                format!("cannot generate a self-signed certificate: {error}"),
            )
        })?;
        // Key first: a reader that sees the new certificate also finds its key.
        write_atomically(
            &credentials.key,
            generated.key_pair.serialize_pem().as_bytes(),
            0o600,
        )?;
        write_atomically(&credentials.cert, generated.cert.pem().as_bytes(), 0o644)?;
    }
    if !holds_data(&credentials.password_file) {
        let password = generate_password(&credentials.password_file)?;
        write_atomically(
            &credentials.password_file,
            format!("{password}\n").as_bytes(),
            0o600,
        )?;
    }
    Ok(credentials)
}

/// Whether `path` is a non-empty regular file (an empty one is a leftover, not a credential).
fn holds_data(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|metadata| metadata.is_file() && metadata.len() > 0)
}

/// A random password of URL-safe base64 characters; `path` is only for the error message.
fn generate_password(path: &Path) -> Result<String, ConfigError> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut random = [0u8; GENERATED_PASSWORD_CHARS];
    getrandom::getrandom(&mut random).map_err(|error| {
        ConfigError::file_problem(path, format!("cannot get random bytes: {error}"))
    })?;
    // 256 is a multiple of 64, so taking the low six bits keeps every character equally likely.
    Ok(random
        .iter()
        .map(|byte| char::from(ALPHABET[usize::from(byte & 63)]))
        .collect())
}

/// Writes a credential durably with its final mode from the start.
fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), ConfigError> {
    crate::durable::write_atomic(path, contents, Some(mode))
        .map_err(|error| credential_error(path, "cannot write", error.source))
}

fn credential_error(path: &Path, what: &str, error: std::io::Error) -> ConfigError {
    ConfigError::file_problem(path, format!("{what}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::TestDir;
    use rustls_pki_types::pem::PemObject;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn embedded_config_is_loopback_tls_builtin_with_files_in_the_state_dir() {
        let state = PathBuf::from("/srv/pcapd-state");
        let config = embedded_config(state.clone());
        assert_eq!(config.global.bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(config.global.port, 11111);
        assert!(config.global.ssl);
        assert_eq!(config.global.backend, BackendKind::Builtin);
        assert_eq!(config.global.pool, cpu_count());
        assert_eq!(config.global.state_dir, state);
        assert_eq!(config.global.jobs_dir, state.join("jobs"));
        assert_eq!(config.global.sslcert, Some(state.join("cert.pem")));
        assert_eq!(config.global.sslkey, Some(state.join("key.pem")));
        assert_eq!(config.global.password_file, Some(state.join("password")));
        assert_eq!(config.global.password, None);
        assert!(config.syslog.is_none() && config.http.is_none());
    }

    #[test]
    fn credentials_are_created_private_and_reused() {
        let dir = TestDir::new("credentials-create");
        // Not there yet: ensure_embedded_credentials makes it.
        let state = dir.path().join("state");
        let first = ensure_embedded_credentials(&state).unwrap();
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&first.key), 0o600);
        assert_eq!(mode(&first.password_file), 0o600);
        assert_eq!(first.cert, state.join("cert.pem"));

        let cert = fs::read_to_string(&first.cert).unwrap();
        let key = fs::read_to_string(&first.key).unwrap();
        let password = fs::read_to_string(&first.password_file).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
        let password = password.trim_end_matches('\n');
        assert_eq!(password.len(), 32);
        assert!(password
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));

        let second = ensure_embedded_credentials(&state).unwrap();
        assert_eq!(second, first);
        assert_eq!(fs::read_to_string(&second.cert).unwrap(), cert);
        assert_eq!(fs::read_to_string(&second.key).unwrap(), key);
        assert_eq!(
            fs::read_to_string(&second.password_file)
                .unwrap()
                .trim_end(),
            password
        );
        // No temp files left behind.
        let leftovers: Vec<_> = fs::read_dir(&state)
            .unwrap()
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.file_name().to_string_lossy().contains(".tmp."))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn a_missing_key_regenerates_the_pair_but_keeps_the_password() {
        let dir = TestDir::new("credentials-regenerate");
        let state = dir.path().join("state");
        let first = ensure_embedded_credentials(&state).unwrap();
        let cert = fs::read_to_string(&first.cert).unwrap();
        let password = fs::read_to_string(&first.password_file).unwrap();
        fs::remove_file(&first.key).unwrap();

        let second = ensure_embedded_credentials(&state).unwrap();
        assert_ne!(fs::read_to_string(&second.cert).unwrap(), cert);
        assert!(holds_data(&second.key));
        assert_eq!(fs::read_to_string(&second.password_file).unwrap(), password);
    }

    #[test]
    fn the_certificate_names_localhost_and_both_loopback_addresses() {
        let dir = TestDir::new("credentials-sans");
        let state = dir.path().join("state");
        let credentials = ensure_embedded_credentials(&state).unwrap();
        let pem = fs::read(&credentials.cert).unwrap();
        let der = rustls_pki_types::CertificateDer::from_pem_slice(&pem);
        let der = der.expect("the certificate PEM parses");
        // SAN entries are DER-encoded as-is: the DNS name as ASCII, addresses as raw octets.
        let bytes = der.as_ref();
        let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(contains(b"localhost"));
        assert!(contains(&[0x87, 4, 127, 0, 0, 1]));
        let mut v6 = vec![0x87, 16];
        v6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        assert!(contains(&v6));
    }

    #[test]
    fn default_state_dir_is_absolute_and_ends_in_pcapd() {
        let dir = default_state_dir();
        assert!(dir.is_absolute());
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("pcapd"), "{}", dir.display());
    }
}
