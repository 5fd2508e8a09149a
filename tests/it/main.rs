//! The integration test binary `it`: one binary so the crate is linked once. Each module
//! covers one area: `daemon` runs the real `pcapd serve` over TLS with real workers (and
//! kills them), `bui_monitor` runs `backend = burp` against the anchor's fake burp,
//! `accuracy` scores the builtin analyzer against Zeek's own logs, `rsyslog` runs a real
//! rsyslogd as the receiver of the syslog forwarder's tests; `store` checks the job index
//! across kills and deletion; `neutrality` checks that the analyzer's logs stay byte for byte
//! what `tests/it/neutrality.tsv` recorded; `udp_logs` checks dhcp.log and conn.log's
//! `community_id` on real traffic in network namespaces; `harness` starts daemons and reports
//! their stderr on failure.

mod accuracy;
mod bui_monitor;
mod burp_ui;
mod chaos;
mod cluster;
mod daemon;
mod detect;
mod files;
mod forwarding;
mod gateway;
mod harness;
mod metrics;
mod neutrality;
mod openapi;
mod packaging;
mod rsyslog;
mod security;
mod store;
mod systemd;
mod traffic;
mod udp_logs;
