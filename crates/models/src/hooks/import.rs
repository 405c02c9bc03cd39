//! The reference-weights importer hook: turns the authors' checkpoint into one of this project.

use std::path::{Path, PathBuf};

use cellshift_data::PerturbationData;

/// What `cellshift import` hands a method's importer.
pub struct ImportRequest<'a> {
    /// The reference weights (format of the method's choosing, e.g. safetensors).
    pub reference: &'a Path,
    /// The screen the imported model will predict (fixes the gene panel).
    pub data: &'a PerturbationData,
    /// Where `data` was read from (for messages).
    pub data_path: &'a Path,
    /// Network hyper-parameters as JSON (default: from the reference weights).
    pub params: Option<&'a Path>,
    /// The reference's vocabulary as JSON (default: built on `data`).
    pub vocab: Option<&'a Path>,
    /// The reference's gene-graph mask as `.npy` (default: rebuilt from `data`).
    pub mask: Option<&'a Path>,
    /// Neighbours per gene when a graph is rebuilt from `data`.
    pub graph_topk: usize,
}

/// A method's importer: writes a checkpoint into the (new, empty) run directory `out` and returns the
/// checkpoint's path inside it.
pub type ImportFn = fn(&ImportRequest<'_>, out: &Path) -> anyhow::Result<PathBuf>;
