//! Addresses as text, exactly as their `Display` writes them, without the formatting
//! machinery (which was most of the cost of a DNS answer or an IPv6 conn.log line). Used by
//! the log writers and by analyzers that log addresses inside strings (DNS answers).

use std::net::{IpAddr, Ipv4Addr};

/// An address exactly as its `Display` writes it, without the formatting machinery (which
/// was most of the cost of a DNS answer or an IPv6 conn.log line): IPv4 as a dotted quad;
/// IPv6 in lower-case hex groups with the longest run of two or more zero groups (the first
/// of equal runs) written `::`, and IPv4-mapped addresses as `::ffff:a.b.c.d`.
pub fn push_addr(out: &mut Vec<u8>, addr: IpAddr) {
    match addr {
        IpAddr::V4(v4) => push_ipv4(out, v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                out.extend_from_slice(b"::ffff:");
                push_ipv4(out, v4);
                return;
            }
            let groups = v6.segments();
            // The longest run of zero groups (the first one of equal length).
            let (mut best_start, mut best_len, mut run_start, mut run_len) = (0, 0, 0, 0);
            for (i, &g) in groups.iter().enumerate() {
                if g == 0 {
                    if run_len == 0 {
                        run_start = i;
                    }
                    run_len += 1;
                    if run_len > best_len {
                        (best_start, best_len) = (run_start, run_len);
                    }
                } else {
                    run_len = 0;
                }
            }
            if best_len > 1 {
                push_hex_groups(out, &groups[..best_start]);
                out.extend_from_slice(b"::");
                push_hex_groups(out, &groups[best_start + best_len..]);
            } else {
                push_hex_groups(out, &groups);
            }
        }
    }
}

/// Decimal text of every octet value: up to three digits and their count.
const OCTETS: [([u8; 3], u8); 256] = {
    let mut table = [([0u8; 3], 0u8); 256];
    let mut n = 0;
    while n < 256 {
        let (h, t, o) = ((n / 100) as u8, (n / 10 % 10) as u8, (n % 10) as u8);
        table[n] = if n >= 100 {
            ([b'0' + h, b'0' + t, b'0' + o], 3)
        } else if n >= 10 {
            ([b'0' + t, b'0' + o, 0], 2)
        } else {
            ([b'0' + o, 0, 0], 1)
        };
        n += 1;
    }
    table
};

/// A dotted quad, assembled in a fixed buffer that is appended whole and then cut to length.
fn push_ipv4(out: &mut Vec<u8>, v4: Ipv4Addr) {
    let mut text = [0u8; 16];
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        let (digits, n) = OCTETS[usize::from(octet)];
        text[len..len + 3].copy_from_slice(&digits);
        len += usize::from(n);
    }
    let end = out.len() + len;
    out.extend_from_slice(&text);
    out.truncate(end);
}

/// Groups as lower-case hex without leading zeros, `:` between them.
fn push_hex_groups(out: &mut Vec<u8>, groups: &[u16]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, &g) in groups.iter().enumerate() {
        if i > 0 {
            out.push(b':');
        }
        let mut started = false;
        for shift in [12, 8, 4, 0] {
            let nibble = (g >> shift) & 15;
            if started || nibble != 0 || shift == 0 {
                out.push(HEX[usize::from(nibble)]);
                started = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    /// Deterministic xorshift generator.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        let mut state = 0x0bad_cafe_dead_beef;
        let mut out = Vec::new();
        let mut check = |addr: IpAddr| {
            out.clear();
            push_addr(&mut out, addr);
            assert_eq!(String::from_utf8_lossy(&out), addr.to_string());
        };
        for _ in 0..200_000 {
            let r = u128::from(next(&mut state)) << 64 | u128::from(next(&mut state));
            // Zero out random groups so that zero runs of every length and place occur.
            let mask = next(&mut state);
            let mut bits = r;
            for g in 0..8 {
                if mask >> (g * 3) & 3 != 0 {
                    bits &= !(0xffffu128 << (g * 16));
                }
            }
            check(IpAddr::V6(Ipv6Addr::from(bits)));
            check(IpAddr::V6(Ipv6Addr::from(bits & 0xffff_ffff)));
            check(IpAddr::V6(Ipv6Addr::from(
                bits & 0xffff_ffff | 0xffff << 32,
            )));
            check(IpAddr::V4(Ipv4Addr::from(r as u32)));
        }
        for a in [
            "::",
            "::1",
            "1::",
            "::ffff:1.2.3.4",
            "1:0:0:1:0:0:0:1",
            "0:1:0:1:0:1:0:1",
        ] {
            check(a.parse().expect("address"));
        }
    }
}
