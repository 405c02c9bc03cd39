//! Reading `X`, layers and `obsm` arrays with a cell / gene selection, without loading what is not
//! selected: dense arrays are read as row slabs (HDF5 hyperslabs over the selected rows and the
//! bounding range of selected columns), CSR matrices as `indices`/`data` ranges of contiguous row runs
//! (found from `indptr`), CSC matrices likewise by columns. Values are converted to the target type
//! by the HDF5 library while reading.

use std::path::Path;

use hdf5::types::IntSize;
use hdf5::types::TypeDescriptor;
use hdf5::{Dataset, Group, H5Type};
use ndarray::Array2;

use super::h5::{self, not_anndata, H5Context, Member};
use super::matrix::{CsMatrix, Matrix, SparseKind};
use super::selection::{plan_blocks, Pick};
use crate::error::DataError;

/// The shape of the matrix at `parent/name` and how many values it stores (every value when dense,
/// the non-zeros of a sparse group), read from the file's metadata without reading the matrix.
pub(crate) fn matrix_footprint(
    parent: &Group,
    name: &str,
    path: &Path,
) -> Result<MatrixFootprint, DataError> {
    let full = format!("{}/{name}", parent.name().trim_end_matches('/'));
    match h5::member_kind(parent, name) {
        Member::Dataset => {
            let ds = parent.dataset(name).ctx(path, &format!("opening {full}"))?;
            let shape = ds.shape();
            let (rows, cols) = (
                shape.first().copied().unwrap_or(0),
                shape.get(1).copied().unwrap_or(1),
            );
            Ok(MatrixFootprint {
                shape: (rows, cols),
                stored: rows * cols,
                sparse: false,
            })
        }
        Member::Group => {
            let group = parent.group(name).ctx(path, &format!("opening {full}"))?;
            let shape = h5::attr_usize_array(&group, "shape", path)?;
            let data = group
                .dataset("data")
                .ctx(path, &format!("opening {full}/data"))?;
            Ok(MatrixFootprint {
                shape: (
                    shape.first().copied().unwrap_or(0),
                    shape.get(1).copied().unwrap_or(0),
                ),
                stored: data.size(),
                sparse: true,
            })
        }
        Member::Other => Err(not_anndata(
            path,
            format!("{full} is missing or is not a dataset or group"),
        )),
    }
}

/// Shape and stored values of an expression matrix in a file (see [`matrix_footprint`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatrixFootprint {
    /// (cells, genes).
    pub shape: (usize, usize),
    /// Values stored: every value of a dense matrix, the non-zeros of a sparse one.
    pub stored: usize,
    /// True for a CSR/CSC group.
    pub sparse: bool,
}

impl MatrixFootprint {
    /// Bytes the data model needs to hold this matrix as read: 4 per dense value, 8 per stored sparse
    /// value (value + column index) plus 8 per row.
    pub fn model_bytes(&self) -> u64 {
        if self.sparse {
            self.stored as u64 * 8 + self.shape.0 as u64 * 8
        } else {
            self.stored as u64 * 4
        }
    }
}

/// Reads the matrix stored at `parent/name` (a dense dataset or a sparse group), keeping the rows
/// `rows` and columns `cols`. `expected` is the (cells, genes) shape the element must have.
pub(crate) fn read_matrix(
    parent: &Group,
    name: &str,
    path: &Path,
    rows: &Pick,
    cols: &Pick,
) -> Result<Matrix, DataError> {
    let expected = (rows.axis_len(), cols.axis_len());
    let full = format!("{}/{name}", parent.name().trim_end_matches('/'));
    match h5::member_kind(parent, name) {
        Member::Dataset => {
            let ds = parent.dataset(name).ctx(path, &format!("opening {full}"))?;
            check_dense_shape(&ds, expected, &full, path)?;
            Ok(Matrix::Dense(read_dense::<f32>(&ds, rows, cols, path)?))
        }
        Member::Group => {
            let group = parent.group(name).ctx(path, &format!("opening {full}"))?;
            let encoding = h5::encoding_type(&group).unwrap_or_default();
            let kind = match encoding.as_str() {
                "csr_matrix" => SparseKind::Csr,
                "csc_matrix" => SparseKind::Csc,
                other => {
                    return Err(not_anndata(
                        path,
                        format!("{full} is a group of encoding `{other}`, expected a dense array or csr_matrix/csc_matrix"),
                    ))
                }
            };
            let shape = h5::attr_usize_array(&group, "shape", path)?;
            if shape.len() != 2 || (shape[0], shape[1]) != expected {
                return Err(not_anndata(
                    path,
                    format!(
                        "{full} has shape {shape:?}, but obs × var is {} × {}",
                        expected.0, expected.1
                    ),
                ));
            }
            Ok(Matrix::Sparse(read_sparse(
                &group,
                kind,
                (shape[0], shape[1]),
                rows,
                cols,
                &full,
                path,
            )?))
        }
        Member::Other => Err(not_anndata(
            path,
            format!("{full} is missing or is not a dataset or group"),
        )),
    }
}

