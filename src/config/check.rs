//! Findings that do not stop pcapd but that an operator should hear about, and
//! `pcapd check-config`, which prints every error and warning of a file.
//!
//! Warnings are about exposure: a password other local users can read, a password or
//! key sent or kept in the clear. They are computed from a loaded [`Config`] plus the
//! file system, so `serve` can log them at start and on reload as well.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{BackendKind, Config, ConfigError, ConfigErrors, SyslogProto};
// `check-config`'s exit code for a bad file: EX_USAGE, as linkerd2-proxy and sysexits use.
use crate::exit::EXIT_CONFIG;
use crate::tls::TlsError;

/// What `serve` reads at start beyond the file itself, read the same way, so `check-config`
/// and `serve` refuse the same files with the same messages: the TLS certificate and key
/// (PEM, the key the certificate's) of either front door, and `[Syslog] ca`.
pub fn check_files(config: &Config) -> Result<(), ConfigErrors> {
    let mut errors: Vec<ConfigError> = [check_tls(config), check_syslog_ca(config)]
        .into_iter()
        .filter_map(Result::err)
        .collect();
    errors.extend(check_detectors(config));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errors))
    }
}

fn source_name(config: &Config) -> std::path::PathBuf {
    config
        .source
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("embedded defaults"))
}

fn check_syslog_ca(config: &Config) -> Result<(), ConfigError> {
    let Some(syslog) = &config.syslog else {
        return Ok(());
    };
    if syslog.proto != SyslogProto::Tls {
        return Ok(());
    }
    let ca = syslog.ca.clone().unwrap_or_default();
    match crate::tls::connector(&ca).and_then(|_| crate::tls::server_name(&syslog.host)) {
        Ok(_) => Ok(()),
        Err(e) => Err(ConfigError {
            problem: match e {
                TlsError::Cert { reason, .. } => reason,
                other => other.to_string(),
            },
            file: source_name(config),
            section: Some("Syslog".into()),
            key: Some("ca".into()),
            value: syslog.ca.as_ref().map(|p| p.display().to_string()),
            valid: Some(
                "a PEM file of the CA certificate(s) that signed the syslog server's certificate"
                    .into(),
            ),
        }),
    }
}

/// The program a detector's command runs first, if the check can tell (a plain first word).
fn detector_program(command: &str) -> Option<&str> {
    let mut words = command.split_whitespace();
    let mut first = words.next()?;
    while first == "exec" {
        first = words.next()?;
    }
    let plain = first
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._+-".contains(&b));
    (plain && !crate::shell::is_sh_own_word(first)).then_some(first)
}

/// Whether `program` is an executable file: a path as given, a name on `PATH`.
fn executable(program: &str) -> bool {
    let is_exec = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return is_exec(Path::new(program));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| is_exec(&dir.join(program))))
}

/// Each detector's program must exist and be executable (as `serve` would find it).
fn check_detectors(config: &Config) -> Vec<ConfigError> {
    config
        .detect
        .detectors
        .iter()
        .filter_map(|d| {
            let program = detector_program(&d.command)?;
            (!executable(program)).then(|| ConfigError {
                file: source_name(config),
                section: Some(format!("Detector {}", d.name)),
                key: Some("command".into()),
                value: Some(d.command.clone()),
                problem: format!("{program} is not an executable file (on PATH)"),
                valid: Some("a command whose program is installed".into()),
            })
        })
        .collect()
}

fn check_tls(config: &Config) -> Result<(), ConfigError> {
    let Some((cert, key)) = config.tls_files() else {
        return Ok(());
    };
    let file = source_name(config);
    let problem = |key_name: &str, value: &Path, problem: String| ConfigError {
        file: file.clone(),
        section: Some("Global".into()),
        key: Some(key_name.into()),
        value: Some(value.display().to_string()),
        problem,
        valid: None,
    };
    match crate::tls::server_config(cert, key) {
        Ok(_) => Ok(()),
        Err(TlsError::Cert { reason, .. }) => Err(problem("sslcert", cert, reason)),
        Err(TlsError::Key { reason, .. }) => Err(problem("sslkey", key, reason)),
        Err(TlsError::Rustls(tokio_rustls::rustls::Error::InconsistentKeys(_))) => Err(problem(
            "sslkey",
            key,
            format!("is not the key of the certificate {}", cert.display()),
        )),
        Err(e) => Err(problem("sslcert", cert, e.to_string())),
    }
}

