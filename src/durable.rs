//! Files that survive a crash: atomic replace (temp file, fsync, rename, directory fsync) and
//! directory fsync, for the job store and the credentials pcapd generates alike.
//!
//! Every temporary name starts with [`TEMP_PREFIX`], so the job store's recovery can delete
//! such debris without reading it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Prefix of every temporary file or directory pcapd creates beside a durable file.
pub const TEMP_PREFIX: &str = ".tmp-";

/// A file-system step that failed, and on which path.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct DurableError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

fn at(path: &Path) -> impl FnOnce(std::io::Error) -> DurableError + '_ {
    move |source| DurableError {
        path: path.to_owned(),
        source,
    }
}

/// Random lowercase hex, for temporary names that must not collide between threads.
pub fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    // A failing random source only makes a collision more likely; the create_new below
    // still refuses to reuse a name, so fall back to the clock rather than fail the write.
    if getrandom::getrandom(&mut buffer).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        for (index, byte) in buffer.iter_mut().enumerate() {
            *byte = (nanos >> ((index % 16) * 8)) as u8;
        }
    }
    buffer.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// fsync a directory so that entries created, renamed or removed in it are durable.
pub fn fsync_dir(dir: &Path) -> Result<(), DurableError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(at(dir))
}

/// Replaces `path` with `bytes` atomically: a temp file beside it (with `mode` from the
/// start, whatever the umask, when given: a key is never briefly readable by others), fsync,
/// rename over `path`, fsync the directory. A reader sees the old or the new content, never
/// a mix; after a crash the temp file is the only debris.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<(), DurableError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!("{TEMP_PREFIX}{file_name}-{}", random_hex(8)));
    let written = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        if let Some(mode) = mode {
            options.mode(mode);
        }
        let mut handle = options.open(&temp)?;
        if let Some(mode) = mode {
            // The mode given to open() is filtered by the umask; set it exactly.
            handle.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        handle.write_all(bytes)?;
        handle.sync_all()
    })()
    .map_err(at(&temp));
    if let Err(error) = written.and_then(|()| fs::rename(&temp, path).map_err(at(path))) {
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    fsync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "pcapd-durable-{label}-{}-{}",
            std::process::id(),
            random_hex(4)
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn replaces_content_with_the_mode_asked_and_leaves_no_temp() {
        let dir = scratch("mode");
        let path = dir.join("key.pem");
        fs::write(&path, b"old").unwrap();
        write_atomic(&path, b"new", Some(0o600)).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["key.pem"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_directory_names_the_path() {
        let error = write_atomic(Path::new("/nonexistent-pcapd/x"), b"x", None).unwrap_err();
        assert!(error.path.starts_with("/nonexistent-pcapd"), "{error}");
    }
}
