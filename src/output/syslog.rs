//! Syslog messages in Brocapi's layout, pure: RFC 5424 or RFC 3164 header, then the log line
//! unchanged, framed for the transport.
//!
//! - RFC 5424: `<PRI>1 2026-12-02T10:00:00.123456Z HOSTNAME APP-NAME - - - LINE`
//! - RFC 3164: `<PRI>Dec  2 10:00:00 HOSTNAME APP-NAME: LINE` (UTC; 3164 has no zone)
//!
//! HOSTNAME is the job's tag (checked at submit: printable ASCII without spaces), APP-NAME the
//! configured prefix with the log name in place of `{log}` (or Brocapi's `%s`). Framing:
//! a bare LF after the message (non-transparent), or `LEN SP` before it (RFC 6587 octet
//! counting); UDP sends the message alone, cut to [`UDP_MAX_MESSAGE`] bytes.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{SyslogFormat, SyslogFraming};
use crate::time::civil_from_days;

/// The most bytes one UDP datagram carries; a longer message is cut there (and counted).
/// 8 KiB: what rsyslog and syslog-ng accept by default, well under the 64 KiB UDP limit.
pub const UDP_MAX_MESSAGE: usize = 8192;

/// RFC 5424 §6.2.5: APP-NAME is at most 48 printable characters.
const MAX_APP_NAME: usize = 48;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// What every message of a forwarding run shares.
#[derive(Debug, Clone)]
pub struct MessageFormat {
    pub format: SyslogFormat,
    /// facility × 8 + severity.
    pub pri: u8,
}

/// The APP-NAME for `log` (`conn`, `http`…): `{log}` or Brocapi's `%s` replaced, cut to 48
/// characters, spaces and control characters replaced by `_`.
pub fn app_name(prefix: &str, log: &str) -> String {
    let name = if prefix.contains("{log}") {
        prefix.replace("{log}", log)
    } else {
        prefix.replacen("%s", log, 1)
    };
    name.chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(MAX_APP_NAME)
        .collect()
}

/// The log name a forwarded file stands for: `conn.log` → `conn`, `dns.json` → `dns`.
pub fn log_name(file: &str) -> &str {
    file.strip_suffix(".log")
        .or_else(|| file.strip_suffix(".json"))
        .unwrap_or(file)
}

/// A row's own time for `timestamp = log`: a TSV row's first field, or a JSON row's `"ts"`,
/// as seconds since the epoch.
pub fn row_time(line: &[u8]) -> Option<f64> {
    if line.first() == Some(&b'{') {
        let value: serde_json::Value = serde_json::from_slice(line).ok()?;
        return value.get("ts")?.as_f64();
    }
    let first = line.split(|&b| b == b'\t').next()?;
    std::str::from_utf8(first).ok()?.parse::<f64>().ok()
}

/// Seconds since the epoch now.
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

struct Civil {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    micros: i64,
}

fn civil(secs: f64) -> Civil {
    let micros_total = (secs.max(0.0) * 1e6).round() as i64;
    let (whole, micros) = (
        micros_total.div_euclid(1_000_000),
        micros_total.rem_euclid(1_000_000),
    );
    let (days, in_day) = (whole.div_euclid(86_400), whole.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: in_day / 3600,
        minute: in_day % 3600 / 60,
        second: in_day % 60,
        micros,
    }
}

