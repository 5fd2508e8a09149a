//! Files fetched in pieces by HTTP range requests, over one connection or several. Zeek
//! names the file of a `206` reply to a request that asked for a range by the client and
//! the URL (`base/protocols/http/files.zeek`), not by the connection, and places each piece
//! at the offset its `Content-Range` gives; the file does not end with the message. So all
//! the pieces a client fetches of one URL make one file: it ends once every byte up to its
//! announced size was seen, when no piece came for Zeek's file timeout, or at the end of the
//! capture, and files.log gets a line for each connection that carried a piece, all with the
//! file's final counts (seen bytes, and the holes below the highest byte seen as missing).

use std::collections::HashMap;
use std::net::IpAddr;

use super::FileState;
use crate::analyzer::app::ConnInfo;
use crate::analyzer::log::LogSink;

/// Zeek's `Files::default_timeout_interval`: a file no byte came for in this long ends.
const FILE_TIMEOUT_SECS: f64 = 120.0;
/// Most ranged files open at once; beyond it the one idle longest ends early, so that a
/// capture of range requests for ever new URLs keeps memory bounded.
const MAX_OPEN: usize = 10_000;
/// Most connections a ranged file lists (a files.log line each); pieces carried by more
/// still count.
const MAX_CONNS: usize = 1_000;

/// What names a ranged file: the client and the URL it fetched (Zeek's `HTTP::build_url`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RangeKey {
    pub client: IpAddr,
    pub url: String,
}

/// The byte ranges of a file seen so far, sorted and merged.
#[derive(Debug, Default)]
struct Coverage {
    spans: Vec<(u64, u64)>,
}

impl Coverage {
    /// Adds `[start, end)`.
    fn add(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let (mut start, mut end) = (start, end);
        self.spans.retain(|&(s, e)| {
            let touches = s <= end && start <= e;
            if touches {
                start = start.min(s);
                end = end.max(e);
            }
            !touches
        });
        let at = self.spans.partition_point(|&(s, _)| s < start);
        self.spans.insert(at, (start, end));
    }

    fn seen(&self) -> u64 {
        self.spans.iter().map(|(s, e)| e - s).sum()
    }

    /// The bytes below the highest one seen that were not.
    fn missing(&self) -> u64 {
        self.spans.last().map_or(0, |&(_, end)| end) - self.seen()
    }
}

#[derive(Debug)]
struct RangeFile {
    file: FileState,
    coverage: Coverage,
    /// The connections that carried pieces, in the order they first did.
    conns: Vec<ConnInfo>,
}

impl RangeFile {
    /// Ends the file and writes its files.log lines.
    fn end(mut self, logs: &mut dyn LogSink) {
        self.file.end();
        self.file
            .set_counts(self.coverage.seen(), self.coverage.missing());
        for conn in &self.conns {
            self.file.write_log(conn, false, logs);
        }
    }
}

/// The ranged files of a run that are still open (part of the analyzers' run-wide state).
#[derive(Debug, Default)]
pub struct RangeFiles {
    open: HashMap<RangeKey, RangeFile>,
}

impl RangeFiles {
    /// Whether the file `key` names is open.
    pub(crate) fn is_open(&self, key: &RangeKey) -> bool {
        self.open.contains_key(key)
    }

    /// Opens the file `key` names (its first piece is about to come); at [`MAX_OPEN`] the
    /// tenth of the files idle longest end first (a tenth at a time, so that a stream of
    /// new URLs costs one sort per thousand files, not a scan per file).
    pub(crate) fn open(&mut self, key: RangeKey, file: FileState, logs: &mut dyn LogSink) {
        if self.open.len() >= MAX_OPEN && !self.open.contains_key(&key) {
            let mut by_idle: Vec<(f64, RangeKey)> = self
                .open
                .iter()
                .map(|(k, f)| (f.file.last_ts(), k.clone()))
                .collect();
            by_idle.sort_by(|a, b| a.0.total_cmp(&b.0));
            let idle = by_idle.into_iter().take(MAX_OPEN / 10).map(|(_, k)| k);
            self.end_all(idle.collect(), logs);
        }
        self.open.entry(key).or_insert(RangeFile {
            file,
            coverage: Coverage::default(),
            conns: Vec::new(),
        });
    }

    /// The id of the open file `key` names.
    pub(crate) fn fuid(&self, key: &RangeKey) -> Option<&str> {
        self.open.get(key).map(|f| f.file.fuid.as_str())
    }

