//! DHCP name tables, from Zeek's `scripts/base/protocols/dhcp/consts.zeek`.

use std::borrow::Cow;

/// `DHCP::message_types`: the names of option 53's values (RFC 1533, 3203, 4388, 6926,
/// 7724), `unknown-message-type-N` for the rest.
pub fn message_type_name(code: u8) -> Cow<'static, str> {
    Cow::Borrowed(match code {
        1 => "DISCOVER",
        2 => "OFFER",
        3 => "REQUEST",
        4 => "DECLINE",
        5 => "ACK",
        6 => "NAK",
        7 => "RELEASE",
        8 => "INFORM",
        9 => "FORCERENEW",
        10 => "LEASEQUERY",
        11 => "LEASEUNASSIGNED",
        12 => "LEASEUNKNOWN",
        13 => "LEASEACTIVE",
        14 => "BULKLEASEQUERY",
        15 => "LEASEQUERYDONE",
        16 => "ACTIVELEASEQUERY",
        17 => "LEASEQUERYSTATUS",
        18 => "TLS",
        _ => return Cow::Owned(format!("unknown-message-type-{code}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_the_default() {
        assert_eq!(message_type_name(1), "DISCOVER");
        assert_eq!(message_type_name(18), "TLS");
        assert_eq!(message_type_name(0), "unknown-message-type-0");
    }
}
