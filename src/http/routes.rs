//! The gateway's routes: each turns its path, query and form into a [`Command`] for the job
//! service (or a streamed submission, or a log file), and the answer into a response.
//!
//! | route | command |
//! |---|---|
//! | `POST /submit/pcap` (multipart `file[]`, `tag`) | a streamed submission |
//! | `GET /jobs?state=&tag=&limit=&since=` | `list` |
//! | `GET /jobs/ID`, `DELETE /jobs/ID` | `status`, `cancel` |
//! | `GET /jobs/ID/logs`, `GET /jobs/ID/logs/NAME` | `logs`, the log's bytes (ranges) |
//! | `GET /jobs/ID/files`, `GET /jobs/ID/files/NAME` | `files`, an extracted file's bytes |
//! | `GET /pool` | `pool` |
//! | `GET /metrics` | Prometheus metrics (`crate::metrics`) |
//! | `GET /healthz` (no password) | liveness for load balancers |
//! | `GET /openapi.json` (no password) | this table as OpenAPI 3.1 (`docs/openapi.json`) |

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyDataStream, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::request::{byte_range, offered_password, part_file_name, query_pairs, RangeRequest};
use crate::jobs::{JobState, MAX_FILES_PER_JOB};
use crate::metrics::Format;
use crate::protocol::ErrorCode;
use crate::service::command::{job_id, list_filter};
use crate::service::{Command, JobOptions, ServiceError, Tag};
use crate::service::{Health, JobService, StreamUpload};

pub type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// The longest `tag` form field read.
const MAX_TAG_FIELD: u64 = 1024;
/// After a refused upload, the body still in flight is read (and dropped) for up to this
/// many bytes and this long, so the client reads the answer instead of a reset.
const DRAIN_LIMIT: u64 = 16 << 20;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Log bytes read per body frame.
const LOG_CHUNK: usize = 64 * 1024;

/// Per-request deadlines of the gateway.
#[derive(Debug, Clone, Copy)]
pub struct RouteLimits {
    /// Longest wait for the next piece of a request body.
    pub body_timeout: Duration,
}

/// Which routes a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteSet {
    /// The gateway (`[Http]`): every route; `/metrics` needs the password unless
    /// `metrics_auth = false`.
    Gateway { metrics_auth: bool },
    /// The metrics port (`[Metrics]`): `/metrics` and `/healthz`, no password.
    MetricsOnly,
}

/// Answers one request; `authenticated` is called once the password was right.
pub async fn route(
    service: &JobService,
    peer: SocketAddr,
    request: Request<Incoming>,
    limits: RouteLimits,
    routes: RouteSet,
    authenticated: impl FnOnce(),
) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if segments == ["healthz"] {
        return health(service, request.method());
    }
    if segments == ["openapi.json"] && routes != RouteSet::MetricsOnly {
        return openapi(request.method());
    }
    match (routes, segments.as_slice()) {
        (
            RouteSet::MetricsOnly
            | RouteSet::Gateway {
                metrics_auth: false,
            },
            ["metrics"],
        ) => {
            // No password applies: a scraper's kept-alive connection is not held to
            // login_timeout (idle_timeout still closes it).
            authenticated();
            return metrics(service, &request).await;
        }
        (RouteSet::MetricsOnly, _) => {
            return error(ServiceError::new(
                ErrorCode::NotFound,
                format!("no route {path:?}: the metrics port serves /metrics and /healthz"),
            ));
        }
        (RouteSet::Gateway { .. }, _) => {}
    }
    let offered = offered_password(
        request
            .headers()
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    );
    let Some(offered) = offered else {
        drain_body(request.into_body()).await;
        return unauthorized(
            "this route needs the daemon password (HTTP Basic, any user name, or Bearer)",
        );
    };
    if service.auth().verify(peer.ip(), &offered).await.is_err() {
        tracing::warn!(peer = %peer.ip(), "HTTP authentication failed");
        drain_body(request.into_body()).await;
        return unauthorized("wrong password");
    }
    authenticated();
    let method = request.method().clone();
    let answer = match (segments.as_slice(), &method) {
        (["submit", "pcap"], &Method::POST) => submit(service, request, limits).await,
        (["submit", "pcap"], _) => return not_allowed("POST"),
        (["jobs"], &Method::GET) => list(service, request.uri().query()).await,
        (["jobs", id], &Method::GET) => command(service, job_id(id).map(Command::Status)).await,
        (["jobs", id], &Method::DELETE) => command(service, job_id(id).map(Command::Cancel)).await,
        (["jobs", _], _) => return not_allowed("GET, DELETE"),
        (["jobs", id, "logs"], &Method::GET) => {
            command(service, job_id(id).map(Command::Logs)).await
        }
        (["jobs", id, "logs", name], &Method::GET) => {
            return log_file(service, id, name, &request)
                .await
                .unwrap_or_else(error)
        }
        (["jobs", id, "files"], &Method::GET) => {
            command(service, job_id(id).map(Command::Files)).await
        }
        // An extracted file: `extract_files/` and its path below (docs/files.md).
        (["jobs", id, "files", rest @ ..], &Method::GET) if !rest.is_empty() => {
            let name = format!("extract_files/{}", rest.join("/"));
            return log_file(service, id, &name, &request)
                .await
                .unwrap_or_else(error);
        }
        (["pool"], &Method::GET) => command(service, Ok(Command::Pool)).await,
        (["metrics"], _) => return metrics(service, &request).await,
        (["jobs"] | ["pool"] | ["jobs", _, "logs"] | ["jobs", _, "logs", _], _) => {
            return not_allowed("GET")
        }
        (["jobs", _, "files", ..], _) => return not_allowed("GET"),
        _ => Err(ServiceError::new(
            ErrorCode::NotFound,
            format!("no route {path:?} (see docs/integrations.md)"),
        )),
    };
    match answer {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(e) => error(e),
    }
}

