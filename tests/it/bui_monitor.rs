//! `backend = burp` against the anchor's fake `burp -a m` (`../shared/anchors/buimonitor/
//! fake_burp.py`, which answers as burp 3.1.4's monitor does and has fault queries): the
//! bui-monitor functions, queries and their `KO` semantics, a full queue, and children that
//! hang, die or stall mid-line, each answered and replaced without growing the pool. The
//! same answers from Burp-UI's own client against real burp are in `burp_ui`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pcapd::client::{Client, ClientError};
use serde_json::{json, Value};

use super::harness::{children_of, DaemonSpec, TestDaemon};

/// Per-query deadline the fault tests run with.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

fn fake_burp() -> PathBuf {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/anchors/buimonitor/fake_burp.py");
    assert!(
        path.exists(),
        "{} is missing: the tests read ../shared beside the checkout",
        path.display()
    );
    path
}

fn burp_daemon(name: &str, pool: usize, extra_global: &str) -> TestDaemon {
    burp_daemon_with(name, pool, extra_global, "", Vec::new())
}

fn burp_daemon_with(
    name: &str,
    pool: usize,
    extra_global: &str,
    extra_worker: &str,
    env: Vec<(String, String)>,
) -> TestDaemon {
    let dir = super::harness::temp_dir(&format!("{name}-conf"));
    let bconfcli = dir.join("burp-client.conf");
    std::fs::write(&bconfcli, "# the fake burp does not read it\n").unwrap();
    TestDaemon::start(
        name,
        &DaemonSpec {
            pool,
            backend: "burp",
            extra_global: extra_global.to_owned(),
            extra_sections: format!(
                "[Burp]\nburpbin = {}\nbconfcli = {}\ntimeout = {}\n",
                fake_burp().display(),
                bconfcli.display(),
                QUERY_TIMEOUT.as_secs()
            ),
            extra_worker: extra_worker.to_owned(),
            env,
            ..DaemonSpec::default()
        },
    )
}

async fn query(client: &mut Client, text: &str) -> Option<Value> {
    client
        .query(text, false)
        .await
        .expect("query answered")
        .map(|doc| serde_json::from_slice(&doc).expect("the answer is burp's JSON"))
}

