//! The job store's index seen from outside: the real daemon answers `list` and dedupe from
//! it, keeps it across SIGKILL and SIGTERM, and rebuilds it from the records when it is
//! deleted, with the same answers each time.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use pcapd::client::Client;
use serde_json::{json, Value};

use crate::harness::{sample, submit, wait_done, DaemonSpec, TestDaemon};

fn ids(list: &Value) -> Vec<String> {
    list["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|job| job["job_id"].as_str().expect("job_id").to_owned())
        .collect()
}

/// Every job, the `alpha` jobs, and the answer to a resubmission of `again`.
async fn answers(client: &mut Client, again: &Path) -> (Vec<String>, Vec<String>, Value) {
    let all = client.call("list", json!({})).await.unwrap();
    let alpha = client
        .call("list", json!({ "tag": "alpha", "limit": 10 }))
        .await
        .unwrap();
    let resubmitted = client
        .submit_files(
            &[again.to_owned()],
            None,
            Default::default(),
            &mut |_, _| {},
        )
        .await
        .unwrap();
    (ids(&all), ids(&alpha), resubmitted)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_job_index_survives_kills_and_deletion_with_the_same_answers() {
    let spec = DaemonSpec {
        extra_sections: "[Jobs]\ndedupe = true\n".into(),
        ..DaemonSpec::default()
    };
    let mut daemon = TestDaemon::start("store-index", &spec);
    let index = daemon.dir.join("state/jobs.index.sqlite");
    let mut client = daemon.client().await;
    let dns = submit(&mut client, &sample("dns.pcap"), Some("alpha")).await;
    let http = submit(&mut client, &sample("http.pcap"), Some("beta")).await;
    let tls = submit(&mut client, &sample("tls.pcap"), Some("alpha")).await;
    for id in [&dns, &http, &tls] {
        assert_eq!(
            wait_done(&mut client, id, Duration::from_secs(60)).await["state"],
            "done"
        );
    }
    assert!(index.exists(), "no index at {}", index.display());

    let (all, alpha, again) = answers(&mut client, &sample("http.pcap")).await;
    assert_eq!(all.len(), 3);
    assert_eq!(alpha.len(), 2);
    assert_eq!(again["job_id"], http.as_str());
    assert_eq!(again["deduplicated"], true);
    let before = (all, alpha);

    // SIGKILL: the index was never closed; the restart trusts it after a repair.
    drop(client);
    daemon.signal(Signal::SIGKILL);
    daemon.wait_exit(Duration::from_secs(5));
    daemon.spawn();
    let mut client = daemon.client().await;
    let (all, alpha, again) = answers(&mut client, &sample("http.pcap")).await;
    assert_eq!((all, alpha), before);
    assert_eq!(again["job_id"], http.as_str());

    // Deleted while stopped: rebuilt from the records, same answers.
    drop(client);
    daemon.signal(Signal::SIGTERM);
    daemon.wait_exit(Duration::from_secs(30));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", index.display()));
    }
    daemon.spawn();
    let mut client = daemon.client().await;
    let (all, alpha, again) = answers(&mut client, &sample("http.pcap")).await;
    assert_eq!((all, alpha), before);
    assert_eq!(again["job_id"], http.as_str());
    assert!(index.exists());
    assert!(daemon.stderr().contains("rebuilding the job index"));
}
