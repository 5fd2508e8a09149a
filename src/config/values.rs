//! Parsers for the value syntaxes the config file shares between keys: booleans, durations,
//! sizes, bounded integers, IP addresses, enumerations and name lists.
//!
//! Each parser takes the trimmed text of one value and returns the typed value or a
//! [`ValueProblem`] saying what is wrong and what would be valid; `parse.rs` adds the file,
//! section and key. They know nothing about which key they serve, so every key with the same
//! syntax behaves the same.

use std::net::IpAddr;

use super::MinFree;
use crate::addr_range::{AddrRange, AddrRangeError};
use std::time::Duration;

/// Why a value was refused, without the location (added by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValueProblem {
    pub problem: String,
    pub valid: String,
}

impl ValueProblem {
    pub(crate) fn new(problem: impl Into<String>, valid: impl Into<String>) -> ValueProblem {
        ValueProblem {
            problem: problem.into(),
            valid: valid.into(),
        }
    }
}

pub(crate) const BOOL_VALID: &str = "true/false, yes/no, on/off, 1/0";
pub(crate) const DURATION_VALID: &str =
    "seconds, or a number with ms, s, m, h or d, e.g. 250ms, 30s, 5m, 2h, 7d";
pub(crate) const SIZE_VALID: &str =
    "bytes, or a number with K, M, G or T (powers of 1024), e.g. 65536, 512K, 1.5G";

/// `true/false/yes/no/on/off/1/0`, any case (bui-monitor's Python accepts the same words).
pub(crate) fn parse_bool(text: &str) -> Result<bool, ValueProblem> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(ValueProblem::new("not a boolean", BOOL_VALID)),
    }
}

/// Splits a number from its unit suffix: `"1.5G"` → `("1.5", "g")`, spaces between allowed.
fn split_number_unit(text: &str) -> (&str, String) {
    let unit_start = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(unit_start);
    (number, unit.trim().to_ascii_lowercase())
}

/// A non-negative decimal number (`"30"`, `"1.5"`); `None` for anything else, so `"-1"`,
/// `"1e3"`, `"inf"` and `"nan"` are refused rather than read in a surprising way.
/// `min_free`: a size (`2G`) or a percentage of the file system (`5%`).
pub(crate) fn parse_min_free(text: &str) -> Result<MinFree, ValueProblem> {
    const VALID: &str = "a size (e.g. 2G) or a percentage of the file system (e.g. 5%)";
    if let Some(number) = text.trim().strip_suffix('%') {
        return match parse_decimal(number.trim()) {
            Some(percent) if percent <= 100.0 => Ok(MinFree::Percent(percent)),
            _ => Err(ValueProblem::new("not a percentage from 0 to 100", VALID)),
        };
    }
    parse_size(text)
        .map(MinFree::Bytes)
        .map_err(|_| ValueProblem::new("not a size or a percentage", VALID))
}

fn parse_decimal(number: &str) -> Option<f64> {
    let well_formed = !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.chars().filter(|&c| c == '.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit());
    if !well_formed {
        return None;
    }
    number.parse::<f64>().ok()
}

/// Plain seconds (`30`, `0.5`) or a number with `ms`, `s`, `m`, `h` or `d`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, ValueProblem> {
    let (number, unit) = split_number_unit(text);
    let amount =
        parse_decimal(number).ok_or_else(|| ValueProblem::new("not a duration", DURATION_VALID))?;
    let seconds_per_unit = match unit.as_str() {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => {
            return Err(ValueProblem::new(
                format!("unknown duration unit `{unit}`"),
                DURATION_VALID,
            ))
        }
    };
    Duration::try_from_secs_f64(amount * seconds_per_unit)
        .map_err(|_| ValueProblem::new("duration too large", DURATION_VALID))
}

