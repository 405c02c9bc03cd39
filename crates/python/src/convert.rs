//! AnnData across the boundary. Python hands over a plain description of an AnnData (built by
//! `cellshift/_anndata.py`): the expression as a NumPy array or the three arrays of a SciPy CSR/CSC matrix,
//! the cell and gene names, and the `obs` columns the conventions read (categoricals as codes and
//! categories). The expression is copied once, straight into the dense `f32` matrix the library uses.
//! Results go back the same way, the expression matrix moved into NumPy without a copy.

use std::collections::BTreeMap;

use cellshift_data::h5ad::{
    anndata_to_perturbation_data, perturbation_data_to_anndata, AnnData, Column, CsMatrix,
    DataFrame, Matrix, PerturbationColumns, SparseKind, UnsValue,
};
use cellshift_data::PerturbationData;
use ndarray::Array2;
use numpy::{Element, IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

/// How a Python AnnData's `obs` names the perturbations (the `PerturbationColumns` of the library).
pub fn columns(
    perturbation_key: &str,
    control: Option<&str>,
    context_key: Option<&str>,
    value_key: &str,
) -> PerturbationColumns {
    PerturbationColumns {
        perturbation: perturbation_key.to_string(),
        control: control
            .unwrap_or(cellshift_data::control_label::AUTO_CONTROL)
            .to_string(),
        context: context_key.map(str::to_string),
        value: value_key.to_string(),
        layer: None,
    }
}

/// Reads the data model from a Python AnnData description (see the module documentation).
pub fn perturbation_data(
    desc: &Bound<'_, PyDict>,
    cols: &PerturbationColumns,
) -> PyResult<PerturbationData> {
    let (ann, all_columns) = anndata(desc)?;
    anndata_to_perturbation_data(ann, cols, Some(&all_columns))
        .map_err(|e| crate::errors::to_py(e.into()))
}

fn item<'py>(desc: &Bound<'py, PyDict>, key: &str) -> PyResult<Bound<'py, PyAny>> {
    desc.get_item(key)?.ok_or_else(|| {
        PyValueError::new_err(format!("AnnData description lacks `{key}` (internal)"))
    })
}

/// The in-memory AnnData of a description and the names of every `obs` column of the caller's table.
fn anndata(desc: &Bound<'_, PyDict>) -> PyResult<(AnnData, Vec<String>)> {
    let obs_names: Vec<String> = item(desc, "obs_names")?.extract()?;
    let var_names: Vec<String> = item(desc, "var_names")?.extract()?;
    let all_columns: Vec<String> = item(desc, "obs_columns")?.extract()?;
    let x = expression(&item(desc, "x")?, (obs_names.len(), var_names.len()))?;
    let mut obs = DataFrame::from_index(obs_names);
    let columns = item(desc, "obs")?;
    let columns = columns.cast::<PyDict>()?;
    for (name, value) in columns.iter() {
        let name: String = name.extract()?;
        let column = column(&name, &value.cast_into::<PyTuple>()?)?;
        obs.set_column(&name, column)
            .map_err(|e| crate::errors::to_py(e.into()))?;
    }
    let ann = AnnData {
        x: Some(x),
        obs,
        var: DataFrame::from_index(var_names),
        ..AnnData::default()
    };
    Ok((ann, all_columns))
}

/// One `obs` column: `("categorical", codes, categories, ordered)`, `("str", labels)`, `("f64", values)`,
/// `("i64", values)` or `("bool", values)`.
fn column(name: &str, spec: &Bound<'_, PyTuple>) -> PyResult<Column> {
    let kind: String = spec.get_item(0)?.extract()?;
    Ok(match kind.as_str() {
        "categorical" => Column::Categorical {
            codes: spec
                .get_item(1)?
                .extract::<PyReadonlyArray1<'_, i32>>()?
                .as_array()
                .to_vec(),
            categories: spec.get_item(2)?.extract()?,
            ordered: spec.get_item(3)?.extract()?,
        },
        "str" => Column::Str(spec.get_item(1)?.extract()?),
        "f64" => Column::F64(
            spec.get_item(1)?
                .extract::<PyReadonlyArray1<'_, f64>>()?
                .as_array()
                .to_vec(),
        ),
        "i64" => Column::I64(
            spec.get_item(1)?
                .extract::<PyReadonlyArray1<'_, i64>>()?
                .as_array()
                .to_vec(),
        ),
        "bool" => Column::Bool(
            spec.get_item(1)?
                .extract::<PyReadonlyArray1<'_, bool>>()?
                .as_array()
                .to_vec(),
        ),
        other => {
            return Err(PyValueError::new_err(format!(
                "obs column `{name}` has the unsupported kind {other} (internal)"
            )))
        }
    })
}

