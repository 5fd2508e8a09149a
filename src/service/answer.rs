//! [`Answer`]: what a [`super::Command`] answers, typed until a front door writes it out.
//!
//! The TLS protocol sends JSON answers as `OK` + the document, bytes and bui-monitor's text
//! answers as `OK` + the raw bytes, and an absent text as `KO`; the HTTP gateway sends the
//! JSON ones as response bodies.

use serde::Serialize;
use serde_json::Value;

use super::intake::Submitted;
use super::upload::DeclaredUpload;
use crate::cluster::ClusterStatus;
use crate::disk::DiskStatus;
use crate::jobs::store::ExtractedInfo;
use crate::jobs::{JobId, JobRecord, LogInfo};
use crate::pool::PoolStatus;

pub enum Answer {
    /// `status`, `wait`, `cancel`.
    Job(Box<JobRecord>),
    Submitted(Submitted),
    Jobs(JobList),
    Logs(JobLogs),
    /// `files`: what the job's analysis extracted (docs/files.md).
    Files(JobFiles),
    /// A log's bytes (`fetch`).
    Bytes(Vec<u8>),
    /// A submission whose declared files are to be streamed next.
    Upload(Box<DeclaredUpload>),
    Pool(Box<PoolAnswer>),
    Cluster(Box<ClusterStatus>),
    Ping(Ping),
    Statistics(Box<Statistics>),
    /// bui-monitor's version functions: bare text, or nothing (`KO`).
    Text(Option<String>),
    /// bui-monitor's `batch_list_supported`.
    Flag(bool),
    /// A burp status query: the document, or no answer (`KO`).
    Burp(Option<Vec<u8>>),
}

impl Answer {
    /// The JSON document of a JSON answer; `None` for bytes, text and uploads.
    pub fn to_json(&self) -> Option<Value> {
        let value = match self {
            Answer::Job(record) => serde_json::to_value(record),
            Answer::Submitted(submitted) => serde_json::to_value(submitted),
            Answer::Jobs(list) => serde_json::to_value(list),
            Answer::Logs(logs) => serde_json::to_value(logs),
            Answer::Files(files) => serde_json::to_value(files),
            Answer::Pool(pool) => serde_json::to_value(pool),
            Answer::Cluster(cluster) => serde_json::to_value(cluster),
            Answer::Ping(ping) => serde_json::to_value(ping),
            Answer::Statistics(statistics) => serde_json::to_value(statistics),
            Answer::Flag(flag) => Ok(Value::Bool(*flag)),
            Answer::Bytes(_) | Answer::Upload(_) | Answer::Text(_) | Answer::Burp(_) => {
                return None
            }
        };
        // These types serialize to JSON by construction (string keys, no failing impls).
        Some(value.expect("answers serialize to JSON"))
    }
}

/// The answer to `pool`: the pool's figures and the disk's.
#[derive(Debug, Serialize)]
pub struct PoolAnswer {
    #[serde(flatten)]
    pub pool: PoolStatus,
    /// `jobs_dir`'s file system (absent when it cannot be read).
    pub disk: Option<DiskStatus>,
}

#[derive(Debug, Serialize)]
pub struct JobList {
    pub jobs: Vec<JobRecord>,
}

#[derive(Debug, Serialize)]
pub struct JobLogs {
    pub job_id: JobId,
    pub logs: Vec<LogInfo>,
}

/// The files under the job's `extract_files/`: names `fetch` takes, and sizes.
#[derive(Debug, Serialize)]
pub struct JobFiles {
    pub job_id: JobId,
    pub files: Vec<ExtractedInfo>,
}

#[derive(Debug, Serialize)]
pub struct Ping {
    pub version: &'static str,
    pub uptime: f64,
    pub backend: &'static str,
}

/// bui-monitor's `statistics`, with pcapd's own figures under `pcapd` (Burp-UI ignores it).
#[derive(Debug, Serialize)]
pub struct Statistics {
    pub alive: bool,
    pub server_version: String,
    pub client_version: String,
    pub pcapd: DaemonFigures,
}

#[derive(Debug, Serialize)]
pub struct DaemonFigures {
    pub version: &'static str,
    pub uptime: f64,
    pub accepted: u64,
    pub auth_failures: u64,
    pub pool: PoolStatus,
}
