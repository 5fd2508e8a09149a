//! Durable file-system primitives for the job store: atomic replace, directory fsync, sizes.
//!
//! Invariant shared with recovery: every temporary name the store creates, file or directory,
//! starts with [`TEMP_PREFIX`]. Nothing else in `jobs/` or a job directory does, so recovery
//! can delete such entries without reading them.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::error::StoreError;

/// Prefix of every temporary file or directory the store creates.
pub const TEMP_PREFIX: &str = ".tmp-";

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
pub fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(StoreError::io(dir))
}

/// Replaces `path` with `bytes` atomically: write a temp file beside it, fsync it, rename it
/// over `path`, fsync the directory. A reader sees the old or the new content, never a mix,
/// and after a crash the temp file is the only debris (recovery removes it).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!("{TEMP_PREFIX}{file_name}-{}", random_hex(8)));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .and_then(|mut handle| {
            handle.write_all(bytes)?;
            handle.sync_all()
        })
        .map_err(StoreError::io(&temp));
    if let Err(error) = written.and_then(|()| fs::rename(&temp, path).map_err(StoreError::io(path)))
    {
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    fsync_dir(dir)
}

/// Bytes of all regular files under `path` (apparent sizes, not blocks; symlinks not followed).
pub fn tree_size(path: &Path) -> Result<u64, StoreError> {
    let metadata = fs::symlink_metadata(path).map_err(StoreError::io(path))?;
    if !metadata.is_dir() {
        return Ok(if metadata.is_file() {
            metadata.len()
        } else {
            0
        });
    }
    let mut total = 0;
    for entry in fs::read_dir(path).map_err(StoreError::io(path))? {
        let entry = entry.map_err(StoreError::io(path))?;
        total += tree_size(&entry.path())?;
    }
    Ok(total)
}

#[cfg(test)]
pub mod testdir {
    //! A unique scratch directory under the system temp dir, removed on drop.

    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static COUNTER: AtomicUsize = AtomicUsize::new(0);

    pub struct TestDir(PathBuf);

    impl TestDir {
        pub fn new(label: &str) -> TestDir {
            let path = std::env::temp_dir().join(format!(
                "pcapd-jobs-{label}-{}-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed),
                super::random_hex(4)
            ));
            std::fs::create_dir_all(&path).expect("create test dir");
            TestDir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }

        /// A job index beside the directory (removed with it), so that a store rooted at
        /// the directory holds nothing but jobs.
        pub fn index_path(&self) -> PathBuf {
            let mut name = self.0.as_os_str().to_owned();
            name.push(".index.sqlite");
            PathBuf::from(name)
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
            crate::jobs::index::remove_files(&self.index_path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testdir::TestDir;
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp() {
        let dir = TestDir::new("atomic");
        let target = dir.path().join("job.json");
        write_atomic(&target, b"first").unwrap();
        write_atomic(&target, b"second").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"second");
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["job.json"]);
    }

    #[test]
    fn atomic_write_into_missing_dir_fails_with_path() {
        let dir = TestDir::new("atomic-missing");
        let target = dir.path().join("nope").join("job.json");
        let error = write_atomic(&target, b"x").unwrap_err();
        assert_eq!(error.code().as_str(), "io");
        assert!(error.to_string().contains("nope"));
    }

    #[test]
    fn tree_size_sums_nested_files() {
        let dir = TestDir::new("size");
        fs::create_dir_all(dir.path().join("a/b")).unwrap();
        fs::write(dir.path().join("a/one"), [0u8; 100]).unwrap();
        fs::write(dir.path().join("a/b/two"), [0u8; 23]).unwrap();
        assert_eq!(tree_size(dir.path()).unwrap(), 123);
    }
}
