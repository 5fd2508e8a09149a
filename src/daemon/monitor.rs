//! bui-monitor compatibility: its functions (`monitor_version`, `client_version`,
//! `server_version`, `batch_list_supported`, `statistics`) and burp status queries, answered
//! in bui-monitor 1.1.1's formats so Burp-UI's parallel backend uses pcapd unchanged.
//!
//! What bui-monitor does, and so pcapd: version functions answer bare text, not JSON; an
//! empty answer is `KO`; `statistics` is `{"alive", "server_version", "client_version"}`
//! (pcapd's own figures ride along under `pcapd`, a key Burp-UI ignores). A query's `timeout`
//! field is ignored (`[Burp] timeout` applies); with `cache` (default true) an answer up to
//! [`CACHE_TTL`] old is served from memory. A burp warning (unknown client, nothing to
//! report) is `KO`, and so is a child that hung, died or broke the dialect: Burp-UI reads both
//! as "no data". With other backends the functions keep bui-monitor's formats and queries
//! answer `ER unsupported`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

use super::state::Daemon;
use crate::config::BackendKind;
use crate::pool::{QueryError, QueryOutcome, Rejected};
use crate::protocol::burp::{QueryAnswer, StatusQuery, BATCH_LIST_SINCE};
use crate::protocol::{ErrorCode, Reply};

/// How long an answer is served from the cache (bui-monitor's `_time_to_cache`).
pub const CACHE_TTL: Duration = Duration::from_secs(5);
/// Bytes of answers the cache holds at most; past it, it starts over.
const CACHE_MAX_BYTES: usize = 64 << 20;

/// The value bui-monitor reports for a version it does not know.
const UNKNOWN_VERSION: &str = "unknown";

/// Recent answers by query, each served for [`CACHE_TTL`] after it was fetched.
#[derive(Default)]
pub struct QueryCache {
    inner: Mutex<CacheEntries>,
}

#[derive(Default)]
struct CacheEntries {
    answers: HashMap<StatusQuery, (Instant, QueryAnswer)>,
    bytes: usize,
}

fn answer_bytes(answer: &QueryAnswer) -> usize {
    match answer {
        QueryAnswer::Document(doc) => doc.len(),
        QueryAnswer::Warning(text) => text.len(),
    }
}

impl QueryCache {
    pub fn get(&self, query: &StatusQuery, now: Instant) -> Option<QueryAnswer> {
        let entries = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match entries.answers.get(query) {
            Some((fetched, answer)) if now.saturating_duration_since(*fetched) < CACHE_TTL => {
                Some(answer.clone())
            }
            _ => None,
        }
    }

    pub fn put(&self, query: StatusQuery, answer: QueryAnswer, now: Instant) {
        let mut entries = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let size = answer_bytes(&answer);
        if let Some((_, old)) = entries.answers.insert(query, (now, answer)) {
            entries.bytes -= answer_bytes(&old);
        }
        entries.bytes += size;
        if entries.bytes > CACHE_MAX_BYTES {
            entries
                .answers
                .retain(|_, (fetched, _)| now.saturating_duration_since(*fetched) < CACHE_TTL);
            entries.bytes = entries.answers.values().map(|(_, a)| answer_bytes(a)).sum();
            if entries.bytes > CACHE_MAX_BYTES {
                entries.answers.clear();
                entries.bytes = 0;
            }
        }
    }
}

/// Bare text as bui-monitor sends it: `OK` + the text, or `KO` when there is none.
fn text_reply(text: Option<String>) -> Reply {
    match text {
        Some(text) if !text.is_empty() => Reply::OkRaw(text.into_bytes()),
        _ => Reply::Ko,
    }
}

impl Daemon {
    fn runs_burp(&self) -> bool {
        self.config().global.backend == BackendKind::Burp
    }

    /// Answers `func` if it is one of bui-monitor's functions.
    pub(super) async fn monitor_function(&self, func: &str) -> Option<Reply> {
        let server_version = self.pool.burp_server_version();
        let reply = match func {
            "monitor_version" => text_reply(Some(env!("CARGO_PKG_VERSION").to_owned())),
            "client_version" => text_reply(self.burp_client_version.map(|v| v.to_string())),
            "server_version" => text_reply(server_version.map(|v| v.to_string())),
            "batch_list_supported" => {
                Reply::Ok(json!(server_version.is_some_and(|v| v >= BATCH_LIST_SINCE)))
            }
            "statistics" => {
                let pool = self.pool_status().await;
                let version = |v: Option<String>| v.unwrap_or_else(|| UNKNOWN_VERSION.to_owned());
                Reply::Ok(json!({
                    "alive": pool.alive(),
                    "server_version": version(server_version.map(|v| v.to_string())),
                    "client_version": version(self.burp_client_version.map(|v| v.to_string())),
                    "pcapd": {
                        "version": env!("CARGO_PKG_VERSION"),
                        "uptime": self.uptime_secs(),
                        "accepted": self.accepted.load(Ordering::Relaxed),
                        "auth_failures": self.auth.failures_total(),
                        "pool": pool,
                    },
                }))
            }
            _ => return None,
        };
        Some(reply)
    }

