//! FTP's wire format: command lines, reply lines (with RFC 959's multi-line replies), the
//! address arguments of `PORT`/`EPRT` and of the `227`/`229` replies, and the path helpers
//! `ftp.log`'s `arg` is built with. Mirrors Zeek's `src/analyzer/protocol/ftp/FTP.cc`,
//! `functions.bif` and `base/utils/{paths,numbers}.zeek`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A client command line: the command upper-cased, its argument as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Command {
    pub cmd: String,
    pub arg: Vec<u8>,
}

/// Why a client line is no command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InvalidCommand {
    /// Not a word of at least three printable characters (Zeek: `FTP_invalid_command`).
    NotAWord,
    /// A word longer than [`MAX_COMMAND_LENGTH`] (Zeek: `FTP_max_command_length_exceeded`).
    TooLong(usize),
}

/// Longest command word Zeek accepts (`FTP::max_command_length`).
pub(crate) const MAX_COMMAND_LENGTH: usize = 100;

/// Parses a client line: leading blanks, a word of at least three printable characters, the
/// blanks after it, and the rest as the argument.
pub(crate) fn command(line: &[u8]) -> Result<Command, InvalidCommand> {
    let line = skip_space(line);
    let end = line
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(line.len());
    let word = &line[..end];
    if word.len() < 3 || !word.iter().all(|b| b.is_ascii_graphic()) {
        return Err(InvalidCommand::NotAWord);
    }
    if word.len() > MAX_COMMAND_LENGTH {
        return Err(InvalidCommand::TooLong(word.len()));
    }
    Ok(Command {
        cmd: String::from_utf8_lossy(word).to_ascii_uppercase(),
        arg: skip_space(&line[end..]).to_vec(),
    })
}

/// A server reply line as Zeek's `ftp_reply` event reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    /// 0 for the inner lines of a multi-line reply.
    pub code: u64,
    pub msg: Vec<u8>,
    /// Part of a multi-line reply that has not ended with this line.
    pub cont: bool,
}

/// Reads reply lines, tracking multi-line replies (`NNN-` … `NNN `).
#[derive(Debug, Default)]
pub(crate) struct ReplyReader {
    pending: u64,
}

impl ReplyReader {
    /// The reply a (non-empty) line makes, or `None` for a line that is no reply (Zeek: an
    /// analyzer violation).
    pub(crate) fn line(&mut self, line: &[u8]) -> Option<Reply> {
        let code = reply_code(line);
        if self.pending != 0 {
            if code == self.pending && line.get(3) == Some(&b' ') {
                self.pending = 0;
                return Some(Reply {
                    code,
                    msg: skip_space(&line[3..]).to_vec(),
                    cont: false,
                });
            }
            return Some(Reply {
                code: 0,
                msg: line.to_vec(),
                cont: true,
            });
        }
        if code < 100 {
            return None;
        }
        match line.get(3) {
            Some(b'-') => {
                self.pending = code;
                Some(Reply {
                    code,
                    msg: skip_space(&line[4..]).to_vec(),
                    cont: true,
                })
            }
            Some(b' ') | None => Some(Reply {
                code,
                msg: skip_space(&line[3..]).to_vec(),
                cont: false,
            }),
            Some(_) => None,
        }
    }
}

/// The three leading digits of a line as a number, 0 if it has none.
fn reply_code(line: &[u8]) -> u64 {
    match line {
        [a, b, c, ..] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            u64::from(a - b'0') * 100 + u64::from(b - b'0') * 10 + u64::from(c - b'0')
        }
        _ => 0,
    }
}

fn skip_space(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    &s[start..]
}

/// An address and port announced for a data connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HostPort {
    pub h: IpAddr,
    pub p: u16,
}

/// `h1,h2,h3,h4,p1,p2` (Zeek's `parse_ftp_port`): six numbers 0–255.
pub(crate) fn port_arg(s: &[u8]) -> Option<HostPort> {
    if s.len() < 11 {
        return None;
    }
    let mut rest = s;
    let mut bytes = [0u8; 6];
    for (i, slot) in bytes.iter_mut().enumerate() {
        if i > 0 {
            rest = rest.strip_prefix(b",")?;
        }
        let (n, after) = leading_int(rest)?;
        *slot = u8::try_from(n).ok()?;
        rest = after;
    }
    Some(HostPort {
        h: IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
        p: u16::from(bytes[4]) << 8 | u16::from(bytes[5]),
    })
}