impl MessageFormat {
    /// Appends one framed message to `out`; returns whether the line was cut (UDP only).
    pub fn write(
        &self,
        out: &mut Vec<u8>,
        framing: Option<SyslogFraming>,
        time: f64,
        hostname: &str,
        app_name: &str,
        line: &[u8],
    ) -> bool {
        let mut message = Vec::with_capacity(line.len() + 80);
        let t = civil(time);
        match self.format {
            SyslogFormat::Rfc5424 => {
                message.extend_from_slice(
                    format!(
                        "<{}>1 {:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z {hostname} {app_name} - - - ",
                        self.pri, t.year, t.month, t.day, t.hour, t.minute, t.second, t.micros
                    )
                    .as_bytes(),
                );
            }
            SyslogFormat::Rfc3164 => {
                let month = MONTHS[(t.month - 1).clamp(0, 11) as usize];
                message.extend_from_slice(
                    format!(
                        "<{}>{month} {:>2} {:02}:{:02}:{:02} {hostname} {app_name}: ",
                        self.pri, t.day, t.hour, t.minute, t.second
                    )
                    .as_bytes(),
                );
            }
        }
        message.extend_from_slice(line);
        match framing {
            None => {
                let cut = message.len() > UDP_MAX_MESSAGE;
                message.truncate(UDP_MAX_MESSAGE);
                out.extend_from_slice(&message);
                cut
            }
            Some(SyslogFraming::NonTransparent) => {
                out.extend_from_slice(&message);
                out.push(b'\n');
                false
            }
            Some(SyslogFraming::OctetCounting) => {
                out.extend_from_slice(format!("{} ", message.len()).as_bytes());
                out.extend_from_slice(&message);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &[u8] = b"1764669600.123456\tCabc\t10.0.0.1\t53";

    #[test]
    fn rfc5424_parses_back_with_every_field() {
        let format = MessageFormat {
            format: SyslogFormat::Rfc5424,
            pri: 29,
        };
        let mut out = Vec::new();
        format.write(
            &mut out,
            None,
            1_764_669_600.5,
            "sensor-1",
            "bro25_conn",
            LINE,
        );
        let text = std::str::from_utf8(&out).unwrap();
        assert_eq!(
            text,
            "<29>1 2025-12-02T10:00:00.500000Z sensor-1 bro25_conn - - - 1764669600.123456\tCabc\t10.0.0.1\t53"
        );
        let parsed = syslog_rfc5424::parse_message(text).expect("a valid RFC 5424 message");
        assert_eq!(parsed.hostname.as_deref(), Some("sensor-1"));
        assert_eq!(parsed.appname.as_deref(), Some("bro25_conn"));
        assert_eq!(parsed.facility, syslog_rfc5424::SyslogFacility::LOG_DAEMON);
        assert_eq!(parsed.severity, syslog_rfc5424::SyslogSeverity::SEV_NOTICE);
        assert_eq!(parsed.msg, std::str::from_utf8(LINE).unwrap());
    }

    #[test]
    fn rfc3164_is_brocapis_layout() {
        let format = MessageFormat {
            format: SyslogFormat::Rfc3164,
            pri: 29,
        };
        let mut out = Vec::new();
        format.write(
            &mut out,
            Some(SyslogFraming::NonTransparent),
            1_764_669_600.0,
            "t",
            "bro25_dns",
            b"x\ty",
        );
        assert_eq!(out, b"<29>Dec  2 10:00:00 t bro25_dns: x\ty\n");
    }

    #[test]
    fn octet_counting_counts_the_message_bytes() {
        let format = MessageFormat {
            format: SyslogFormat::Rfc5424,
            pri: 13,
        };
        let mut out = Vec::new();
        format.write(
            &mut out,
            Some(SyslogFraming::OctetCounting),
            0.0,
            "h",
            "a",
            b"m",
        );
        let text = String::from_utf8(out).unwrap();
        let (len, message) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), message.len());
        assert!(message.starts_with("<13>1 1970-01-01T00:00:00.000000Z h a - - - m"));
    }

    #[test]
    fn udp_messages_are_cut_at_the_limit() {
        let format = MessageFormat {
            format: SyslogFormat::Rfc5424,
            pri: 29,
        };
        let mut out = Vec::new();
        let long = vec![b'x'; UDP_MAX_MESSAGE * 2];
        assert!(format.write(&mut out, None, 0.0, "h", "a", &long));
        assert_eq!(out.len(), UDP_MAX_MESSAGE);
        out.clear();
        assert!(!format.write(&mut out, None, 0.0, "h", "a", b"short"));
    }

    #[test]
    fn app_names_take_both_placeholders() {
        assert_eq!(app_name("bro25_%s", "conn"), "bro25_conn");
        assert_eq!(app_name("pcapd_{log}", "http"), "pcapd_http");
        assert_eq!(app_name("fixed", "dns"), "fixed");
        assert_eq!(app_name("a b{log}", "x"), "a_bx");
        assert_eq!(app_name(&"p".repeat(60), "x").len(), 48);
        assert_eq!(log_name("conn.log"), "conn");
        assert_eq!(log_name("dns.json"), "dns");
    }

    #[test]
    fn row_times_from_tsv_and_json() {
        assert_eq!(row_time(LINE), Some(1_764_669_600.123456));
        assert_eq!(row_time(br#"{"ts":12.5,"uid":"C"}"#), Some(12.5));
        assert_eq!(row_time(b"-\tx"), None);
    }
}