    /// A piece of the open file `key` names (nothing if it is not open): `data` at
    /// `offset`, carried by `conn` at `ts`. The file ends here when this piece completes it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn piece(
        &mut self,
        key: &RangeKey,
        conn: &ConnInfo,
        ts: f64,
        offset: u64,
        data: &[u8],
        weirds: &mut Vec<(&'static str, String)>,
        logs: &mut dyn LogSink,
    ) {
        let Some(f) = self.open.get_mut(key) else {
            return;
        };
        // The connection of the last piece is the likely one: looked at first.
        if f.conns.len() < MAX_CONNS && !f.conns.iter().rev().any(|c| c.uid == conn.uid) {
            f.conns.push(conn.clone());
        }
        f.coverage
            .add(offset, offset.saturating_add(data.len() as u64));
        f.file.data_at(ts, offset, data, weirds);
        let complete = f.file.total().is_some_and(|total| {
            f.coverage
                .spans
                .first()
                .is_some_and(|&(s, e)| s == 0 && e >= total)
        });
        if complete {
            if let Some(done) = self.open.remove(key) {
                done.end(logs);
            }
        }
    }

    /// Ends the files no piece came for in Zeek's file timeout, by capture time `now`.
    pub fn expire(&mut self, now: f64, logs: &mut dyn LogSink) {
        if self.open.is_empty() {
            return;
        }
        let idle: Vec<RangeKey> = self
            .open
            .iter()
            .filter(|(_, f)| now - f.file.last_ts() > FILE_TIMEOUT_SECS)
            .map(|(k, _)| k.clone())
            .collect();
        self.end_all(idle, logs);
    }

    /// End of the capture: every file still open ends.
    pub fn finish(&mut self, logs: &mut dyn LogSink) {
        let keys: Vec<RangeKey> = self.open.keys().cloned().collect();
        self.end_all(keys, logs);
    }

    /// Ends `keys`' files in the order they started, so that the log does not depend on
    /// the map's order.
    fn end_all(&mut self, keys: Vec<RangeKey>, logs: &mut dyn LogSink) {
        let mut files: Vec<RangeFile> = keys.iter().filter_map(|k| self.open.remove(k)).collect();
        files.sort_by(|a, b| a.file.first_ts().total_cmp(&b.file.first_ts()));
        for f in files {
            f.end(logs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log sink that counts the lines written.
    #[derive(Default)]
    struct Count(usize);

    impl LogSink for Count {
        fn write(&mut self, _row: &dyn crate::analyzer::log::LogRow) {
            self.0 += 1;
        }
    }

    #[test]
    fn open_files_are_bounded_and_all_end() {
        let conn = ConnInfo {
            uid: crate::analyzer::uid::Uid::from_bits(1),
            orig_h: "10.0.0.1".parse().unwrap(),
            orig_p: 40000,
            resp_h: "10.0.0.2".parse().unwrap(),
            resp_p: 80,
            transport: crate::analyzer::app::Transport::Tcp,
        };
        let mut files = RangeFiles::default();
        let mut logs = Count::default();
        let mut weirds = Vec::new();
        for n in 0..MAX_OPEN + 5 {
            let key = RangeKey {
                client: conn.orig_h,
                url: format!("host/{n}"),
            };
            let ts = n as f64 / 1000.0;
            let file = FileState::new("HTTP", format!("F{n}"), ts).sized(Some(100));
            files.open(key.clone(), file, &mut logs);
            files.piece(&key, &conn, ts, 10, b"0123456789", &mut weirds, &mut logs);
        }
        assert!(files.open.len() <= MAX_OPEN);
        assert_eq!(logs.0, MAX_OPEN / 10, "the idle tenth ended early");
        files.finish(&mut logs);
        assert_eq!(logs.0, MAX_OPEN + 5, "every file wrote its line");
    }

    #[test]
    fn coverage_merges_and_counts_holes() {
        let mut c = Coverage::default();
        c.add(100_000, 110_001);
        c.add(0, 10_001);
        c.add(200_000, 210_001);
        c.add(105_000, 106_000);
        assert_eq!(c.seen(), 30_003);
        assert_eq!(c.missing(), 179_998);
        c.add(10_001, 100_000);
        assert_eq!(c.spans, vec![(0, 110_001), (200_000, 210_001)]);
    }
}
