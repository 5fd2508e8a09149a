//! The job store's file-system primitives: atomic replace and directory fsync (from
//! `crate::durable`, with the store's errors), sizes.
//!
//! Invariant shared with recovery: every temporary name the store creates, file or directory,
//! starts with [`TEMP_PREFIX`]. Nothing else in `jobs/` or a job directory does, so recovery
//! can delete such entries without reading them.

use std::fs;
use std::path::Path;

use super::error::StoreError;

pub use crate::durable::TEMP_PREFIX;

fn store_error(error: crate::durable::DurableError) -> StoreError {
    StoreError::io(&error.path)(error.source)
}

/// fsync a directory so that entries created, renamed or removed in it are durable.
pub fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    crate::durable::fsync_dir(dir).map_err(store_error)
}

/// Replaces `path` with `bytes` atomically ([`crate::durable::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    crate::durable::write_atomic(path, bytes, None).map_err(store_error)
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
                crate::durable::random_hex(4)
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
