//! AnnData (`.h5ad`) input and output, compatible with Python `anndata` ≥ 0.8 (the on-disk format with
//! `encoding-type` / `encoding-version` attributes) in both directions.
//!
//! - [`read_h5ad`] reads `X` (dense, CSR or CSC; any numeric type, compressed or not, converted to
//!   `f32`), layers, `obs`/`var` data frames, dense `obsm` arrays and simple `uns` values. A cell/gene
//!   selection in [`ReadOptions`] is served from disk without loading the rest of the matrix.
//! - [`read_obs`] / [`read_var`] read only the metadata tables.
//! - [`write_h5ad`] writes atomically (temporary file in the same directory, then rename).
//! - [`read_perturbation_data`] / [`write_perturbation_data`] bridge files and the
//!   [`PerturbationData`](crate::model::PerturbationData) model using the MapPFN `obs` conventions.
//!
//! Every failure is a one-line [`DataError`](crate::error::DataError) naming the problem and its fix;
//! the HDF5 library's own error printing is silenced.

mod dataframe;
mod h5;
mod matrix;
mod perturbation;
mod read;
mod read_frame;
mod read_matrix;
mod read_uns;
mod selection;
mod uns;
mod write;
mod write_elems;

use std::collections::BTreeMap;

use ndarray::Array2;

pub use dataframe::{Column, DataFrame};
pub use matrix::{CsMatrix, Matrix, SparseKind};
pub use perturbation::{
    anndata_to_perturbation_data, chosen_context_column, obs_column_names,
    perturbation_data_to_anndata, read_perturbation_data, write_perturbation_data,
    PerturbationColumns, AUTO_CONTEXT_COLUMNS,
};
pub use read::{expression_footprint, read_h5ad, read_obs, read_var};
pub use read_matrix::MatrixFootprint;
pub use uns::UnsValue;
pub use write::write_h5ad;

/// An annotated data matrix as stored in an `.h5ad` file (the parts cellshift uses).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct AnnData {
    /// The main matrix, cells × genes (`None` when the file has no `X`).
    pub x: Option<Matrix>,
    /// Per-cell metadata; its index holds the cell names.
    pub obs: DataFrame,
    /// Per-gene metadata; its index holds the gene names.
    pub var: DataFrame,
    /// Additional cells × genes matrices, by name.
    pub layers: BTreeMap<String, Matrix>,
    /// Per-cell embeddings (dense, one row per cell), by name. Non-dense entries are not loaded.
    pub obsm: BTreeMap<String, Array2<f64>>,
    /// Unstructured annotations.
    pub uns: BTreeMap<String, UnsValue>,
}

impl AnnData {
    /// Number of cells.
    pub fn n_obs(&self) -> usize {
        self.obs.n_rows()
    }

    /// Number of genes.
    pub fn n_vars(&self) -> usize {
        self.var.n_rows()
    }
}

/// What [`read_h5ad`] loads.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadOptions {
    /// Cells (row indices) to read, in this order; `None` = all. Each index at most once.
    pub cells: Option<Vec<usize>>,
    /// Genes (column indices) to read, in this order; `None` = all. Each index at most once.
    pub genes: Option<Vec<usize>>,
    /// Read the main matrix from this layer instead of `X` (it is then not repeated in `layers`).
    pub layer: Option<String>,
    /// Load the other layers.
    pub load_layers: bool,
    /// Load `obsm`.
    pub load_obsm: bool,
}

impl Default for ReadOptions {
    /// Everything: all cells and genes, `X`, every layer and `obsm`.
    fn default() -> Self {
        ReadOptions {
            cells: None,
            genes: None,
            layer: None,
            load_layers: true,
            load_obsm: true,
        }
    }
}

impl ReadOptions {
    /// All cells and genes of the main matrix only (no other layers, no `obsm`): the fastest full read.
    pub fn matrix_only() -> Self {
        ReadOptions {
            load_layers: false,
            load_obsm: false,
            ..ReadOptions::default()
        }
    }
}

/// How [`write_h5ad`] stores arrays.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct WriteOptions {
    /// gzip level (0–9) for every array; `None` = uncompressed (anndata's default).
    pub gzip: Option<u8>,
    /// Store a dense `X` as CSR (sparse matrices are always stored as they are).
    pub sparse_x: bool,
}
