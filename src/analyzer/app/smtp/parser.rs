//! SMTP's wire format and the address helpers of Zeek's scripts: command and reply lines
//! (`src/analyzer/protocol/smtp/SMTP.cc`), the `BDAT` argument (`BDAT.cc`), and the
//! e-mail and IP address extraction of `base/utils/email.zeek` and `base/utils/addrs.zeek`.

use std::net::IpAddr;

use super::consts::Command;

/// A client line read as a command: the known command (if any) and its argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommandLine {
    pub command: Option<Command>,
    pub word: Vec<u8>,
    pub arg: Vec<u8>,
}

/// Parses a client line outside DATA: the first word (matched case-insensitively against
/// Zeek's command list) and the rest after blanks.
pub(crate) fn command(line: &[u8]) -> CommandLine {
    let line = line.trim_ascii_start();
    let end = line
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(line.len());
    let word = &line[..end];
    CommandLine {
        command: Command::parse(word),
        word: word.to_vec(),
        arg: line[end..].trim_ascii_start().to_vec(),
    }
}

/// A server reply line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplyLine {
    pub code: u64,
    /// `NNN-`: more lines of this reply follow.
    pub more: bool,
    pub msg: Vec<u8>,
}

/// Parses a server line: a code from 100 to 599, then `-` or a blank, then the text.
pub(crate) fn reply(line: &[u8]) -> Option<ReplyLine> {
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    if !(100..=599).contains(&code) {
        return None;
    }
    let more = line.get(3) == Some(&b'-');
    let msg = line.get(if more { 4 } else { 3 }..).unwrap_or_default();
    Some(ReplyLine {
        code,
        more,
        msg: msg.trim_ascii_start().to_vec(),
    })
}

/// A `BDAT` argument: the chunk size and whether it is the last chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bdat {
    pub size: u64,
    pub last: bool,
}

/// Parses `<size> [LAST]` (RFC 3030) as Zeek does; the error is Zeek's weird `addl`.
pub(crate) fn bdat_arg(arg: &[u8]) -> Result<Bdat, &'static str> {
    if arg.is_empty() || arg.len() > 25 {
        return Err("BDAT argument bad length");
    }
    let digits = arg.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return Err("BDAT not followed by a valid chunk-size");
    }
    let rest = &arg[digits..];
    if !rest.is_empty() && rest[0] != b' ' {
        return Err("BDAT chunk-size not valid");
    }
    let size = std::str::from_utf8(&arg[..digits])
        .ok()
        .and_then(|d| d.parse::<u64>().ok())
        .ok_or("BDAT chunk-size too large")?;
    let last = rest.len() >= 5 && rest[..5].eq_ignore_ascii_case(b" LAST");
    if !(rest.is_empty() || last && rest.len() == 5) {
        return Err("BDAT chunk-size followed by junk");
    }
    Ok(Bdat { size, last })
}

/// Bytes that end an address candidate in `extract_email_addrs_*`.
fn addr_stop(b: u8) -> bool {
    matches!(b, b'<' | b',' | b':' | b' ' | b'\t')
}

/// The e-mail addresses of `s` in order (Zeek's `extract_email_addrs_vec`): runs of
/// characters without `<,:` or blanks around an `@`, preceded by the start, `<`, `,`, `:`
/// or a blank, and ended by `>`, `,`, `;`, a blank or the end; the delimiters are dropped.
pub(crate) fn email_addrs(s: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < s.len() {
        // A candidate starts at the string's start or after a delimiter.
        if i > 0 && !addr_stop(s[i - 1]) {
            i += 1;
            continue;
        }
        let local = s[i..]
            .iter()
            .take_while(|&&b| !addr_stop(b) && b != b'@')
            .count();
        if local == 0 || s.get(i + local) != Some(&b'@') {
            i += 1;
            continue;
        }
        let domain_start = i + local + 1;
        let domain = s[domain_start..]
            .iter()
            .take_while(|&&b| !matches!(b, b'>' | b',' | b';' | b' ' | b'\t'))
            .count();
        if domain == 0 {
            i += 1;
            continue;
        }
        let raw = &s[i..domain_start + domain];
        let cleaned: Vec<u8> = raw
            .iter()
            .copied()
            .filter(|b| !matches!(b, b'<' | b'>' | b',' | b':' | b';' | b' ' | b'\t'))
            .collect();
        found.push(String::from_utf8_lossy(&cleaned).into_owned());
        // The match consumed its trailing delimiter.
        i = domain_start + domain + 1;
    }
    found
}

