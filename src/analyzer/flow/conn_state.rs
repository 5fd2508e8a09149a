//! Zeek's `conn_state` decision (`base/protocols/conn/main.zeek`), from the endpoint states
//! and the history the flow table keeps; pure functions, so the rules are tested without
//! packets.

use super::tcp::EndpointState;

/// TCP `conn_state` from both endpoint states and the history string.
pub fn tcp_conn_state(
    os: EndpointState,
    rs: EndpointState,
    orig_size: u64,
    resp_size: u64,
    history: &str,
) -> &'static str {
    use EndpointState::*;
    if rs == Reset {
        if matches!(os, SynSent | SynAckSent) || (os == Reset && orig_size == 0 && resp_size == 0) {
            "REJ"
        } else if os.inactive() {
            "RSTRH"
        } else {
            "RSTR"
        }
    } else if os == Reset {
        if rs.inactive() {
            if history_is_syn_then_reset(history) {
                "RSTOS0"
            } else {
                "OTH"
            }
        } else {
            "RSTO"
        }
    } else if rs == Closed && os == Closed {
        "SF"
    } else if os == Closed {
        if rs.inactive() {
            "SH"
        } else {
            "S2"
        }
    } else if rs == Closed {
        if os.inactive() {
            "SHR"
        } else {
            "S3"
        }
    } else if os == SynSent && rs == Inactive {
        "S0"
    } else if os == Established && rs == Established {
        "S1"
    } else {
        "OTH"
    }
}

/// UDP `conn_state`: which sides sent anything.
pub fn udp_conn_state(orig_active: bool, resp_active: bool) -> &'static str {
    match (orig_active, resp_active) {
        (true, true) => "SF",
        (true, false) => "S0",
        (false, true) => "SHR",
        (false, false) => "OTH",
    }
}

/// The whole history matches `^?S[^HAFGIQ]*R.*`: an originator SYN, then nothing that shows
/// an answer or a close from the originator, then an originator reset.
fn history_is_syn_then_reset(history: &str) -> bool {
    let h = history.strip_prefix('^').unwrap_or(history);
    let Some(rest) = h.strip_prefix('S') else {
        return false;
    };
    for c in rest.chars() {
        match c {
            'R' => return true,
            'H' | 'A' | 'F' | 'G' | 'I' | 'Q' => return false,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::EndpointState::*;
    use super::*;

    #[test]
    fn documented_examples() {
        assert_eq!(tcp_conn_state(SynSent, Reset, 0, 0, "Sr"), "REJ");
        assert_eq!(tcp_conn_state(Reset, Inactive, 0, 0, "SR"), "RSTOS0");
        assert_eq!(tcp_conn_state(Reset, Partial, 0, 0, "SaR"), "RSTOS0");
        assert_eq!(tcp_conn_state(Reset, Inactive, 0, 0, "R"), "OTH");
        assert_eq!(tcp_conn_state(Reset, Partial, 0, 0, "SaFR"), "OTH");
        assert_eq!(tcp_conn_state(Reset, Established, 5, 5, "ShADadfR"), "RSTO");
        assert_eq!(tcp_conn_state(Partial, Reset, 5, 0, "Dr"), "RSTRH");
        assert_eq!(tcp_conn_state(Closed, Reset, 5, 5, "ShADadFr"), "RSTR");
        assert_eq!(tcp_conn_state(Closed, Inactive, 5, 0, "SADF"), "SH");
        assert_eq!(tcp_conn_state(SynSent, Inactive, 5, 0, "SAD"), "S0");
        assert_eq!(tcp_conn_state(Inactive, Closed, 0, 5, "^hdaf"), "SHR");
        assert_eq!(tcp_conn_state(Closed, Closed, 5, 5, "^hADdFaf"), "SF");
        assert_eq!(
            tcp_conn_state(Established, Established, 5, 5, "ShADad"),
            "S1"
        );
        assert_eq!(tcp_conn_state(Inactive, Inactive, 0, 0, "C"), "OTH");
    }

    #[test]
    fn udp_states() {
        assert_eq!(udp_conn_state(true, false), "S0");
        assert_eq!(udp_conn_state(true, true), "SF");
        assert_eq!(udp_conn_state(false, true), "SHR");
        assert_eq!(udp_conn_state(false, false), "OTH");
    }
}
