//! `backend = burp`: the bui-monitor replacement. The pool's children are burp's own monitor
//! clients (`burpbin -c bconfcli -a m`), speaking the burp dialect (`crate::protocol::burp`),
//! so unlike the other backends nothing here runs inside `pcapd worker`. This module holds
//! what the daemon needs to start them: their command line, the pool dialect settings, and
//! the check of the burp client's version that bui-monitor makes (`burp -V`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::config::BurpConfig;
use crate::pool::BurpDialect;
use crate::protocol::burp::{BurpVersion, MIN_CLIENT_VERSION};

/// How long `burpbin -V` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The burp client cannot serve as a monitor child; restarting will not fix it.
#[derive(Debug, thiserror::Error)]
pub enum BurpClientError {
    #[error("[Burp] burpbin = {}: cannot run it: {source}", burpbin.display())]
    Run {
        burpbin: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("[Burp] burpbin = {}: `{} -V` did not answer within {VERSION_TIMEOUT:?}", burpbin.display(), burpbin.display())]
    Hung { burpbin: PathBuf },
    #[error("[Burp] burpbin = {}: `-V` printed {printed:?}, not a burp version", burpbin.display())]
    NoVersion { burpbin: PathBuf, printed: String },
    #[error(
        "[Burp] burpbin = {}: burp {version} is older than {MIN_CLIENT_VERSION}, the oldest \
         client with the JSON monitor mode", burpbin.display()
    )]
    TooOld {
        burpbin: PathBuf,
        version: BurpVersion,
    },
}

/// The monitor children's program and arguments: `burpbin -c bconfcli -a m`.
pub fn monitor_command(config: &BurpConfig) -> (PathBuf, Vec<String>) {
    let args = vec![
        "-c".to_owned(),
        config.bconfcli.to_string_lossy().into_owned(),
        "-a".to_owned(),
        "m".to_owned(),
    ];
    (config.burpbin.clone(), args)
}

/// The pool dialect for `[Burp]`.
pub fn dialect(config: &BurpConfig) -> BurpDialect {
    BurpDialect {
        query_timeout: config.timeout,
    }
}

/// Runs `burpbin -V` (burp before 2.2.12: `-v`) and checks the client is recent enough.
/// The answer is bui-monitor's `client_version`.
pub async fn client_version(burpbin: &Path) -> Result<BurpVersion, BurpClientError> {
    let mut printed = String::new();
    for flag in ["-V", "-v"] {
        printed = run_version_flag(burpbin, flag).await?;
        if let Some(version) = BurpVersion::parse(&printed) {
            if version < MIN_CLIENT_VERSION {
                return Err(BurpClientError::TooOld {
                    burpbin: burpbin.to_owned(),
                    version,
                });
            }
            return Ok(version);
        }
    }
    Err(BurpClientError::NoVersion {
        burpbin: burpbin.to_owned(),
        printed: printed.trim().to_owned(),
    })
}

async fn run_version_flag(burpbin: &Path, flag: &str) -> Result<String, BurpClientError> {
    let mut command = tokio::process::Command::new(burpbin);
    command
        .arg(flag)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(VERSION_TIMEOUT, command.output())
        .await
        .map_err(|_| BurpClientError::Hung {
            burpbin: burpbin.to_owned(),
        })?
        .map_err(|source| BurpClientError::Run {
            burpbin: burpbin.to_owned(),
            source,
        })?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pcapd-burpbin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    #[tokio::test]
    async fn client_version_comes_from_dash_v() {
        let burp = script("burp-ok", "echo burp-3.1.4");
        assert_eq!(client_version(&burp).await.ok(), Some(BurpVersion(3, 1, 4)));
        let old = script("burp-old", "echo burp-1.4.40");
        assert!(matches!(
            client_version(&old).await,
            Err(BurpClientError::TooOld { .. })
        ));
        let silent = script("burp-silent", "exit 1");
        let err = client_version(&silent).await.unwrap_err();
        assert!(matches!(err, BurpClientError::NoVersion { .. }), "{err}");
        let missing = client_version(Path::new("/nonexistent/burp")).await;
        assert!(missing
            .unwrap_err()
            .to_string()
            .starts_with("[Burp] burpbin = /nonexistent/burp: cannot run it"));
    }

    #[test]
    fn monitor_children_run_burp_in_monitor_mode() {
        let config = BurpConfig {
            burpbin: PathBuf::from("/usr/sbin/burp"),
            bconfcli: PathBuf::from("/etc/burp/burp.conf"),
            timeout: Duration::from_secs(15),
        };
        let (program, args) = monitor_command(&config);
        assert_eq!(program, PathBuf::from("/usr/sbin/burp"));
        assert_eq!(args, ["-c", "/etc/burp/burp.conf", "-a", "m"]);
        assert_eq!(dialect(&config).query_timeout, Duration::from_secs(15));
    }
}
