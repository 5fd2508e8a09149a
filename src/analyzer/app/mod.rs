//! Application-layer analyzers (DNS, HTTP, TLS) that the flow table feeds.
//!
//! The flow table owns connections, reassembles TCP streams and calls one
//! [`AppAnalyzer`] per connection once [`detect`] has picked a protocol from the payload
//! (never from the port alone). Analyzers write their own logs (`dns.log`, `http.log`,
//! `ssl.log`) through [`AppOutput`] and report oddities as weirds.

use std::net::IpAddr;

use super::log::LogSink;

/// Transport protocol of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

/// What an analyzer knows of the connection it serves; `orig` is the originator as Zeek
/// decided it (after any direction flip).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    pub uid: String,
    pub orig_h: IpAddr,
    pub orig_p: u16,
    pub resp_h: IpAddr,
    pub resp_p: u16,
    pub transport: Transport,
}

/// The analyzer's view of the outside world during one call.
pub struct AppOutput<'a> {
    pub logs: &'a mut dyn LogSink,
    /// Weirds raised by the analyzer: `(name, addl)`; the flow table writes them to
    /// weird.log with the connection's uid and 5-tuple.
    pub weirds: &'a mut Vec<(&'static str, String)>,
}

/// One application protocol on one connection.
pub trait AppAnalyzer: Send {
    /// Zeek service name once the protocol is confirmed (`"dns"`, `"http"`, `"ssl"`), for
    /// conn.log's `service`; `None` while unconfirmed.
    fn service(&self) -> Option<&'static str>;
    /// In-order payload: for TCP the reassembled stream of one side, for UDP one datagram.
    fn deliver(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        is_orig: bool,
        data: &[u8],
        out: &mut AppOutput<'_>,
    );
    /// `len` bytes of one side's TCP stream were never seen (a content gap).
    fn gap(
        &mut self,
        _conn: &ConnInfo,
        _ts: f64,
        _is_orig: bool,
        _len: u64,
        _out: &mut AppOutput<'_>,
    ) {
    }
    /// The connection ended (FIN/RST, inactivity timeout, or end of capture): flush
    /// pending transactions.
    fn finish(&mut self, conn: &ConnInfo, ts: f64, out: &mut AppOutput<'_>);
}

/// Picks an analyzer for a connection from its first payload bytes (`is_orig` says which side
/// sent them) and ports as a hint. Returns `None` when no protocol matches; the flow table
/// may call again with later payload until it gives up.
pub fn detect(conn: &ConnInfo, is_orig: bool, data: &[u8]) -> Option<Box<dyn AppAnalyzer>> {
    let _ = (conn, is_orig, data);
    None
}
