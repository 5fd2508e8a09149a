//! `backend = command`: an operator's command line, run as `sh -c` would run it once per job
//! (directly when `sh` would only split it into words, see `crate::shell`).
//!
//! `{pcaps}` becomes the job's capture paths, each shell-quoted, space-separated; `{out}`
//! becomes the quoted log directory. The command runs with the log directory as its cwd;
//! whatever files it leaves there are the job's logs.

use super::external::run_in_log_dir;
use super::{JobFailure, JobInput, JobResult, StartError};
use crate::shell::{quote as shell_quote, ShellLine};

pub struct CommandBackend {
    template: String,
}

impl CommandBackend {
    pub fn start(template: Option<&str>) -> Result<CommandBackend, StartError> {
        match template.map(str::trim) {
            Some(template) if !template.is_empty() => Ok(CommandBackend {
                template: template.to_string(),
            }),
            _ => Err(StartError::NoCommand),
        }
    }

    pub fn run(&self, job: &JobInput<'_>) -> Result<JobResult, JobFailure> {
        let line = ShellLine::new(expand(&self.template, job));
        run_in_log_dir("command", job, |configure| line.spawn(configure))
    }
}

/// The template with `{pcaps}` and `{out}` substituted.
fn expand(template: &str, job: &JobInput<'_>) -> String {
    let pcaps: Vec<String> = job
        .pcaps
        .iter()
        .map(|p| shell_quote(&p.to_string_lossy()))
        .collect();
    template
        .replace("{pcaps}", &pcaps.join(" "))
        .replace("{out}", &shell_quote(&job.out.to_string_lossy()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    #[test]
    fn expands_placeholders() {
        let pcaps = [PathBuf::from("/j/a.pcap"), PathBuf::from("/j/b c.pcap")];
        let job = JobInput {
            pcaps: &pcaps,
            out: Path::new("/j/logs"),
            ignore_checksums: true,
        };
        assert_eq!(
            expand("tshark {pcaps} > {out}/x.log", &job),
            "tshark '/j/a.pcap' '/j/b c.pcap' > '/j/logs'/x.log"
        );
    }

    #[test]
    fn a_command_is_required() {
        assert!(matches!(
            CommandBackend::start(None),
            Err(StartError::NoCommand)
        ));
        assert!(matches!(
            CommandBackend::start(Some("  ")),
            Err(StartError::NoCommand)
        ));
    }
}