/// A decimal integer after optional blanks and sign (as `sscanf("%d")` reads one).
fn leading_int(s: &[u8]) -> Option<(i64, &[u8])> {
    let s = skip_space(s);
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 || n > 12 {
        return None;
    }
    let value: i64 = std::str::from_utf8(&digits[..n]).ok()?.parse().ok()?;
    Some((if neg { -value } else { value }, &digits[n..]))
}

/// `|proto|addr|port|` with any delimiter (RFC 2428, Zeek's `parse_eftp_port`); an empty
/// address is the unspecified `::`.
pub(crate) fn eprt_arg(s: &[u8]) -> Option<HostPort> {
    let s = skip_space(s);
    let (&delim, rest) = s.split_first()?;
    let mut fields = rest.split(|&b| b == delim);
    let proto = fields.next()?;
    if !proto.is_empty() && !proto.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let addr = fields.next()?;
    let port = fields.next()?;
    // The port must be followed by the delimiter.
    fields.next()?;
    let h = if addr.is_empty() {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        std::str::from_utf8(addr).ok()?.parse().ok()?
    };
    let p = std::str::from_utf8(port).ok()?.parse().ok()?;
    Some(HostPort { h, p })
}

/// The address of a `227` reply (Zeek's `parse_ftp_pasv`): after `(`, else after `PORT`,
/// else from the digits before the first comma.
pub(crate) fn pasv_reply(msg: &[u8]) -> Option<HostPort> {
    let start = if let Some(i) = msg.iter().position(|&b| b == b'(') {
        i + 1
    } else if let Some(i) = msg.windows(4).position(|w| w == b"PORT") {
        i + 5
    } else {
        let comma = msg.iter().position(|&b| b == b',')?;
        msg[..comma]
            .iter()
            .rposition(|b| !b.is_ascii_digit())
            .map_or(0, |i| i + 1)
    };
    port_arg(msg.get(start..)?)
}

/// The address of a `229` reply (Zeek's `parse_ftp_epsv`): the RFC 2428 form after `(`.
pub(crate) fn epsv_reply(msg: &[u8]) -> Option<HostPort> {
    let i = msg.iter().position(|&b| b == b'(')?;
    eprt_arg(&msg[i + 1..])
}