/// Bytes (`65536`) or a number with a binary unit: `K`, `M`, `G`, `T`, also written `KiB` or
/// `KB` (all mean powers of 1024; a config file is no place for the 1000/1024 distinction).
/// Fractions are allowed and rounded down to whole bytes (`1.5G`).
pub(crate) fn parse_size(text: &str) -> Result<u64, ValueProblem> {
    let (number, unit) = split_number_unit(text);
    let amount =
        parse_decimal(number).ok_or_else(|| ValueProblem::new("not a size", SIZE_VALID))?;
    let power = match unit.as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 1,
        "m" | "mb" | "mib" => 2,
        "g" | "gb" | "gib" => 3,
        "t" | "tb" | "tib" => 4,
        _ => {
            return Err(ValueProblem::new(
                format!("unknown size unit `{unit}`"),
                SIZE_VALID,
            ))
        }
    };
    if power == 0 {
        // Whole bytes are parsed exactly; f64 would round sizes above 2^53.
        return number
            .parse::<u64>()
            .map_err(|_| ValueProblem::new("not a whole number of bytes", SIZE_VALID));
    }
    let bytes = amount * 1024f64.powi(power);
    // u64::MAX as f64 rounds up to 2^64, so `<` keeps the cast below in range.
    if bytes < u64::MAX as f64 {
        Ok(bytes as u64)
    } else {
        Err(ValueProblem::new("size too large", SIZE_VALID))
    }
}

/// A whole number within `min..=max`.
pub(crate) fn parse_integer(text: &str, min: u64, max: u64) -> Result<u64, ValueProblem> {
    let valid = if max == u64::MAX {
        format!("a whole number >= {min}")
    } else {
        format!("a whole number from {min} to {max}")
    };
    let number = text
        .parse::<u64>()
        .map_err(|_| ValueProblem::new("not a whole number", valid.clone()))?;
    if number < min || number > max {
        return Err(ValueProblem::new("out of range", valid));
    }
    Ok(number)
}

/// A listening port, 0-65535: 0 asks the kernel for a free port, which the daemon then writes
/// to `listen.addr` in the state directory and prints when ready (tests and demos use it).
pub(crate) fn parse_listen_port(text: &str) -> Result<u16, ValueProblem> {
    let port = parse_integer(text, 0, u64::from(u16::MAX))?;
    u16::try_from(port).map_err(|_| ValueProblem::new("out of range", "0 to 65535"))
}

/// A TCP/UDP port to connect to, 1-65535.
pub(crate) fn parse_port(text: &str) -> Result<u16, ValueProblem> {
    let port = parse_integer(text, 1, u64::from(u16::MAX))?;
    u16::try_from(port).map_err(|_| ValueProblem::new("out of range", "1 to 65535"))
}

/// An IP address to bind: `::1`, `127.0.0.1`, `::`, `0.0.0.0`; `[::1]` is accepted too.
pub(crate) fn parse_ip(text: &str) -> Result<IpAddr, ValueProblem> {
    let bare = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse::<IpAddr>().map_err(|_| {
        ValueProblem::new(
            "not an IP address",
            "an IPv4 or IPv6 address such as ::1, 127.0.0.1, ::, 0.0.0.0",
        )
    })
}

/// One of `choices` (matched without regard to case), returned with its typed value.
/// `auth_exempt`-style values: an address or CIDR range, as the config reader reports it.
pub(crate) fn parse_addr_range(text: &str) -> Result<AddrRange, ValueProblem> {
    text.parse().map_err(|problem: AddrRangeError| {
        ValueProblem::new(
            problem.0,
            "an address or CIDR range such as 127.0.0.1, 10.0.0.0/8, ::1, fd00::/8",
        )
    })
}

pub(crate) fn parse_choice<T: Copy>(text: &str, choices: &[(&str, T)]) -> Result<T, ValueProblem> {
    let lowered = text.to_ascii_lowercase();
    choices
        .iter()
        .find(|(name, _)| *name == lowered)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
            ValueProblem::new("unknown value", names.join(", "))
        })
}

