//! What operators install and read: the Debian package built by `packaging/build-deb.sh`
//! (cargo-deb), checked by `lintian`, installed with `dpkg -i` on this machine, inspected and
//! purged; the man pages and completions it carries; and `--log-format json`. tests/setup.sh
//! installs cargo-deb, lintian, man-db and dpkg-dev.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::harness::{temp_dir, write_file, PCAPD};

fn require(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "{tool} is not installed: run tests/setup.sh");
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn ok(program: &str, args: &[&str]) -> String {
    let output = run(program, args);
    assert!(
        output.status.success(),
        "{program} {args:?}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Purges the package if a test left it installed.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", "pcapd"]);
    }
}

#[test]
fn the_debian_package_installs_works_and_purges() {
    for tool in [
        "cargo-deb",
        "lintian",
        "dpkg",
        "man",
        "systemd-analyze",
        "dpkg-shlibdeps",
    ] {
        require(tool);
    }
    let status = Command::new("bash")
        .arg(repo().join("packaging/build-deb.sh"))
        .status()
        .expect("run packaging/build-deb.sh");
    assert!(status.success(), "packaging/build-deb.sh failed");
    let debian = repo().join("target/debian");
    let version = env!("CARGO_PKG_VERSION");
    let deb = std::fs::read_dir(&debian)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&format!("pcapd_{version}")) && name.ends_with(".deb")
        })
        .expect("target/debian/pcapd_<version>_<arch>.deb");
    let deb = deb.to_str().unwrap();

    // lintian: no error (warnings and notes are printed for whoever reads the log).
    let lint = run("lintian", &["--fail-on", "error", deb]);
    let report = String::from_utf8_lossy(&lint.stdout);
    eprintln!("lintian:\n{report}");
    assert!(lint.status.success(), "lintian found errors:\n{report}");
    assert!(!report.lines().any(|l| l.starts_with("E:")), "{report}");

    let _installed = Installed;
    ok("dpkg", &["-i", deb]);

    for path in [
        "/usr/bin/pcapd",
        "/etc/pcapd/pcapd.cfg",
        "/lib/systemd/system/pcapd.service",
        "/usr/lib/sysusers.d/pcapd.conf",
        "/usr/lib/tmpfiles.d/pcapd.conf",
        "/usr/share/man/man1/pcapd.1.gz",
        "/usr/share/man/man1/pcapd-serve.1.gz",
        "/usr/share/man/man5/pcapd.cfg.5.gz",
        "/usr/share/bash-completion/completions/pcapd",
        "/usr/share/zsh/vendor-completions/_pcapd",
        "/usr/share/fish/vendor_completions.d/pcapd.fish",
        "/usr/share/doc/pcapd/copyright",
        "/usr/share/doc/pcapd/operations.md",
        "/usr/share/doc/pcapd/openapi.json",
        "/etc/pcapd/credentials/cert.pem",
        "/etc/pcapd/credentials/password",
    ] {
        assert!(Path::new(path).exists(), "{path} not installed");
    }
    // The config is a conffile: an operator's edits survive upgrades.
    let conffiles = ok("dpkg-query", &["-W", "-f=${Conffiles}", "pcapd"]);
    assert!(conffiles.contains("/etc/pcapd/pcapd.cfg"), "{conffiles}");
    // sysusers made the daemon's user, and it owns the credentials postinst made.
    let passwd = ok("getent", &["passwd", "pcapd"]);
    assert!(passwd.contains("/var/lib/pcapd"), "{passwd}");
    let owner = ok("stat", &["-c", "%U %a", "/etc/pcapd/credentials/key.pem"]);
    assert_eq!(owner.trim(), "pcapd 600");

    ok(
        "/usr/bin/pcapd",
        &["check-config", "-c", "/etc/pcapd/pcapd.cfg"],
    );
    let page = ok("man", &["-w", "pcapd"]);
    assert_eq!(page.trim(), "/usr/share/man/man1/pcapd.1.gz");
    let page = ok("man", &["-w", "5", "pcapd.cfg"]);
    assert_eq!(page.trim(), "/usr/share/man/man5/pcapd.cfg.5.gz");
    let rendered = ok("man", &["-P", "cat", "5", "pcapd.cfg"]);
    assert!(rendered.contains("max_queue"), "{rendered}");
    ok(
        "systemd-analyze",
        &["verify", "/lib/systemd/system/pcapd.service"],
    );
    let completion = ok(
        "bash",
        &[
            "-c",
            "source /usr/share/bash-completion/completions/pcapd && complete -p pcapd",
        ],
    );
    assert!(completion.contains("pcapd"), "{completion}");

    // The installed daemon serves on its packaged config (on a free port and a state
    // directory of the test's), and its client gets in with the credentials postinst made.
    let state = temp_dir("deb-state");
    let packaged = std::fs::read_to_string("/etc/pcapd/pcapd.cfg").unwrap();
    let config = packaged.replace("#port = 11111\n", "port = 0\n").replace(
        "#state_dir =\n",
        &format!("state_dir = {}\n", state.join("state").display()),
    );
    let config = write_file(&state, "pcapd.cfg", config.as_bytes());
    let config = config.to_str().unwrap();
    let mut daemon = Command::new("/usr/bin/pcapd")
        .args(["serve", "-c", config])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(daemon.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let port = first.trim().rsplit(':').next().unwrap().to_owned();
    let ping = run("/usr/bin/pcapd", &["ping", "-c", config, "--port", &port]);
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(
        ping.status.success(),
        "pcapd ping on the packaged config ({first}): {}",
        String::from_utf8_lossy(&ping.stderr)
    );

    ok("dpkg", &["--purge", "pcapd"]);
    for path in [
        "/usr/bin/pcapd",
        "/etc/pcapd/pcapd.cfg",
        "/etc/pcapd/credentials",
    ] {
        assert!(!Path::new(path).exists(), "{path} left after purge");
    }
}

#[test]
fn log_format_json_writes_one_object_per_line() {
    let dir = temp_dir("log-json");
    let config = write_file(
        &dir,
        "pcapd.cfg",
        format!(
            "[Global]\nport = 0\nbind = 127.0.0.1\nssl = false\npassword = x\nstate_dir = {}\n",
            dir.join("state").display()
        )
        .as_bytes(),
    );
    let child = Command::new(PCAPD)
        .args(["--log-format", "json", "serve", "-c"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.len() >= 3, "{stderr}");
    for line in &lines {
        let object: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"));
        assert!(
            object["timestamp"].is_string() && object["level"].is_string(),
            "{line}"
        );
        assert!(object["fields"]["message"].is_string(), "{line}");
    }
    assert!(stderr.contains("\"message\":\"pcapd ready\""), "{stderr}");
    assert!(stderr.contains("\"message\":\"pcapd stopped\""), "{stderr}");
}