/// The last number in `s` (Zeek's `extract_count(s, F)`), 0 if none.
pub(crate) fn last_count(s: &[u8]) -> u64 {
    let end = match s.iter().rposition(u8::is_ascii_digit) {
        Some(e) => e + 1,
        None => return 0,
    };
    let start = s[..end]
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    std::str::from_utf8(&s[start..end])
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The first absolute path in `s` (Zeek's `extract_path`), empty if none: from a `/` (or a
/// drive letter and colon) to the next quote or unescaped space.
pub(crate) fn extract_path(s: &[u8]) -> Vec<u8> {
    let start = (0..s.len()).find(|&i| {
        s[i] == b'/'
            || (s[i].is_ascii_alphabetic()
                && s.get(i + 1) == Some(&b':')
                && matches!(s.get(i + 2), Some(b'/' | b'\\')))
    });
    let Some(start) = start else {
        return Vec::new();
    };
    let mut end = start + 1;
    while end < s.len() {
        match s[end] {
            b'"' | b' ' => break,
            b'\\' if s.get(end + 1) == Some(&b' ') => end += 2,
            _ => end += 1,
        }
    }
    s[start..end.min(s.len())].to_vec()
}

/// `file_name` relative to `dir`, compressed (Zeek's `build_path_compressed`).
pub(crate) fn build_path_compressed(dir: &[u8], file_name: &[u8]) -> Vec<u8> {
    let absolute = file_name.first() == Some(&b'/')
        || (file_name.len() >= 3
            && file_name[0].is_ascii_alphabetic()
            && file_name[1] == b':'
            && matches!(file_name[2], b'/' | b'\\'));
    let path = if absolute || dir.is_empty() {
        file_name.to_vec()
    } else {
        let mut p = dir.to_vec();
        if !dir.ends_with(b"/") {
            p.push(b'/');
        }
        p.extend_from_slice(file_name);
        p
    };
    normalize_path(&path)
}

/// Zeek's `normalize_path` (POSIX flavour): drops empty and inner `.` components and
/// resolves `..` against the component before it.
fn normalize_path(path: &[u8]) -> Vec<u8> {
    let has = |n: &[u8]| path.windows(n.len()).any(|w| w == n);
    if !has(b"/.") && !has(b"//") {
        let mut p = path.to_vec();
        if p.len() > 1 && p.ends_with(b"/") {
            p.pop();
        }
        return p;
    }
    let mut out: Vec<&[u8]> = Vec::new();
    for (i, comp) in path.split(|&b| b == b'/').enumerate() {
        if comp.is_empty() || (comp == b"." && i != 0) {
            continue;
        }
        out.push(comp);
        if comp == b".." && out.len() > 1 {
            let last = out[out.len() - 2];
            if last == b"/" || last == b"~" || last == b".." {
                continue;
            }
            out.pop();
            if last == b"." {
                *out.last_mut().expect("the '.' component") = b"..";
            } else {
                out.pop();
            }
        }
    }
    let mut p = if path.first() == Some(&b'/') {
        b"/".to_vec()
    } else {
        Vec::new()
    };
    for comp in out {
        p.extend_from_slice(comp);
        p.push(b'/');
    }
    if p.len() > 1 && p.ends_with(b"/") {
        p.pop();
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_words_of_three_printable_characters() {
        let c = command(b"  retr robots.txt ").unwrap();
        assert_eq!((c.cmd.as_str(), &c.arg[..]), ("RETR", &b"robots.txt "[..]));
        assert_eq!(command(b"QUIT").unwrap().arg, b"");
        assert_eq!(command(b"ab x"), Err(InvalidCommand::NotAWord));
        assert_eq!(command(b"\x16\x03\x01"), Err(InvalidCommand::NotAWord));
        assert_eq!(command(&[b'A'; 132]), Err(InvalidCommand::TooLong(132)));
    }

    #[test]
    fn multi_line_replies_end_with_their_code() {
        let mut r = ReplyReader::default();
        let first = r.line(b"230-Welcome").unwrap();
        assert_eq!((first.code, first.cont), (230, true));
        let inner = r.line(b"220 not the end code").unwrap();
        assert_eq!((inner.code, inner.cont), (0, true));
        let last = r.line(b"230 Done.").unwrap();
        assert_eq!(
            (last.code, &last.msg[..], last.cont),
            (230, &b"Done."[..], false)
        );
        assert_eq!(r.line(b"221").unwrap().msg, b"");
        assert_eq!(r.line(b"hello"), None);
        assert_eq!(r.line(b"099 low"), None);
    }

    #[test]
    fn data_channel_addresses() {
        let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
        assert_eq!(
            port_arg(b"10,0,0,1,195,80"),
            Some(HostPort {
                h: v4(10, 0, 0, 1),
                p: 50000
            })
        );
        assert_eq!(port_arg(b"10,0,0,256,1,1"), None);
        assert_eq!(
            pasv_reply(b"Entering Passive Mode (127,0,0,1,4,1)."),
            Some(HostPort {
                h: v4(127, 0, 0, 1),
                p: 1025
            })
        );
        assert_eq!(
            pasv_reply(b"Entering Passive Mode 127,0,0,1,4,1"),
            Some(HostPort {
                h: v4(127, 0, 0, 1),
                p: 1025
            })
        );
        let e = eprt_arg(b"|2|2001:470:1f11:81f:c999:d94:aa7c:2e3e|49189|").unwrap();
        assert_eq!(
            e.h,
            "2001:470:1f11:81f:c999:d94:aa7c:2e3e"
                .parse::<IpAddr>()
                .unwrap()
        );
        assert_eq!(e.p, 49189);
        let p = epsv_reply(b"Entering Extended Passive Mode (|||57086|)").unwrap();
        assert_eq!((p.h, p.p), (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 57086));
        assert_eq!(eprt_arg(b"|2|::1|70000|"), None);
        assert_eq!(eprt_arg(b"|2|::1|21"), None);
    }

    #[test]
    fn numbers_and_paths() {
        assert_eq!(
            last_count(b"Opening BINARY mode for 'a2.txt' (77 bytes)."),
            77
        );
        assert_eq!(last_count(b"no digits"), 0);
        assert_eq!(
            extract_path(b"\"/pub/x\" is the current directory."),
            b"/pub/x"
        );
        assert_eq!(extract_path(b"nothing"), b"");
        assert_eq!(build_path_compressed(b"/", b"robots.txt"), b"/robots.txt");
        assert_eq!(build_path_compressed(b".", b"a"), b"./a");
        assert_eq!(build_path_compressed(b"/pub/x", b"../y//z/."), b"/pub/y/z");
        assert_eq!(
            build_path_compressed(b"/pub", b"/etc/passwd"),
            b"/etc/passwd"
        );
    }
}
