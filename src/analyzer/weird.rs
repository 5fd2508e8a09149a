//! weird.log: its row and schema, and the rate limiting of weirds that are not tied to a
//! connection.

use std::collections::HashMap;
use std::net::IpAddr;

use super::log::{log_row, Columns, ConnId, LogSink, Time, Value};

log_row! {
    /// One weird.log line (Zeek's `Weird::Info`, `base/frameworks/notice/weird.zeek`).
    pub struct WeirdRow<'a> => WEIRD_SCHEMA("weird") {
        ts: Time,
        id: WeirdOrigin<'a>,
        name: &'a str,
        addl: Option<&'a str>,
        notice: bool,
        peer: &'a str,
        source: Option<&'a str>,
    }
}

/// What a weird is about: a connection, or a packet that has none (its addresses when
/// they were decoded). Fills the same `uid`/`id.*` columns as [`ConnId`]; those of a
/// packet weird are unset except the addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeirdOrigin<'a> {
    Conn(ConnId<'a>),
    Packet(Option<(IpAddr, IpAddr)>),
}

impl Columns for WeirdOrigin<'_> {
    const NAMES: &'static [&'static str] = <ConnId<'static> as Columns>::NAMES;
    const TYPES: &'static [&'static str] = <ConnId<'static> as Columns>::TYPES;
    fn emit(&self, out: &mut dyn FnMut(Value<'_>)) {
        match *self {
            WeirdOrigin::Conn(id) => id.emit(out),
            WeirdOrigin::Packet(addrs) => {
                let (orig, resp) = addrs.map_or((Value::Unset, Value::Unset), |(s, d)| {
                    (Value::Addr(s), Value::Addr(d))
                });
                for v in [Value::Unset, orig, Value::Unset, resp, Value::Unset] {
                    out(v);
                }
            }
        }
    }
}

/// Lines logged per weird name for weirds without a connection; later ones are counted only
/// (Zeek samples repeated weirds too, so a broken capture cannot flood the log).
const MAX_UNATTACHED_PER_NAME: u32 = 1000;

/// Every weird is a local observation, never a cluster peer's.
const PEER: &str = "zeek";

/// The connection a weird belongs to (the flow table's name for a [`ConnId`]).
pub type WeirdConn<'a> = ConnId<'a>;

/// Writes weird.log lines.
#[derive(Default)]
pub struct WeirdLog {
    unattached: HashMap<&'static str, u32>,
}

impl WeirdLog {
    /// A weird of a connection (deduplication per connection is the caller's job).
    pub fn conn(
        &mut self,
        sink: &mut dyn LogSink,
        ts: f64,
        conn: &WeirdConn<'_>,
        name: &str,
        addl: &str,
        source: &str,
    ) {
        sink.write(&WeirdRow {
            ts: Time(ts),
            id: WeirdOrigin::Conn(*conn),
            name,
            addl: non_empty(addl),
            notice: false,
            peer: PEER,
            source: non_empty(source),
        });
    }

    /// A weird about a packet that has no connection (`flow` = its addresses, if decoded).
    pub fn unattached(
        &mut self,
        sink: &mut dyn LogSink,
        ts: f64,
        flow: Option<(IpAddr, IpAddr)>,
        name: &'static str,
        source: &str,
    ) {
        let seen = self.unattached.entry(name).or_insert(0);
        *seen += 1;
        if *seen > MAX_UNATTACHED_PER_NAME {
            return;
        }
        sink.write(&WeirdRow {
            ts: Time(ts),
            id: WeirdOrigin::Packet(flow),
            name,
            addl: None,
            notice: false,
            peer: PEER,
            source: non_empty(source),
        });
    }
}

/// Zeek leaves an empty `addl`/`source` unset.
fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::log::tests::{
        assert_fully_set_row_matches_schema, checked_values, OwnedValue,
    };
    use crate::analyzer::log::LogRow;

    /// Keeps the rows written to it, checked against their schema.
    #[derive(Default)]
    struct Rows(Vec<Vec<OwnedValue>>);

    impl LogSink for Rows {
        fn write(&mut self, row: &dyn LogRow) {
            self.0.push(checked_values(row));
        }
    }

    fn addr(s: &str) -> IpAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn weird_row_matches_its_schema() {
        assert_fully_set_row_matches_schema(&WeirdRow {
            ts: Time(1.0),
            id: WeirdOrigin::Conn(ConnId {
                uid: "Cx",
                orig_h: addr("10.0.0.1"),
                orig_p: 1,
                resp_h: addr("10.0.0.2"),
                resp_p: 2,
            }),
            name: "bad_TCP_checksum",
            addl: Some("x"),
            notice: false,
            peer: PEER,
            source: Some("TCP"),
        });
    }

    #[test]
    fn packet_weirds_leave_uid_and_ports_unset_and_are_limited() {
        let mut log = WeirdLog::default();
        let mut rows = Rows::default();
        let flow = Some((addr("10.0.0.1"), addr("10.0.0.2")));
        for _ in 0..MAX_UNATTACHED_PER_NAME + 5 {
            log.unattached(&mut rows, 2.0, flow, "truncated_IP", "IP");
        }
        assert_eq!(rows.0.len(), MAX_UNATTACHED_PER_NAME as usize);
        let row = &rows.0[0];
        assert_eq!(row[1], OwnedValue::Unset);
        assert_eq!(row[2], OwnedValue::Addr(addr("10.0.0.1")));
        assert_eq!(row[3], OwnedValue::Unset);
        assert_eq!(row[4], OwnedValue::Addr(addr("10.0.0.2")));
        assert_eq!(row[5], OwnedValue::Unset);
        assert_eq!(row[7], OwnedValue::Unset);
        assert_eq!(row[9], OwnedValue::Str("zeek".into()));
        assert_eq!(row[10], OwnedValue::Str("IP".into()));
    }
}