fn health(service: &JobService, method: &Method) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return not_allowed("GET");
    }
    let (status, code) = match service.health() {
        Health::Ok => return json_response(StatusCode::OK, &json!({"status": "ok"})),
        Health::Draining => ("draining", ErrorCode::ShuttingDown),
        Health::DiskFull => ("disk_full", ErrorCode::DiskFull),
    };
    let mut response = json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({ "status": status }),
    );
    retry_after(&mut response, code);
    response
}

/// The gateway's OpenAPI 3.1 description, kept in `docs/openapi.json` (the tests hold the
/// gateway to it with schemathesis).
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// `GET /openapi.json` (no password: it describes, it reveals nothing).
fn openapi(method: &Method) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return not_allowed("GET");
    }
    let mut response = Response::new(full(OPENAPI));
    set(&mut response, header::CONTENT_TYPE, "application/json");
    response
}

/// `GET /metrics`: Prometheus's text format, or OpenMetrics when `Accept` asks for it.
async fn metrics(service: &JobService, request: &Request<Incoming>) -> Response<Body> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return not_allowed("GET");
    }
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let format = Format::from_accept(accept);
    let mut response = Response::new(full(service.metrics(format).await));
    set(&mut response, header::CONTENT_TYPE, format.content_type());
    response
}

async fn command(
    service: &JobService,
    command: Result<Command, ServiceError>,
) -> Result<Value, ServiceError> {
    service
        .execute(command?)
        .await?
        .to_json()
        .ok_or_else(|| ServiceError::new(ErrorCode::Internal, "the command does not answer JSON"))
}

async fn list(service: &JobService, query: Option<&str>) -> Result<Value, ServiceError> {
    let (mut state, mut tag, mut limit, mut since) = (None, None, None, None);
    for (key, value) in query_pairs(query, &["state", "tag", "limit", "since"])? {
        match key.as_str() {
            "state" => {
                state = Some(
                    serde_json::from_value::<JobState>(json!(value)).map_err(|_| {
                        ServiceError::bad_request(format!("unknown state {value:?}"))
                    })?,
                )
            }
            "tag" => tag = Some(value),
            "limit" => {
                // A count beyond any store's size is no limit, not an error.
                let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
                if !digits {
                    return Err(ServiceError::bad_request(format!(
                        "limit {value:?} is not a number"
                    )));
                }
                limit = Some(value.parse::<u64>().unwrap_or(u64::MAX))
            }
            _ => since = Some(value),
        }
    }
    command(
        service,
        Ok(Command::List(list_filter(state, tag, limit, since))),
    )
    .await
}

