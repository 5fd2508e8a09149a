//! ntp.log: its row and schema.

use crate::analyzer::log::{log_row, ConnId, Interval, Time};

log_row! {
    /// One ntp.log line (Zeek's `NTP::Info`, `base/protocols/ntp/main.zeek`): one per mode
    /// 1-5 message.
    pub struct NtpRow<'a> => NTP_SCHEMA("ntp") {
        ts: Time,
        id: ConnId<'a>,
        version: u64,
        mode: u64,
        stratum: u64,
        poll: Interval,
        precision: Interval,
        root_delay: Interval,
        root_disp: Interval,
        ref_id: &'a str,
        ref_time: Time,
        org_time: Time,
        rec_time: Time,
        xmt_time: Time,
        num_exts: u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::app::tests::conn;
    use crate::analyzer::app::Transport;
    use crate::analyzer::log::tests::assert_fully_set_row_matches_schema;

    #[test]
    fn ntp_row_matches_its_schema() {
        let c = conn(Transport::Udp, 123);
        assert_fully_set_row_matches_schema(&NtpRow {
            ts: Time(1.0),
            id: c.id(),
            version: 4,
            mode: 3,
            stratum: 2,
            poll: Interval(64.0),
            precision: Interval(0.000001),
            root_delay: Interval(0.5),
            root_disp: Interval(0.25),
            ref_id: "192.0.2.1",
            ref_time: Time(2.0),
            org_time: Time(3.0),
            rec_time: Time(4.0),
            xmt_time: Time(5.0),
            num_exts: 0,
        });
    }
}