/// The expression as an `f32` matrix of `shape` (cells × genes): one copy of a dense `float32` or
/// `float64` array, or of a CSR/CSC matrix's arrays (kept sparse).
fn expression(x: &Bound<'_, PyAny>, shape: (usize, usize)) -> PyResult<Matrix> {
    let matrix = if let Ok(a) = x.extract::<PyReadonlyArray2<'_, f32>>() {
        Matrix::Dense(a.as_array().to_owned())
    } else if let Ok(a) = x.extract::<PyReadonlyArray2<'_, f64>>() {
        Matrix::Dense(a.as_array().mapv(|v| v as f32))
    } else if let Ok(sparse) = x.cast::<PyDict>() {
        Matrix::Sparse(sparse_matrix(sparse, shape)?)
    } else {
        return Err(PyValueError::new_err(
            "X must be a float32/float64 NumPy array or a SciPy CSR/CSC matrix (internal)",
        ));
    };
    if matrix.shape() != shape {
        return Err(PyValueError::new_err(format!(
            "X is {} × {} but the AnnData has {} cells and {} genes; give one row per cell and one column per gene",
            matrix.shape().0,
            matrix.shape().1,
            shape.0,
            shape.1
        )));
    }
    Ok(matrix)
}

/// Index arrays of a sparse matrix, as `int32` or `int64`.
fn indices(array: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<usize>> {
    fn to_usize<T: Element + Copy + TryInto<usize>>(
        a: PyReadonlyArray1<'_, T>,
        what: &str,
    ) -> PyResult<Vec<usize>> {
        a.as_array()
            .iter()
            .map(|&v| {
                v.try_into().map_err(|_| {
                    PyValueError::new_err(format!(
                        "sparse X has a negative {what}; give a valid CSR/CSC matrix"
                    ))
                })
            })
            .collect()
    }
    if let Ok(a) = array.extract::<PyReadonlyArray1<'_, i32>>() {
        to_usize(a, what)
    } else {
        to_usize(array.extract::<PyReadonlyArray1<'_, i64>>()?, what)
    }
}

/// A CSR or CSC matrix from SciPy's arrays (values as `f32`), checked; duplicates are summed later
/// when the data model puts rows in canonical form, as SciPy does.
fn sparse_matrix(sparse: &Bound<'_, PyDict>, shape: (usize, usize)) -> PyResult<CsMatrix> {
    let format: String = item(sparse, "format")?.extract()?;
    let indptr = indices(&item(sparse, "indptr")?, "indptr")?;
    let minor = indices(&item(sparse, "indices")?, "index")?;
    let data_item = item(sparse, "data")?;
    let data: Vec<f32> = if let Ok(a) = data_item.extract::<PyReadonlyArray1<'_, f32>>() {
        a.as_array().to_vec()
    } else {
        let a = data_item.extract::<PyReadonlyArray1<'_, f64>>()?;
        a.as_array().iter().map(|&v| v as f32).collect()
    };
    let kind = match format.as_str() {
        "csr" => SparseKind::Csr,
        "csc" => SparseKind::Csc,
        other => {
            return Err(PyValueError::new_err(format!(
                "sparse X in format `{other}`; convert it with `.tocsr()`"
            )))
        }
    };
    let bad = || {
        PyValueError::new_err(format!(
            "sparse X ({format}) is inconsistent: indptr, indices and data do not describe a {} × {} matrix; \
             check it with `X.check_format()`",
            shape.0, shape.1
        ))
    };
    let minor: Vec<u32> = minor
        .into_iter()
        .map(|m| u32::try_from(m).map_err(|_| bad()))
        .collect::<PyResult<_>>()?;
    CsMatrix::new(kind, shape, indptr, minor, data).map_err(|_| bad())
}

