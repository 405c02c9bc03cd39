//! Writing the AnnData elements — data frames, dense and sparse matrices, `obsm` arrays and `uns`
//! values — in the on-disk format anndata ≥ 0.8 reads (encoding-type / encoding-version attributes).

use std::collections::BTreeMap;
use std::path::Path;

use hdf5::types::VarLenUnicode;
use hdf5::{Dataset, Group, H5Type};
use ndarray::{ArrayView, ArrayView1, ArrayView2, Dimension};

use super::dataframe::{Column, DataFrame};
use super::h5::{self, H5Context};
use super::matrix::{CsMatrix, Matrix};
use super::uns::UnsValue;
use crate::error::DataError;

/// Elements per chunk of a compressed dataset (about 256 KB of f32; what h5py picks for such sizes).
const CHUNK_ELEMENTS: usize = 1 << 16;

/// Creates dataset `name` in `group` holding `data`, gzip-compressed at `gzip` when given.
fn write_array<'d, T: H5Type, D: Dimension>(
    group: &Group,
    name: &str,
    data: ArrayView<'d, T, D>,
    gzip: Option<u8>,
    path: &Path,
) -> Result<Dataset, DataError> {
    let what = format!("writing {}/{name}", group.name().trim_end_matches('/'));
    let shape = data.shape().to_vec();
    let size: usize = shape.iter().product();
    let builder = group.new_dataset_builder();
    let ds = match gzip {
        Some(level) if size > 0 => {
            // Chunks span whole rows so that reading a row range touches few chunks.
            let row_len: usize = shape[1..].iter().product::<usize>().max(1);
            let rows = (CHUNK_ELEMENTS / row_len).clamp(1, shape[0].max(1));
            let mut chunk = shape.clone();
            chunk[0] = rows;
            builder
                .with_data(data)
                .chunk(chunk)
                .deflate(level.min(9))
                .create(name)
        }
        _ => builder.with_data(data).create(name),
    };
    ds.ctx(path, &what)
}

/// Writes a 1-D array with the `array` encoding.
fn write_encoded_1d<T: H5Type>(
    group: &Group,
    name: &str,
    data: &[T],
    gzip: Option<u8>,
    path: &Path,
) -> Result<(), DataError> {
    let ds = write_array(group, name, ArrayView1::from(data), gzip, path)?;
    h5::set_encoding(&ds, "array", "0.2.0", path)
}

/// Writes a 1-D string array with the `string-array` encoding.
fn write_strings(
    group: &Group,
    name: &str,
    values: &[String],
    gzip: Option<u8>,
    path: &Path,
) -> Result<(), DataError> {
    let what = format!("writing strings {name}");
    let v: Vec<VarLenUnicode> = values
        .iter()
        .map(|s| h5::to_vlen(s, &what))
        .collect::<Result<_, _>>()?;
    let ds = write_array(group, name, ArrayView1::from(&v[..]), gzip, path)?;
    h5::set_encoding(&ds, "string-array", "0.2.0", path)
}

/// Creates a group with the `dict` encoding.
pub(crate) fn create_dict(parent: &Group, name: &str, path: &Path) -> Result<Group, DataError> {
    let group = parent
        .create_group(name)
        .ctx(path, &format!("creating group {name}"))?;
    h5::set_encoding(&group, "dict", "0.1.0", path)?;
    Ok(group)
}

/// Writes a data frame (`obs` or `var`) as group `name` of `parent`.
pub(crate) fn write_dataframe(
    parent: &Group,
    name: &str,
    df: &DataFrame,
    gzip: Option<u8>,
    path: &Path,
) -> Result<(), DataError> {
    df.validate(name)?;
    let index_name = if df.index_name.is_empty() {
        "_index"
    } else {
        df.index_name.as_str()
    };
    if index_name.contains('/') {
        return Err(DataError::Invalid(format!(
            "{name} index name `{index_name}` contains `/`; rename it"
        )));
    }
    let group = parent
        .create_group(name)
        .ctx(path, &format!("creating group {name}"))?;
    h5::set_encoding(&group, "dataframe", "0.2.0", path)?;
    h5::set_attr_str(&group, "_index", index_name, path)?;
    h5::set_attr_str_array(&group, "column-order", &df.column_names(), path)?;
    write_strings(&group, index_name, &df.index, gzip, path)?;
    for (col_name, column) in &df.columns {
        write_column(&group, col_name, column, gzip, path)?;
    }
    Ok(())
}

/// Writes one data-frame column in anndata's encoding for its kind.
fn write_column(
    group: &Group,
    name: &str,
    column: &Column,
    gzip: Option<u8>,
    path: &Path,
) -> Result<(), DataError> {
    match column {
        Column::Str(v) => write_strings(group, name, v, gzip, path),
        Column::F64(v) => write_encoded_1d(group, name, v, gzip, path),
        Column::F32(v) => write_encoded_1d(group, name, v, gzip, path),
        Column::I64(v) => write_encoded_1d(group, name, v, gzip, path),
        Column::I32(v) => write_encoded_1d(group, name, v, gzip, path),
        Column::Bool(v) => write_encoded_1d(group, name, v, gzip, path),
        Column::Categorical {
            codes,
            categories,
            ordered,
        } => {
            let sub = group
                .create_group(name)
                .ctx(path, &format!("creating categorical {name}"))?;
            h5::set_encoding(&sub, "categorical", "0.2.0", path)?;
            h5::set_attr_bool(&sub, "ordered", *ordered, path)?;
            // The narrowest integer type that holds every code, as pandas does.
            let n = categories.len();
            if n < i8::MAX as usize {
                let c: Vec<i8> = codes.iter().map(|&c| c as i8).collect();
                write_encoded_1d(&sub, "codes", &c, gzip, path)?;
            } else if n < i16::MAX as usize {
                let c: Vec<i16> = codes.iter().map(|&c| c as i16).collect();
                write_encoded_1d(&sub, "codes", &c, gzip, path)?;
            } else {
                write_encoded_1d(&sub, "codes", codes, gzip, path)?;
            }
            write_strings(&sub, "categories", categories, gzip, path)
        }
    }
}

