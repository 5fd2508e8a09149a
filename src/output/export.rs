//! `[Output] export_dir`: a done job's logs copied (or moved) to
//! `export_dir/<tag or job id>/<job id>/`, atomically.
//!
//! The files are written into `export_dir/.pcapd-staging/<job id>/logs/`, each fsynced, then
//! that directory is renamed into place and the parent fsynced: a shipper watching
//! `export_dir/*/*/*.log` sees a job's directory complete or not at all. A crash before the
//! rename leaves only the staging copy, which the next attempt removes and redoes; an existing
//! final directory means an earlier attempt finished (idempotent after a crash between the
//! rename and the record update).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::ExportMode;

/// Where exports are assembled, inside `export_dir` (same file system, so rename is atomic).
pub const STAGING_DIR: &str = ".pcapd-staging";

/// Exports `logs` (file names in `logs_dir`) for job `job_id`; returns the final directory.
pub fn export_logs(
    export_dir: &Path,
    group: &str,
    job_id: &str,
    logs_dir: &Path,
    logs: &[String],
    mode: ExportMode,
) -> io::Result<PathBuf> {
    let parent = export_dir.join(group);
    let target = parent.join(job_id);
    if target.is_dir() {
        return Ok(target);
    }
    let staging = export_dir.join(STAGING_DIR).join(job_id);
    if staging.exists() {
        fs::remove_dir_all(&staging)?;
    }
    let staged_logs = staging.join("logs");
    fs::create_dir_all(&staged_logs)?;
    for name in logs {
        let source = logs_dir.join(name);
        let staged = staged_logs.join(name);
        let moved = mode == ExportMode::Move && fs::rename(&source, &staged).is_ok();
        if !moved {
            fs::copy(&source, &staged)?;
        }
        fs::File::open(&staged)?.sync_all()?;
    }
    sync_dir(&staged_logs)?;
    fs::create_dir_all(&parent)?;
    fs::rename(&staged_logs, &target)?;
    sync_dir(&parent)?;
    fs::remove_dir(&staging)?;
    if mode == ExportMode::Move {
        for name in logs {
            match fs::remove_file(logs_dir.join(name)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(target)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pcapd-export-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("logs")).unwrap();
        fs::write(dir.join("logs/conn.log"), "a\tb\n").unwrap();
        fs::write(dir.join("logs/dns.log"), "c\n").unwrap();
        dir
    }

    #[test]
    fn copy_lands_complete_and_is_idempotent() {
        let dir = scratch("copy");
        let export = dir.join("export");
        let logs = vec!["conn.log".to_string(), "dns.log".to_string()];
        let target = export_logs(
            &export,
            "tag1",
            "j1",
            &dir.join("logs"),
            &logs,
            ExportMode::Copy,
        )
        .unwrap();
        assert_eq!(target, export.join("tag1/j1"));
        assert_eq!(
            fs::read_to_string(target.join("conn.log")).unwrap(),
            "a\tb\n"
        );
        assert!(
            dir.join("logs/conn.log").exists(),
            "copy keeps the originals"
        );
        assert!(fs::read_dir(export.join(STAGING_DIR))
            .unwrap()
            .next()
            .is_none());
        let again = export_logs(
            &export,
            "tag1",
            "j1",
            &dir.join("logs"),
            &logs,
            ExportMode::Copy,
        )
        .unwrap();
        assert_eq!(again, target);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_crash_before_the_rename_leaves_nothing_visible_and_is_redone() {
        let dir = scratch("crash");
        let export = dir.join("export");
        // What a crash mid-copy leaves: a half staging directory, no final one.
        let half = export.join(STAGING_DIR).join("j2/logs");
        fs::create_dir_all(&half).unwrap();
        fs::write(half.join("conn.log"), "a").unwrap();
        assert!(!export.join("t/j2").exists());
        let logs = vec!["conn.log".to_string(), "dns.log".to_string()];
        let target = export_logs(
            &export,
            "t",
            "j2",
            &dir.join("logs"),
            &logs,
            ExportMode::Move,
        )
        .unwrap();
        assert_eq!(
            fs::read_to_string(target.join("conn.log")).unwrap(),
            "a\tb\n"
        );
        assert!(
            !dir.join("logs/conn.log").exists(),
            "move removes the originals"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
