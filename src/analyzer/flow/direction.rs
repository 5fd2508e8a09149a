//! Who is the originator: Zeek's "likely server ports" heuristic applied when a connection
//! is created, and the NTP mode flip applied on the first message (the DNS response-first
//! flip belongs to the DNS analyzer, see `AppAnalyzer::take_role_flip`).

use std::net::IpAddr;

/// TCP ports registered as server ports by Zeek's default analyzers.
const TCP_SERVER_PORTS: &[u16] = &[
    21, 22, 25, 53, 79, 80, 81, 88, 135, 139, 143, 389, 443, 445, 465, 502, 514, 563, 585, 587,
    614, 631, 636, 989, 990, 992, 993, 995, 1080, 1434, 1883, 2811, 3128, 3268, 3306, 3389, 5222,
    5223, 5269, 5432, 6379, 6666, 6667, 6668, 6669, 8000, 8080, 8888, 20000,
];

/// UDP ports registered as server ports by Zeek's default analyzers.
const UDP_SERVER_PORTS: &[u16] = &[
    53, 67, 88, 123, 137, 161, 162, 389, 443, 514, 1812, 2123, 2152, 3389, 3544, 4011, 4754, 4789,
    5060, 5072, 5353, 5355, 6081, 20000,
];

const NTP_PORT: u16 = 123;

pub fn is_likely_server_port(tcp: bool, port: u16) -> bool {
    if tcp {
        TCP_SERVER_PORTS.binary_search(&port).is_ok()
    } else {
        UDP_SERVER_PORTS.binary_search(&port).is_ok()
    }
}

/// Whether a new connection whose first packet goes `src_port → dst` should be flipped so
/// that `dst` becomes the originator. `pure_syn`/`has_syn` describe a TCP first packet.
pub fn flip_at_creation(
    tcp: bool,
    src_port: u16,
    dst: IpAddr,
    dst_port: u16,
    pure_syn: bool,
    has_syn: bool,
) -> bool {
    if dst == IpAddr::from([255, 255, 255, 255]) {
        return false;
    }
    if tcp && pure_syn {
        return false;
    }
    if !is_likely_server_port(tcp, src_port) {
        return false;
    }
    if !is_likely_server_port(tcp, dst_port) {
        return true;
    }
    tcp && !has_syn && src_port < dst_port
}

/// NTP: a server-mode (4) packet from the originator or a client-mode (3) packet from the
/// responder means the roles are reversed.
pub fn ntp_mode_says_flip(orig_p: u16, resp_p: u16, is_orig: bool, message: &[u8]) -> bool {
    if orig_p != NTP_PORT && resp_p != NTP_PORT {
        return false;
    }
    let Some(first) = message.first() else {
        return false;
    };
    if message.len() < 48 {
        return false;
    }
    let mode = first & 0x07;
    (is_orig && mode == 4) || (!is_orig && mode == 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_lists_are_sorted_for_binary_search() {
        assert!(TCP_SERVER_PORTS.windows(2).all(|w| w[0] < w[1]));
        assert!(UDP_SERVER_PORTS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn creation_flip_rules() {
        let dst = IpAddr::from([10, 0, 0, 1]);
        // SYN-ACK from a server port to an ephemeral port: flip.
        assert!(flip_at_creation(true, 80, dst, 51000, false, true));
        // A pure SYN is never flipped.
        assert!(!flip_at_creation(true, 80, dst, 51000, true, true));
        // Both server ports: only without SYN and when the source port is lower.
        assert!(flip_at_creation(true, 80, dst, 443, false, false));
        assert!(!flip_at_creation(true, 443, dst, 80, false, false));
        assert!(flip_at_creation(false, 53, dst, 40000, false, false));
        assert!(!flip_at_creation(false, 53, dst, 53, false, false));
        assert!(!flip_at_creation(
            false,
            53,
            IpAddr::from([255, 255, 255, 255]),
            40000,
            false,
            false
        ));
    }
}
