//! files.log: its row and schema.

use crate::analyzer::log::{log_row, ConnId, Interval, Set, Time};

log_row! {
    /// One files.log line (Zeek's `Files::Info`, `base/frameworks/files/main.zeek`, with
    /// the columns of `base/files/hash` and `base/files/extract`, loaded by a default run).
    pub struct FilesRow<'a> => FILES_SCHEMA("files") {
        ts: Time,
        fuid: &'a str,
        id: ConnId<'a>,
        source: &'a str,
        depth: u64,
        analyzers: Set<'a, &'a str>,
        mime_type: Option<&'a str>,
        filename: Option<&'a str>,
        duration: Interval,
        local_orig: Option<bool>,
        is_orig: bool,
        seen_bytes: u64,
        total_bytes: Option<u64>,
        missing_bytes: u64,
        overflow_bytes: u64,
        timedout: bool,
        parent_fuid: Option<&'a str>,
        md5: Option<&'a str>,
        sha1: Option<&'a str>,
        sha256: Option<&'a str>,
        extracted: Option<&'a str>,
        extracted_cutoff: Option<bool>,
        extracted_size: Option<u64>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::app::tests::conn;
    use crate::analyzer::app::Transport;
    use crate::analyzer::log::tests::assert_fully_set_row_matches_schema;

    #[test]
    fn files_row_matches_its_schema() {
        let c = conn(Transport::Tcp, 80);
        assert_fully_set_row_matches_schema(&FilesRow {
            ts: Time(1.0),
            fuid: "Fx",
            id: c.id(),
            source: "HTTP",
            depth: 0,
            analyzers: Set(&["SHA256"]),
            mime_type: Some("text/plain"),
            filename: Some("a.txt"),
            duration: Interval(0.5),
            local_orig: Some(false),
            is_orig: false,
            seen_bytes: 5,
            total_bytes: Some(5),
            missing_bytes: 0,
            overflow_bytes: 0,
            timedout: false,
            parent_fuid: Some("Fp"),
            md5: Some("00"),
            sha1: Some("00"),
            sha256: Some("00"),
            extracted: Some("x"),
            extracted_cutoff: Some(false),
            extracted_size: Some(5),
        });
    }
}