/// `POST /submit/pcap`: every `file[]` part streamed into the store as it arrives, `tag`
/// wherever it comes in the form; durable and queued before the answer.
async fn submit(
    service: &JobService,
    request: Request<Incoming>,
    limits: RouteLimits,
) -> Result<Value, ServiceError> {
    let boundary = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok())
        .ok_or_else(|| {
            ServiceError::bad_request(
                "POST /submit/pcap takes multipart/form-data (curl -F 'file[]=@x.pcap')",
            )
        })?;
    let max_upload = service.max_upload();
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let most = max_upload.saturating_mul(MAX_FILES_PER_JOB as u64 + 1);
    if let Some(length) = declared.filter(|&l| max_upload > 0 && l > most) {
        return Err(ServiceError::new(
            ErrorCode::UploadTooLarge,
            format!("the request body is {length} bytes, more than {MAX_FILES_PER_JOB} captures of max_upload ({max_upload} bytes)"),
        ));
    }
    let upload = service.open_stream(None, JobOptions::new()).await?;
    let body = BodyDataStream::new(request.into_body());
    let mut form = multer::Multipart::new(body, boundary);
    match receive(&mut form, upload, limits).await {
        Ok(upload) => Ok(json!(upload.finish().await?)),
        Err(e) => {
            drain(&mut form).await;
            Err(e)
        }
    }
}

async fn receive(
    form: &mut multer::Multipart<'static>,
    mut upload: StreamUpload,
    limits: RouteLimits,
) -> Result<StreamUpload, ServiceError> {
    let mut files = 0usize;
    let within = |what: &'static str| {
        move |_| {
            ServiceError::new(
                ErrorCode::Upload,
                format!(
                    "the client sent nothing for {:?} while {what}",
                    limits.body_timeout
                ),
            )
        }
    };
    while let Some(mut field) = tokio::time::timeout(limits.body_timeout, form.next_field())
        .await
        .map_err(within("waiting for the next form part"))?
        .map_err(form_error)?
    {
        match field.name() {
            Some("file[]") | Some("file") => {
                // A part without a file name is a form value, not a file (so Flask, and so
                // Brocapi, treats it): refused rather than taken for a capture.
                let Some(name) = field.file_name() else {
                    return Err(ServiceError::bad_request(
                        "a file[] part without a file name: send captures as files \
                         (curl -F 'file[]=@x.pcap')",
                    ));
                };
                let name = Some(part_file_name(name))
                    .filter(|n| !n.is_empty())
                    .unwrap_or("upload.pcap")
                    .to_owned();
                upload.next_file(name).await?;
                files += 1;
                while let Some(chunk) = tokio::time::timeout(limits.body_timeout, field.chunk())
                    .await
                    .map_err(within("sending a capture"))?
                    .map_err(form_error)?
                {
                    upload.write(chunk).await?;
                }
            }
            Some("tag") => {
                let mut text = Vec::new();
                while let Some(chunk) = tokio::time::timeout(limits.body_timeout, field.chunk())
                    .await
                    .map_err(within("sending the tag"))?
                    .map_err(form_error)?
                {
                    text.extend_from_slice(&chunk);
                    if text.len() as u64 > MAX_TAG_FIELD {
                        return Err(ServiceError::new(
                            ErrorCode::BadTag,
                            "the tag field is too long",
                        ));
                    }
                }
                let text = String::from_utf8(text)
                    .map_err(|_| ServiceError::new(ErrorCode::BadTag, "the tag is not UTF-8"))?;
                // Brocapi's form sends an empty tag as "no tag".
                if !text.is_empty() {
                    upload.set_tag(Tag::parse(&text)?).await?;
                }
            }
            other => {
                return Err(ServiceError::bad_request(format!(
                    "unknown form field {:?} (the form takes file[] and tag)",
                    other.unwrap_or("")
                )))
            }
        }
    }
    if files == 0 {
        return Err(ServiceError::bad_request(
            "no capture in the form: send one or more file[] parts",
        ));
    }
    Ok(upload)
}

fn form_error(e: multer::Error) -> ServiceError {
    match e {
        multer::Error::StreamReadFailed(source) => ServiceError::new(
            ErrorCode::Upload,
            format!("reading the upload failed: {source}"),
        ),
        other => ServiceError::bad_request(format!("malformed multipart form: {other}")),
    }
}

/// Reads and drops the body of a refused request (an upload without the password), within
/// [`DRAIN_LIMIT`] and [`DRAIN_TIMEOUT`], so the client reads the answer instead of a reset.
async fn drain_body(mut body: Incoming) {
    let mut left = DRAIN_LIMIT;
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(Ok(frame)) = body.frame().await {
            let read = frame.data_ref().map_or(0, |data| data.len() as u64);
            left = left.saturating_sub(read);
            if left == 0 {
                return;
            }
        }
    })
    .await;
}

