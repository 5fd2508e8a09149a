//! Test harness: starts the real `pcapd serve` binary with TLS on 127.0.0.1:0 in a fresh
//! state directory, connects real clients, and reports the daemon's stderr when a test fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pcapd::client::{Client, ClientSettings, TlsTrust, DEFAULT_CHUNK};
use serde_json::{json, Value};

pub const PCAPD: &str = env!("CARGO_BIN_EXE_pcapd");

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under target/ (kept on failure for inspection).
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "it-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fresh directory under the system's temporary directory, mode 0755: for tests that run
/// pcapd (or its workers) as another user, who must reach it whatever the permissions of the
/// directories above the checkout (a clone in `/root` or in a 0700 `mktemp -d`).
pub fn shared_temp_dir(name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!(
        "pcapd-it-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A copy of the pcapd binary that every user can execute (see [`shared_temp_dir`]); made
/// once per test process.
pub fn shared_pcapd() -> &'static Path {
    use std::os::unix::fs::PermissionsExt;
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        let dir = shared_temp_dir("bin");
        let copy = dir.join("pcapd");
        // Copied by another process: a file this process had open for writing would be
        // inherited by any child another test forks meanwhile, and executing the copy would
        // then fail with ETXTBSY ("Text file busy").
        let status = Command::new("install")
            .args(["-m", "0755", PCAPD])
            .arg(&copy)
            .status()
            .expect("install(1) copies the pcapd binary");
        assert!(status.success(), "copying {PCAPD} to {}", copy.display());
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        copy
    })
}

/// A loopback port free now (for servers that cannot be told to pick one themselves).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What a test daemon runs.
#[derive(Clone)]
pub struct DaemonSpec {
    pub pool: usize,
    pub backend: &'static str,
    /// `[Command] command` for backend = command.
    pub command: Option<String>,
    pub extra_global: String,
    pub extra_worker: String,
    /// Whole extra sections appended to the config (e.g. `[Jobs]\ndedupe = true\n`).
    pub extra_sections: String,
    /// Environment of the daemon process (children see it through `[Worker] env`).
    pub env: Vec<(String, String)>,
    /// Workers run as another user (`[Worker] user`): the daemon's directory and binary are
    /// put where that user can reach them ([`shared_temp_dir`], [`shared_pcapd`]).
    pub foreign_workers: bool,
}

impl Default for DaemonSpec {
    fn default() -> Self {
        DaemonSpec {
            pool: 2,
            backend: "builtin",
            command: None,
            extra_global: String::new(),
            extra_sections: String::new(),
            extra_worker: String::new(),
            env: Vec::new(),
            foreign_workers: false,
        }
    }
}

pub struct TestDaemon {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub password: String,
    pub cert: PathBuf,
    pub port: u16,
    /// The HTTP gateway's port, when the config has `[Http]`.
    pub http_port: Option<u16>,
    /// The metrics port, when the config has `[Metrics]`.
    pub metrics_port: Option<u16>,
    pub child: Option<Child>,
    stderr_path: PathBuf,
    env: Vec<(String, String)>,
    /// The pcapd binary started (workers are started from the same file).
    program: PathBuf,
}

