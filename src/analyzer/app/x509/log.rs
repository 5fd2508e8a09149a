//! x509.log: its row and schema.

use std::net::IpAddr;

use crate::analyzer::log::{log_row, Time, Vector};

log_row! {
    /// One x509.log line (Zeek's `X509::Info`, `base/files/x509/main.zeek`, with the
    /// `X509::Certificate`, `SubjectAlternativeName` and `BasicConstraints` records spread
    /// into dotted columns).
    pub struct X509Row<'a> => X509_SCHEMA("x509") {
        ts: Time,
        fingerprint: &'a str,
        version as "certificate.version": u64,
        serial as "certificate.serial": &'a str,
        subject as "certificate.subject": &'a str,
        issuer as "certificate.issuer": &'a str,
        not_valid_before as "certificate.not_valid_before": Option<Time>,
        not_valid_after as "certificate.not_valid_after": Option<Time>,
        key_alg as "certificate.key_alg": &'a str,
        sig_alg as "certificate.sig_alg": &'a str,
        key_type as "certificate.key_type": Option<&'a str>,
        key_length as "certificate.key_length": Option<u64>,
        exponent as "certificate.exponent": Option<&'a str>,
        curve as "certificate.curve": Option<&'a str>,
        san_dns as "san.dns": Option<Vector<'a, String>>,
        san_uri as "san.uri": Option<Vector<'a, String>>,
        san_email as "san.email": Option<Vector<'a, String>>,
        san_ip as "san.ip": Option<Vector<'a, IpAddr>>,
        ca as "basic_constraints.ca": Option<bool>,
        path_len as "basic_constraints.path_len": Option<u64>,
        host_cert: bool,
        client_cert: bool,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::log::tests::assert_fully_set_row_matches_schema;

    #[test]
    fn x509_row_matches_its_schema() {
        let names = ["a.test".to_string()];
        let ips: [IpAddr; 1] = ["10.0.0.1".parse().expect("ip")];
        assert_fully_set_row_matches_schema(&X509Row {
            ts: Time(1.0),
            fingerprint: "ab",
            version: 3,
            serial: "01",
            subject: "CN=a.test",
            issuer: "CN=ca",
            not_valid_before: Some(Time(1.0)),
            not_valid_after: Some(Time(2.0)),
            key_alg: "id-ecPublicKey",
            sig_alg: "ecdsa-with-SHA256",
            key_type: Some("ecdsa"),
            key_length: Some(256),
            exponent: Some("65537"),
            curve: Some("prime256v1"),
            san_dns: Some(Vector(&names)),
            san_uri: Some(Vector(&names)),
            san_email: Some(Vector(&names)),
            san_ip: Some(Vector(&ips)),
            ca: Some(false),
            path_len: Some(0),
            host_cert: true,
            client_cert: false,
        });
    }
}