    /// A burp status query (`{"query": …, "cache": …}`).
    pub(super) async fn burp_query(&self, raw: &str, cache: bool) -> Reply {
        if !self.runs_burp() {
            return Reply::error(
                ErrorCode::Unsupported,
                format!(
                    "burp status queries need backend = burp; this daemon runs backend = {}",
                    self.config().global.backend.name()
                ),
            );
        }
        let query = match StatusQuery::parse(raw) {
            Ok(query) => query,
            Err(e) => return Reply::error(ErrorCode::BadRequest, e.to_string()),
        };
        if cache {
            if let Some(answer) = self.query_cache.get(&query, Instant::now()) {
                return answer_reply(answer);
            }
        }
        match self.pool.query(query.clone()).await {
            Ok(QueryOutcome::Answered(answer)) => {
                if cache {
                    self.query_cache.put(query, answer.clone(), Instant::now());
                }
                answer_reply(answer)
            }
            Ok(QueryOutcome::NoAnswer { reason }) => {
                tracing::warn!(query = query.as_str(), reason, "burp query got no answer");
                Reply::Ko
            }
            // The pool counted the refusal.
            Err(QueryError::Rejected(Rejected::QueueFull { max })) => Reply::error(
                ErrorCode::QueueFull,
                format!(
                    "the query queue is full ({max} waiting for a burp child); try again later"
                ),
            ),
            Err(QueryError::Rejected(Rejected::ShuttingDown) | QueryError::Stopped) => {
                Reply::error(
                    ErrorCode::ShuttingDown,
                    "the daemon is shutting down; ask again later",
                )
            }
            Err(e @ QueryError::NoChildFree { .. }) => {
                Reply::error(ErrorCode::Unavailable, e.to_string())
            }
            Err(e @ QueryError::Rejected(Rejected::WrongDialect { .. })) => {
                Reply::error(ErrorCode::Internal, e.to_string())
            }
        }
    }
}

fn answer_reply(answer: QueryAnswer) -> Reply {
    match answer {
        QueryAnswer::Document(doc) => Reply::OkRaw(doc),
        QueryAnswer::Warning(_) => Reply::Ko,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str) -> StatusQuery {
        StatusQuery::parse(text).unwrap()
    }

    #[test]
    fn cached_answers_expire_after_the_ttl() {
        let cache = QueryCache::default();
        let t0 = Instant::now();
        let doc = QueryAnswer::Document(b"{}".to_vec());
        cache.put(query("c:"), doc.clone(), t0);
        assert_eq!(
            cache.get(&query("c:\n"), t0 + Duration::from_secs(4)),
            Some(doc)
        );
        assert_eq!(cache.get(&query("c:"), t0 + CACHE_TTL), None);
        assert_eq!(cache.get(&query("c:other"), t0), None);
    }

    #[test]
    fn the_cache_is_bounded_in_bytes() {
        let cache = QueryCache::default();
        let t0 = Instant::now();
        let big = QueryAnswer::Document(vec![b'x'; CACHE_MAX_BYTES / 2 + 1]);
        cache.put(query("c:a"), big.clone(), t0);
        cache.put(query("c:b"), big.clone(), t0 + CACHE_TTL);
        // The first expired and was dropped to make room for the second.
        assert_eq!(cache.get(&query("c:b"), t0 + CACHE_TTL), Some(big));
        let entries = cache.inner.lock().unwrap();
        assert_eq!(entries.answers.len(), 1);
        assert!(entries.bytes <= CACHE_MAX_BYTES);
    }

    #[test]
    fn empty_text_is_ko_as_bui_monitor_answers_it() {
        assert_eq!(text_reply(None), Reply::Ko);
        assert_eq!(text_reply(Some(String::new())), Reply::Ko);
        assert_eq!(
            text_reply(Some("3.1.4".into())),
            Reply::OkRaw(b"3.1.4".to_vec())
        );
    }
}