/// A list separated by commas and/or whitespace; empty items are dropped.
pub(crate) fn parse_list(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `name` can be an environment variable name a shell would pass on.
pub(crate) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_accept_the_bui_monitor_words_in_any_case() {
        for word in ["true", "YES", "On", "1"] {
            assert_eq!(parse_bool(word), Ok(true), "{word}");
        }
        for word in ["false", "no", "OFF", "0"] {
            assert_eq!(parse_bool(word), Ok(false), "{word}");
        }
        for word in ["2", "y", "enabled", ""] {
            let problem = parse_bool(word).unwrap_err();
            assert_eq!(problem.valid, BOOL_VALID, "{word}");
        }
    }

    #[test]
    fn durations_take_plain_seconds_and_suffixes() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("10 M"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations_say_what_is_valid() {
        for text in ["", "abc", "-5", "5w", "1.2.3s", "s", "1e3", "inf"] {
            let problem = parse_duration(text).unwrap_err();
            assert_eq!(problem.valid, DURATION_VALID, "{text}");
        }
        assert_eq!(
            parse_duration("5w").unwrap_err().problem,
            "unknown duration unit `w`"
        );
        assert!(parse_duration("99999999999999999999999d").is_err());
    }

    #[test]
    fn sizes_take_bytes_and_binary_units() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("512K"), Ok(512 * 1024));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("4gb"), Ok(4 << 30));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn bad_sizes_say_what_is_valid() {
        for text in ["", "big", "-1", "4X", "1.5", "1..5G", "99999999T"] {
            let problem = parse_size(text).unwrap_err();
            assert_eq!(problem.valid, SIZE_VALID, "{text}");
        }
        assert_eq!(
            parse_size("4X").unwrap_err().problem,
            "unknown size unit `x`"
        );
        assert_eq!(
            parse_size("99999999T").unwrap_err().problem,
            "size too large"
        );
    }

    #[test]
    fn integers_and_ports_check_their_range() {
        assert_eq!(parse_integer("5", 1, 10), Ok(5));
        assert_eq!(
            parse_integer("0", 1, 10).unwrap_err().problem,
            "out of range"
        );
        assert_eq!(
            parse_integer("x", 1, u64::MAX).unwrap_err().valid,
            "a whole number >= 1"
        );
        assert_eq!(parse_port("11111"), Ok(11111));
        assert_eq!(parse_port("0").unwrap_err().problem, "out of range");
        assert_eq!(parse_listen_port("0"), Ok(0));
        assert_eq!(
            parse_listen_port("65536").unwrap_err().problem,
            "out of range"
        );
        assert_eq!(parse_port("65536").unwrap_err().problem, "out of range");
        assert_eq!(parse_port("-1").unwrap_err().problem, "not a whole number");
    }

    #[test]
    fn ip_addresses_accept_both_families_and_brackets() {
        assert_eq!(parse_ip("::1"), Ok("::1".parse().unwrap()));
        assert_eq!(parse_ip("[::1]"), Ok("::1".parse().unwrap()));
        assert_eq!(parse_ip("0.0.0.0"), Ok("0.0.0.0".parse().unwrap()));
        assert!(parse_ip("localhost").is_err());
    }

    #[test]
    fn choices_match_any_case_and_list_the_valid_names() {
        let choices = [("copy", 1), ("move", 2)];
        assert_eq!(parse_choice("MOVE", &choices), Ok(2));
        let problem = parse_choice("link", &choices).unwrap_err();
        assert_eq!(problem.valid, "copy, move");
    }

    #[test]
    fn lists_split_on_commas_and_whitespace() {
        assert_eq!(
            parse_list("PATH, LANG  TZ,,HOME"),
            ["PATH", "LANG", "TZ", "HOME"]
        );
        assert!(parse_list(" , ").is_empty());
        assert!(is_env_name("LC_ALL"));
        assert!(is_env_name("_X1"));
        assert!(!is_env_name("1X"));
        assert!(!is_env_name("A=B"));
        assert!(!is_env_name(""));
    }
}