/// Non-fatal findings of `config`, one sentence each.
pub(crate) fn warnings(config: &Config) -> Vec<String> {
    let global = &config.global;
    let mut warnings = Vec::new();

    if global.password.is_some() {
        if let Some(source) = &config.source {
            if is_world_readable(source) {
                warnings.push(format!(
                    "{}: [Global] password is set in a file every local user can read; \
                     chmod o-r the file or move the password to password_file (mode 0600)",
                    source.display()
                ));
            }
        }
    }
    if let Some(password_file) = &global.password_file {
        if is_world_readable(password_file) {
            warnings.push(format!(
                "{}: the password file ([Global] password_file) can be read by every local user; \
                 chmod 0600 it",
                password_file.display()
            ));
        }
    }
    if global.ssl {
        if let Some(sslkey) = &global.sslkey {
            if is_world_readable(sslkey) {
                warnings.push(format!(
                    "{}: the TLS private key ([Global] sslkey) can be read by every local user; \
                     chmod 0600 it",
                    sslkey.display()
                ));
            }
        }
    }
    if !global.ssl && !global.bind.is_loopback() {
        warnings.push(format!(
            "[Global] ssl = false with bind = {}: passwords and captures cross the network \
             unencrypted",
            global.bind
        ));
    }
    if let Some(http) = &config.http {
        if !http.ssl && !http.bind.is_loopback() {
            warnings.push(format!(
                "[Http] ssl = false with bind = {}: the HTTP gateway takes captures unencrypted",
                http.bind
            ));
        }
    }
    if let Some(syslog) = &config.syslog {
        if syslog.ca.is_some() && syslog.proto != SyslogProto::Tls {
            warnings.push("[Syslog] ca is only used with proto = tls; it is ignored".to_string());
        }
    }
    let builtin = global.backend == BackendKind::Builtin;
    if config.extract.enabled() && !builtin {
        warnings.push(format!(
            "[Extract] applies to the builtin analyzer; with backend = {} extraction is up to \
             the analyzer (zeek: extract scripts writing to extract_files/)",
            global.backend.name()
        ));
    }
    if builtin && !config.detect.detectors.is_empty() && !config.extract.enabled() {
        warnings.push(
            "[Detector] sections are set but [Extract] mime is empty: no file will be extracted \
             for them to examine"
                .to_string(),
        );
    }
    warnings
}

/// Whether others (not owner, not group) may read `path`; false when it cannot be examined.
fn is_world_readable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|metadata| metadata.permissions().mode() & 0o004 != 0)
}

