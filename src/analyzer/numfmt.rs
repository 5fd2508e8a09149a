//! Fast renderings of the numbers every log line carries (counts, ports, IPv4 addresses,
//! six-decimal times), each byte-identical to Rust's `Display`/`{:.6}` output, which is what
//! the writers produced before and what the tests compare against. `core::fmt` costs a
//! quarter of the CPU of a conn.log line on small-flow captures; these do not go through it.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

/// Appends `v` in decimal.
pub fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends `v` in decimal.
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

/// Appends an address as `Display` writes it (dotted quad; IPv6 by the standard library).
pub fn push_addr(out: &mut Vec<u8>, addr: &IpAddr) {
    match addr {
        IpAddr::V4(v4) => push_ipv4(out, v4),
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(39);
            let _ = write!(s, "{v6}");
            out.extend_from_slice(s.as_bytes());
        }
    }
}

fn push_ipv4(out: &mut Vec<u8>, addr: &Ipv4Addr) {
    for (i, octet) in addr.octets().into_iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        push_u64(out, u64::from(octet));
    }
}

/// Appends `v` with exactly six decimals, as `format!("{v:.6}")` does: the exact binary value
/// rounded to the nearest millionth, ties to even. Values whose exact scaled form does not fit
/// the integer path (huge, tiny or not finite) go through `core::fmt`.
pub fn push_fixed6(out: &mut Vec<u8>, v: f64) {
    if !push_fixed6_exact(out, v) {
        let _ = write!(WriteBytes(out), "{v:.6}");
    }
}

fn push_fixed6_exact(out: &mut Vec<u8>, v: f64) -> bool {
    if !v.is_finite() {
        return false;
    }
    let bits = v.to_bits();
    let negative = bits >> 63 == 1;
    let exp_bits = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    // v = mantissa × 2^exp exactly.
    let (mantissa, exp) = if exp_bits == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), exp_bits - 1075)
    };
    if mantissa == 0 {
        if negative {
            out.push(b'-');
        }
        out.extend_from_slice(b"0.000000");
        return true;
    }
    // millionths = mantissa × 10^6 × 2^exp, rounded half to even.
    let scaled = u128::from(mantissa) * 1_000_000;
    let millionths: u128 = if exp >= 0 {
        if exp > 40 {
            return false; // beyond 2^93: let core::fmt write the long integer part
        }
        scaled << exp
    } else {
        let shift = (-exp) as u32;
        if shift >= 127 {
            // Below 2^-74 × 10^6: rounds to zero, and never a tie.
            0
        } else {
            let q = scaled >> shift;
            let r = scaled & ((1u128 << shift) - 1);
            let half = 1u128 << (shift - 1);
            if r > half || (r == half && q & 1 == 1) {
                q + 1
            } else {
                q
            }
        }
    };
    let int_part = millionths / 1_000_000;
    let frac_part = (millionths % 1_000_000) as u64;
    if int_part > u128::from(u64::MAX) {
        return false;
    }
    if negative {
        out.push(b'-');
    }
    push_u64(out, int_part as u64);
    out.push(b'.');
    let mut digits = [b'0'; 6];
    let mut f = frac_part;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (f % 10) as u8;
        f /= 10;
    }
    out.extend_from_slice(&digits);
    true
}

/// `fmt::Write` into a byte vector.
struct WriteBytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for WriteBytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed6(v: f64) -> String {
        let mut out = Vec::new();
        push_fixed6(&mut out, v);
        String::from_utf8(out).expect("ascii")
    }

    fn rng(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn integers_and_addresses_match_display() {
        for v in [0u64, 1, 9, 10, 99, 100, 65535, 1 << 40, u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
        }
        for v in [0i64, -1, i64::MIN, i64::MAX, -42] {
            let mut out = Vec::new();
            push_i64(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
        }
        for a in [
            "0.0.0.0",
            "255.255.255.255",
            "10.2.33.4",
            "::1",
            "fe80::1:2",
            "::ffff:1.2.3.4",
        ] {
            let addr: IpAddr = a.parse().expect("addr");
            let mut out = Vec::new();
            push_addr(&mut out, &addr);
            assert_eq!(out, addr.to_string().as_bytes());
        }
    }

    #[test]
    fn fixed6_matches_core_fmt_on_times_durations_and_edges() {
        let mut cases = vec![
            0.0,
            -0.0,
            0.5,
            1.5,
            2.5,
            0.0078125,
            0.0234375,
            1e-7,
            5e-7,
            4.9999995e-7,
            1e-300,
            f64::MIN_POSITIVE,
            5e-324,
            123456.0000005,
            1e15,
            9.87654321e17,
            1e20,
            1e30,
            1e300,
            f64::MAX,
            -f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -1.2345675,
            1_700_000_000.123_456_5,
            0.000_000_5,
        ];
        // Exact ties at the sixth decimal: k/2 millionths where k is odd and the value is a
        // dyadic rational (multiples of 2^-7 = 0.0078125 millionths apart).
        for k in 0..2000u32 {
            cases.push(f64::from(k) * 0.0078125);
            cases.push(f64::from(k) / 128.0 + 1_700_000_000.0);
        }
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..200_000 {
            let ns = (rng(&mut state) % 4_000_000_000_000_000_000) as i64;
            cases.push(ns as f64 / 1e9); // capture times
            cases.push((rng(&mut state) % 10_000_000_000_000) as f64 / 1e9); // durations
            cases.push(f64::from_bits(rng(&mut state))); // anything
        }
        for v in cases {
            assert_eq!(fixed6(v), format!("{v:.6}"), "bits {:#x}", v.to_bits());
        }
    }
}
