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
        if fs::symlink_metadata(&source).is_ok_and(|m| m.is_dir()) {
            // extract_files/ ([Output] export_files): its tree, links never followed.
            copy_tree(&source, &staged)?;
            continue;
        }
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
            let path = logs_dir.join(name);
            if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                fs::remove_dir_all(&path)?;
                continue;
            }
            match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(target)
}

/// Copies the regular files and directories under `from` into `to` (created), each file
/// synced; anything else (a link) is skipped.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &target)?;
            fs::File::open(&target)?.sync_all()?;
        }
    }
    sync_dir(to)
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
    fn extracted_files_go_with_the_logs_as_a_tree() {
        let dir = scratch("tree");
        let files = dir.join("logs/extract_files/application/pdf");
        fs::create_dir_all(&files).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", files.join("link")).unwrap();
        let logs = vec!["conn.log".to_string(), "extract_files".to_string()];
        for (mode, job) in [(ExportMode::Copy, "j3"), (ExportMode::Move, "j4")] {
            fs::write(files.join("extract-1-HTTP-F1"), "%PDF").unwrap();
            if !dir.join("logs/conn.log").exists() {
                fs::write(dir.join("logs/conn.log"), "a\tb\n").unwrap();
            }
            let target = export_logs(
                &dir.join("export"),
                "t",
                job,
                &dir.join("logs"),
                &logs,
                mode,
            )
            .unwrap();
            let exported = target.join("extract_files/application/pdf");
            assert_eq!(
                fs::read_to_string(exported.join("extract-1-HTTP-F1")).unwrap(),
                "%PDF"
            );
            assert!(!exported.join("link").exists(), "links are not exported");
            if mode == ExportMode::Copy {
                fs::create_dir_all(&files).unwrap();
            }
        }
        assert!(!dir.join("logs/extract_files").exists(), "moved");
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
