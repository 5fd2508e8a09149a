//! dns.log: its row and schema.

use crate::analyzer::log::{log_row, ConnId, Enum, Interval, Time, Vector};

log_row! {
    /// One dns.log line (Zeek's `DNS::Info`, `base/protocols/dns/main.zeek`).
    pub struct DnsRow<'a> => DNS_SCHEMA("dns") {
        ts: Time,
        id: ConnId<'a>,
        proto: Enum,
        trans_id: u64,
        rtt: Option<Interval>,
        query: Option<&'a str>,
        qclass: Option<u64>,
        qclass_name: Option<&'a str>,
        qtype: Option<u64>,
        qtype_name: Option<&'a str>,
        rcode: Option<u64>,
        rcode_name: Option<&'a str>,
        aa as "AA": bool,
        tc as "TC": bool,
        rd as "RD": bool,
        ra as "RA": bool,
        z as "Z": u64,
        answers: Option<Vector<'a, String>>,
        ttls as "TTLs": Option<Vector<'a, Interval>>,
        rejected: bool,
        opcode: Option<u64>,
        opcode_name: Option<&'a str>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::app::tests::conn;
    use crate::analyzer::app::Transport;
    use crate::analyzer::log::tests::assert_fully_set_row_matches_schema;

    #[test]
    fn dns_row_matches_its_schema() {
        let c = conn(Transport::Udp, 53);
        let answers = ["192.0.2.7".to_string()];
        assert_fully_set_row_matches_schema(&DnsRow {
            ts: Time(1.0),
            id: c.id(),
            proto: Enum("udp"),
            trans_id: 1,
            rtt: Some(Interval(0.5)),
            query: Some("www.example.com"),
            qclass: Some(1),
            qclass_name: Some("C_INTERNET"),
            qtype: Some(1),
            qtype_name: Some("A"),
            rcode: Some(0),
            rcode_name: Some("NOERROR"),
            aa: false,
            tc: false,
            rd: true,
            ra: true,
            z: 0,
            answers: Some(Vector(&answers)),
            ttls: Some(Vector(&[Interval(60.0)])),
            rejected: false,
            opcode: Some(0),
            opcode_name: Some("query"),
        });
    }
}
