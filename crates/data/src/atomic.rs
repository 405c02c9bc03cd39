//! Atomic file output: write to a temporary file beside the destination, then rename, so a crash or an
//! error never leaves a partial output file behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::DataError;

/// The temporary path used while `dest` is being written (same folder, so the rename is atomic).
/// The extension is kept, for writers that choose the format from it (PNG).
pub fn partial_path(dest: &Path) -> PathBuf {
    let stem = dest
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let pid = std::process::id();
    match dest.extension() {
        Some(ext) => {
            dest.with_file_name(format!(".{stem}.partial-{pid}.{}", ext.to_string_lossy()))
        }
        None => dest.with_file_name(format!(".{stem}.partial-{pid}")),
    }
}

/// Writes `dest` by calling `write` on a temporary path and renaming it into place on success; on error
/// the temporary file is removed and `dest` is left untouched.
pub fn write_atomically<T>(
    dest: &Path,
    write: impl FnOnce(&Path) -> Result<T, DataError>,
) -> Result<T, DataError> {
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(DataError::Invalid(format!(
                "output folder {} does not exist; create it first",
                parent.display()
            )));
        }
    }
    let tmp = partial_path(dest);
    let _pending = PendingGuard::register(&tmp);
    match write(&tmp) {
        Ok(value) => {
            std::fs::rename(&tmp, dest).map_err(|source| {
                let _ = std::fs::remove_file(&tmp);
                DataError::Io {
                    path: dest.to_path_buf(),
                    source,
                }
            })?;
            Ok(value)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Temporary files being written right now, removed by [`remove_pending_outputs`] when the process is
/// interrupted (a signal handler cannot run the destructors of the writing thread).
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Keeps `path` in [`PENDING`] for as long as it lives.
struct PendingGuard(PathBuf);

impl PendingGuard {
    fn register(path: &Path) -> PendingGuard {
        if let Ok(mut pending) = PENDING.lock() {
            pending.push(path.to_path_buf());
        }
        PendingGuard(path.to_path_buf())
    }
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if let Ok(mut pending) = PENDING.lock() {
            if let Some(i) = pending.iter().position(|p| *p == self.0) {
                pending.swap_remove(i);
            }
        }
    }
}

/// Registers a temporary path that is not written through [`write_atomically`] (e.g. a folder being
/// filled before a rename), so an interrupt removes it; the returned guard unregisters it when dropped.
pub fn register_pending(path: &Path) -> impl Drop {
    PendingGuard::register(path)
}

/// Removes every temporary output still being written (files or folders) and returns how many were
/// removed. Called on SIGINT/SIGTERM so an interrupted command leaves no partial output behind.
pub fn remove_pending_outputs() -> usize {
    remove_pending_under(None)
}

/// [`remove_pending_outputs`] limited to paths under `folder` (all of them with `None`).
fn remove_pending_under(folder: Option<&Path>) -> usize {
    let paths: Vec<PathBuf> = match PENDING.lock() {
        Ok(pending) => pending.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    let mut removed = 0;
    for path in paths
        .into_iter()
        .filter(|p| folder.is_none_or(|f| p.starts_with(f)))
    {
        let gone = if path.is_dir() {
            std::fs::remove_dir_all(&path).is_ok()
        } else {
            std::fs::remove_file(&path).is_ok()
        };
        removed += usize::from(gone);
    }
    removed
}

/// Writes bytes to `dest` atomically (JSON, CSV, markdown, PNG outputs).
pub fn write_bytes_atomically(dest: &Path, bytes: &[u8]) -> Result<(), DataError> {
    write_atomically(dest, |tmp| {
        let mut file = std::fs::File::create(tmp).map_err(|source| DataError::Io {
            path: tmp.to_path_buf(),
            source,
        })?;
        file.write_all(bytes).map_err(|source| DataError::Io {
            path: tmp.to_path_buf(),
            source,
        })?;
        file.sync_all().map_err(|source| DataError::Io {
            path: tmp.to_path_buf(),
            source,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.json");
        let result = write_atomically(&dest, |tmp| {
            std::fs::write(tmp, b"half").unwrap();
            Err::<(), _>(DataError::Invalid("boom".into()))
        });
        assert!(result.is_err());
        assert!(!dest.exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "temporary file must be removed"
        );
    }

    #[test]
    fn successful_write_replaces_destination() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.txt");
        std::fs::write(&dest, b"old").unwrap();
        write_bytes_atomically(&dest, b"new").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_interrupted_write_is_removed_by_remove_pending_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("big.h5ad");
        let result = write_atomically(&dest, |tmp| {
            std::fs::write(tmp, b"half written").unwrap();
            // What a signal handler does while the writer is still busy.
            assert_eq!(remove_pending_under(Some(tmp.parent().unwrap())), 1);
            assert!(!tmp.exists(), "the partial file must be gone");
            Ok(())
        });
        // The rename then fails (the partial file was removed), and nothing is left.
        assert!(result.is_err());
        assert!(!dest.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn missing_output_folder_is_a_clear_error() {
        let err =
            write_bytes_atomically(Path::new("/nonexistent-folder-xyz/out.txt"), b"x").unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