/// The addresses of a To/Cc header (Zeek's `split_mime_email_addresses`): each
/// comma-separated part holding an `@` (a quoted display name may hold commas), trimmed.
pub(crate) fn mime_email_addresses(s: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut parts = Vec::new();
    for (i, &b) in s.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    for p in parts {
        if p.contains(&b'@') {
            let v = String::from_utf8_lossy(p.trim_ascii()).into_owned();
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

/// The IP addresses written in `s`, in order (Zeek's `extract_ip_addresses`); with
/// `wrapped`, only those enclosed in `[]`, `()`, `{}` or blanks, or making up all of `s`.
pub(crate) fn ip_addresses(s: &[u8], wrapped: bool) -> Vec<IpAddr> {
    let is_part = |b: u8| b.is_ascii_hexdigit() || b == b'.' || b == b':';
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if !is_part(s[i]) {
            i += 1;
            continue;
        }
        let run = s[i..].iter().take_while(|&&b| is_part(b)).count();
        let (mut start, mut end) = (i, i + run);
        i = end;
        if !s[start..end].contains(&b':') {
            // An IPv4 address: digits and dots only.
            while start < end && !s[start].is_ascii_digit() {
                start += 1;
            }
            while end > start && !s[end - 1].is_ascii_digit() {
                end -= 1;
            }
        }
        let Some(addr) = std::str::from_utf8(&s[start..end])
            .ok()
            .and_then(|t| t.parse::<IpAddr>().ok())
        else {
            continue;
        };
        let ok = !wrapped
            || (start == 0 && end == s.len())
            || matches!(
                (start.checked_sub(1).map(|p| s[p]), s.get(end)),
                (Some(b'['), Some(b']'))
                    | (Some(b'('), Some(b')'))
                    | (Some(b'{'), Some(b'}'))
                    | (Some(b' '), Some(b' '))
            );
        if ok {
            out.push(addr);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_replies() {
        let c = command(b"mail FROM:<a@b.c> SIZE=10");
        assert_eq!(c.command, Some(Command::Mail));
        assert_eq!(c.arg, b"FROM:<a@b.c> SIZE=10");
        assert_eq!(command(b"Hello, Alice").command, None);
        let r = reply(b"250-mail.example.com Hello").unwrap();
        assert_eq!(
            (r.code, r.more, &r.msg[..]),
            (250, true, &b"mail.example.com Hello"[..])
        );
        assert_eq!(reply(b"221").unwrap().msg, b"");
        assert_eq!(reply(b"999 x"), None);
        assert_eq!(reply(b"hello"), None);
    }

    #[test]
    fn bdat_arguments() {
        assert_eq!(
            bdat_arg(b"86 LAST"),
            Ok(Bdat {
                size: 86,
                last: true
            })
        );
        assert_eq!(
            bdat_arg(b"86 last"),
            Ok(Bdat {
                size: 86,
                last: true
            })
        );
        assert_eq!(
            bdat_arg(b"200"),
            Ok(Bdat {
                size: 200,
                last: false
            })
        );
        assert_eq!(
            bdat_arg(b" 86"),
            Err("BDAT not followed by a valid chunk-size")
        );
        assert_eq!(bdat_arg(b"86LAST"), Err("BDAT chunk-size not valid"));
        assert_eq!(
            bdat_arg(b"86 LASTX"),
            Err("BDAT chunk-size followed by junk")
        );
    }

    #[test]
    fn addresses() {
        assert_eq!(
            email_addrs(b"FROM:<sender@example.com> SIZE=3"),
            ["sender@example.com"]
        );
        assert_eq!(
            email_addrs(b"TO:<a@x.org> ORCPT=rfc822;b@y.org"),
            ["a@x.org", "ORCPT=rfc822b@y.org"]
        );
        assert_eq!(
            mime_email_addresses(b"\"Doe, J\" <j@x.org>, k@y.org"),
            ["\"Doe, J\" <j@x.org>", "k@y.org"]
        );
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        assert_eq!(
            ip_addresses(
                b"from [10.0.0.1] by mx (1.2) with ESMTP; ::1 2001:db8::2",
                false
            ),
            [ip("10.0.0.1"), ip("::1"), ip("2001:db8::2")]
        );
        assert_eq!(
            ip_addresses(b"from x (HELO y) (10.0.0.1) by 10.0.0.2;", true),
            [ip("10.0.0.1")]
        );
    }
}