impl TestDaemon {
    /// Writes a config for `spec` in a fresh directory and starts the daemon.
    pub fn start(name: &str, spec: &DaemonSpec) -> TestDaemon {
        let dir = if spec.foreign_workers {
            shared_temp_dir(name)
        } else {
            temp_dir(name)
        };
        let creds =
            pcapd::config::ensure_embedded_credentials(&dir.join("state")).expect("credentials");
        let password = std::fs::read_to_string(&creds.password_file)
            .unwrap()
            .trim()
            .to_owned();
        let mut worker = spec.extra_worker.clone();
        for (key, default) in [("timeout", "30s"), ("grace", "500ms")] {
            if !worker
                .lines()
                .any(|l| l.split('=').next().is_some_and(|k| k.trim() == key))
            {
                worker.push_str(&format!("{key} = {default}\n"));
            }
        }
        let command = spec
            .command
            .as_ref()
            .map(|c| format!("[Command]\ncommand = {c}\n"))
            .unwrap_or_default();
        let config = format!(
            "[Global]\nport = 0\nbind = 127.0.0.1\npool = {pool}\nssl = true\nsslcert = {cert}\nsslkey = {key}\n\
             password_file = {pw}\nbackend = {backend}\nstate_dir = {state}\n{auth_delay}{extra_global}\n\
             [Worker]\n{worker}\n{command}\n{extra_sections}",
            pool = spec.pool,
            cert = creds.cert.display(),
            key = creds.key.display(),
            pw = creds.password_file.display(),
            backend = spec.backend,
            state = dir.join("state").display(),
            // Short, unless the test sets its own.
            auth_delay = if spec.extra_global.contains("auth_delay") {
                ""
            } else {
                "auth_delay = 200ms\n"
            },
            extra_global = spec.extra_global,
            extra_sections = spec.extra_sections,
        );
        let program = if spec.foreign_workers {
            shared_pcapd().to_path_buf()
        } else {
            PathBuf::from(PCAPD)
        };
        TestDaemon::launch_program(
            dir,
            &config,
            password,
            creds.cert,
            spec.env.clone(),
            program,
        )
    }

    /// Starts the daemon on a config file of the caller's in `dir`; `password` and `cert` are
    /// what its clients use.
    pub fn launch(
        dir: PathBuf,
        config: &str,
        password: String,
        cert: PathBuf,
        env: Vec<(String, String)>,
    ) -> TestDaemon {
        TestDaemon::launch_program(dir, config, password, cert, env, PathBuf::from(PCAPD))
    }

    fn launch_program(
        dir: PathBuf,
        config: &str,
        password: String,
        cert: PathBuf,
        env: Vec<(String, String)>,
        program: PathBuf,
    ) -> TestDaemon {
        let config_path = dir.join("pcapd.cfg");
        std::fs::write(&config_path, config).unwrap();
        let mut daemon = TestDaemon {
            stderr_path: dir.join("daemon.stderr"),
            dir,
            config: config_path,
            password,
            cert,
            port: 0,
            http_port: None,
            metrics_port: None,
            child: None,
            env,
            program,
        };
        daemon.spawn();
        daemon
    }

    /// Starts (or restarts) the daemon process and waits for its "listening on" line.
    pub fn spawn(&mut self) {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_path)
            .unwrap();
        let mut child = Command::new(&self.program)
            .args(["serve", "-c"])
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start pcapd serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some((what, addr)) = line.split_once(" listening on ") {
                    let _ = tx.send((what.to_owned(), addr.trim().to_owned()));
                }
            }
        });
        let port_of = |addr: &str| -> u16 { addr.rsplit(':').next().unwrap().parse().unwrap() };
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok((_, a)) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("daemon did not start; stderr:\n{}", self.stderr());
            }
        };
        self.port = port_of(&addr);
        // The gateway's and the metrics port's lines follow at once when there are any.
        self.http_port = None;
        self.metrics_port = None;
        // (printed together: once one came, the next is not far behind)
        let mut patience = Duration::from_millis(500);
        while let Ok((what, addr)) = rx.recv_timeout(patience) {
            patience = Duration::from_millis(100);
            if what.ends_with("HTTP gateway") {
                self.http_port = Some(port_of(&addr));
            } else if what.ends_with("metrics") {
                self.metrics_port = Some(port_of(&addr));
            }
        }
        self.child = Some(child);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon running").id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn settings(&self) -> ClientSettings {
        ClientSettings {
            host: "127.0.0.1".into(),
            port: self.port,
            password: self.password.clone(),
            tls: Some(TlsTrust {
                ca: self.cert.clone(),
                server_name: "127.0.0.1".into(),
            }),
            connect_timeout: Duration::from_secs(10),
            chunk: DEFAULT_CHUNK,
        }
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.settings())
            .await
            .unwrap_or_else(|e| panic!("connect: {e}\n{}", self.stderr()))
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), sig).unwrap();
    }

    /// Waits for the daemon to exit; returns its exit status.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("daemon running");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "daemon did not exit within {limit:?}\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs the pcapd CLI against this daemon.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let output = Command::new(PCAPD)
            .args(args)
            .args(["-c".as_ref(), self.config.as_os_str()])
            .env("PCAPD_HOST", "127.0.0.1")
            .env("PCAPD_PORT", self.port.to_string())
            .output()
            .unwrap();
        output
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- daemon stderr ({}) ----\n{}",
                self.dir.display(),
                self.stderr()
            );
        }
    }
}

