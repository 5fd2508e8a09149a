//! `backend = zeek`: `zeekbin [-C] -r a.pcap [-r b.pcap …] scripts… args…` in the log
//! directory. With several `-r`, Zeek merges the traces in timestamp order, so one job is one
//! capture and the files never overwrite each other's logs.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::external::run_in_log_dir;
use super::ZeekSettings;
use super::{JobFailure, JobInput, JobResult, StartError};

pub struct Zeek {
    zeekbin: PathBuf,
    scripts: Vec<String>,
    args: Vec<String>,
}

impl Zeek {
    /// Resolves `zeekbin` (a path, or a name looked up on PATH) to an executable file.
    pub fn start(settings: &ZeekSettings) -> Result<Zeek, StartError> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let zeekbin = resolve_executable(&settings.zeekbin, &path).map_err(|reason| {
            StartError::ZeekUnusable {
                zeekbin: settings.zeekbin.clone(),
                reason,
            }
        })?;
        Ok(Zeek {
            zeekbin,
            scripts: settings.scripts.clone(),
            args: settings.args.clone(),
        })
    }

    pub fn run(&self, job: &JobInput<'_>) -> Result<JobResult, JobFailure> {
        let args = self.arguments(job);
        run_in_log_dir("zeek", job, |configure| {
            let mut command = Command::new(&self.zeekbin);
            command.args(args);
            configure(&mut command)?;
            command.spawn()
        })
    }

    fn arguments(&self, job: &JobInput<'_>) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        if job.ignore_checksums {
            args.push("-C".into());
        }
        for pcap in job.pcaps {
            args.push("-r".into());
            args.push(pcap.into());
        }
        args.extend(self.scripts.iter().map(OsString::from));
        args.extend(self.args.iter().map(OsString::from));
        args
    }
}

fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn resolve_executable(program: &Path, search_path: &std::ffi::OsStr) -> Result<PathBuf, String> {
    if program.components().count() > 1 || program.is_absolute() {
        return if is_executable_file(program) {
            Ok(program.to_path_buf())
        } else {
            Err("not an executable file".to_string())
        };
    }
    std::env::split_paths(search_path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable_file(candidate))
        .ok_or_else(|| format!("not found on PATH ({})", search_path.to_string_lossy()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_documented_command_line() {
        let zeek = Zeek {
            zeekbin: PathBuf::from("/usr/bin/zeek"),
            scripts: vec!["local".into()],
            args: vec!["Log::default_rotation_interval=0".into()],
        };
        let pcaps = [PathBuf::from("/j/0.pcap"), PathBuf::from("/j/1.pcap")];
        let job = JobInput {
            pcaps: &pcaps,
            out: Path::new("/j/logs"),
            ignore_checksums: true,
        };
        let expected: Vec<OsString> = [
            "-C",
            "-r",
            "/j/0.pcap",
            "-r",
            "/j/1.pcap",
            "local",
            "Log::default_rotation_interval=0",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        assert_eq!(zeek.arguments(&job), expected);
        let strict = JobInput {
            ignore_checksums: false,
            ..job
        };
        assert_eq!(zeek.arguments(&strict)[0], OsString::from("-r"));
    }

    #[test]
    fn resolves_names_on_path_and_refuses_missing_or_non_executable() {
        assert_eq!(
            resolve_executable(Path::new("sh"), std::ffi::OsStr::new("/nonexistent:/bin")),
            Ok(PathBuf::from("/bin/sh"))
        );
        assert!(
            resolve_executable(Path::new("zeek-missing"), std::ffi::OsStr::new("/bin")).is_err()
        );
        assert!(resolve_executable(Path::new("/etc/passwd"), std::ffi::OsStr::new("")).is_err());
        assert!(resolve_executable(Path::new("/bin/sh"), std::ffi::OsStr::new("")).is_ok());
    }
}
