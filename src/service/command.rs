//! [`Command`]: every job function's arguments, parsed once into types.
//!
//! The TLS protocol's `{"func", "kwargs"}` goes through [`Command::parse`]; the HTTP gateway
//! builds the same values from its path, query string and form fields. Unknown arguments are
//! refused (a misspelt `timeout` must not silently become the default), and so is every wrong
//! type, with the argument named in the message.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::ServiceError;
use crate::jobs::{self, FileDecl, JobId, JobState, ListFilter};
use crate::protocol::ErrorCode;

/// Longest `wait` a client may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(3600);
/// `wait` without a timeout.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// `list` without a limit.
pub const DEFAULT_LIST_LIMIT: usize = 100;

/// One job function call.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Submit(SubmitArgs),
    Status(JobId),
    Wait {
        job_id: JobId,
        timeout: Duration,
    },
    List(ListFilter),
    Logs(JobId),
    /// The files under the job's `extract_files/` (docs/files.md); fetched with `Fetch`.
    Files(JobId),
    Fetch(FetchArgs),
    Cancel(JobId),
    Pool,
    Ping,
    /// The shared queue's hosts, lengths and dead letters (`[Cluster]`).
    Cluster,
    /// One of bui-monitor's version functions (their arguments are ignored, as there).
    Monitor(MonitorFunction),
    /// bui-monitor's `statistics`.
    Statistics,
    /// A burp status query (the TLS protocol's `{"query", "cache"}` request).
    BurpQuery {
        query: String,
        cache: bool,
    },
}

/// bui-monitor's functions that answer a version or a capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorFunction {
    MonitorVersion,
    ClientVersion,
    ServerVersion,
    BatchListSupported,
}

/// A tag checked once for every front door: it becomes the syslog HOSTNAME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag(String);

