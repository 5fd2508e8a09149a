//! DNS name tables transcribed from Zeek's `base/protocols/dns/consts.zeek` (query types,
//! classes, response codes, opcodes): keep them in step with that script. A code missing
//! from a table gets the placeholder Zeek's `&default` function gives it.

use std::borrow::Cow;

/// Zeek's `DNS::query_types` (`base/protocols/dns/consts.zeek`).
pub(crate) fn qtype_name(t: u16) -> Cow<'static, str> {
    let name = match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAP-PTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        31 => "EID",
        32 => "NIMLOC",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        40 => "SINK",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        53 => "SMIMEA",
        55 => "HIP",
        56 => "NINFO",
        57 => "RKEY",
        58 => "TALINK",
        59 => "CDS",
        60 => "CDNSKEY",
        61 => "OPENPGPKEY",
        62 => "CSYNC",
        63 => "ZONEMD",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        100 => "UINFO",
        101 => "UID",
        102 => "GID",
        103 => "UNSPEC",
        104 => "NID",
        105 => "L32",
        106 => "L64",
        107 => "LP",
        108 => "EUI48",
        109 => "EUI64",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "*",
        256 => "URI",
        257 => "CAA",
        32768 => "TA",
        32769 => "DLV",
        65281 => "WINS",
        65282 => "WINS-R",
        65422 => "XPF",
        65521 => "INTEGRITY",
        other => return Cow::Owned(format!("query-{other}")),
    };
    Cow::Borrowed(name)
}

/// Zeek's `DNS::classes` (`base/protocols/dns/consts.zeek`).
pub(crate) fn qclass_name(c: u16) -> Cow<'static, str> {
    Cow::Borrowed(match c {
        1 => "C_INTERNET",
        2 => "C_CSNET",
        3 => "C_CHAOS",
        4 => "C_HESIOD",
        254 => "C_NONE",
        255 => "C_ANY",
        other => return Cow::Owned(format!("qclass-{other}")),
    })
}

/// Zeek's `DNS::base_errors` (`base/protocols/dns/consts.zeek`).
pub(crate) fn rcode_name(r: u8) -> Cow<'static, str> {
    let name = match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSet",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        11..=15 => return Cow::Owned(format!("unassigned-{r}")),
        other => return Cow::Owned(format!("rcode-{other}")),
    };
    Cow::Borrowed(name)
}

/// Zeek's `DNS::opcodes` (`base/protocols/dns/consts.zeek`).
pub(crate) fn opcode_name(op: u8) -> Cow<'static, str> {
    Cow::Borrowed(match op {
        0 => "query",
        1 => "iquery",
        2 => "server-status",
        4 => "notify",
        5 => "dynamic-update",
        6 => "dso",
        other => return Cow::Owned(format!("opcode-{other}")),
    })
}

/// Zeek's `DNS::netbios_opcodes` (`base/protocols/dns/consts.zeek`), for the NetBIOS name
/// service (port 137).
pub(crate) fn netbios_opcode_name(op: u8) -> Cow<'static, str> {
    Cow::Borrowed(match op {
        0 => "netbios-query",
        5 => "netbios-registration",
        6 => "netbios-release",
        7 => "netbios-wack",
        8 => "netbios-refresh",
        other => return Cow::Owned(format!("netbios-opcode-{other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_codes_get_zeeks_placeholders() {
        assert_eq!(qtype_name(28), "AAAA");
        assert_eq!(qtype_name(4242), "query-4242");
        assert_eq!(qclass_name(1), "C_INTERNET");
        assert_eq!(qclass_name(9), "qclass-9");
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(12), "unassigned-12");
        assert_eq!(opcode_name(2), "server-status");
        assert_eq!(opcode_name(9), "opcode-9");
        assert_eq!(netbios_opcode_name(5), "netbios-registration");
    }
}