async fn slot_pids(client: &mut Client) -> Vec<Option<u64>> {
    let pool = client.call("pool", json!({})).await.expect("pool");
    pool["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .map(|s| s["pid"].as_u64())
        .collect()
}

/// Waits until every slot has a child again (after a replacement).
async fn pool_refilled(client: &mut Client, size: usize) -> Vec<u64> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let pool = client.call("pool", json!({})).await.expect("pool");
        let slots = pool["slots"].as_array().expect("slots").clone();
        let idle: Vec<u64> = slots
            .iter()
            .filter(|s| s["state"] == "idle")
            .filter_map(|s| s["pid"].as_u64())
            .collect();
        if idle.len() == size {
            return idle;
        }
        assert!(Instant::now() < until, "pool not refilled: {pool}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bui_monitor_functions_and_queries_answer_as_bui_monitor() {
    let daemon = burp_daemon("burp-functions", 2, "");
    let mut client = daemon.client().await;
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("text");
    // Bare text, not JSON-quoted.
    let version = client.call_raw("monitor_version", json!({})).await.unwrap();
    assert_eq!(text(version), env!("CARGO_PKG_VERSION"));
    let client_version = client.call_raw("client_version", json!({})).await.unwrap();
    assert_eq!(text(client_version), "3.1.4");
    let server_version = client.call_raw("server_version", json!({})).await.unwrap();
    assert_eq!(text(server_version), "3.1.4");
    let batch = client
        .call("batch_list_supported", json!({}))
        .await
        .unwrap();
    assert_eq!(batch, json!(true));
    let stats = client.call("statistics", json!({})).await.unwrap();
    assert_eq!(stats["alive"], json!(true), "{stats}");
    assert_eq!(stats["server_version"], "3.1.4");
    assert_eq!(stats["client_version"], "3.1.4");

    let all = query(&mut client, "c:\n").await.expect("c: has clients");
    assert_eq!(all["clients"].as_array().map(Vec::len), Some(3), "{all}");
    let one = query(&mut client, "c:client2\n")
        .await
        .expect("known client");
    assert_eq!(one["clients"][0]["name"], "client2");
    // A burp warning is KO, and the connection stays usable.
    assert_eq!(query(&mut client, "c:nosuch\n").await, None);
    assert!(query(&mut client, "c:client1").await.is_some());
    // Session commands would change every client's session.
    let refused = client.query("j:pretty-print-on\n", false).await;
    assert!(
        matches!(&refused, Err(ClientError::Server { code, .. }) if code == "bad_request"),
        "{refused:?}"
    );
    // A burp daemon runs no capture jobs (and a refused submit closes its connection).
    let submit = daemon
        .client()
        .await
        .call("submit", json!({"files": [{"name": "a.pcap", "size": 0}]}))
        .await;
    assert!(
        matches!(&submit, Err(ClientError::Server { code, .. }) if code == "unsupported"),
        "{submit:?}"
    );
    let pool = client.call("pool", json!({})).await.unwrap();
    assert_eq!(pool["queries"]["answered"], 3, "{pool}");
    assert_eq!(pool["queries"]["warnings"], 1, "{pool}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_answers_are_served_without_a_child() {
    let daemon = burp_daemon("burp-cache", 1, "");
    let mut client = daemon.client().await;
    let first = client.query("c:", true).await.unwrap();
    for _ in 0..5 {
        assert_eq!(client.query("c:\n", true).await.unwrap(), first);
    }
    let pool = client.call("pool", json!({})).await.unwrap();
    assert_eq!(pool["queries"]["received"], 1, "{pool}");
    client.query("c:", false).await.unwrap();
    let pool = client.call("pool", json!({})).await.unwrap();
    assert_eq!(
        pool["queries"]["received"], 2,
        "cache = false asks burp: {pool}"
    );
}

/// bui-monitor's known defects: a hung child blocks its slot forever, a dead one is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_dead_and_stalled_children_are_answered_and_replaced() {
    let daemon = burp_daemon("burp-faults", 2, "");
    let mut client = daemon.client().await;
    for fault in ["c:__hang__", "c:__die__", "c:__partial__"] {
        let before = pool_refilled(&mut client, 2).await;
        let started = Instant::now();
        let answer = client.query(fault, false).await.expect("answered");
        let took = started.elapsed();
        assert_eq!(answer, None, "{fault}: KO");
        assert!(
            took < QUERY_TIMEOUT + Duration::from_secs(1),
            "{fault} answered after {took:?}"
        );
        let after = pool_refilled(&mut client, 2).await;
        assert_eq!(after.len(), 2, "pool size unchanged after {fault}");
        let replaced = before.iter().filter(|pid| !after.contains(pid)).count();
        assert_eq!(
            replaced, 1,
            "{fault}: one child replaced ({before:?} → {after:?})"
        );
        for _ in 0..10 {
            assert!(
                query(&mut client, "c:").await.is_some(),
                "query after {fault}"
            );
        }
    }
    assert!(children_of(daemon.pid()).len() <= 2);
    let pool = client.call("pool", json!({})).await.unwrap();
    assert_eq!(pool["queries"]["failed"], 3, "{pool}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_queries_never_make_more_children_than_the_pool() {
    let daemon = burp_daemon("burp-concurrency", 2, "");
    let pid = daemon.pid();
    let settings = daemon.settings();
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let mut most = 0;
            while sampling.load(std::sync::atomic::Ordering::SeqCst) {
                most = most.max(children_of(pid).len());
                std::thread::sleep(Duration::from_millis(5));
            }
            most
        })
    };
    // One request per connection, as Burp-UI sends them, 20 at once, twice over.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let settings = settings.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(settings).await.expect("connect");
            let name = format!("c:client{}", i % 3 + 1);
            client.query(&name, false).await.expect("answered")
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap().is_some(), "every query answered OK");
    }
    sampling.store(false, std::sync::atomic::Ordering::SeqCst);
    let most = sampler.join().unwrap();
    assert!(most <= 2, "{most} children seen with pool = 2");
    assert_eq!(slot_pids(&mut daemon.client().await).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_query_queue_is_refused_at_once() {
    let daemon = burp_daemon("burp-queue", 1, "max_queue = 1\n");
    let settings = daemon.settings();
    // The only child hangs; one query waits in the queue; the next is refused.
    let hung = tokio::spawn({
        let settings = settings.clone();
        async move {
            let mut client = Client::connect(settings).await.unwrap();
            client.query("c:__hang__", false).await
        }
    });
    let mut client = daemon.client().await;
    let until = Instant::now() + Duration::from_secs(5);
    while slot_pids(&mut client).await.len() != 1
        || client.call("pool", json!({})).await.unwrap()["slots"][0]["state"] != "busy"
    {
        assert!(Instant::now() < until, "the hang never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let queued = tokio::spawn({
        let settings = settings.clone();
        async move {
            let mut client = Client::connect(settings).await.unwrap();
            client.query("c:", false).await
        }
    });
    let until = Instant::now() + Duration::from_secs(5);
    while client.call("pool", json!({})).await.unwrap()["queue_len"] != 1 {
        assert!(Instant::now() < until, "the second query never queued");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let refused = client.query("c:", false).await;
    assert!(
        matches!(&refused, Err(ClientError::Server { code, message })
            if code == "queue_full" && message.contains("queue is full")),
        "{refused:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(hung.await.unwrap().unwrap(), None);
    assert!(queued.await.unwrap().unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_backends_keep_bui_monitors_formats() {
    let daemon = TestDaemon::start("monitor-builtin", &DaemonSpec::default());
    let mut client = daemon.client().await;
    let version = client.call_raw("monitor_version", json!({})).await.unwrap();
    assert_eq!(version, env!("CARGO_PKG_VERSION").as_bytes());
    let stats = client.call("statistics", json!({})).await.unwrap();
    assert_eq!(stats["alive"], json!(true), "{stats}");
    assert_eq!(stats["server_version"], "unknown");
    assert_eq!(
        client
            .call("batch_list_supported", json!({}))
            .await
            .unwrap(),
        json!(false)
    );
    let refused = client.query("c:", false).await;
    assert!(
        matches!(&refused, Err(ClientError::Server { code, .. }) if code == "unsupported"),
        "{refused:?}"
    );
}

/// bui-monitor loses a slot for every failed respawn, and once all are lost every request
/// hangs. Here a burp that cannot connect backs its slot off, the pool says degraded,
/// queries get a clear `ER` within their bound, and the slot comes back once burp can start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burp_that_cannot_start_degrades_the_pool_until_it_can() {
    let dir = super::harness::temp_dir("burp-fail-marker");
    let fail = dir.join("fail");
    let daemon = burp_daemon_with(
        "burp-cannot-start",
        1,
        "",
        "env = PATH FAKE_BURP_FAIL_FILE\nmax_restarts = 1\nrestart_window = 60s\nbackoff_max = 1s\n",
        vec![("FAKE_BURP_FAIL_FILE".into(), fail.display().to_string())],
    );
    let mut client = daemon.client().await;
    std::fs::write(&fail, "").unwrap();
    // The running child dies on this query; its replacements cannot connect.
    assert_eq!(client.query("c:__die__", false).await.unwrap(), None);
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let pool = client.call("pool", json!({})).await.unwrap();
        if pool["degraded"] == json!(true) {
            break;
        }
        assert!(Instant::now() < until, "never degraded: {pool}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    let answer = client.query("c:", false).await;
    let took = started.elapsed();
    match answer {
        Err(ClientError::Server { code, message }) => {
            assert_eq!(code, "unavailable", "{message}");
            assert!(message.contains("no burp monitor child"), "{message}");
        }
        other => panic!("expected ER unavailable, got {other:?}"),
    }
    assert!(
        took < QUERY_TIMEOUT * 2 + Duration::from_secs(2),
        "{took:?}"
    );
    std::fs::remove_file(&fail).unwrap();
    pool_refilled(&mut client, 1).await;
    assert!(query(&mut client, "c:").await.is_some());
}

/// bui-monitor's documented `buimonitor.cfg` (from `../shared/seeds`), uncommented, with
/// `backend = burp` added and only what must differ on a test machine replaced: the port (a
/// free one), the certificate paths, `burpbin` (the anchor's fake burp). `check-config`
/// passes it and `serve` runs it on its `bind = ::1`, with its password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bui_monitors_sample_config_runs_once_backend_burp_is_added() {
    let doc = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/seeds/000_7ac13200805701bb.txt"),
    )
    .expect("../shared/seeds beside the checkout");
    let start = doc
        .find("\t# Burp-UI monitor configuration file")
        .expect("the sample config in bui-monitor's documentation");
    let dir = super::harness::temp_dir("bui-monitor-sample");
    let creds = pcapd::config::ensure_embedded_credentials(&dir.join("creds")).unwrap();
    let bconfcli = dir.join("burp-client.conf");
    std::fs::write(&bconfcli, "").unwrap();
    let mut config = String::new();
    for line in doc[start..]
        .lines()
        .take_while(|line| line.starts_with('\t') || line.is_empty())
        .map(|line| line.trim_start_matches('\t'))
    {
        // `#key = value` is a commented setting, `## text` a comment.
        let line = match line.strip_prefix('#') {
            Some(setting) if !setting.starts_with('#') && !setting.starts_with(' ') => setting,
            _ => line,
        };
        let line = match line.split_once(" = ").map(|(key, _)| key) {
            Some("port") => "port = 0".to_owned(),
            Some("sslcert") => format!("sslcert = {}", creds.cert.display()),
            Some("sslkey") => format!("sslkey = {}", creds.key.display()),
            Some("burpbin") => format!("burpbin = {}", fake_burp().display()),
            Some("bconfcli") => format!("bconfcli = {}", bconfcli.display()),
            _ => line.to_owned(),
        };
        config.push_str(&line);
        config.push('\n');
        if line == "[Global]" {
            config.push_str("backend = burp\n");
        }
    }
    assert!(config.contains("password = password123456\n") && config.contains("\nbind = ::1\n"));
    std::fs::write(dir.join("check.cfg"), &config).unwrap();
    let check = std::process::Command::new(super::harness::PCAPD)
        .args(["check-config", "-c"])
        .arg(dir.join("check.cfg"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "check-config: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    // No state_dir in a bui-monitor config: systemd's StateDirectory= gives it.
    let state = dir.join("state");
    let daemon = TestDaemon::launch(
        dir.clone(),
        &config,
        "password123456".into(),
        creds.cert.clone(),
        vec![("STATE_DIRECTORY".into(), state.display().to_string())],
    );
    let mut settings = daemon.settings();
    settings.host = "::1".into();
    if let Some(tls) = settings.tls.as_mut() {
        tls.server_name = "::1".into();
    }
    let mut client = Client::connect(settings).await.expect("connect to [::1]");
    let stats = client.call("statistics", json!({})).await.unwrap();
    assert_eq!(stats["alive"], json!(true));
    assert_eq!(
        stats["pcapd"]["pool"]["slots"].as_array().map(Vec::len),
        Some(5)
    );
    assert!(query(&mut client, "c:").await.is_some());
    assert!(
        state.join("listen.addr").exists(),
        "state under STATE_DIRECTORY"
    );
}
