//! Prometheus metrics with the real tools: Debian's `prometheus` scrapes a test daemon every
//! second, on the metrics port (plain HTTP) and on the gateway (HTTPS, the daemon's
//! certificate, the password as HTTP Basic), while jobs run; the test asks Prometheus's HTTP
//! API for the figures the jobs imply. `promtool check metrics` lints the exposition.
//! tests/setup.sh installs prometheus.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::gateway::Gateway;
use crate::harness::{free_port, sample, script_backend, write_file, TestDaemon};

const HINT: &str = "run tests/setup.sh (it installs Debian's prometheus)";

fn tool(name: &str) -> PathBuf {
    let path = Path::new("/usr/bin").join(name);
    assert!(path.exists(), "{} is missing: {HINT}", path.display());
    path
}

/// A prometheus server of the test's own on a free loopback port.
struct Prometheus {
    port: u16,
    child: Child,
    log: PathBuf,
}

impl Prometheus {
    fn start(dir: &Path, config: &str) -> Prometheus {
        let config_file = write_file(dir, "prometheus.yml", config.as_bytes());
        let check = Command::new(tool("promtool"))
            .args(["check", "config"])
            .arg(&config_file)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "promtool check config: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let port = free_port();
        let log = dir.join("prometheus.log");
        let child = Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start prometheus");
        let prometheus = Prometheus { port, child, log };
        let until = Instant::now() + Duration::from_secs(30);
        while prometheus.get("/-/ready").is_none() {
            assert!(
                Instant::now() < until,
                "prometheus did not become ready: {}",
                prometheus.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        prometheus
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn get(&self, path: &str) -> Option<String> {
        let output = Command::new("curl")
            .args(["-sf", "--max-time", "5"])
            .arg(format!("http://127.0.0.1:{}{path}", self.port))
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The value of an instant query's samples, by their `job` label.
    fn query(&self, query: &str) -> Vec<(String, f64)> {
        let output = Command::new("curl")
            .args(["-sf", "--max-time", "5", "--get", "--data-urlencode"])
            .arg(format!("query={query}"))
            .arg(format!("http://127.0.0.1:{}/api/v1/query", self.port))
            .output()
            .unwrap();
        let Ok(answer) = serde_json::from_slice::<Value>(&output.stdout) else {
            return Vec::new();
        };
        answer["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|sample| {
                let job = sample["metric"]["job"].as_str()?.to_owned();
                let value = sample["value"][1].as_str()?.parse().ok()?;
                Some((job, value))
            })
            .collect()
    }

    /// Waits until `query` gives `want` for both scrape jobs.
    fn expect(&self, query: &str, want: f64) {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.query(query);
            let both = ["metrics-port", "gateway"]
                .iter()
                .all(|job| got.iter().any(|(j, v)| j == job && *v == want));
            if both {
                return;
            }
            assert!(
                Instant::now() < until,
                "prometheus: {query} = {got:?}, want {want} from both scrape jobs\n\
                 targets: {}\nlog: {}",
                self.get("/api/v1/targets").unwrap_or_default(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn prometheus_scrapes_the_job_counters_and_the_queue_while_jobs_run() {
    // One slot; each job holds it until its release file appears, so the queue stays full
    // for as long as the test needs.
    let (mut spec, scripts) = script_backend(
        "metrics",
        b"out=$1; shift\n\
          [ \"$(wc -c < \"$1\")\" -lt 100 ] && exit 3\n\
          while [ ! -e \"$(dirname \"$0\")/release\" ]; do sleep 0.1; done\n\
          echo '#fields\tts' > \"$out/conn.log\"\n",
    );
    spec.extra_global = "max_queue = 10\nmax_upload = 1M\n".into();
    spec.extra_sections = "[Http]\nport = 0\n[Metrics]\nport = 0\n".into();
    let daemon = TestDaemon::start("metrics-prom", &spec);
    let gw = Gateway::new(&daemon);
    let metrics_port = daemon.metrics_port.expect("[Metrics] port line");
    let http_port = daemon.http_port.expect("[Http] port line");

    // The gateway's /metrics wants the password; the metrics port does not, and serves
    // nothing else.
    assert_eq!(gw.curl("/metrics", &["--no-auth"]).status, 401);
    let scraped = gw.curl("/metrics", &[]);
    assert_eq!(scraped.status, 200);
    assert!(scraped
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let plain = |path: &str| {
        Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("http://127.0.0.1:{metrics_port}{path}"))
            .output()
            .unwrap()
    };
    assert_eq!(plain("/metrics").stdout, b"200");
    assert_eq!(plain("/jobs").stdout, b"404");

    let dir = daemon.dir.join("prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    let password_file = write_file(&dir, "password", daemon.password.as_bytes());
    let prometheus = Prometheus::start(
        &dir,
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n\
             \x20 - job_name: metrics-port\n\
             \x20   static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n\
             \x20 - job_name: gateway\n\
             \x20   scheme: https\n\
             \x20   tls_config: {{ca_file: '{ca}', server_name: localhost}}\n\
             \x20   basic_auth: {{username: prometheus, password_file: '{pw}'}}\n\
             \x20   static_configs: [{{targets: ['127.0.0.1:{http_port}']}}]\n",
            ca = daemon.cert.display(),
            pw = password_file.display(),
        ),
    );
    prometheus.expect("up", 1.0);
    prometheus.expect("pcapd_build_info", 1.0);
    prometheus.expect("pcapd_queue_capacity", 10.0);

    // Four jobs on one slot: one runs, three wait.
    let capture = sample("dns.pcap");
    let form = format!("file[]=@{}", capture.display());
    let mut jobs = Vec::new();
    for _ in 0..4 {
        let answer = gw.curl("/submit/pcap", &["-F", &form]).json();
        jobs.push(answer["job_id"].as_str().unwrap().to_owned());
    }
    prometheus.expect("pcapd_jobs_accepted_total", 4.0);
    prometheus.expect("pcapd_queue_jobs", 3.0);
    prometheus.expect("pcapd_slots{state=\"busy\"}", 1.0);

    // Release them; then one that fails (the script fails captures under 100 bytes).
    write_file(&scripts, "release", b"");
    for job in &jobs {
        assert_eq!(
            gw.wait_terminal(job, Duration::from_secs(60))["state"],
            "done"
        );
    }
    let head = &std::fs::read(&capture).unwrap()[..50];
    let bad = write_file(&scripts, "bad.pcap", head);
    let failed = gw
        .curl(
            "/submit/pcap",
            &["-F", &format!("file[]=@{}", bad.display())],
        )
        .json();
    let failed_id = failed["job_id"].as_str().unwrap();
    assert_eq!(
        gw.wait_terminal(failed_id, Duration::from_secs(60))["state"],
        "failed"
    );
    prometheus.expect("pcapd_jobs_finished_total{state=\"done\"}", 4.0);
    prometheus.expect("pcapd_jobs_finished_total{state=\"failed\"}", 1.0);
    prometheus.expect("pcapd_queue_jobs", 0.0);
    prometheus.expect("pcapd_slots{state=\"idle\"}", 1.0);
    prometheus.expect("pcapd_job_duration_seconds_count", 5.0);
    prometheus.expect("pcapd_job_queue_wait_seconds_count", 5.0);
    let size = std::fs::metadata(&capture).unwrap().len() as f64;
    prometheus.expect("pcapd_upload_bytes_total", 4.0 * size + 50.0);

    // A wrong password, and an upload over max_upload.
    let wrong = gw.curl("/jobs", &["--no-auth", "-u", "prometheus:wrong"]);
    assert_eq!(wrong.status, 401);
    prometheus.expect("pcapd_auth_failures_total", 1.0);
    let big = write_file(&scripts, "big.pcap", &vec![0u8; 3 << 20]);
    let refused = gw.curl(
        "/submit/pcap",
        &["-F", &format!("file[]=@{}", big.display())],
    );
    assert_eq!(
        refused.status,
        413,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    prometheus.expect("pcapd_jobs_refused_total{reason=\"upload_too_large\"}", 1.0);
    prometheus.expect("pcapd_jobs_accepted_total", 5.0);

    // promtool lints what the daemon exposes.
    let exposition = gw.curl("/metrics", &[]).body;
    let mut promtool = Command::new(tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(&exposition)
        .unwrap();
    let linted = promtool.wait_with_output().unwrap();
    assert!(
        linted.status.success() && linted.stdout.is_empty() && linted.stderr.is_empty(),
        "promtool check metrics: {}{}\n{}",
        String::from_utf8_lossy(&linted.stdout),
        String::from_utf8_lossy(&linted.stderr),
        String::from_utf8_lossy(&exposition)
    );
}

#[test]
fn the_alert_rules_in_the_operations_guide_pass_promtool() {
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md"))
            .unwrap();
    let rules = guide
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a ```yaml block of alert rules in docs/operations.md");
    let dir = crate::harness::temp_dir("metrics-rules");
    let file = write_file(&dir, "rules.yml", rules.as_bytes());
    let output = Command::new(tool("promtool"))
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
