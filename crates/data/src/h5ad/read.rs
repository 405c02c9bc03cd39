//! Top-level readers: a whole (or cell/gene-subset) AnnData file, or only its `obs` / `var` tables.

use std::collections::BTreeMap;
use std::path::Path;

use hdf5::Group;
use ndarray::Array2;

use super::dataframe::DataFrame;
use super::h5::{self, not_anndata, H5Context, Member};
use super::matrix::Matrix;
use super::read_frame::read_dataframe;
use super::read_matrix::{matrix_footprint, read_dense, read_matrix, MatrixFootprint};
use super::read_uns::read_uns_dict;
use super::selection::Pick;
use super::{AnnData, ReadOptions};
use crate::error::DataError;

/// Opens a file and checks that it has the AnnData layout (`obs` and `var` groups).
pub(crate) fn open_anndata(path: &Path) -> Result<hdf5::File, DataError> {
    let file = h5::open_hdf5(path)?;
    let missing: Vec<&str> = ["obs", "var"]
        .into_iter()
        .filter(|g| !file.link_exists(g))
        .collect();
    if !missing.is_empty() {
        let members = h5::member_names(&file, path)?;
        return Err(not_anndata(
            path,
            format!(
                "no `{}` at the top level (found: {})",
                missing.join("` or `"),
                if members.is_empty() {
                    "nothing".to_string()
                } else {
                    members.join(", ")
                }
            ),
        ));
    }
    Ok(file)
}

/// Reads an AnnData `.h5ad` file: `X` (or the layer named in `opts.layer`), `obs`, `var`, and — as
/// `opts` asks — the other layers, `obsm` and `uns`. With `opts.cells` / `opts.genes` only the selected
/// cells and genes are read from disk (in the given order). Values are converted to `f32`.
pub fn read_h5ad(path: &Path, opts: &ReadOptions) -> Result<AnnData, DataError> {
    let file = open_anndata(path)?;
    let obs = read_dataframe(&file, "obs", path)?;
    let var = read_dataframe(&file, "var", path)?;
    let rows = Pick::new(opts.cells.as_deref(), obs.n_rows(), "cell")?;
    let cols = Pick::new(opts.genes.as_deref(), var.n_rows(), "gene")?;

    let x = match &opts.layer {
        Some(layer) => Some(read_layer(&file, layer, path, &rows, &cols)?),
        None if file.link_exists("X") => Some(read_matrix(&file, "X", path, &rows, &cols)?),
        None => None,
    };

    let mut layers = BTreeMap::new();
    if opts.load_layers {
        if let Some(group) = &optional_group(&file, "layers", path)? {
            for name in h5::member_names(group, path)? {
                if opts.layer.as_deref() == Some(name.as_str()) {
                    continue;
                }
                let m = read_matrix(group, &name, path, &rows, &cols)?;
                layers.insert(name, m);
            }
        }
    }

    let obsm = if opts.load_obsm {
        read_obsm(&file, &rows, path)?
    } else {
        BTreeMap::new()
    };
    let uns = match optional_group(&file, "uns", path)? {
        Some(group) => read_uns_dict(&group, path)?,
        None => BTreeMap::new(),
    };
    let obs = if rows.is_identity() {
        obs
    } else {
        obs.select_rows(&rows.requested())
    };
    let var = if cols.is_identity() {
        var
    } else {
        var.select_rows(&cols.requested())
    };
    Ok(AnnData {
        x,
        obs,
        var,
        layers,
        obsm,
        uns,
    })
}

/// Reads only `obs` (cell metadata); the expression matrix is not touched.
pub fn read_obs(path: &Path) -> Result<DataFrame, DataError> {
    let file = open_anndata(path)?;
    read_dataframe(&file, "obs", path)
}

/// Reads only `var` (gene metadata); the expression matrix is not touched.
pub fn read_var(path: &Path) -> Result<DataFrame, DataError> {
    let file = open_anndata(path)?;
    read_dataframe(&file, "var", path)
}

/// The shape and stored values of the expression `layer` (or `X` when `None`) of a file, from its
/// metadata: what reading it will cost, known before it is read.
pub fn expression_footprint(
    path: &Path,
    layer: Option<&str>,
) -> Result<MatrixFootprint, DataError> {
    let file = open_anndata(path)?;
    match layer {
        Some(layer) => match optional_group(&file, "layers", path)? {
            Some(group) if group.link_exists(layer) => matrix_footprint(&group, layer, path),
            _ => Err(DataError::UnknownLabel {
                what: "layer (set with --layer)".into(),
                label: layer.to_string(),
                available: vec![],
            }),
        },
        None => matrix_footprint(&file, "X", path),
    }
}

/// Reads layer `layer` (selected rows and columns); an unknown layer is a [`DataError::UnknownLabel`]
/// listing the layers of the file and naming the `--layer` flag.
pub(crate) fn read_layer(
    file: &hdf5::File,
    layer: &str,
    path: &Path,
    rows: &Pick,
    cols: &Pick,
) -> Result<Matrix, DataError> {
    let group = optional_group(file, "layers", path)?;
    match group.as_ref().filter(|g| g.link_exists(layer)) {
        Some(group) => read_matrix(group, layer, path, rows, cols),
        None => {
            let mut available = match &group {
                Some(g) => h5::member_names(g, path)?,
                None => Vec::new(),
            };
            if available.is_empty() {
                available.push("(none: the file has no layers)".to_string());
            }
            Err(DataError::UnknownLabel {
                what: "layer (set with --layer)".into(),
                label: layer.to_string(),
                available,
            })
        }
    }
}

/// The group `name` of `parent` if present.
pub(crate) fn optional_group(
    parent: &Group,
    name: &str,
    path: &Path,
) -> Result<Option<Group>, DataError> {
    match h5::member_kind(parent, name) {
        Member::Group => Ok(Some(
            parent.group(name).ctx(path, &format!("opening {name}"))?,
        )),
        _ => Ok(None),
    }
}

/// Reads the dense numeric 2-D entries of `obsm` for the selected cells. Entries of other kinds (data
/// frames, sparse matrices) are not loaded.
fn read_obsm(
    file: &hdf5::File,
    rows: &Pick,
    path: &Path,
) -> Result<BTreeMap<String, Array2<f64>>, DataError> {
    let mut out = BTreeMap::new();
    let Some(group) = optional_group(file, "obsm", path)? else {
        return Ok(out);
    };
    for name in h5::member_names(&group, path)? {
        if h5::member_kind(&group, &name) != Member::Dataset {
            continue;
        }
        let ds = group
            .dataset(&name)
            .ctx(path, &format!("opening obsm/{name}"))?;
        let desc = h5::descriptor(&ds, path)?;
        if h5::num_class(&desc).is_none() || ds.ndim() != 2 {
            continue;
        }
        let shape = ds.shape();
        if shape[0] != rows.axis_len() {
            return Err(not_anndata(
                path,
                format!(
                    "obsm/{name} has {} rows but obs has {}",
                    shape[0],
                    rows.axis_len()
                ),
            ));
        }
        out.insert(
            name,
            read_dense::<f64>(&ds, rows, &Pick::All(shape[1]), path)?,
        );
    }
    Ok(out)
}
