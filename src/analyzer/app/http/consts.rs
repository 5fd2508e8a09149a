//! HTTP name tables transcribed from Zeek's `base/protocols/http/main.zeek` (`http_methods`,
//! `proxy_headers`) and the ports Zeek's HTTP analyzer registers for: keep them in step with
//! those scripts.

/// Methods Zeek knows (`HTTP::http_methods`, `base/protocols/http/main.zeek`); others raise
/// `unknown_HTTP_method`.
pub(crate) const KNOWN_METHODS: &[&str] = &[
    "GET",
    "POST",
    "HEAD",
    "OPTIONS",
    "PUT",
    "DELETE",
    "TRACE",
    "CONNECT",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "POLL",
    "REPORT",
    "SUBSCRIBE",
    "BMOVE",
    "SEARCH",
    "QUERY",
];

/// Client headers Zeek reports in `proxied` (`HTTP::proxy_headers`,
/// `base/protocols/http/main.zeek`).
pub(crate) const PROXY_HEADERS: &[&str] = &[
    "FORWARDED",
    "X-FORWARDED-FOR",
    "X-FORWARDED-FROM",
    "CLIENT-IP",
    "VIA",
    "XROXY-CONNECTION",
    "PROXY-CONNECTION",
];

/// Ports Zeek's HTTP analyzer is registered for (`HTTP::ports`,
/// `base/protocols/http/main.zeek`): there a parsed request is enough to analyze the
/// connection.
pub(crate) const HTTP_PORTS: [u16; 8] = [80, 81, 631, 1080, 3128, 8000, 8080, 8888];
