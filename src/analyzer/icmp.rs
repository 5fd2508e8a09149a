//! ICMP as Zeek's connections see it: request/reply type pairs (`ICMP4_counterpart`,
//! `ICMP6_counterpart`) and the "ports" an ICMP flow gets from them, which conn.log and the
//! Community ID both use.

/// ICMP "ports": the type, and the counterpart type of request/response pairs or the code
/// of one-way messages.
pub(crate) fn icmp_ports(v6: bool, icmp_type: u8, code: u8) -> (u16, u16) {
    let counterpart = icmp_counterpart(v6, icmp_type);
    (u16::from(icmp_type), u16::from(counterpart.unwrap_or(code)))
}

/// The message type answering (or answered by) `icmp_type`, for Zeek's request/reply pairs
/// (`ICMP4_counterpart`/`ICMP6_counterpart`); `None` for one-way messages.
pub(crate) fn icmp_counterpart(v6: bool, icmp_type: u8) -> Option<u8> {
    if v6 {
        match icmp_type {
            128 => Some(129),
            129 => Some(128),
            133 => Some(134),
            134 => Some(133),
            135 => Some(136),
            136 => Some(135),
            130 => Some(131),
            131 => Some(130),
            139 => Some(140),
            140 => Some(139),
            144 => Some(145),
            145 => Some(144),
            _ => None,
        }
    } else {
        match icmp_type {
            8 => Some(0),
            0 => Some(8),
            13 => Some(14),
            14 => Some(13),
            15 => Some(16),
            16 => Some(15),
            10 => Some(9),
            9 => Some(10),
            17 => Some(18),
            18 => Some(17),
            _ => None,
        }
    }
}
