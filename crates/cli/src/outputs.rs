//! Output safety, checked before any work starts: an output may never be (or overwrite) one of the
//! command's inputs, and every output folder must exist (or be creatable) and be writable. A failure names
//! the path and the fix, so a long run never ends with "cannot write" or with its input destroyed.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// One output of a command.
#[derive(Clone, Copy, Debug)]
pub enum Output<'a> {
    /// A file written atomically into an existing folder (`--out x.h5ad`, `--json`, `--csv`, `--plot`).
    File(&'a Path),
    /// A folder the command creates if needed and writes several files into (a run folder, a report).
    Folder(&'a Path),
    /// A folder written whole at the end (into a temporary folder, then renamed): its parent must exist
    /// and be writable; it is not created now.
    NewFolder(&'a Path),
}

impl Output<'_> {
    fn path(&self) -> &Path {
        match self {
            Output::File(p) | Output::Folder(p) | Output::NewFolder(p) => p,
        }
    }
}

/// Checks the outputs of a command against its inputs before it does any work:
/// * no output is the same file as an input (also through a symbolic or hard link), and no output folder
///   is an input file;
/// * no two outputs are the same file;
/// * a file output's folder exists and a file can be created in it; a folder output is created if missing
///   and a file can be created in it.
///
/// `inputs` are the files and folders the command reads (missing ones are skipped: reading them reports
/// its own error).
pub fn check_outputs(inputs: &[&Path], outputs: &[Output<'_>]) -> anyhow::Result<()> {
    for (i, output) in outputs.iter().enumerate() {
        let out = output.path();
        for input in inputs {
            if same_file(out, input) {
                bail!(
                    "output {} is the same file as the input {}; it would be overwritten — write the output \
                     to another path",
                    out.display(),
                    input.display()
                );
            }
        }
        for other in &outputs[..i] {
            if same_file(out, other.path()) {
                bail!(
                    "two outputs name the same file {}; give each output its own path",
                    out.display()
                );
            }
        }
        match output {
            Output::File(path) => check_file_writable(path)?,
            Output::Folder(path) => check_folder_writable(path)?,
            Output::NewFolder(path) => {
                if path.exists() && !path.is_dir() {
                    bail!(
                        "output folder {} is an existing file; give a folder path",
                        path.display()
                    );
                }
                check_file_writable(path).or_else(|e| {
                    if path.is_dir() {
                        probe_write(path, path)
                    } else {
                        Err(e)
                    }
                })?
            }
        }
    }
    Ok(())
}

/// The paths given among optional path arguments (`--json`, `--plot`, `--model`, …), in order.
pub fn given<'a>(paths: &[&'a Option<PathBuf>]) -> Vec<&'a Path> {
    paths.iter().filter_map(|p| p.as_deref()).collect()
}

/// [`given`] as file outputs.
pub fn given_files<'a>(paths: &[&'a Option<PathBuf>]) -> Vec<Output<'a>> {
    given(paths).into_iter().map(Output::File).collect()
}

/// True when `a` and `b` name the same existing file, or the same path once resolved (for a file that
/// does not exist yet, its folder is resolved and its name appended).
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return ma.dev() == mb.dev() && ma.ino() == mb.ino();
        }
    }
    match (resolved(a), resolved(b)) {
        (Some(ra), Some(rb)) => ra == rb,
        _ => false,
    }
}

/// The absolute, link-free form of `path`; for a missing file, its resolved folder joined with its name.
fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = path.canonicalize() {
        return Some(p);
    }
    let name = path.file_name()?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    parent.canonicalize().ok().map(|p| p.join(name))
}

fn check_file_writable(path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        bail!(
            "output {} is a folder; give a file path (e.g. {}/out.h5ad)",
            path.display(),
            path.display()
        );
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !folder.is_dir() {
        bail!(
            "output folder {} of {} does not exist; create it first (mkdir -p {})",
            folder.display(),
            path.display(),
            folder.display()
        );
    }
    probe_write(&folder, path)
}

fn check_folder_writable(path: &Path) -> anyhow::Result<()> {
    if path.exists() && !path.is_dir() {
        bail!(
            "output folder {} is an existing file; give a folder path",
            path.display()
        );
    }
    std::fs::create_dir_all(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot create the output folder {}: {e}; choose a writable location",
            path.display()
        )
    })?;
    probe_write(path, path)
}

/// Creates and removes a small file in `folder`, so that a read-only or full location is reported now.
fn probe_write(folder: &Path, output: &Path) -> anyhow::Result<()> {
    let probe = folder.join(format!(".cellshift-write-check-{}", std::process::id()));
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => bail!(
            "cannot write the output {} (folder {}: {e}); choose a writable location",
            output.display(),
            folder.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_equal_to_an_input_is_refused_through_links_and_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("screen.h5ad");
        std::fs::write(&input, b"data").unwrap();
        let hard = dir.path().join("hard.h5ad");
        std::fs::hard_link(&input, &hard).unwrap();
        let dotted = dir.path().join(".").join("screen.h5ad");
        for out in [&input, &hard, &dotted] {
            let err = check_outputs(&[&input], &[Output::File(out)]).unwrap_err();
            assert!(err.to_string().contains("same file as the input"), "{err}");
        }
        assert_eq!(std::fs::read(&input).unwrap(), b"data");
        let other = dir.path().join("pred.h5ad");
        check_outputs(&[&input], &[Output::File(&other)]).unwrap();
        assert!(!other.exists(), "the check must not leave a file behind");
    }

    #[test]
    fn an_output_folder_equal_to_an_input_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("screen.h5ad");
        std::fs::write(&input, b"data").unwrap();
        assert!(check_outputs(&[&input], &[Output::Folder(&input)]).is_err());
    }

    #[test]
    fn two_outputs_on_one_path_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.json");
        let err = check_outputs(&[], &[Output::File(&out), Output::File(&out)]).unwrap_err();
        assert!(err.to_string().contains("same file"), "{err}");
    }

    #[test]
    fn an_unwritable_output_is_reported_before_work() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        let under_file = file.join("out.json");
        let err = check_outputs(&[], &[Output::File(&under_file)]).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        let err = check_outputs(&[], &[Output::Folder(&under_file)]).unwrap_err();
        assert!(err.to_string().contains("cannot create"), "{err}");
        let missing = dir.path().join("missing").join("out.json");
        assert!(check_outputs(&[], &[Output::File(&missing)]).is_err());
        let folder = dir.path().join("run");
        check_outputs(&[], &[Output::Folder(&folder)]).unwrap();
        assert!(folder.is_dir());
        assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
    }
}
