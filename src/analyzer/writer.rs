//! Log writers: Zeek's ASCII (TSV) format and Zeek's JSON-lines format.
//!
//! [`LogWriterSet`] is the [`LogSink`] of one analysis run: it keeps one file per log path in
//! the output directory, created when the first line of that log is written (so a run that
//! saw no DNS leaves no empty `dns.log`), and renders each line straight from the row's
//! borrowed values into that log's write buffer: no allocation or copy per line. Rendering of
//! every [`Value`] is decided here and only here: Zeek's escaping rules (separator, set
//! separator and non-printable bytes as `\xNN`; a string equal to the unset marker is escaped
//! too so it cannot be read back as unset), six-decimal times and intervals, and Zeek's short
//! double format.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::addr_text::push_addr;
use super::log::{Elements, LogRow, LogSchema, LogSink, Value};
use super::LogFormat;

const SEPARATOR: u8 = b'\t';
const SET_SEPARATOR: u8 = b',';
const EMPTY_FIELD: &str = "(empty)";
const UNSET_FIELD: &str = "-";

/// Where rendered lines go: real files, or nowhere (fuzzing, benchmarks of the core).
enum Destination {
    Dir(PathBuf),
    Discard,
}

/// Bytes of rendered lines a log holds before they are written to its file.
const FLUSH_AT: usize = 256 * 1024;

/// One log of the run, from its first line on.
struct OpenLog {
    schema: &'static LogSchema,
    /// Whether its lines are kept (`--logs`); a log that is not has no file.
    kept: bool,
    file: Option<File>,
    /// Lines rendered and not yet written: lines are rendered straight into it.
    pending: Vec<u8>,
    path: PathBuf,
    lines: u64,
}

impl OpenLog {
    fn write_pending(&mut self) -> Result<(), std::io::Error> {
        if let Some(file) = self.file.as_mut() {
            file.write_all(&self.pending)?;
        }
        self.pending.clear();
        Ok(())
    }
}

/// One analysis run's set of log files.
pub struct LogWriterSet {
    destination: Destination,
    format: LogFormat,
    only_logs: Option<BTreeSet<String>>,
    /// The logs seen so far, kept or not: a handful, found by a scan that compares the
    /// schemas' static path first.
    open: Vec<OpenLog>,
    /// First I/O error seen; `LogSink::write` cannot fail, so it is reported by `finish`.
    error: Option<(PathBuf, std::io::Error)>,
}

impl LogWriterSet {
    /// Writes `<path>.log` files into `dir` (which must exist).
    pub fn to_dir(dir: &Path, format: LogFormat, only_logs: Option<BTreeSet<String>>) -> Self {
        Self::new(Destination::Dir(dir.to_path_buf()), format, only_logs)
    }

    /// Renders every line (so rendering is exercised) and throws it away.
    pub fn discarding(format: LogFormat) -> Self {
        Self::new(Destination::Discard, format, None)
    }

    fn new(
        destination: Destination,
        format: LogFormat,
        only_logs: Option<BTreeSet<String>>,
    ) -> Self {
        LogWriterSet {
            destination,
            format,
            only_logs,
            open: Vec::new(),
            error: None,
        }
    }

    /// Whether lines of log `path` are kept; producers may skip building lines that are not.
    pub fn wants(&self, path: &str) -> bool {
        self.only_logs.as_ref().is_none_or(|set| set.contains(path))
    }

    /// Writes the `#close` footers, flushes, and returns the file names written (sorted).
    pub fn finish(mut self) -> Result<Vec<String>, (PathBuf, std::io::Error)> {
        if let Some(err) = self.error.take() {
            return Err(err);
        }
        let close = format!("#close\t{}\n", zeek_open_time(SystemTime::now()));
        let mut names = Vec::new();
        for mut log in std::mem::take(&mut self.open) {
            if !log.kept {
                continue;
            }
            if log.file.is_some() {
                if self.format == LogFormat::Tsv {
                    log.pending.extend_from_slice(close.as_bytes());
                }
                log.write_pending().map_err(|e| (log.path.clone(), e))?;
                names.push(format!("{}.log", log.schema.path));
            } else if matches!(self.destination, Destination::Discard) && log.lines > 0 {
                names.push(format!("{}.log", log.schema.path));
            }
        }
        names.sort();
        Ok(names)
    }