/// A data set as a Python AnnData description, with the conventions' `obs` columns.
pub fn data_to_py<'py>(
    py: Python<'py>,
    data: &PerturbationData,
    cols: &PerturbationColumns,
    uns: BTreeMap<String, UnsValue>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut ann = perturbation_data_to_anndata(data, cols);
    ann.uns.extend(uns);
    anndata_to_py(py, ann)
}

/// An AnnData as a Python description: `X` (moved into NumPy; a sparse matrix as its CSR arrays), names, `obs` columns, `uns`.
pub fn anndata_to_py<'py>(py: Python<'py>, ann: AnnData) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    match ann.x {
        Some(Matrix::Sparse(m)) => {
            let m = match m.kind {
                SparseKind::Csr => m,
                SparseKind::Csc => m.transpose_layout(),
            };
            let csr = PyDict::new(py);
            csr.set_item("format", "csr")?;
            csr.set_item("shape", (m.shape.0, m.shape.1))?;
            csr.set_item(
                "indptr",
                m.indptr
                    .iter()
                    .map(|&p| p as i64)
                    .collect::<Vec<_>>()
                    .into_pyarray(py),
            )?;
            csr.set_item("indices", m.indices.into_pyarray(py))?;
            csr.set_item("data", m.data.into_pyarray(py))?;
            out.set_item("X", csr)?;
        }
        Some(Matrix::Dense(x)) => out.set_item("X", x.into_pyarray(py))?,
        None => out.set_item(
            "X",
            Array2::<f32>::zeros((ann.obs.n_rows(), ann.var.n_rows())).into_pyarray(py),
        )?,
    }
    out.set_item("obs_names", PyList::new(py, &ann.obs.index)?)?;
    out.set_item("var_names", PyList::new(py, &ann.var.index)?)?;
    let obs = PyDict::new(py);
    for (name, column) in &ann.obs.columns {
        obs.set_item(name, column_to_py(py, column)?)?;
    }
    out.set_item("obs", obs)?;
    out.set_item("uns", uns_to_py(py, &UnsValue::Dict(ann.uns))?)?;
    Ok(out)
}

fn column_to_py<'py>(py: Python<'py>, column: &Column) -> PyResult<Bound<'py, PyTuple>> {
    let array = |v: Bound<'py, PyAny>, kind: &str| {
        PyTuple::new(py, [kind.into_pyobject(py)?.into_any(), v])
    };
    match column {
        Column::Categorical {
            codes,
            categories,
            ordered,
        } => PyTuple::new(
            py,
            [
                "categorical".into_pyobject(py)?.into_any(),
                PyArray1::from_slice(py, codes).into_any(),
                PyList::new(py, categories)?.into_any(),
                pyo3::types::PyBool::new(py, *ordered).to_owned().into_any(),
            ],
        ),
        Column::Str(v) => array(PyList::new(py, v)?.into_any(), "str"),
        Column::F64(v) => array(PyArray1::from_slice(py, v).into_any(), "f64"),
        Column::F32(v) => array(
            PyArray1::from_vec(py, v.iter().map(|&x| x as f64).collect()).into_any(),
            "f64",
        ),
        Column::I64(v) => array(PyArray1::from_slice(py, v).into_any(), "i64"),
        Column::I32(v) => array(
            PyArray1::from_vec(py, v.iter().map(|&x| x as i64).collect()).into_any(),
            "i64",
        ),
        Column::Bool(v) => array(PyArray1::from_slice(py, v).into_any(), "bool"),
    }
}

/// An `uns` value as plain Python values (dicts, lists, numbers, strings).
pub fn uns_to_py<'py>(py: Python<'py>, value: &UnsValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        UnsValue::Str(s) | UnsValue::Unsupported(s) => s.into_pyobject(py)?.into_any(),
        UnsValue::F64(v) => v.into_pyobject(py)?.into_any(),
        UnsValue::I64(v) => v.into_pyobject(py)?.into_any(),
        UnsValue::Bool(v) => pyo3::types::PyBool::new(py, *v).to_owned().into_any(),
        UnsValue::F64Array(v) => PyList::new(py, v)?.into_any(),
        UnsValue::I64Array(v) => PyList::new(py, v)?.into_any(),
        UnsValue::BoolArray(v) => PyList::new(py, v)?.into_any(),
        UnsValue::StrArray(v) => PyList::new(py, v)?.into_any(),
        UnsValue::Dict(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, uns_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}
