//! smtp.log: its row and schema.

use std::net::IpAddr;

use crate::analyzer::log::{log_row, ConnId, Set, Time, Vector};

log_row! {
    /// One smtp.log line (Zeek's `SMTP::Info`, `base/protocols/smtp/main.zeek`, with the
    /// `fuids` column of `base/protocols/smtp/files.zeek` and `is_webmail` of
    /// `policy/protocols/smtp/software.zeek`, which Zeek's default `local.zeek` loads).
    pub struct SmtpRow<'a> => SMTP_SCHEMA("smtp") {
        ts: Time,
        id: ConnId<'a>,
        trans_depth: u64,
        helo: Option<&'a str>,
        mailfrom: Option<&'a str>,
        rcptto: Option<Set<'a, String>>,
        date: Option<&'a str>,
        from: Option<&'a str>,
        to: Option<Set<'a, String>>,
        cc: Option<Set<'a, String>>,
        reply_to: Option<&'a str>,
        msg_id: Option<&'a str>,
        in_reply_to: Option<&'a str>,
        subject: Option<&'a str>,
        x_originating_ip: Option<IpAddr>,
        first_received: Option<&'a str>,
        second_received: Option<&'a str>,
        last_reply: Option<&'a str>,
        path: Option<Vector<'a, IpAddr>>,
        user_agent: Option<&'a str>,
        tls: bool,
        fuids: Vector<'a, String>,
        is_webmail: bool,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::app::tests::conn;
    use crate::analyzer::app::Transport;
    use crate::analyzer::log::tests::assert_fully_set_row_matches_schema;

    #[test]
    fn smtp_row_matches_its_schema() {
        let c = conn(Transport::Tcp, 25);
        let names = vec!["a@b".to_string()];
        let path = vec![c.resp_h, c.orig_h];
        assert_fully_set_row_matches_schema(&SmtpRow {
            ts: Time(1.0),
            id: c.id(),
            trans_depth: 1,
            helo: Some("h"),
            mailfrom: Some("a@b"),
            rcptto: Some(Set(&names)),
            date: Some("d"),
            from: Some("f"),
            to: Some(Set(&names)),
            cc: Some(Set(&names)),
            reply_to: Some("r"),
            msg_id: Some("<m>"),
            in_reply_to: Some("<i>"),
            subject: Some("s"),
            x_originating_ip: Some(c.orig_h),
            first_received: Some("x"),
            second_received: Some("y"),
            last_reply: Some("250 ok"),
            path: Some(Vector(&path)),
            user_agent: Some("ua"),
            tls: false,
            fuids: Vector(&names),
            is_webmail: false,
        });
    }
}