fn check_dense_shape(
    ds: &Dataset,
    expected: (usize, usize),
    full: &str,
    path: &Path,
) -> Result<(), DataError> {
    let shape = ds.shape();
    if shape.len() != 2 || (shape[0], shape[1]) != expected {
        return Err(not_anndata(
            path,
            format!(
                "{full} has shape {shape:?}, but obs × var is {} × {}",
                expected.0, expected.1
            ),
        ));
    }
    Ok(())
}

/// Reads a dense 2-D dataset restricted to the selected rows and columns, in the selections' order.
/// Rows are read in slabs of contiguous (or nearly contiguous) runs over the bounding column range.
pub(crate) fn read_dense<T: H5Type + Copy + Default>(
    ds: &Dataset,
    rows: &Pick,
    cols: &Pick,
    path: &Path,
) -> Result<Array2<T>, DataError> {
    let what = format!("reading {}", ds.name());
    let shape = ds.shape();
    if shape.len() != 2 {
        return Err(not_anndata(
            path,
            format!(
                "{} is {}-dimensional, expected a 2-D array",
                ds.name(),
                shape.len()
            ),
        ));
    }
    if rows.is_identity() && cols.is_identity() {
        return ds.read_2d::<T>().ctx(path, &what);
    }
    let (n_out_rows, n_out_cols) = (rows.n_out(), cols.n_out());
    let mut out = Array2::<T>::default((n_out_rows, n_out_cols));
    if n_out_rows == 0 || n_out_cols == 0 {
        return Ok(out);
    }
    let sorted_cols = cols.sorted();
    let (c0, c1) = (sorted_cols[0], sorted_cols[sorted_cols.len() - 1] + 1);
    let col_dest = cols.dest();
    // (column within the slab, output column) pairs.
    let col_pairs: Vec<(usize, usize)> = sorted_cols
        .iter()
        .zip(&col_dest)
        .map(|(&c, &d)| (c - c0, d))
        .collect();
    let width = c1 - c0;
    let row_dest = rows.dest();
    let mut sorted_pos = 0usize;
    for block in plan_blocks(&rows.runs(), |r| r * width) {
        let slab: Array2<T> = ds
            .read_slice_2d::<T, _>((block.span.clone(), c0..c1))
            .ctx(path, &what)?;
        for run in &block.runs {
            for r in run.clone() {
                let src = slab.row(r - block.span.start);
                let mut dst = out.row_mut(row_dest[sorted_pos]);
                for &(s, d) in &col_pairs {
                    dst[d] = src[s];
                }
                sorted_pos += 1;
            }
        }
    }
    Ok(out)
}

/// Reads an integer index dataset range as `u32`, checking every value is below `bound`.
fn read_index_range(
    ds: &Dataset,
    range: std::ops::Range<usize>,
    bound: usize,
    full: &str,
    path: &Path,
) -> Result<Vec<u32>, DataError> {
    let desc = h5::descriptor(ds, path)?;
    let out_of_range = |v: i64| {
        not_anndata(
            path,
            format!("{full}/indices holds {v}, outside 0..{bound}; the sparse matrix is corrupt"),
        )
    };
    match desc {
        TypeDescriptor::Integer(IntSize::U1 | IntSize::U2 | IntSize::U4)
        | TypeDescriptor::Unsigned(IntSize::U1 | IntSize::U2) => {
            let raw: Vec<i32> = h5::read_range(ds, range, path)?;
            raw.into_iter()
                .map(|v| {
                    if v >= 0 && (v as usize) < bound {
                        Ok(v as u32)
                    } else {
                        Err(out_of_range(v as i64))
                    }
                })
                .collect()
        }
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) => {
            let raw: Vec<i64> = h5::read_range(ds, range, path)?;
            raw.into_iter()
                .map(|v| {
                    if v >= 0 && (v as u64) < bound as u64 {
                        Ok(v as u32)
                    } else {
                        Err(out_of_range(v))
                    }
                })
                .collect()
        }
        other => Err(not_anndata(
            path,
            format!("{full}/indices has type {other}, expected integers"),
        )),
    }
}

/// Reads `indptr` and checks it: one entry per major slice plus one, starting at 0, non-decreasing,
/// ending at most at the number of stored values.
fn read_indptr(
    group: &Group,
    major_len: usize,
    nnz: usize,
    full: &str,
    path: &Path,
) -> Result<Vec<usize>, DataError> {
    let ds = group
        .dataset("indptr")
        .ctx(path, &format!("opening {full}/indptr"))?;
    let raw: Vec<i64> = h5::read_numbers(&ds, path)?;
    let corrupt = |why: &str| {
        not_anndata(
            path,
            format!("{full}/indptr {why}; the sparse matrix is corrupt"),
        )
    };
    if raw.len() != major_len + 1 {
        return Err(corrupt(&format!(
            "has {} entries, expected {}",
            raw.len(),
            major_len + 1
        )));
    }
    if raw[0] != 0 {
        return Err(corrupt("does not start at 0"));
    }
    if raw.windows(2).any(|w| w[1] < w[0]) {
        return Err(corrupt("decreases"));
    }
    if raw[major_len] as u64 > nnz as u64 {
        return Err(corrupt(&format!(
            "ends at {}, beyond the {nnz} stored values",
            raw[major_len]
        )));
    }
    Ok(raw.into_iter().map(|v| v as usize).collect())
}