    /// The log of `schema`'s path, created (its file and header, when kept) on first use.
    fn log_of(&mut self, schema: &'static LogSchema) -> Result<usize, (PathBuf, std::io::Error)> {
        let same = |log: &OpenLog| {
            std::ptr::eq(log.schema.path, schema.path) || log.schema.path == schema.path
        };
        if let Some(index) = self.open.iter().position(same) {
            return Ok(index);
        }
        let kept = self.wants(schema.path);
        let path = match &self.destination {
            Destination::Dir(dir) => dir.join(format!("{}.log", schema.path)),
            Destination::Discard => PathBuf::new(),
        };
        let mut log = OpenLog {
            schema,
            kept,
            file: None,
            pending: Vec::new(),
            path,
            lines: 0,
        };
        if kept && matches!(self.destination, Destination::Dir(_)) {
            log.pending.reserve(FLUSH_AT + 4096);
            log.file = Some(File::create(&log.path).map_err(|e| (log.path.clone(), e))?);
            if self.format == LogFormat::Tsv {
                log.pending.extend_from_slice(tsv_header(schema).as_bytes());
            }
        }
        self.open.push(log);
        Ok(self.open.len() - 1)
    }
}

impl LogSink for LogWriterSet {
    fn wants(&self, path: &str) -> bool {
        LogWriterSet::wants(self, path)
    }

    fn write(&mut self, row: &dyn LogRow) {
        if self.error.is_some() {
            return;
        }
        let schema = row.schema();
        let index = match self.log_of(schema) {
            Ok(index) => index,
            Err(error) => {
                self.error = Some(error);
                return;
            }
        };
        let format = self.format;
        let log = &mut self.open[index];
        if !log.kept {
            return;
        }
        debug_assert!(std::ptr::eq(log.schema, schema) || log.schema.fields == schema.fields);
        match format {
            LogFormat::Tsv => render_tsv_line(&mut log.pending, row),
            LogFormat::Json => render_json_line(&mut log.pending, row),
        }
        log.lines += 1;
        if log.pending.len() >= FLUSH_AT || log.file.is_none() {
            if let Err(e) = log.write_pending() {
                self.error = Some((log.path.clone(), e));
            }
        }
    }
}

/// The header block Zeek's ASCII writer puts at the top of every log.
pub fn tsv_header(schema: &LogSchema) -> String {
    let mut h = String::with_capacity(512);
    h.push_str("#separator \\x09\n");
    h.push_str("#set_separator\t,\n");
    h.push_str("#empty_field\t(empty)\n");
    h.push_str("#unset_field\t-\n");
    let _ = writeln!(h, "#path\t{}", schema.path);
    let _ = writeln!(h, "#open\t{}", zeek_open_time(SystemTime::now()));
    h.push_str("#fields");
    for f in schema.fields {
        h.push('\t');
        h.push_str(f.name);
    }
    h.push_str("\n#types");
    for f in schema.fields {
        h.push('\t');
        h.push_str(f.ty);
    }
    h.push('\n');
    h
}

/// `YYYY-MM-DD-HH-MM-SS` in UTC, the `#open`/`#close` stamp format.
pub fn zeek_open_time(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = crate::time::civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}-{:02}-{:02}-{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn render_tsv_line(out: &mut Vec<u8>, row: &dyn LogRow) {
    let mut first = true;
    row.for_each_value(&mut |v| {
        if !first {
            out.push(SEPARATOR);
        }
        first = false;
        render_tsv_value(out, v, false);
    });
    out.push(b'\n');
}

fn render_tsv_value(out: &mut Vec<u8>, v: Value<'_>, in_container: bool) {
    match v {
        Value::Unset => out.extend_from_slice(UNSET_FIELD.as_bytes()),
        Value::Bool(b) => out.push(if b { b'T' } else { b'F' }),
        Value::Count(c) => push_u64(out, c),
        Value::Int(i) => push_i64(out, i),
        Value::Port(p) => push_u64(out, p.into()),
        Value::Double(d) => push_zeek_double(out, d),
        Value::Time(t) | Value::Interval(t) => push_fixed6(out, t),
        Value::Addr(a) => push_addr(out, a),
        Value::Enum(e) => escape_tsv(out, e.as_bytes(), in_container),
        Value::Str(s) => {
            if s.is_empty() {
                out.extend_from_slice(EMPTY_FIELD.as_bytes());
            } else if s == UNSET_FIELD {
                out.extend_from_slice(b"\\x2d");
            } else {
                escape_tsv(out, s.as_bytes(), in_container);
            }
        }
        Value::Set(items) | Value::Vector(items) => {
            if items.is_empty() {
                out.extend_from_slice(EMPTY_FIELD.as_bytes());
                return;
            }
            for i in 0..items.len() {
                if i > 0 {
                    out.push(SET_SEPARATOR);
                }
                render_tsv_value(out, items.value(i), true);
            }
        }
    }
}

/// Escapes the separator, the set separator inside containers, and non-printable bytes.
fn escape_tsv(out: &mut Vec<u8>, bytes: &[u8], in_container: bool) {
    // Nearly every string needs no escape: checked without early exit, which the compiler
    // turns into wide compares, then copied whole.
    let clean = if in_container {
        bytes.iter().fold(true, |all, &b| {
            all & ((0x20..0x7f).contains(&b) && b != SET_SEPARATOR)
        })
    } else {
        bytes
            .iter()
            .fold(true, |all, &b| all & (0x20..0x7f).contains(&b))
    };
    if clean {
        out.extend_from_slice(bytes);
        return;
    }
    // Runs of bytes that need no escape are copied whole.
    let mut clean_from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let needs_escape =
            b == SEPARATOR || (in_container && b == SET_SEPARATOR) || !(0x20..0x7f).contains(&b);
        if needs_escape {
            out.extend_from_slice(&bytes[clean_from..i]);
            push_hex_escape(out, b);
            clean_from = i + 1;
        }
    }
    out.extend_from_slice(&bytes[clean_from..]);
}

