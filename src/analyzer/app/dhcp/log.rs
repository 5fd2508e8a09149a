//! dhcp.log: its row and schema.

use std::net::IpAddr;

use crate::analyzer::log::{log_row, Interval, Set, Time, Vector};

log_row! {
    /// One dhcp.log line (Zeek's `DHCP::Info`, `base/protocols/dhcp/main.zeek`): one DHCP
    /// exchange (a transaction id), over any number of connections.
    pub struct DhcpRow<'a> => DHCP_SCHEMA("dhcp") {
        ts: Time,
        uids: Set<'a, &'a str>,
        client_addr: Option<IpAddr>,
        server_addr: Option<IpAddr>,
        mac: Option<&'a str>,
        host_name: Option<&'a str>,
        client_fqdn: Option<&'a str>,
        domain: Option<&'a str>,
        requested_addr: Option<IpAddr>,
        assigned_addr: Option<IpAddr>,
        lease_time: Option<Interval>,
        client_message: Option<&'a str>,
        server_message: Option<&'a str>,
        msg_types: Vector<'a, &'a str>,
        duration: Interval,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::log::tests::assert_fully_set_row_matches_schema;

    #[test]
    fn dhcp_row_matches_its_schema() {
        let addr: IpAddr = "192.0.2.10".parse().expect("addr");
        assert_fully_set_row_matches_schema(&DhcpRow {
            ts: Time(1.0),
            uids: Set(&["CtestUid"]),
            client_addr: Some(addr),
            server_addr: Some(addr),
            mac: Some("00:11:22:33:44:55"),
            host_name: Some("host"),
            client_fqdn: Some("host.example"),
            domain: Some("example"),
            requested_addr: Some(addr),
            assigned_addr: Some(addr),
            lease_time: Some(Interval(3600.0)),
            client_message: Some("m"),
            server_message: Some("n"),
            msg_types: Vector(&["DISCOVER", "OFFER"]),
            duration: Interval(0.5),
        });
    }
}
