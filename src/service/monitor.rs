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
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::answer::{Answer, DaemonFigures, Statistics};
use super::command::MonitorFunction;
use super::ServiceError;
use crate::pool::{PoolHandle, QueryError, QueryOutcome, Rejected};
use crate::protocol::burp::{BurpVersion, QueryAnswer, StatusQuery, BATCH_LIST_SINCE};
use crate::protocol::ErrorCode;

/// How long an answer is served from the cache (bui-monitor's `_time_to_cache`).
pub const CACHE_TTL: Duration = Duration::from_secs(5);
/// Bytes of answers the cache holds at most; past it, it starts over.
const CACHE_MAX_BYTES: usize = 64 << 20;

/// The value bui-monitor reports for a version it does not know.
const UNKNOWN_VERSION: &str = "unknown";

/// Recent answers by query, each served for [`CACHE_TTL`] after it was fetched.
#[derive(Default)]
struct QueryCache {
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
    fn get(&self, query: &StatusQuery, now: Instant) -> Option<QueryAnswer> {
        let entries = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match entries.answers.get(query) {
            Some((fetched, answer)) if now.saturating_duration_since(*fetched) < CACHE_TTL => {
                Some(answer.clone())
            }
            _ => None,
        }
    }

    fn put(&self, query: StatusQuery, answer: QueryAnswer, now: Instant) {
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

/// bui-monitor's answers about versions and the pool, and the burp status query path.
pub struct BurpMonitor {
    /// `burpbin -V`, checked at start (backend = burp only).
    client_version: Option<BurpVersion>,
    cache: QueryCache,
}

impl BurpMonitor {
    pub fn new(client_version: Option<BurpVersion>) -> BurpMonitor {
        BurpMonitor {
            client_version,
            cache: QueryCache::default(),
        }
    }

    /// The answer to one of bui-monitor's version functions.
    pub fn version_function(&self, function: MonitorFunction, pool: &PoolHandle) -> Answer {
        let server_version = pool.burp_server_version();
        match function {
            MonitorFunction::MonitorVersion => text(Some(env!("CARGO_PKG_VERSION").to_owned())),
            MonitorFunction::ClientVersion => text(self.client_version.map(|v| v.to_string())),
            MonitorFunction::ServerVersion => text(server_version.map(|v| v.to_string())),
            MonitorFunction::BatchListSupported => {
                Answer::Flag(server_version.is_some_and(|v| v >= BATCH_LIST_SINCE))
            }
        }
    }

    /// bui-monitor's `statistics`, with pcapd's `figures` riding along.
    pub fn statistics(&self, pool: &PoolHandle, figures: DaemonFigures) -> Statistics {
        let version = |v: Option<String>| v.unwrap_or_else(|| UNKNOWN_VERSION.to_owned());
        Statistics {
            alive: figures.pool.alive(),
            server_version: version(pool.burp_server_version().map(|v| v.to_string())),
            client_version: version(self.client_version.map(|v| v.to_string())),
            pcapd: figures,
        }
    }

    /// A burp status query (`{"query": …, "cache": …}`) on a pool of burp children.
    pub async fn query(
        &self,
        pool: &PoolHandle,
        raw: &str,
        cache: bool,
    ) -> Result<Answer, ServiceError> {
        let query = StatusQuery::parse(raw)
            .map_err(|e| ServiceError::new(ErrorCode::BadRequest, e.to_string()))?;
        if cache {
            if let Some(answer) = self.cache.get(&query, Instant::now()) {
                return Ok(burp_answer(answer));
            }
        }
        match pool.query(query.clone()).await {
            Ok(QueryOutcome::Answered(answer)) => {
                if cache {
                    self.cache.put(query, answer.clone(), Instant::now());
                }
                Ok(burp_answer(answer))
            }
            Ok(QueryOutcome::NoAnswer { reason }) => {
                tracing::warn!(query = query.as_str(), reason, "burp query got no answer");
                Ok(Answer::Burp(None))
            }
            // The pool counted the refusal.
            Err(QueryError::Rejected(Rejected::QueueFull { max })) => Err(ServiceError::new(
                ErrorCode::QueueFull,
                format!(
                    "the query queue is full ({max} waiting for a burp child); try again later"
                ),
            )),
            Err(QueryError::Rejected(Rejected::ShuttingDown) | QueryError::Stopped) => {
                Err(ServiceError::new(
                    ErrorCode::ShuttingDown,
                    "the daemon is shutting down; ask again later",
                ))
            }
            Err(e @ QueryError::NoChildFree { .. }) => {
                Err(ServiceError::new(ErrorCode::Unavailable, e.to_string()))
            }
            Err(e @ QueryError::Rejected(Rejected::WrongDialect { .. })) => {
                Err(ServiceError::new(ErrorCode::Internal, e.to_string()))
            }
        }
    }
}

/// Bare text as bui-monitor sends it; an empty text is no answer (`KO`).
fn text(value: Option<String>) -> Answer {
    Answer::Text(value.filter(|t| !t.is_empty()))
}

/// A burp warning (unknown client, nothing to report) is no answer, as in bui-monitor.
fn burp_answer(answer: QueryAnswer) -> Answer {
    match answer {
        QueryAnswer::Document(doc) => Answer::Burp(Some(doc)),
        QueryAnswer::Warning(_) => Answer::Burp(None),
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
    fn empty_text_is_no_answer_as_bui_monitor_answers_it() {
        assert!(matches!(text(None), Answer::Text(None)));
        assert!(matches!(text(Some(String::new())), Answer::Text(None)));
        assert!(matches!(text(Some("3.1.4".into())), Answer::Text(Some(t)) if t == "3.1.4"));
    }
}
