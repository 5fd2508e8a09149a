//! weird.log: the schema and the rate limiting of weirds that are not tied to a connection.

use std::collections::HashMap;
use std::net::IpAddr;

use super::log::{field, LogSchema, LogSink, Value};

pub static WEIRD_SCHEMA: LogSchema = LogSchema {
    path: "weird",
    fields: &[
        field("ts", "time"),
        field("uid", "string"),
        field("id.orig_h", "addr"),
        field("id.orig_p", "port"),
        field("id.resp_h", "addr"),
        field("id.resp_p", "port"),
        field("name", "string"),
        field("addl", "string"),
        field("notice", "bool"),
        field("peer", "string"),
        field("source", "string"),
    ],
};

/// Lines logged per weird name for weirds without a connection; later ones are counted only
/// (Zeek samples repeated weirds too, so a broken capture cannot flood the log).
const MAX_UNATTACHED_PER_NAME: u32 = 1000;

/// The connection a weird belongs to.
pub struct WeirdConn<'a> {
    pub uid: &'a str,
    pub orig_h: IpAddr,
    pub orig_p: u16,
    pub resp_h: IpAddr,
    pub resp_p: u16,
}

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
        sink.write(
            &WEIRD_SCHEMA,
            vec![
                Value::Time(ts),
                conn.uid.into(),
                Value::Addr(conn.orig_h),
                Value::Port(conn.orig_p),
                Value::Addr(conn.resp_h),
                Value::Port(conn.resp_p),
                name.into(),
                opt_str(addl),
                Value::Bool(false),
                "zeek".into(),
                opt_str(source),
            ],
        );
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
        let (orig, resp) = flow.map_or((Value::Unset, Value::Unset), |(s, d)| {
            (Value::Addr(s), Value::Addr(d))
        });
        sink.write(
            &WEIRD_SCHEMA,
            vec![
                Value::Time(ts),
                Value::Unset,
                orig,
                Value::Unset,
                resp,
                Value::Unset,
                name.into(),
                Value::Unset,
                Value::Bool(false),
                "zeek".into(),
                opt_str(source),
            ],
        );
    }
}

fn opt_str(s: &str) -> Value {
    if s.is_empty() {
        Value::Unset
    } else {
        s.into()
    }
}