impl Tag {
    pub fn parse(raw: &str) -> Result<Tag, ServiceError> {
        jobs::validate_tag(raw).map_err(|e| {
            ServiceError::new(ErrorCode::BadTag, format!("tag {raw:?} rejected: {e}"))
        })?;
        Ok(Tag(raw.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Job options as stored in the record, with the known ones checked.
pub type JobOptions = Map<String, Value>;

/// Where a submission's captures come from.
#[derive(Debug, Clone, PartialEq)]
pub enum CaptureSource {
    /// Streamed after the request: the TLS protocol's declared files.
    Upload(Vec<FileDecl>),
    /// Files already under `spool_dir`.
    Paths(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubmitArgs {
    pub source: CaptureSource,
    pub tag: Option<Tag>,
    pub options: JobOptions,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FetchArgs {
    pub job_id: JobId,
    pub log: String,
    pub offset: u64,
    pub length: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubmit {
    files: Option<Vec<RawFile>>,
    paths: Option<Vec<String>>,
    tag: Option<String>,
    options: Option<JobOptions>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: String,
    size: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    job_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWait {
    job_id: String,
    timeout: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    state: Option<JobState>,
    tag: Option<String>,
    limit: Option<u64>,
    since: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFetch {
    job_id: String,
    log: String,
    offset: Option<u64>,
    length: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

impl Command {
    /// Whether file bytes may follow the call: a `submit` that declares `files`, whatever
    /// their shape. A declaration refused for its shape (a size of `"10"`, `-1` or `1.5`,
    /// `files` not a list) may still be followed by data frames the client already sent.
    pub fn declares_upload(func: &str, kwargs: &Map<String, Value>) -> bool {
        func == "submit" && kwargs.contains_key("files")
    }

    /// Parses a call; `None` when no function is called `func`.
    pub fn parse(func: &str, kwargs: Map<String, Value>) -> Option<Result<Command, ServiceError>> {
        let command =
            match func {
                "submit" => args::<RawSubmit>(func, kwargs).and_then(submit),
                "status" => args::<RawJob>(func, kwargs)
                    .and_then(|a| job_id(&a.job_id).map(Command::Status)),
                "logs" => {
                    args::<RawJob>(func, kwargs).and_then(|a| job_id(&a.job_id).map(Command::Logs))
                }
                "files" => {
                    args::<RawJob>(func, kwargs).and_then(|a| job_id(&a.job_id).map(Command::Files))
                }
                "cancel" => args::<RawJob>(func, kwargs)
                    .and_then(|a| job_id(&a.job_id).map(Command::Cancel)),
                "wait" => args::<RawWait>(func, kwargs).and_then(|a| {
                    Ok(Command::Wait {
                        job_id: job_id(&a.job_id)?,
                        timeout: wait_timeout(a.timeout)?,
                    })
                }),
                "list" => args::<RawList>(func, kwargs)
                    .map(|a| Command::List(list_filter(a.state, a.tag, a.limit, a.since))),
                "fetch" => args::<RawFetch>(func, kwargs).and_then(|a| {
                    Ok(Command::Fetch(FetchArgs {
                        job_id: job_id(&a.job_id)?,
                        log: a.log,
                        offset: a.offset.unwrap_or(0),
                        length: fetch_length(a.length),
                    }))
                }),
                "pool" => args::<NoArgs>(func, kwargs).map(|_| Command::Pool),
                "ping" => args::<NoArgs>(func, kwargs).map(|_| Command::Ping),
                "cluster" => args::<NoArgs>(func, kwargs).map(|_| Command::Cluster),
                "monitor_version" => Ok(Command::Monitor(MonitorFunction::MonitorVersion)),
                "client_version" => Ok(Command::Monitor(MonitorFunction::ClientVersion)),
                "server_version" => Ok(Command::Monitor(MonitorFunction::ServerVersion)),
                "batch_list_supported" => Ok(Command::Monitor(MonitorFunction::BatchListSupported)),
                "statistics" => Ok(Command::Statistics),
                _ => return None,
            };
        Some(command)
    }
}

fn args<T: DeserializeOwned>(func: &str, kwargs: Map<String, Value>) -> Result<T, ServiceError> {
    serde_json::from_value(Value::Object(kwargs))
        .map_err(|e| ServiceError::bad_request(format!("{func}: {e}")))
}

fn submit(raw: RawSubmit) -> Result<Command, ServiceError> {
    let source = match (raw.files, raw.paths) {
        (Some(files), None) => CaptureSource::Upload(
            files
                .into_iter()
                .map(|f| FileDecl {
                    name: f.name,
                    size: f.size,
                })
                .collect(),
        ),
        (None, Some(paths)) => CaptureSource::Paths(paths),
        (Some(_), Some(_)) => {
            return Err(ServiceError::bad_request(
                "submit takes \"files\" or \"paths\", not both",
            ))
        }
        (None, None) => {
            return Err(ServiceError::bad_request(
                "submit needs \"files\" or \"paths\"",
            ))
        }
    };
    Ok(Command::Submit(SubmitArgs {
        source,
        tag: raw.tag.as_deref().map(Tag::parse).transpose()?,
        options: job_options(raw.options.unwrap_or_default())?,
    }))
}

/// A job id from a request: only the canonical form names a job.
pub fn job_id(raw: &str) -> Result<JobId, ServiceError> {
    JobId::parse(raw)
        .map_err(|_| ServiceError::bad_request(format!("\"job_id\" {raw:?} is not a job id")))
}

/// Checks the options pcapd knows; others are kept for the analyzer.
pub fn job_options(options: JobOptions) -> Result<JobOptions, ServiceError> {
    if let Some(v) = options.get("ignore_checksums") {
        if !v.is_boolean() {
            return Err(ServiceError::bad_request(
                "option \"ignore_checksums\" must be true or false",
            ));
        }
    }
    Ok(options)
}

/// `wait`'s timeout in seconds: finite, not negative, at most [`MAX_WAIT`].
pub fn wait_timeout(seconds: Option<f64>) -> Result<Duration, ServiceError> {
    match seconds {
        None => Ok(DEFAULT_WAIT),
        Some(s) if s.is_finite() && s >= 0.0 => {
            Ok(Duration::from_secs_f64(s.min(MAX_WAIT.as_secs_f64())))
        }
        Some(_) => Err(ServiceError::bad_request(
            "\"timeout\" must be a non-negative number of seconds",
        )),
    }
}

pub fn list_filter(
    state: Option<JobState>,
    tag: Option<String>,
    limit: Option<u64>,
    since: Option<String>,
) -> ListFilter {
    ListFilter {
        state,
        tag,
        limit: Some(limit.map_or(DEFAULT_LIST_LIMIT, |l| {
            usize::try_from(l).unwrap_or(usize::MAX)
        })),
        since,
    }
}

/// A fetch asks for at most [`jobs::MAX_LOG_READ`] bytes.
pub fn fetch_length(length: Option<u64>) -> u64 {
    length.unwrap_or(jobs::MAX_LOG_READ).min(jobs::MAX_LOG_READ)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(func: &str, kwargs: Value) -> Result<Command, ServiceError> {
        let Value::Object(kwargs) = kwargs else {
            panic!("kwargs must be an object")
        };
        Command::parse(func, kwargs).expect("a job function")
    }

    const ID: &str = "507965ab-6511-4cd4-9542-4671eb140f92";

    #[test]
    fn submit_with_files_tag_and_options() {
        let command = parse(
            "submit",
            json!({"files": [{"name": "a.pcap", "size": 10}], "tag": "t1",
                   "options": {"ignore_checksums": true}}),
        )
        .unwrap();
        let Command::Submit(args) = command else {
            panic!("not a submit")
        };
        assert_eq!(
            args.source,
            CaptureSource::Upload(vec![FileDecl {
                name: "a.pcap".into(),
                size: 10
            }])
        );
        assert_eq!(args.tag, Some(Tag("t1".into())));
    }

    #[test]
    fn wrong_types_and_unknown_arguments_are_named() {
        for (func, kwargs, wanted) in [
            (
                "submit",
                json!({"files": [{"name": "a", "size": "10"}]}),
                "invalid type",
            ),
            (
                "submit",
                json!({"files": [{"name": "a", "size": -1}]}),
                "invalid value",
            ),
            ("submit", json!({"files": "a"}), "invalid type"),
            ("submit", json!({}), "needs \"files\" or \"paths\""),
            (
                "status",
                json!({"job_id": ID, "timeout": 1}),
                "unknown field `timeout`",
            ),
            ("wait", json!({"job_id": ID, "timeout": -1}), "non-negative"),
            ("status", json!({"job_id": "../x"}), "not a job id"),
            ("list", json!({"state": "bogus"}), "unknown variant"),
            ("pool", json!({"x": 1}), "unknown field"),
        ] {
            let error = parse(func, kwargs).unwrap_err();
            assert_eq!(error.code, ErrorCode::BadRequest, "{func}");
            assert!(error.message.contains(wanted), "{func}: {}", error.message);
        }
    }

    #[test]
    fn bad_tags_have_their_own_code() {
        let error = parse("submit", json!({"paths": ["a"], "tag": "a b"})).unwrap_err();
        assert_eq!(error.code, ErrorCode::BadTag);
    }

    #[test]
    fn unknown_functions_are_left_to_the_caller() {
        assert!(Command::parse("no_such_function", Map::new()).is_none());
    }

    #[test]
    fn bui_monitor_functions_are_commands_whatever_their_arguments() {
        assert_eq!(
            parse("monitor_version", json!({"anything": 1})),
            Ok(Command::Monitor(MonitorFunction::MonitorVersion))
        );
        assert_eq!(parse("statistics", json!({})), Ok(Command::Statistics));
    }

    #[test]
    fn deadlines_and_limits_are_bounded() {
        assert_eq!(wait_timeout(None).unwrap(), DEFAULT_WAIT);
        assert_eq!(wait_timeout(Some(1e9)).unwrap(), MAX_WAIT);
        assert_eq!(fetch_length(Some(u64::MAX)), jobs::MAX_LOG_READ);
        let Command::Fetch(fetch) = parse(
            "fetch",
            json!({"job_id": ID, "log": "conn.log", "offset": 9_300_000_000_000_000_000u64}),
        )
        .unwrap() else {
            panic!("not a fetch")
        };
        assert_eq!(fetch.offset, 9_300_000_000_000_000_000);
    }
}
