//! ssl.log: its row and schema.

use crate::analyzer::log::{log_row, ConnId, Time, Vector};

log_row! {
    /// One ssl.log line (Zeek's `SSL::Info`, `base/protocols/ssl/main.zeek`, with the
    /// certificate columns a default Zeek run adds).
    pub struct SslRow<'a> => SSL_SCHEMA("ssl") {
        ts: Time,
        id: ConnId<'a>,
        version: Option<&'a str>,
        cipher: Option<&'a str>,
        curve: Option<&'a str>,
        server_name: Option<&'a str>,
        resumed: bool,
        last_alert: Option<&'a str>,
        next_protocol: Option<&'a str>,
        established: bool,
        ssl_history: &'a str,
        cert_chain_fps: Option<Vector<'a, String>>,
        client_cert_chain_fps: Option<Vector<'a, String>>,
        sni_matches_cert: Option<bool>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::app::tests::conn;
    use crate::analyzer::app::Transport;
    use crate::analyzer::log::tests::assert_fully_set_row_matches_schema;

    #[test]
    fn ssl_row_matches_its_schema() {
        let c = conn(Transport::Tcp, 443);
        let fps = ["ab".to_string()];
        assert_fully_set_row_matches_schema(&SslRow {
            ts: Time(1.0),
            id: c.id(),
            version: Some("TLSv12"),
            cipher: Some("TLS_AES_128_GCM_SHA256"),
            curve: Some("x25519"),
            server_name: Some("a.test"),
            resumed: false,
            last_alert: Some("close_notify"),
            next_protocol: Some("h2"),
            established: true,
            ssl_history: "CsiI",
            cert_chain_fps: Some(Vector(&fps)),
            client_cert_chain_fps: Some(Vector(&fps)),
            sni_matches_cert: Some(true),
        });
    }
}