/// Writes an expression matrix (dense `array`, or a `csr_matrix`/`csc_matrix` group).
pub(crate) fn write_matrix(
    parent: &Group,
    name: &str,
    m: &Matrix,
    gzip: Option<u8>,
    path: &Path,
) -> Result<(), DataError> {
    match m {
        Matrix::Dense(x) => {
            let x = x.as_standard_layout();
            let ds = write_array(parent, name, x.view(), gzip, path)?;
            h5::set_encoding(&ds, "array", "0.2.0", path)
        }
        Matrix::Sparse(s) => write_sparse(parent, name, s, gzip, path),
    }
}

fn write_sparse(
    parent: &Group,
    name: &str,
    m: &CsMatrix,
    gzip: Option<u8>,
    path: &Path,
) -> Result<(), DataError> {
    m.validate()?;
    let group = parent
        .create_group(name)
        .ctx(path, &format!("creating sparse matrix {name}"))?;
    h5::set_encoding(&group, m.kind.encoding(), "0.1.0", path)?;
    h5::set_attr_i64_array(&group, "shape", &[m.shape.0 as i64, m.shape.1 as i64], path)?;
    write_array(&group, "data", ArrayView1::from(&m.data[..]), gzip, path)?;
    // int32 indices/indptr when they fit (scipy's default), int64 otherwise.
    if m.minor_len() <= i32::MAX as usize {
        let idx: Vec<i32> = m.indices.iter().map(|&i| i as i32).collect();
        write_array(&group, "indices", ArrayView1::from(&idx[..]), gzip, path)?;
    } else {
        let idx: Vec<i64> = m.indices.iter().map(|&i| i as i64).collect();
        write_array(&group, "indices", ArrayView1::from(&idx[..]), gzip, path)?;
    }
    if m.nnz() <= i32::MAX as usize {
        let p: Vec<i32> = m.indptr.iter().map(|&p| p as i32).collect();
        write_array(&group, "indptr", ArrayView1::from(&p[..]), gzip, path)?;
    } else {
        let p: Vec<i64> = m.indptr.iter().map(|&p| p as i64).collect();
        write_array(&group, "indptr", ArrayView1::from(&p[..]), gzip, path)?;
    }
    Ok(())
}

/// Writes a dense 2-D f64 array (an `obsm` entry) with the `array` encoding.
pub(crate) fn write_f64_matrix(
    parent: &Group,
    name: &str,
    x: ArrayView2<'_, f64>,
    gzip: Option<u8>,
    path: &Path,
) -> Result<(), DataError> {
    let x = x.as_standard_layout();
    let ds = write_array(parent, name, x.view(), gzip, path)?;
    h5::set_encoding(&ds, "array", "0.2.0", path)
}

/// Writes the entries of a `uns` dictionary into `group`; [`UnsValue::Unsupported`] entries are skipped.
pub(crate) fn write_uns_dict(
    group: &Group,
    dict: &BTreeMap<String, UnsValue>,
    path: &Path,
) -> Result<(), DataError> {
    for (key, value) in dict {
        if key.is_empty() || key.contains('/') {
            return Err(DataError::Invalid(format!(
                "uns key `{key}` is empty or contains `/`; rename it"
            )));
        }
        write_uns_value(group, key, value, path)?;
    }
    Ok(())
}

fn write_scalar<T: H5Type>(
    group: &Group,
    name: &str,
    value: &T,
    encoding: &str,
    path: &Path,
) -> Result<(), DataError> {
    let what = format!("writing uns entry {name}");
    let ds = group
        .new_dataset::<T>()
        .shape(())
        .create(name)
        .ctx(path, &what)?;
    ds.write_scalar(value).ctx(path, &what)?;
    h5::set_encoding(&ds, encoding, "0.2.0", path)
}

fn write_uns_value(
    group: &Group,
    key: &str,
    value: &UnsValue,
    path: &Path,
) -> Result<(), DataError> {
    match value {
        UnsValue::Str(s) => write_scalar(
            group,
            key,
            &h5::to_vlen(s, &format!("uns entry {key}"))?,
            "string",
            path,
        ),
        UnsValue::F64(v) => write_scalar(group, key, v, "numeric-scalar", path),
        UnsValue::I64(v) => write_scalar(group, key, v, "numeric-scalar", path),
        UnsValue::Bool(v) => write_scalar(group, key, v, "numeric-scalar", path),
        UnsValue::F64Array(v) => write_encoded_1d(group, key, v, None, path),
        UnsValue::I64Array(v) => write_encoded_1d(group, key, v, None, path),
        UnsValue::BoolArray(v) => write_encoded_1d(group, key, v, None, path),
        UnsValue::StrArray(v) => write_strings(group, key, v, None, path),
        UnsValue::Dict(map) => {
            let sub = create_dict(group, key, path)?;
            write_uns_dict(&sub, map, path)
        }
        UnsValue::Unsupported(_) => Ok(()),
    }
}