/// Live processes whose parent is `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // Fields after the command name (which may contain spaces) start after the last ')'.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == pid && state != "Z" {
            out.push(child);
        }
    }
    out
}

/// Whether any process is left in process group `pgid`.
pub fn group_alive(pgid: i32) -> bool {
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None).is_ok()
}

/// Polls `f` until it returns Some or `limit` passes.
pub async fn eventually<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Submits one file and returns its job id.
pub async fn submit(client: &mut Client, path: &Path, tag: Option<&str>) -> String {
    let answer = client
        .submit_files(&[path.to_owned()], tag, Default::default(), &mut |_, _| {})
        .await
        .expect("submit");
    answer["job_id"].as_str().expect("job_id").to_owned()
}

/// Waits until the job is terminal.
pub async fn wait_done(client: &mut Client, job_id: &str, limit: Duration) -> Value {
    let start = Instant::now();
    loop {
        let job = client
            .call("wait", json!({ "job_id": job_id, "timeout": 5 }))
            .await
            .expect("wait");
        if matches!(
            job["state"].as_str(),
            Some("done" | "failed" | "timed_out" | "cancelled")
        ) {
            return job;
        }
        assert!(
            start.elapsed() < limit,
            "job {job_id} not terminal after {limit:?}: {job}"
        );
    }
}

/// A file with given content in `dir`.
pub fn write_file(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// The bundled sample captures.
pub fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("share/pcapd/samples")
        .join(name)
}

/// A tmpfs of a few MiB as `jobs_dir`, unmounted when dropped (mounting needs root, as CI is).
pub struct SmallDisk {
    pub path: PathBuf,
}

impl SmallDisk {
    pub fn mount(name: &str, size: &str) -> SmallDisk {
        let path = temp_dir(name).join("jobs");
        std::fs::create_dir_all(&path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CI runs as root)"
        );
        SmallDisk { path }
    }

    /// Writes a file until the file system is full; returns its path.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        filler
    }

    /// Like [`SmallDisk::fill`], down to the last byte (not even a small record fits).
    pub fn fill_completely(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.fill();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&filler)
            .unwrap();
        for size in [4096, 512, 1] {
            let block = vec![0u8; size];
            while file.write_all(&block).is_ok() {}
        }
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// A daemon spec running `body` as the command backend's analyzer (`sh SCRIPT {out}
/// {pcaps}`), pool 1; returns it with the directory the script is in.
pub fn script_backend(name: &str, body: &[u8]) -> (DaemonSpec, PathBuf) {
    let scripts = temp_dir(&format!("{name}-scripts"));
    let script = write_file(&scripts, "analyzer.sh", body);
    let spec = DaemonSpec {
        pool: 1,
        backend: "command",
        command: Some(format!("sh {} {{out}} {{pcaps}}", script.display())),
        ..DaemonSpec::default()
    };
    (spec, scripts)
}

/// Generated TLS credentials in `dir` for a config of the test's own: the `[Global]` lines
/// that use them, and the password clients send.
pub fn tls_credentials(dir: &Path) -> (pcapd::config::EmbeddedCredentials, String, String) {
    let creds = pcapd::config::ensure_embedded_credentials(dir).expect("credentials");
    let password = std::fs::read_to_string(&creds.password_file)
        .unwrap()
        .trim()
        .to_owned();
    let lines = format!(
        "ssl = true\nsslcert = {}\nsslkey = {}\npassword_file = {}\n",
        creds.cert.display(),
        creds.key.display(),
        creds.password_file.display()
    );
    (creds, lines, password)
}
