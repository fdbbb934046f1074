//! Output files are written whole or not at all: into a temporary file beside the target, then
//! renamed over it. A file that is dropped before [`AtomicFile::commit`] is removed.

use anyhow::{Context, Result};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file being written; it appears under its name only on [`commit`](Self::commit).
pub struct AtomicFile {
    tmp: PathBuf,
    path: PathBuf,
    file: Option<BufWriter<std::fs::File>>,
}

impl AtomicFile {
    /// Starts writing `path` (through a temporary file in the same folder).
    pub fn create(path: &Path) -> Result<AtomicFile> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path.file_name().with_context(|| format!("{}: not a file path", path.display()))?;
        let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
        let file = std::fs::File::create(&tmp).with_context(|| format!("{}: cannot write", path.display()))?;
        Ok(AtomicFile { tmp, path: path.to_path_buf(), file: Some(BufWriter::new(file)) })
    }

    /// Appends `bytes`.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        let f = self.file.as_mut().expect("not yet committed");
        f.write_all(bytes).with_context(|| format!("{}: cannot write", self.path.display()))
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> Result<()> {
        let f = self.file.take().expect("committed once");
        let ctx = || format!("{}: cannot write", self.path.display());
        let f = f.into_inner().map_err(|e| e.into_error()).with_context(ctx)?;
        f.sync_all().with_context(ctx)?;
        std::fs::rename(&self.tmp, &self.path).with_context(ctx)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.is_some() {
            self.file = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes)?;
    f.commit()
}
