//! http.log: its row and schema.

use crate::analyzer::log::{log_row, ConnId, Enum, Set, Time, Vector};

log_row! {
    /// One http.log line (Zeek's `HTTP::Info`, `base/protocols/http/main.zeek`, with the
    /// file columns of `base/protocols/http/entities.zeek`).
    pub struct HttpRow<'a> => HTTP_SCHEMA("http") {
        ts: Time,
        id: ConnId<'a>,
        trans_depth: u64,
        method: Option<&'a str>,
        host: Option<&'a str>,
        uri: Option<&'a str>,
        referrer: Option<&'a str>,
        version: Option<&'a str>,
        user_agent: Option<&'a str>,
        origin: Option<&'a str>,
        request_body_len: u64,
        response_body_len: u64,
        status_code: Option<u64>,
        status_msg: Option<&'a str>,
        info_code: Option<u64>,
        info_msg: Option<&'a str>,
        tags: Set<'a, Enum>,
        username: Option<&'a str>,
        password: Option<&'a str>,
        proxied: Option<Set<'a, String>>,
        orig_fuids: Option<Vector<'a, String>>,
        orig_filenames: Option<Vector<'a, String>>,
        orig_mime_types: Option<Vector<'a, &'static str>>,
        resp_fuids: Option<Vector<'a, String>>,
        resp_filenames: Option<Vector<'a, String>>,
        resp_mime_types: Option<Vector<'a, &'static str>>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::app::tests::conn;
    use crate::analyzer::app::Transport;
    use crate::analyzer::log::tests::assert_fully_set_row_matches_schema;

    #[test]
    fn http_row_matches_its_schema() {
        let c = conn(Transport::Tcp, 80);
        let strings = ["x".to_string()];
        let mimes = ["text/plain"];
        assert_fully_set_row_matches_schema(&HttpRow {
            ts: Time(1.0),
            id: c.id(),
            trans_depth: 1,
            method: Some("GET"),
            host: Some("h"),
            uri: Some("/"),
            referrer: Some("r"),
            version: Some("1.1"),
            user_agent: Some("ua"),
            origin: Some("o"),
            request_body_len: 0,
            response_body_len: 5,
            status_code: Some(200),
            status_msg: Some("OK"),
            info_code: Some(100),
            info_msg: Some("Continue"),
            tags: Set(&[Enum("HTTP::URI_SQLI")]),
            username: Some("u"),
            password: Some("p"),
            proxied: Some(Set(&strings)),
            orig_fuids: Some(Vector(&strings)),
            orig_filenames: Some(Vector(&strings)),
            orig_mime_types: Some(Vector(&mimes)),
            resp_fuids: Some(Vector(&strings)),
            resp_filenames: Some(Vector(&strings)),
            resp_mime_types: Some(Vector(&mimes)),
        });
    }
}
