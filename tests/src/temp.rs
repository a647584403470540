//! Files in the temp dir that tests write (a config, a password file), removed on drop.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A file of one test's own in the temp dir, with `contents`; removed on drop.
pub struct TempFile(PathBuf);

impl TempFile {
    pub fn new(tag: &str, contents: &str) -> TempFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("chat-{tag}-{}-{n}", std::process::id());
        let file = TempFile(std::env::temp_dir().join(name));
        file.write(contents);
        file
    }

    /// Replaces the contents.
    pub fn write(&self, contents: &str) {
        std::fs::write(&self.0, contents)
            .unwrap_or_else(|e| panic!("writing {}: {e}", self.0.display()));
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
