//! Atomic file output: write to a temporary file beside the destination, then rename, so a crash or an
//! error never leaves a partial output file behind.

use std::io::Write;
use std::path::{Path, PathBuf};

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
    fn missing_output_folder_is_a_clear_error() {
        let err =
            write_bytes_atomically(Path::new("/nonexistent-folder-xyz/out.txt"), b"x").unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