fn push_hex_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(&[
        b'\\',
        b'x',
        HEX[usize::from(b >> 4)],
        HEX[usize::from(b & 15)],
    ]);
}

fn push_display(out: &mut Vec<u8>, v: &impl std::fmt::Display) {
    let _ = write!(out, "{v}");
}

/// Decimal digits of `n`, as `Display` writes them, without the formatting machinery.
///
/// The digits are written left-aligned into a 20-byte array that is appended whole (a
/// fixed-size copy the compiler inlines, where a copy of just the digits is a call to
/// `memcpy`, which was 6-10 % of a small-flow run), then the tail past them is cut off.
#[inline]
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    if n < 10 {
        out.push(b'0' + n as u8);
        return;
    }
    let len = decimal_len(n);
    let mut digits = [0u8; 20];
    // Two digits per division, from a table of "00".."99".
    let mut at = len;
    while at >= 2 {
        let pair = usize::from((n % 100) as u8) * 2;
        n /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if at == 1 {
        digits[0] = b'0' + n as u8;
    }
    let end = out.len() + len;
    out.extend_from_slice(&digits);
    out.truncate(end);
}

/// "00", "01", ..., "99".
const DIGIT_PAIRS: [u8; 200] = {
    let mut table = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        table[2 * i] = b'0' + (i / 10) as u8;
        table[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    table
};

/// Number of decimal digits of `n` (1 for 0).
#[inline]
fn decimal_len(n: u64) -> usize {
    let mut len = 1;
    let mut bound = 10u64;
    while len < 20 && n >= bound {
        len += 1;
        bound = bound.wrapping_mul(10);
    }
    len
}

fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_u64(out, n.unsigned_abs());
}

/// `v` with six decimals, exactly as `format!("{v:.6}")` writes it.
fn push_fixed6(out: &mut Vec<u8>, v: f64) {
    match micros_rounded(v) {
        Some(micros) => {
            push_u64(out, micros / 1_000_000);
            out.push(b'.');
            let fraction = micros % 1_000_000;
            let mut digits = [b'0'; 6];
            let mut rest = fraction as usize;
            for at in [4, 2, 0] {
                let pair = rest % 100 * 2;
                rest /= 100;
                digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
            }
            out.extend_from_slice(&digits);
        }
        None => {
            let _ = write!(out, "{v:.6}");
        }
    }
}

/// `v × 10⁶` rounded to the nearest integer, ties to even (the rounding of `{:.6}`),
/// computed exactly from the float's bits; `None` (left to `fmt`) for negative, non-finite,
/// tiny or huge values. Time stamps take this path: `fmt` formats them through its slow
/// exact fallback.
fn micros_rounded(v: f64) -> Option<u64> {
    if !v.is_finite() || v.is_sign_negative() {
        return None;
    }
    let bits = v.to_bits();
    let biased_exponent = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mantissa, exponent) = if biased_exponent == 0 {
        (fraction, -1074)
    } else {
        (fraction | 1 << 52, biased_exponent - 1075)
    };
    // v = mantissa × 2^exponent, so v × 10⁶ = mantissa × 10⁶ × 2^exponent (< 2^73 × 2^exponent).
    let scaled = u128::from(mantissa) * 1_000_000;
    let micros = if exponent >= 0 {
        if exponent > 40 {
            return None;
        }
        scaled << exponent
    } else {
        let shift = exponent.unsigned_abs();
        if shift >= 127 {
            return (scaled == 0).then_some(0);
        }
        let whole = scaled >> shift;
        let remainder = scaled & ((1u128 << shift) - 1);
        let half = 1u128 << (shift - 1);
        if remainder > half || (remainder == half && whole & 1 == 1) {
            whole + 1
        } else {
            whole
        }
    };
    u64::try_from(micros).ok()
}

