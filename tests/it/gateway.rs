//! The HTTP gateway with the real `curl`: Brocapi's submissions from its README, the REST
//! routes, every error status with its JSON body, ranges, a 1 GB upload with the daemon's
//! memory bounded, and slowloris on the HTTP port.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{sample, script_backend, temp_dir, DaemonSpec, TestDaemon};

/// What `curl` got.
pub struct Answer {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{}",
                self.headers,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }
}

/// The gateway of a test daemon, reached with curl over HTTPS trusting its certificate.
pub struct Gateway<'a> {
    pub daemon: &'a TestDaemon,
    scratch: PathBuf,
}

fn curl_path() -> &'static str {
    for candidate in ["/usr/bin/curl", "/bin/curl"] {
        if Path::new(candidate).exists() {
            return candidate;
        }
    }
    panic!("curl is missing: run tests/setup.sh (it installs Debian's curl)")
}

impl<'a> Gateway<'a> {
    pub fn new(daemon: &'a TestDaemon) -> Gateway<'a> {
        let scratch = daemon.dir.join("curl");
        std::fs::create_dir_all(&scratch).unwrap();
        Gateway { daemon, scratch }
    }

    pub fn url(&self, path: &str) -> String {
        let port = self.daemon.http_port.expect("the daemon has [Http]");
        format!("https://127.0.0.1:{port}{path}")
    }

    /// Runs curl with the daemon's password (HTTP Basic) unless `args` sets auth itself.
    pub fn curl(&self, path: &str, args: &[&str]) -> Answer {
        let user = format!("brocapi:{}", self.daemon.password);
        let mut all: Vec<&str> = vec!["-u", &user];
        if args.contains(&"--no-auth") {
            all.clear();
        }
        all.extend(args.iter().filter(|a| **a != "--no-auth"));
        self.raw(path, &all)
    }

    fn raw(&self, path: &str, args: &[&str]) -> Answer {
        let body = self.scratch.join("body");
        let headers = self.scratch.join("headers");
        let output = Command::new(curl_path())
            .args(["-sS", "--max-time", "120", "--cacert"])
            .arg(&self.daemon.cert)
            .arg("-o")
            .arg(&body)
            .arg("-D")
            .arg(&headers)
            .args(["-w", "%{http_code}"])
            .args(args)
            .arg(self.url(path))
            .output()
            .expect("run curl");
        let status = String::from_utf8_lossy(&output.stdout);
        Answer {
            status: status.trim().parse().unwrap_or_else(|_| {
                panic!(
                    "curl {path} {args:?}: {status}: {}",
                    String::from_utf8_lossy(&output.stderr)
                )
            }),
            headers: std::fs::read_to_string(&headers).unwrap_or_default(),
            body: std::fs::read(&body).unwrap_or_default(),
        }
    }

    /// Polls `GET /jobs/ID` until the job is terminal.
    pub fn wait_terminal(&self, job_id: &str, limit: Duration) -> Value {
        let began = Instant::now();
        loop {
            let job = self.curl(&format!("/jobs/{job_id}"), &[]).json();
            if matches!(
                job["state"].as_str(),
                Some("done" | "failed" | "timed_out" | "cancelled")
            ) {
                return job;
            }
            assert!(began.elapsed() < limit, "job not terminal: {job}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn file_arg(path: &Path) -> String {
    format!("file[]=@{}", path.display())
}

pub fn gateway_spec(extra: &str) -> DaemonSpec {
    DaemonSpec {
        extra_sections: format!("[Http]\nport = 0\n{extra}"),
        ..DaemonSpec::default()
    }
}

#[test]
fn brocapi_submissions_from_its_readme_get_brocapis_body() {
    let daemon = TestDaemon::start("gw-brocapi", &gateway_spec(""));
    let gw = Gateway::new(&daemon);
    let dns = sample("dns.pcap");
    // `curl -k -X POST -F 'file[]=@x.pcap' https://127.0.0.1/submit/pcap`, with and without tag.
    let untagged = gw.curl("/submit/pcap", &["-X", "POST", "-F", &file_arg(&dns)]);
    assert_eq!(
        untagged.status,
        200,
        "{}",
        String::from_utf8_lossy(&untagged.body)
    );
    let body = untagged.json();
    assert_eq!(body["status"], "job queued");
    assert_eq!(body["files"], serde_json::json!(["dns.pcap"]));
    assert_eq!(body["tag"], Value::Null);
    assert_eq!(body["success"], true);
    assert_eq!(body["state"], "queued");
    assert_eq!(body["sha256"].as_array().unwrap().len(), 1);
    let job_id = body["job_id"].as_str().unwrap().to_owned();
    assert_eq!(job_id.len(), 36);

    let tagged = gw
        .curl(
            "/submit/pcap",
            &["-X", "POST", "-F", &file_arg(&dns), "-F", "tag=testing"],
        )
        .json();
    assert_eq!(tagged["tag"], "testing");

    // Several file[] parts are one job; the tag may come before the files.
    let http = sample("http.pcap");
    let tls = sample("tls.pcap");
    let several = gw
        .curl(
            "/submit/pcap",
            &[
                "-F",
                "tag=multi",
                "-F",
                &file_arg(&http),
                "-F",
                &file_arg(&tls),
                "-F",
                &file_arg(&dns),
            ],
        )
        .json();
    assert_eq!(
        several["files"],
        serde_json::json!(["http.pcap", "tls.pcap", "dns.pcap"])
    );
    let several_id = several["job_id"].as_str().unwrap().to_owned();

    let job = gw.wait_terminal(&job_id, Duration::from_secs(60));
    assert_eq!(job["state"], "done", "{job}");
    let job = gw.wait_terminal(&several_id, Duration::from_secs(60));
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["files"].as_array().unwrap().len(), 3);
    assert_eq!(job["tag"], "multi");

    // Logs, whole and by range, the same bytes the store holds.
    let logs = gw.curl(&format!("/jobs/{several_id}/logs"), &[]).json();
    let names: Vec<&str> = logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"conn.log") && names.contains(&"http.log"),
        "{names:?}"
    );
    let whole = gw.curl(&format!("/jobs/{several_id}/logs/conn.log"), &[]);
    assert_eq!(whole.status, 200);
    let on_disk = std::fs::read(
        daemon
            .dir
            .join("state/jobs")
            .join(&several_id)
            .join("logs/conn.log"),
    )
    .unwrap();
    assert_eq!(whole.body, on_disk);
    assert_eq!(whole.header("accept-ranges").as_deref(), Some("bytes"));
    let part = gw.curl(
        &format!("/jobs/{several_id}/logs/conn.log"),
        &["-H", "Range: bytes=10-109"],
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.body, on_disk[10..110]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 10-109/{}", on_disk.len()))
    );
    let tail = gw.curl(
        &format!("/jobs/{several_id}/logs/conn.log"),
        &["-H", "Range: bytes=-20"],
    );
    assert_eq!(tail.body, on_disk[on_disk.len() - 20..]);
    let past = gw.curl(
        &format!("/jobs/{several_id}/logs/conn.log"),
        &["-H", &format!("Range: bytes={}-", on_disk.len())],
    );
    assert_eq!(past.status, 416);

    // Listing, bearer auth, the pool, cancel of a finished job, health without a password.
    let bearer = format!("Authorization: Bearer {}", daemon.password);
    let listed = gw
        .curl(
            "/jobs?state=done&tag=multi&limit=5",
            &["--no-auth", "-H", &bearer],
        )
        .json();
    let listed = listed["jobs"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["job_id"], several_id.as_str());
    let pool = gw.curl("/pool", &[]).json();
    assert_eq!(pool["slots"].as_array().unwrap().len(), 2);
    let cancelled = gw
        .curl(&format!("/jobs/{job_id}"), &["-X", "DELETE"])
        .json();
    assert_eq!(
        cancelled["state"], "done",
        "cancelling a done job leaves it done"
    );
    let health = gw.curl("/healthz", &["--no-auth"]);
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
}

#[test]
fn every_error_has_its_status_and_a_json_body() {
    let (mut spec, _scripts) = script_backend("gw-errors", b"sleep 3\ntouch \"$1/x.log\"\n");
    spec.extra_global = "max_upload = 64k\nmax_queue = 1\n".into();
    spec.extra_sections = "[Http]\nport = 0\n".into();
    let daemon = TestDaemon::start("gw-errors", &spec);
    let gw = Gateway::new(&daemon);
    let dns = sample("dns.pcap");
    let error = |answer: &Answer, status: u16, code: &str| {
        assert_eq!(
            answer.status,
            status,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        let body = answer.json();
        assert_eq!(body["error"], code, "{body}");
        assert!(!body["message"].as_str().unwrap().is_empty());
    };

    let none = gw.curl("/jobs", &["--no-auth"]);
    error(&none, 401, "unauthorized");
    assert!(none
        .header("www-authenticate")
        .is_some_and(|v| v.starts_with("Basic")));
    let began = Instant::now();
    let wrong = gw.curl("/jobs", &["--no-auth", "-u", "x:wrong"]);
    error(&wrong, 401, "unauthorized");
    assert!(
        began.elapsed() >= Duration::from_millis(200),
        "the auth delay applies"
    );

    error(
        &gw.curl("/submit/pcap", &["-F", "tag=x"]),
        400,
        "bad_request",
    );
    error(
        &gw.curl("/submit/pcap", &["-F", &file_arg(&dns), "-F", "tag=a b"]),
        400,
        "bad_tag",
    );
    error(
        &gw.curl("/submit/pcap", &["-F", &file_arg(&dns), "-F", "other=1"]),
        400,
        "bad_request",
    );
    error(
        &gw.curl(
            "/submit/pcap",
            &["-H", "Content-Type: text/plain", "-d", "x"],
        ),
        400,
        "bad_request",
    );
    error(&gw.curl("/jobs?state=bogus", &[]), 400, "bad_request");
    error(&gw.curl("/jobs?color=red", &[]), 400, "bad_request");
    error(&gw.curl("/jobs/not-a-job", &[]), 400, "bad_request");
    error(
        &gw.curl("/jobs/507965ab-6511-4cd4-9542-4671eb140f92", &[]),
        404,
        "not_found",
    );
    error(&gw.curl("/nowhere", &[]), 404, "not_found");
    let wrong_method = gw.curl("/submit/pcap", &[]);
    error(&wrong_method, 405, "method_not_allowed");
    assert_eq!(wrong_method.header("allow").as_deref(), Some("POST"));

    // Over max_upload: 413, and nothing of it stays in the store.
    let big = daemon.dir.join("big.pcap");
    std::fs::write(&big, vec![0u8; 200 * 1024]).unwrap();
    error(
        &gw.curl("/submit/pcap", &["-F", &file_arg(&big)]),
        413,
        "upload_too_large",
    );
    let jobs_dir = daemon.dir.join("state/jobs");
    let leftovers = || {
        std::fs::read_dir(&jobs_dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .count()
    };
    assert_eq!(leftovers(), 0);

    // A full queue: one running, one queued, the next 503 with Retry-After.
    let first = gw.curl("/submit/pcap", &["-F", &file_arg(&dns)]).json();
    let until = Instant::now() + Duration::from_secs(10);
    while gw
        .curl(&format!("/jobs/{}", first["job_id"].as_str().unwrap()), &[])
        .json()["state"]
        != "running"
    {
        assert!(Instant::now() < until, "first job never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = gw.curl("/submit/pcap", &["-F", &file_arg(&dns)]);
    assert_eq!(second.status, 200);
    let full = gw.curl("/submit/pcap", &["-F", &file_arg(&dns)]);
    error(&full, 503, "queue_full");
    assert_eq!(full.header("retry-after").as_deref(), Some("1"));
    assert_eq!(leftovers(), 0);
}

/// Resident set size of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_1_gb_upload_streams_to_disk_with_the_daemon_s_memory_bounded() {
    let (mut spec, _scripts) = script_backend("gw-big", b"touch \"$1/x.log\"\n");
    spec.extra_global = "max_upload = 2g\n".into();
    spec.extra_sections = "[Http]\nport = 0\n".into();
    let daemon = TestDaemon::start("gw-big", &spec);
    let gw = Gateway::new(&daemon);
    let big = temp_dir("gw-big-file").join("big.pcap");
    {
        let mut file = std::fs::File::create(&big).unwrap();
        let block = vec![0x5au8; 1 << 20];
        for _ in 0..1024 {
            file.write_all(&block).unwrap();
        }
    }
    let pid = daemon.pid();
    let before = rss_kib(pid);
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let began = Instant::now();
    let answer = gw.curl("/submit/pcap", &["-F", &file_arg(&big), "-F", "tag=big"]);
    let took = began.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let job = answer.json();
    let stored = daemon
        .dir
        .join("state/jobs")
        .join(job["job_id"].as_str().unwrap())
        .join("pcaps/0.pcap");
    assert_eq!(std::fs::metadata(&stored).unwrap().len(), 1 << 30);
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "1 GiB over HTTPS in {took:?} ({:.0} MB/s); daemon RSS {before} KiB before, {peak} KiB at most",
        1024.0 / took.as_secs_f64()
    );
    assert!(
        peak < before + 64 * 1024,
        "RSS grew from {before} KiB to {peak} KiB: the upload was buffered"
    );
    let _ = std::fs::remove_file(&big);
    let _ = std::fs::remove_file(&stored);
}

#[test]
fn slowloris_on_the_http_port_does_not_starve_other_clients() {
    let daemon = TestDaemon::start(
        "gw-slowloris",
        &DaemonSpec {
            extra_global: "max_connections = 64\nrequest_timeout = 2s\nlogin_timeout = 3s\n".into(),
            extra_sections: "[Http]\nport = 0\nssl = false\n".into(),
            ..DaemonSpec::default()
        },
    );
    let port = daemon.http_port.unwrap();
    // 200 connections that send half a request line and then a byte now and then.
    let slow: Vec<std::net::TcpStream> = (0..200)
        .filter_map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
            s.write_all(b"GET /pool HTTP/1.1\r\nHost: x\r\n").ok()?;
            Some(s)
        })
        .collect();
    let drip = std::thread::spawn(move || {
        let mut slow = slow;
        for _ in 0..10 {
            for s in &mut slow {
                let _ = s.write_all(b"X-a: b\r\n");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    let user = format!("any:{}", daemon.password);
    for _ in 0..5 {
        let began = Instant::now();
        let out = Command::new(curl_path())
            .args([
                "-sS",
                "--max-time",
                "15",
                "-u",
                &user,
                "-w",
                "%{http_code}",
                "-o",
                "/dev/null",
            ])
            .arg(format!("http://127.0.0.1:{port}/pool"))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "200",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            began.elapsed() < Duration::from_secs(8),
            "a real client waited {:?} behind the slow ones",
            began.elapsed()
        );
        std::thread::sleep(Duration::from_millis(700));
    }
    drip.join().unwrap();
}