/// `pcapd check-config`: loads `path`, prints each error (all of them) on `err` and returns 64,
/// or prints the warnings on `err`, a one-line verdict on `out` and returns 0.
pub fn check_config(path: &Path, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    // Write errors on out/err (a closed pipe) cannot be reported anywhere; the exit code stands.
    match Config::load(path).and_then(|config| {
        check_files(&config)?;
        Ok(config)
    }) {
        Ok(config) => {
            for warning in config.warnings() {
                let _ = writeln!(err, "warning: {warning}");
            }
            let _ = writeln!(out, "{}: configuration OK", path.display());
            0
        }
        Err(errors) => {
            for error in &errors.0 {
                let _ = writeln!(err, "error: {error}");
            }
            let count = errors.0.len();
            let _ = writeln!(
                err,
                "{}: {count} error{}",
                path.display(),
                if count == 1 { "" } else { "s" }
            );
            EXIT_CONFIG
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::TestDir;
    use std::fs;
    use std::path::PathBuf;

    fn run_check(path: &Path) -> (i32, String, String) {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = check_config(path, &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn an_inline_password_in_a_world_readable_file_is_warned_about() {
        let dir = TestDir::new("inline");
        let path = dir.file(
            "pcapd.cfg",
            "[Global]\nssl = false\nbind = 127.0.0.1\npassword = s3cret\n",
            0o644,
        );
        let config = Config::load(&path).unwrap();
        let warnings = config.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("every local user can read"));
        assert!(warnings[0].contains(&path.display().to_string()));
        assert!(!warnings[0].contains("s3cret"));

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(config.warnings().is_empty());
    }

    /// `serve` used to be the first to refuse these, with messages naming no key.
    #[test]
    fn check_config_refuses_a_certificate_that_is_not_pem_and_a_key_that_is_not_its() {
        let dir = TestDir::new("tls-material");
        let ours = crate::config::ensure_embedded_credentials(&dir.path().join("a")).unwrap();
        let other = crate::config::ensure_embedded_credentials(&dir.path().join("b")).unwrap();
        let not_pem = dir.file("cert.der", "this is not PEM", 0o644);
        let config_with = |cert: &Path, key: &Path| {
            let text = format!(
                "[Global]\nssl = true\nbind = 127.0.0.1\nsslcert = {}\nsslkey = {}\npassword_file = {}\n",
                cert.display(),
                key.display(),
                ours.password_file.display()
            );
            dir.file("pcapd.cfg", &text, 0o600)
        };
        let (code, _, err) = run_check(&config_with(&ours.cert, &ours.key));
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = run_check(&config_with(&not_pem, &ours.key));
        assert_eq!(code, EXIT_CONFIG);
        assert!(err.contains("[Global] sslcert = "), "{err}");
        let (code, _, err) = run_check(&config_with(&ours.cert, &other.key));
        assert_eq!(code, EXIT_CONFIG);
        assert!(
            err.contains("[Global] sslkey = ") && err.contains("is not the key of the certificate"),
            "{err}"
        );
    }

    #[test]
    fn a_world_readable_password_file_is_warned_about() {
        let dir = TestDir::new("password-file");
        let password_file = dir.file("password", "s3cret\n", 0o644);
        let text = format!(
            "[Global]\nssl = off\nbind = ::1\npassword_file = {}\n",
            password_file.display()
        );
        let path = dir.file("pcapd.cfg", &text, 0o644);
        let config = Config::load(&path).unwrap();
        let warnings = config.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("password_file"));
        assert!(warnings[0].contains(&password_file.display().to_string()));

        fs::set_permissions(&password_file, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(config.warnings().is_empty());
    }

    #[test]
    fn cleartext_on_a_non_loopback_address_is_warned_about() {
        let dir = TestDir::new("cleartext");
        let path = dir.file(
            "pcapd.cfg",
            "[Global]\nssl = no\nbind = 0.0.0.0\npassword = x\n",
            0o600,
        );
        let warnings = Config::load(&path).unwrap().warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("ssl = false with bind = 0.0.0.0"));
    }

    #[test]
    fn detector_programs_must_be_executable_and_extraction_on() {
        let dir = TestDir::new("detectors");
        let script = dir.file("scan.sh", "#!/bin/sh\nexit 0\n", 0o755);
        let text = format!(
            "[Global]\nssl = false\npassword = x\n\
             [Detector ok]\ncommand = exec {} {{file}}\nhit_exit = 1\n\
             [Detector builtin]\ncommand = test -s {{file}}\nhit_exit = 1\n\
             [Detector missing]\ncommand = /nonexistent/clamscan {{file}}\nhit_exit = 1\n\
             [Detector noexec]\ncommand = {} {{file}}\nhit_exit = 1\n",
            script.display(),
            dir.file("rules.yar", "rule r { condition: true }\n", 0o644)
                .display(),
        );
        let path = dir.file("pcapd.cfg", &text, 0o600);
        let (code, _, err) = run_check(&path);
        assert_eq!(code, EXIT_CONFIG, "{err}");
        assert!(err.contains("[Detector missing] command"), "{err}");
        assert!(err.contains("[Detector noexec] command"), "{err}");
        assert!(
            !err.contains("[Detector ok]") && !err.contains("[Detector builtin]"),
            "{err}"
        );
        let config = Config::load(&path).unwrap();
        assert!(warnings(&config)
            .iter()
            .any(|w| w.contains("[Extract] mime is empty")));
        assert_eq!(detector_program("command -v x"), None);
        assert_eq!(detector_program("exec yara r {file}"), Some("yara"));
        assert_eq!(detector_program("$SCANNER {file}"), None);
    }

    #[test]
    fn check_config_exits_zero_for_a_good_file_and_prints_warnings() {
        let dir = TestDir::new("good");
        let path = dir.file(
            "pcapd.cfg",
            "[Global]\nssl = false\nbind = ::\npassword = x\n",
            0o600,
        );
        let (code, out, err) = run_check(&path);
        assert_eq!(code, 0);
        assert_eq!(out, format!("{}: configuration OK\n", path.display()));
        assert!(
            err.starts_with("warning: [Global] ssl = false with bind = ::"),
            "{err}"
        );
    }

    #[test]
    fn check_config_exits_64_and_prints_every_error_with_its_location() {
        let dir = TestDir::new("bad");
        let path = dir.file(
            "pcapd.cfg",
            "[Global]\nssl = false\nport = 70000\nbind = nowhere\npassword = x\n[Worker]\ntimeout = soon\n",
            0o600,
        );
        let (code, out, err) = run_check(&path);
        assert_eq!(code, EXIT_CONFIG);
        assert_eq!(out, "");
        let file = path.display().to_string();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 4, "{err}");
        assert_eq!(
            lines[0],
            format!("error: {file}: [Global] port = 70000: out of range (valid: a whole number from 0 to 65535)")
        );
        assert_eq!(
            lines[1],
            format!("error: {file}: [Global] bind = nowhere: not an IP address (valid: an IPv4 or IPv6 address such as ::1, 127.0.0.1, ::, 0.0.0.0)")
        );
        assert!(lines[2].starts_with(&format!(
            "error: {file}: [Worker] timeout = soon: not a duration (valid: "
        )));
        assert_eq!(lines[3], format!("{file}: 3 errors"));
    }

    #[test]
    fn check_config_reports_an_unreadable_file() {
        let path = PathBuf::from("/nonexistent/pcapd-test.cfg");
        let (code, _, err) = run_check(&path);
        assert_eq!(code, EXIT_CONFIG);
        assert!(
            err.starts_with("error: /nonexistent/pcapd-test.cfg: cannot read the config file"),
            "{err}"
        );
    }
}