/// Zeek's ASCII double: at most six decimals, trailing zeros dropped, but always a decimal
/// point (`1.0`, `0.25`).
fn push_zeek_double(out: &mut Vec<u8>, v: f64) {
    if !v.is_finite() {
        push_display(out, &v);
        return;
    }
    let start = out.len();
    push_fixed6(out, v);
    while out.len() > start + 1 && out[out.len() - 1] == b'0' && out[out.len() - 2] != b'.' {
        out.pop();
    }
}

fn render_json_line(out: &mut Vec<u8>, row: &dyn LogRow) {
    let mut names = row.schema().fields.iter().map(|f| f.name);
    out.push(b'{');
    let mut first = true;
    row.for_each_value(&mut |v| {
        let name = names.next().unwrap_or_default();
        if matches!(v, Value::Unset) {
            return; // Zeek's JSON writer omits unset optional fields
        }
        if !first {
            out.push(b',');
        }
        first = false;
        json_string(out, name.as_bytes());
        out.push(b':');
        render_json_value(out, v);
    });
    out.extend_from_slice(b"}\n");
}

fn render_json_value(out: &mut Vec<u8>, v: Value<'_>) {
    match v {
        Value::Unset => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Value::Count(c) => push_u64(out, c),
        Value::Int(i) => push_i64(out, i),
        Value::Port(p) => push_u64(out, p.into()),
        Value::Double(d) | Value::Time(d) | Value::Interval(d) => push_json_double(out, d),
        Value::Addr(a) => {
            out.push(b'"');
            push_addr(out, a);
            out.push(b'"');
        }
        Value::Enum(e) => json_string(out, e.as_bytes()),
        Value::Str(s) => json_string(out, s.as_bytes()),
        Value::Set(items) | Value::Vector(items) => render_json_array(out, items),
    }
}

fn render_json_array(out: &mut Vec<u8>, items: &dyn Elements) {
    out.push(b'[');
    for i in 0..items.len() {
        if i > 0 {
            out.push(b',');
        }
        render_json_value(out, items.value(i));
    }
    out.push(b']');
}

/// As in the TSV logs (at most six decimals, microseconds, as Zeek writes them): the shortest
/// round-trip form would print a timestamp's float noise (`1700000000.1234567`). Non-finite as null.
fn push_json_double(out: &mut Vec<u8>, v: f64) {
    if !v.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    push_zeek_double(out, v);
}

