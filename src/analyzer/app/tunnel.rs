//! A connection that goes on carrying another protocol after its own, as an HTTP `CONNECT`
//! proxy tunnel does: Zeek attaches a fresh protocol detection to the tunnel, so the inner
//! protocol is found by content as on a new connection ([`super::detect`]) and analyzed in
//! place, its logs under the outer connection's uid.

use super::{detect, AppAnalyzer, AppOutput, ConnInfo};

/// Bytes of each side looked at before detection gives up.
const MAX_PREFIX: usize = 4096;
/// Chunks held before detection gives up.
const MAX_CHUNKS: usize = 16;

/// The protocol inside a tunnel, or what was seen while it is not known yet.
#[derive(Default)]
pub(crate) struct Tunnel {
    inner: Option<Box<dyn AppAnalyzer>>,
    /// Chunks seen before detection, replayed to the analyzer that claims them.
    held: Vec<(bool, f64, Vec<u8>)>,
    /// The start of each side's stream (originator, responder).
    prefix: [Vec<u8>; 2],
    given_up: bool,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnel")
            .field("inner", &self.inner.as_ref().map(|a| a.service()))
            .field("held", &self.held.len())
            .field("given_up", &self.given_up)
            .finish()
    }
}

impl Tunnel {
    pub(crate) fn deliver(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        is_orig: bool,
        data: &[u8],
        out: &mut AppOutput<'_>,
    ) {
        if let Some(inner) = self.inner.as_mut() {
            inner.deliver(conn, ts, is_orig, data, out);
            return;
        }
        if self.given_up || data.is_empty() {
            return;
        }
        self.held.push((is_orig, ts, data.to_vec()));
        let prefix = &mut self.prefix[usize::from(!is_orig)];
        let room = MAX_PREFIX.saturating_sub(prefix.len());
        prefix.extend_from_slice(&data[..data.len().min(room)]);
        if let Some(mut inner) = detect(conn, is_orig, prefix) {
            for (o, t, bytes) in std::mem::take(&mut self.held) {
                inner.deliver(conn, t, o, &bytes, out);
            }
            self.prefix = Default::default();
            self.inner = Some(inner);
        } else if self.held.len() >= MAX_CHUNKS || self.prefix.iter().any(|p| p.len() >= MAX_PREFIX)
        {
            self.given_up = true;
            self.held = Vec::new();
            self.prefix = Default::default();
        }
    }

    pub(crate) fn gap(
        &mut self,
        conn: &ConnInfo,
        ts: f64,
        is_orig: bool,
        len: u64,
        out: &mut AppOutput<'_>,
    ) {
        match self.inner.as_mut() {
            Some(inner) => inner.gap(conn, ts, is_orig, len, out),
            // Detection cannot go on past missing bytes.
            None => {
                self.given_up = true;
                self.held = Vec::new();
            }
        }
    }

    pub(crate) fn finish(&mut self, conn: &ConnInfo, ts: f64, out: &mut AppOutput<'_>) {
        if let Some(inner) = self.inner.as_mut() {
            inner.finish(conn, ts, out);
        }
    }

    /// The inner protocol's service, once confirmed.
    pub(crate) fn service(&self) -> Option<&'static str> {
        self.inner.as_ref().and_then(|a| a.service())
    }

    /// Whether nothing more can change what the tunnel adds to conn.log.
    pub(crate) fn settled(&self) -> bool {
        self.given_up || self.inner.as_ref().is_some_and(|a| a.conn_settled())
    }
}