/// Reads a CSR/CSC group restricted to the selected rows and columns.
fn read_sparse(
    group: &Group,
    kind: SparseKind,
    shape: (usize, usize),
    rows: &Pick,
    cols: &Pick,
    full: &str,
    path: &Path,
) -> Result<CsMatrix, DataError> {
    let (major, minor) = match kind {
        SparseKind::Csr => (rows, cols),
        SparseKind::Csc => (cols, rows),
    };
    let (major_len, minor_len) = match kind {
        SparseKind::Csr => shape,
        SparseKind::Csc => (shape.1, shape.0),
    };
    if minor_len > u32::MAX as usize {
        return Err(DataError::Invalid(format!(
            "{full} has {minor_len} minor entries; at most {} are supported",
            u32::MAX
        )));
    }
    let data_ds = group
        .dataset("data")
        .ctx(path, &format!("opening {full}/data"))?;
    let indices_ds = group
        .dataset("indices")
        .ctx(path, &format!("opening {full}/indices"))?;
    let nnz = data_ds.size();
    if indices_ds.size() != nnz {
        return Err(not_anndata(
            path,
            format!("{full} has {} indices but {nnz} values", indices_ds.size()),
        ));
    }
    let indptr = read_indptr(group, major_len, nnz, full, path)?;
    let minor_map = (!minor.is_identity()).then(|| minor.file_to_output());
    let minor_sorted = minor.is_ascending();

    let mut out_indptr = Vec::with_capacity(major.n_out() + 1);
    out_indptr.push(0usize);
    let mut out_indices: Vec<u32> = Vec::new();
    let mut out_data: Vec<f32> = Vec::new();
    if major.is_identity() && minor_map.is_none() {
        out_indices.reserve(indptr[major_len]);
        out_data.reserve(indptr[major_len]);
    }
    let mut scratch: Vec<(u32, f32)> = Vec::new();
    for block in plan_blocks(&major.runs(), |m| indptr[m]) {
        let base = indptr[block.span.start];
        let range = base..indptr[block.span.end];
        let data: Vec<f32> = h5::read_range(&data_ds, range.clone(), path)?;
        let indices = read_index_range(&indices_ds, range, minor_len, full, path)?;
        for run in &block.runs {
            match &minor_map {
                None => {
                    // Whole major slices: copy the run in one go.
                    let (lo, hi) = (indptr[run.start] - base, indptr[run.end] - base);
                    let start_out = out_data.len();
                    out_indices.extend_from_slice(&indices[lo..hi]);
                    out_data.extend_from_slice(&data[lo..hi]);
                    let first = indptr[run.start];
                    out_indptr.extend(
                        indptr[run.start + 1..=run.end]
                            .iter()
                            .map(|&p| start_out + p - first),
                    );
                }
                Some(map) => {
                    for m in run.clone() {
                        let (lo, hi) = (indptr[m] - base, indptr[m + 1] - base);
                        if minor_sorted {
                            for k in lo..hi {
                                let to = map[indices[k] as usize];
                                if to != u32::MAX {
                                    out_indices.push(to);
                                    out_data.push(data[k]);
                                }
                            }
                        } else {
                            scratch.clear();
                            scratch.extend(
                                (lo..hi)
                                    .map(|k| (map[indices[k] as usize], data[k]))
                                    .filter(|&(to, _)| to != u32::MAX),
                            );
                            scratch.sort_unstable_by_key(|&(to, _)| to);
                            out_indices.extend(scratch.iter().map(|&(to, _)| to));
                            out_data.extend(scratch.iter().map(|&(_, v)| v));
                        }
                        out_indptr.push(out_data.len());
                    }
                }
            }
        }
    }
    let out_shape = (rows.n_out(), cols.n_out());
    let sorted_major = CsMatrix {
        kind,
        shape: out_shape,
        indptr: out_indptr,
        indices: out_indices,
        data: out_data,
    };
    if major.is_ascending() {
        return Ok(sorted_major);
    }
    // Put the major slices in the requested order: output slice i is sorted slice inverse_dest[i].
    let dest = major.dest();
    let mut order = vec![0usize; dest.len()];
    for (sorted_pos, &out_pos) in dest.iter().enumerate() {
        order[out_pos] = sorted_pos;
    }
    Ok(sorted_major.select_major(&order))
}
