//! ftp.log: its row and schema, with the `data_channel.*` group of Zeek's
//! `FTP::ExpectedDataChannel`.

use std::net::IpAddr;

use crate::analyzer::log::{log_row, Columns, ConnId, Time, Value};

/// A data connection announced on the control connection (`PORT`/`EPRT` by the client,
/// `227`/`229` replies by the server): who will connect to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataChannel {
    pub passive: bool,
    pub orig_h: IpAddr,
    pub resp_h: IpAddr,
    pub resp_p: u16,
}

/// The four `data_channel.*` columns, unset when no channel goes with the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataChannelColumns(pub Option<DataChannel>);

impl Columns for DataChannelColumns {
    const NAMES: &'static [&'static str] = &[
        "data_channel.passive",
        "data_channel.orig_h",
        "data_channel.resp_h",
        "data_channel.resp_p",
    ];
    const TYPES: &'static [&'static str] = &["bool", "addr", "addr", "port"];
    fn emit(&self, out: &mut dyn FnMut(Value<'_>)) {
        match self.0 {
            Some(d) => {
                out(Value::Bool(d.passive));
                out(Value::Addr(d.orig_h));
                out(Value::Addr(d.resp_h));
                out(Value::Port(d.resp_p));
            }
            None => (0..4).for_each(|_| out(Value::Unset)),
        }
    }
}

log_row! {
    /// One ftp.log line (Zeek's `FTP::Info`, `base/protocols/ftp/info.zeek`).
    pub struct FtpRow<'a> => FTP_SCHEMA("ftp") {
        ts: Time,
        id: ConnId<'a>,
        user: &'a str,
        password: Option<&'a str>,
        command: Option<&'a str>,
        arg: Option<&'a str>,
        mime_type: Option<&'a str>,
        file_size: Option<u64>,
        reply_code: Option<u64>,
        reply_msg: Option<&'a str>,
        data_channel: DataChannelColumns,
        fuid: Option<&'a str>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::app::tests::conn;
    use crate::analyzer::app::Transport;
    use crate::analyzer::log::tests::assert_fully_set_row_matches_schema;

    #[test]
    fn ftp_row_matches_its_schema() {
        let c = conn(Transport::Tcp, 21);
        assert_fully_set_row_matches_schema(&FtpRow {
            ts: Time(1.0),
            id: c.id(),
            user: "anonymous",
            password: Some("x"),
            command: Some("RETR"),
            arg: Some("ftp://10.0.0.2/a"),
            mime_type: Some("text/plain"),
            file_size: Some(3),
            reply_code: Some(226),
            reply_msg: Some("ok"),
            data_channel: DataChannelColumns(Some(DataChannel {
                passive: true,
                orig_h: c.orig_h,
                resp_h: c.resp_h,
                resp_p: 5000,
            })),
            fuid: Some("Fx"),
        });
    }
}