fn json_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => {
                let _ = write!(out, "\\u{b:04x}");
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::log::{log_row, Set, Time};
    use std::net::IpAddr;

    log_row! {
        struct TestRow<'a> => TEST_SCHEMA("test") {
            ts: Option<Time>,
            s: Option<&'a str>,
            n: Set<'a, &'a str>,
            d: f64,
        }
    }

    fn tsv(row: &TestRow<'_>) -> String {
        let mut out = Vec::new();
        render_tsv_line(&mut out, row);
        String::from_utf8(out).expect("tsv output is ASCII")
    }

    #[test]
    fn tsv_renders_zeek_conventions() {
        let line = tsv(&TestRow {
            ts: Some(Time(1334173763.977955)),
            s: Some("a\tb\x01"),
            n: Set(&["x,y", "z"]),
            d: 1.0,
        });
        assert_eq!(line, "1334173763.977955\ta\\x09b\\x01\tx\\x2cy,z\t1.0\n");
    }

    #[test]
    fn escapes_anywhere_in_a_string() {
        let mut out = Vec::new();
        escape_tsv(&mut out, b"\x00a,b\tc\xff", true);
        escape_tsv(&mut out, b"|a,b|", false);
        assert_eq!(out, b"\\x00a\\x2cb\\x09c\\xff|a,b|");
    }

    #[test]
    fn tsv_unset_empty_and_dash_string() {
        let line = tsv(&TestRow {
            ts: None,
            s: Some(""),
            n: Set(&[]),
            d: 0.5,
        });
        assert_eq!(line, "-\t(empty)\t(empty)\t0.5\n");
        let dash = tsv(&TestRow {
            ts: None,
            s: Some("-"),
            n: Set(&["-", ""]),
            d: 0.5,
        });
        assert_eq!(dash, "-\t\\x2d\t\\x2d,(empty)\t0.5\n");
    }

    #[test]
    fn zeek_double_drops_trailing_zeros() {
        let mut out = Vec::new();
        push_zeek_double(&mut out, 0.25);
        out.push(b' ');
        push_zeek_double(&mut out, 3.0);
        out.push(b' ');
        push_zeek_double(&mut out, 1.1234567);
        assert_eq!(String::from_utf8(out).expect("ascii"), "0.25 3.0 1.123457");
    }

    #[test]
    fn json_times_have_the_tsv_logs_six_decimals() {
        let mut out = Vec::new();
        push_json_double(&mut out, 1_700_000_000.123_456_7);
        assert_eq!(out, b"1700000000.123457");
        out.clear();
        push_json_double(&mut out, 2.0);
        assert_eq!(out, b"2.0");
        out.clear();
        push_json_double(&mut out, f64::NAN);
        assert_eq!(out, b"null");
    }

    #[test]
    fn json_omits_unset_and_uses_arrays() {
        let mut out = Vec::new();
        render_json_line(
            &mut out,
            &TestRow {
                ts: Some(Time(1.5)),
                s: None,
                n: Set(&["a\"b"]),
                d: 2.0,
            },
        );
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "{\"ts\":1.5,\"n\":[\"a\\\"b\"],\"d\":2.0}\n"
        );
    }

    /// Deterministic xorshift generator for the formatting comparisons.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn fixed6_is_fmts_six_decimals() {
        let mut values = vec![
            0.0,
            -0.0,
            0.25,
            0.0000005,
            0.0000015,
            0.9999995,
            1.5,
            1_700_000_000.007_812_5, // an exact tie, rounded to even
            1_700_000_000.023_437_5,
            1_334_173_763.977_955,
            9.007e15,
            1e300,
            f64::MIN_POSITIVE,
            5e-324,
            -1.25,
            f64::INFINITY,
            f64::NAN,
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..100_000 {
            let r = next(&mut state);
            values.push(f64::from_bits(r));
            values.push((r % 2_000_000_000_000_000) as f64 / 1e6);
            values.push((r % (1 << 40)) as f64 / 128.0);
            values.push((r % 100_000_000) as f64 * 1e-9);
        }
        let mut out = Vec::new();
        for v in values {
            out.clear();
            push_fixed6(&mut out, v);
            assert_eq!(String::from_utf8_lossy(&out), format!("{v:.6}"), "{v:e}");
        }
    }

    #[test]
    fn integers_and_addresses_are_displays() {
        let mut state = 0x1234_5678_9abc_def1;
        let mut out = Vec::new();
        for n in [
            0,
            9,
            10,
            99,
            100,
            999_999,
            10_000_000_000_000_000_000,
            u64::MAX,
        ]
        .into_iter()
        .chain((0..10_000).map(|_| next(&mut state)))
        {
            out.clear();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
            out.clear();
            out.extend_from_slice(b"x");
            push_u64(&mut out, n / 7);
            assert_eq!(out, format!("x{}", n / 7).as_bytes());
            assert_eq!(decimal_len(n), n.to_string().len());
            out.clear();
            push_i64(&mut out, n as i64);
            assert_eq!(out, (n as i64).to_string().as_bytes());
        }
        for a in [
            "0.0.0.0",
            "10.0.0.255",
            "255.255.255.255",
            "::1",
            "2001:db8::7",
        ] {
            let addr: IpAddr = a.parse().expect("address");
            out.clear();
            push_addr(&mut out, addr);
            assert_eq!(out, a.as_bytes());
        }
    }

    #[test]
    fn open_time_format() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_334_173_763);
        assert_eq!(zeek_open_time(t), "2012-04-11-19-49-23");
    }

    #[test]
    fn files_created_only_on_first_line_and_closed() {
        let dir = std::env::temp_dir().join(format!("pcapd-writer-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut set = LogWriterSet::to_dir(&dir, LogFormat::Tsv, None);
        set.write(&TestRow {
            ts: Some(Time(1.0)),
            s: Some("x"),
            n: Set(&[]),
            d: 0.5,
        });
        let names = set.finish().expect("finish");
        assert_eq!(names, vec!["test.log".to_string()]);
        let text = std::fs::read_to_string(dir.join("test.log")).expect("read log");
        assert!(text.starts_with("#separator \\x09\n#set_separator\t,\n"));
        assert!(text.contains("#fields\tts\ts\tn\td\n#types\ttime\tstring\tset[string]\tdouble\n"));
        assert!(text.contains("\n1.000000\tx\t(empty)\t0.5\n#close\t"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
