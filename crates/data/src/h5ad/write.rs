//! Writing a whole AnnData file, atomically (see [`crate::atomic`]): everything goes to a `.partial-<pid>`
//! file in the target directory, renamed over `path` only once complete and closed; on error it is removed.

use std::path::Path;

use super::h5::{self, H5Context};
use super::matrix::{CsMatrix, Matrix};
use super::write_elems::{
    create_dict, write_dataframe, write_f64_matrix, write_matrix, write_uns_dict,
};
use super::{AnnData, WriteOptions};
use crate::atomic::write_atomically;
use crate::error::DataError;

/// Writes `adata` to `path` in the AnnData `.h5ad` format that Python `anndata` reads. With
/// `opts.sparse_x` a dense `X` is stored as CSR; `opts.gzip` compresses every array. The file appears
/// at `path` only when complete; an existing file there is replaced.
pub fn write_h5ad(path: &Path, adata: &AnnData, opts: &WriteOptions) -> Result<(), DataError> {
    validate(adata)?;
    write_atomically(path, |partial| write_to(partial, adata, opts))
}

/// Checks shapes and names before anything is written.
fn validate(adata: &AnnData) -> Result<(), DataError> {
    let (n_obs, n_vars) = (adata.obs.n_rows(), adata.var.n_rows());
    let check = |what: &str, m: &Matrix| -> Result<(), DataError> {
        if m.shape() != (n_obs, n_vars) {
            return Err(DataError::Invalid(format!(
                "{what} is {} × {} but obs × var is {n_obs} × {n_vars}; give one row per cell and one column per gene",
                m.shape().0,
                m.shape().1
            )));
        }
        if let Matrix::Sparse(s) = m {
            s.validate()?;
        }
        Ok(())
    };
    if let Some(x) = &adata.x {
        check("X", x)?;
    }
    for (name, layer) in &adata.layers {
        check(&format!("layer `{name}`"), layer)?;
    }
    for (name, a) in &adata.obsm {
        if a.nrows() != n_obs {
            return Err(DataError::Invalid(format!(
                "obsm `{name}` has {} rows but there are {n_obs} cells; give one row per cell",
                a.nrows()
            )));
        }
    }
    for name in adata.layers.keys().chain(adata.obsm.keys()) {
        if name.is_empty() || name.contains('/') {
            return Err(DataError::Invalid(format!(
                "layer/obsm name `{name}` is empty or contains `/`; rename it"
            )));
        }
    }
    adata.obs.validate("obs")?;
    adata.var.validate("var")
}

fn write_to(partial: &Path, adata: &AnnData, opts: &WriteOptions) -> Result<(), DataError> {
    h5::silence_hdf5();
    let file = hdf5::File::create(partial).ctx(partial, "creating the file")?;
    {
        let root: &hdf5::Group = &file;
        h5::set_encoding(root, "anndata", "0.1.0", partial)?;
        let gzip = opts.gzip;
        if let Some(x) = &adata.x {
            match x {
                Matrix::Dense(d) if opts.sparse_x => write_matrix(
                    root,
                    "X",
                    &Matrix::Sparse(CsMatrix::csr_from_dense(d.view())),
                    gzip,
                    partial,
                )?,
                _ => write_matrix(root, "X", x, gzip, partial)?,
            }
        }
        write_dataframe(root, "obs", &adata.obs, gzip, partial)?;
        write_dataframe(root, "var", &adata.var, gzip, partial)?;
        let layers = create_dict(root, "layers", partial)?;
        for (name, m) in &adata.layers {
            write_matrix(&layers, name, m, gzip, partial)?;
        }
        let obsm = create_dict(root, "obsm", partial)?;
        for (name, a) in &adata.obsm {
            write_f64_matrix(&obsm, name, a.view(), gzip, partial)?;
        }
        for empty in ["obsp", "varm", "varp"] {
            create_dict(root, empty, partial)?;
        }
        let uns = create_dict(root, "uns", partial)?;
        write_uns_dict(&uns, &adata.uns, partial)?;
    }
    file.flush().ctx(partial, "flushing the file")?;
    file.close().ctx(partial, "closing the file")
}