/// Reads and drops what remains of a refused form, within [`DRAIN_LIMIT`] and
/// [`DRAIN_TIMEOUT`].
async fn drain(form: &mut multer::Multipart<'static>) {
    let mut left = DRAIN_LIMIT;
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Ok(Some(mut field)) = form.next_field().await {
            while let Ok(Some(chunk)) = field.chunk().await {
                left = left.saturating_sub(chunk.len() as u64);
                if left == 0 {
                    return;
                }
            }
        }
    })
    .await;
}

/// `GET /jobs/ID/logs/NAME`: the log streamed from disk, with single byte ranges.
async fn log_file(
    service: &JobService,
    id: &str,
    name: &str,
    request: &Request<Incoming>,
) -> Result<Response<Body>, ServiceError> {
    let id = job_id(id)?;
    let (file, size) = service.open_log(&id, name).await?;
    let range = byte_range(
        request
            .headers()
            .get(header::RANGE)
            .map(HeaderValue::as_bytes),
        size,
    );
    let (status, start, end) = match range {
        RangeRequest::Whole => (StatusCode::OK, 0, size),
        RangeRequest::Partial(r) => (StatusCode::PARTIAL_CONTENT, r.start, r.end),
        RangeRequest::Unsatisfiable => {
            let mut response = error(ServiceError::new(
                ErrorCode::BadRequest,
                format!("the range starts past the end of {name} ({size} bytes)"),
            ));
            *response.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            set(
                &mut response,
                header::CONTENT_RANGE,
                &format!("bytes */{size}"),
            );
            return Ok(response);
        }
    };
    let mut file = tokio::fs::File::from_std(file);
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| ServiceError::new(ErrorCode::Io, format!("{name}: {e}")))?;
    let reader = file.take(end - start);
    let frames = futures_util::stream::try_unfold(reader, |mut reader| async move {
        let mut buf = vec![0u8; LOG_CHUNK];
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((Frame::data(Bytes::from(buf)), reader)))
    });
    let body = StreamBody::new(frames).boxed();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let content_type = if name.starts_with("extract_files/") {
        "application/octet-stream"
    } else if name.ends_with(".json") {
        "application/x-ndjson"
    } else {
        "text/plain; charset=utf-8"
    };
    set(&mut response, header::CONTENT_TYPE, content_type);
    set(&mut response, header::ACCEPT_RANGES, "bytes");
    set(
        &mut response,
        header::CONTENT_LENGTH,
        &(end - start).to_string(),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        set(
            &mut response,
            header::CONTENT_RANGE,
            &format!("bytes {start}-{}/{size}", end - 1),
        );
    }
    Ok(response)
}

fn set(response: &mut Response<Body>, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut body = serde_json::to_vec(value).unwrap_or_default();
    body.push(b'\n');
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    set(&mut response, header::CONTENT_TYPE, "application/json");
    response
}

fn retry_after(response: &mut Response<Body>, code: ErrorCode) {
    if let Some(after) = code.retry_after() {
        set(
            response,
            header::RETRY_AFTER,
            &after.as_secs().max(1).to_string(),
        );
    }
}

/// A refusal as a status and `{"error": code, "message": text}`.
pub fn error(e: ServiceError) -> Response<Body> {
    let status =
        StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(
        status,
        &json!({"error": e.code.as_str(), "message": e.message}),
    );
    retry_after(&mut response, e.code);
    response
}

fn unauthorized(message: &str) -> Response<Body> {
    let mut response = json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"error": "unauthorized", "message": message}),
    );
    set(
        &mut response,
        header::WWW_AUTHENTICATE,
        "Basic realm=\"pcapd\", charset=\"UTF-8\"",
    );
    response
}

fn not_allowed(allow: &str) -> Response<Body> {
    let mut response = json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({"error": "method_not_allowed", "message": format!("this route takes {allow}")}),
    );
    set(&mut response, header::ALLOW, allow);
    response
}

#[cfg(test)]
mod tests {
    use super::OPENAPI;

    #[test]
    fn the_openapi_document_is_json_of_this_version() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("docs/openapi.json");
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        for path in [
            "/submit/pcap",
            "/jobs/{job_id}/logs/{name}",
            "/metrics",
            "/healthz",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path}");
        }
    }
}
