//! Output files written whole or not at all: the bytes go to a new temporary
//! file beside the target, which is synced and then renamed over the target's
//! name (and the directory synced, so the rename survives a crash).
//!
//! Two things follow from the rename. A reader (a web server serving
//! `report.html`, a DuckDB session reading `alerts.parquet`) sees the old
//! file or the new one, never half of one. And a symlink at the target's name
//! is replaced by the new file instead of being written through, so an output
//! directory cannot be used to overwrite a file elsewhere. The temporary file
//! is created with `O_EXCL` under a fresh name, so a symlink planted at the
//! temporary name is not followed either.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Attempts at a fresh temporary name before giving up (each collides only
/// with a file someone else created under that very name).
const TEMP_NAME_ATTEMPTS: u32 = 64;

/// A file being written in place of `target`: [`AtomicFile::commit`] puts it
/// there; dropping it uncommitted removes the temporary file and leaves the
/// target as it was.
#[derive(Debug)]
pub struct AtomicFile {
    file: Option<File>,
    temp: PathBuf,
    target: PathBuf,
}

impl AtomicFile {
    /// Starts writing a replacement for `target` (whose directory must exist).
    pub fn create(target: &Path) -> io::Result<AtomicFile> {
        let dir = parent_dir(target);
        let name = target
            .file_name()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: not a file name", target.display()),
                )
            })?
            .to_string_lossy()
            .into_owned();
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let mut last_error = None;
        for _ in 0..TEMP_NAME_ATTEMPTS {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let temp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
            // create_new is O_CREAT|O_EXCL: it fails on any existing entry,
            // a symlink (even a dangling one) included, and never follows it.
            match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Ok(file) => {
                    return Ok(AtomicFile {
                        file: Some(file),
                        temp,
                        target: target.to_path_buf(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("no free temporary file name")))
    }

    /// The file the bytes end up in.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Syncs the bytes written, renames them over the target and syncs the
    /// directory.
    pub fn commit(self) -> io::Result<()> {
        let dir = parent_dir(&self.target).to_path_buf();
        self.rename_into_place()?;
        sync_dir(&dir)
    }

    /// The first half of [`AtomicFile::commit`]: syncs the file and renames
    /// it into place, leaving the directory's sync to the caller, for whom a
    /// failure before the rename (nothing changed) and after it (the new
    /// file is in place, maybe not durably) mean different things.
    pub fn rename_into_place(mut self) -> io::Result<()> {
        let Some(file) = self.file.take() else {
            return Err(io::Error::other("committed twice"));
        };
        file.sync_all()?;
        drop(file);
        fs::rename(&self.temp, &self.target)?;
        // Renamed: nothing left for Drop to clean up.
        self.temp = PathBuf::new();
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("write after commit")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            self.file.take();
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Writes `bytes` to `target` atomically (see the module docs).
pub fn write_atomically(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = AtomicFile::create(target)?;
    file.write_all(bytes)?;
    file.commit()
}

/// Makes a rename or a new entry in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_target_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        fs::write(&target, "old").unwrap();
        write_atomically(&target, b"new").unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_at_the_target_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let target = dir.path().join("report.md");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        write_atomically(&target, b"report").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!fs::symlink_metadata(&target).unwrap().is_symlink());
        assert_eq!(fs::read_to_string(&target).unwrap(), "report");
    }

    #[test]
    fn an_uncommitted_file_leaves_the_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        fs::write(&target, "old").unwrap();
        {
            let mut f = AtomicFile::create(&target).unwrap();
            f.write_all(b"half a").unwrap();
        }
        assert_eq!(fs::read_to_string(&target).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_bare_file_name_is_written_in_the_current_directory() {
        assert_eq!(parent_dir(Path::new("x.csv")), Path::new("."));
        assert_eq!(parent_dir(Path::new("d/x.csv")), Path::new("d"));
    }
}
