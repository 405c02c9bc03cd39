//! The bridge between AnnData files and the [`PerturbationData`] model, following the MapPFN
//! conventions: the perturbation label per cell in an `obs` column (the control cells carry the control
//! label; a knock-out's label is its target gene), an optional context column, and an optional
//! intervention-value column (1.0 for treated and 0.0 for control cells when absent).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::dataframe::{Column, DataFrame};
use super::read::{open_anndata, read_layer};
use super::read_frame::{read_dataframe_columns, read_dataframe_index};
use super::read_matrix::read_matrix;
use super::selection::Pick;
use super::uns::UnsValue;
use super::write::write_h5ad;
use super::{AnnData, ReadOptions, WriteOptions};
use crate::control_label::resolve_control_label;
use crate::error::DataError;
use crate::expression::Expression;
use crate::model::{CellAnnotations, PerturbationData};

/// Which `obs` columns and labels describe the perturbations (the MapPFN conventions by default).
#[derive(Clone, Debug, PartialEq)]
pub struct PerturbationColumns {
    /// Column with the perturbation label of each cell (`--perturbation-column`; default `perturbation`).
    pub perturbation: String,
    /// Label of unperturbed cells (`--control`, e.g. `non-targeting` for Papalexi); `auto`
    /// ([`crate::control_label::AUTO_CONTROL`]) detects it from the labels.
    pub control: String,
    /// Context column (`--context-column`). `None` = automatic: the first of [`AUTO_CONTEXT_COLUMNS`]
    /// present (`context`, `cell_type`, `celltype`, `cell_line`, …), otherwise every cell is in one context.
    pub context: Option<String>,
    /// Column with the intervention value of each cell (default `treatment_value`); optional in the
    /// file: when absent treated cells get 1.0. Control cells always get 0.0.
    pub value: String,
    /// Read expression from this layer instead of `X` (`--layer`); also written there.
    pub layer: Option<String>,
}

impl Default for PerturbationColumns {
    fn default() -> Self {
        PerturbationColumns {
            perturbation: "perturbation".to_string(),
            control: "control".to_string(),
            context: None,
            value: "treatment_value".to_string(),
            layer: None,
        }
    }
}

/// Context column names tried, in order, when [`PerturbationColumns::context`] is `None`: the names real
/// screens use for the biological context (cell type, cell line, tissue).
pub const AUTO_CONTEXT_COLUMNS: [&str; 8] = [
    "context",
    "cell_type",
    "celltype",
    "cell_line",
    "cellline",
    "cell_line_name",
    "cell_context",
    "tissue",
];

/// The context column the reader uses for a file whose `obs` has `columns`: the one given, else the first
/// of [`AUTO_CONTEXT_COLUMNS`] present, else `None` (one context).
pub fn chosen_context_column(columns: &[String], cols: &PerturbationColumns) -> Option<String> {
    match &cols.context {
        Some(name) => columns.iter().find(|c| *c == name).cloned(),
        None => AUTO_CONTEXT_COLUMNS
            .iter()
            .find(|a| columns.iter().any(|c| c == *a))
            .map(|a| a.to_string()),
    }
}

/// The names of the `obs` columns of an `.h5ad` file (no column is decoded).
pub fn obs_column_names(path: &Path) -> Result<Vec<String>, DataError> {
    let file = open_anndata(path)?;
    let (_, all_columns) = read_dataframe_columns(&file, "obs", path, |_| false)?;
    Ok(all_columns)
}

fn missing_column(all_columns: &[String], column: &str, flag: &str) -> DataError {
    DataError::MissingColumn {
        column: column.to_string(),
        available: if all_columns.is_empty() {
            "(none)".to_string()
        } else {
            all_columns.join(", ")
        },
        flag: flag.to_string(),
    }
}

/// Per-cell labels of a column, erroring when a value is missing.
fn labels_without_missing(column: &Column, name: &str) -> Result<Vec<String>, DataError> {
    let missing = column.missing_count();
    if missing > 0 {
        return Err(DataError::Invalid(format!(
            "obs column `{name}` has {missing} missing values (NaN); fill them or drop those cells before running"
        )));
    }
    Ok(column.as_strings())
}

/// The context column to use, if any (explicit, or found automatically).
fn context_column<'a>(
    obs: &'a DataFrame,
    all_columns: &[String],
    cols: &PerturbationColumns,
) -> Result<Option<(&'a str, &'a Column)>, DataError> {
    let find = |name: &str| {
        obs.columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(n, c)| (n.as_str(), c))
    };
    match &cols.context {
        Some(name) => find(name)
            .map(Some)
            .ok_or_else(|| missing_column(all_columns, name, "--context-column")),
        None => Ok(AUTO_CONTEXT_COLUMNS.iter().find_map(|&c| find(c))),
    }
}

/// Builds the per-cell annotations of the cells `rows` (file indices) from `obs` (which holds the
/// columns named in `cols`; `all_columns` lists every column of the file, for messages), and the control
/// label (`cols.control`, or the detected one when that is `auto`).
fn annotations(
    obs: &DataFrame,
    all_columns: &[String],
    cols: &PerturbationColumns,
    rows: &[usize],
) -> Result<(CellAnnotations, String), DataError> {
    let pert = obs
        .column(&cols.perturbation)
        .ok_or_else(|| missing_column(all_columns, &cols.perturbation, "--perturbation-column"))?;
    let labels = labels_without_missing(pert, &cols.perturbation)?;
    let control = resolve_control_label(&cols.control, &labels)?;
    if !labels.contains(&control) {
        let available: BTreeSet<&String> = labels.iter().collect();
        return Err(DataError::UnknownLabel {
            what: format!(
                "control label (set with --control; looked in obs column `{}`)",
                cols.perturbation
            ),
            label: control.clone(),
            available: available.into_iter().cloned().collect(),
        });
    }
    let contexts = match context_column(obs, all_columns, cols)? {
        Some((name, column)) => {
            let all = labels_without_missing(column, name)?;
            rows.iter().map(|&r| all[r].clone()).collect()
        }
        None => Vec::new(),
    };
    let treatment_labels: Vec<String> = rows.iter().map(|&r| labels[r].clone()).collect();
    let treatment_values = match obs.column(&cols.value) {
        None => Vec::new(),
        Some(column) => {
            let values = column.as_f64().ok_or_else(|| {
                DataError::Invalid(format!(
                    "obs column `{}` (intervention values) is {} and not numeric; give numbers or drop the column",
                    cols.value,
                    column.kind_name()
                ))
            })?;
            let mut out = Vec::with_capacity(rows.len());
            for &r in rows {
                if labels[r] == control {
                    out.push(0.0);
                } else if values[r].is_finite() {
                    out.push(values[r] as f32);
                } else {
                    return Err(DataError::Invalid(format!(
                        "obs column `{}` has the non-finite value {} for treated cell `{}`; give a number for every treated cell",
                        cols.value, values[r], obs.index[r]
                    )));
                }
            }
            out
        }
    };
    let annotations = CellAnnotations {
        cell_names: rows.iter().map(|&r| obs.index[r].clone()).collect(),
        contexts,
        treatment_labels,
        treatment_values,
    };
    Ok((annotations, control))
}

/// Errors with [`DataError::Duplicate`] if a name repeats.
fn check_unique(names: &[String], what: &str) -> Result<(), DataError> {
    DataFrame::from_index(names.to_vec()).check_unique_index(what)
}

/// Reads a perturbation screen from an `.h5ad` file into the data model: the expression of the selected
/// cells and genes (`X` or `cols.layer`, else `opts.layer`) as an `f32` matrix stored as in the file
/// (dense, or CSR for CSR/CSC), with each cell's
/// context, treatment and intervention value from `obs`. Only the selected part of the matrix is read.
/// Errors name the missing column / label and the flag that sets it.
pub fn read_perturbation_data(
    path: &Path,
    cols: &PerturbationColumns,
    opts: &ReadOptions,
) -> Result<PerturbationData, DataError> {
    let file = open_anndata(path)?;
    // Only the columns the conventions use are decoded; the others are listed for error messages.
    let wanted = |c: &str| {
        c == cols.perturbation
            || c == cols.value
            || cols
                .context
                .as_deref()
                .map_or(AUTO_CONTEXT_COLUMNS.contains(&c), |x| x == c)
    };
    let (obs, all_columns) = read_dataframe_columns(&file, "obs", path, wanted)?;
    let all_genes = read_dataframe_index(&file, "var", path)?;
    let rows = Pick::new(opts.cells.as_deref(), obs.n_rows(), "cell")?;
    let genes = Pick::new(opts.genes.as_deref(), all_genes.len(), "gene")?;
    let (cells, control) = annotations(&obs, &all_columns, cols, &rows.requested())?;
    let gene_names: Vec<String> = genes
        .requested()
        .iter()
        .map(|&g| all_genes[g].clone())
        .collect();
    check_unique(&gene_names, "var")?;
    check_unique(&cells.cell_names, "obs")?;

    let layer = cols.layer.as_ref().or(opts.layer.as_ref());
    let matrix = match layer {
        Some(layer) => read_layer(&file, layer, path, &rows, &genes)?,
        None if file.link_exists("X") => read_matrix(&file, "X", path, &rows, &genes)?,
        None => {
            return Err(DataError::Invalid(format!(
                "{} has no X matrix; name the layer that holds the expression with --layer",
                path.display()
            )))
        }
    };
    drop(file);
    PerturbationData::new(gene_names, Expression::from_matrix(matrix), cells, &control)
}

/// Builds the data model from an AnnData already in memory (e.g. handed over by the Python package),
/// with the conventions and checks of [`read_perturbation_data`]: the same columns, control-label
/// detection and messages. The expression is `cols.layer` when named, else `X`; it is taken, not copied.
/// `all_columns` lists every `obs` column of the caller's table for error messages (`ann.obs` may hold
/// only the columns the conventions read); `None` lists those of `ann.obs`.
pub fn anndata_to_perturbation_data(
    mut ann: AnnData,
    cols: &PerturbationColumns,
    all_columns: Option<&[String]>,
) -> Result<PerturbationData, DataError> {
    let all_columns = all_columns.map_or_else(|| ann.obs.column_names(), <[String]>::to_vec);
    let rows: Vec<usize> = (0..ann.n_obs()).collect();
    let (cells, control) = annotations(&ann.obs, &all_columns, cols, &rows)?;
    let genes = ann.var.index.clone();
    check_unique(&genes, "var")?;
    check_unique(&cells.cell_names, "obs")?;
    let matrix = match &cols.layer {
        Some(layer) => ann.layers.remove(layer).ok_or_else(|| {
            DataError::Invalid(format!(
                "layer `{layer}` not found; available layers: {}; name an existing layer or none for X",
                ann.layers.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?,
        None => ann.x.take().ok_or_else(|| {
            DataError::Invalid(
                "the AnnData has no X matrix; name the layer that holds the expression".to_string(),
            )
        })?,
    };
    if matrix.shape() != (rows.len(), genes.len()) {
        return Err(DataError::Invalid(format!(
            "the expression matrix is {} × {} but obs has {} rows and var {}; give one row per cell and one column per gene",
            matrix.shape().0,
            matrix.shape().1,
            rows.len(),
            genes.len()
        )));
    }
    PerturbationData::new(genes, Expression::from_matrix(matrix), cells, &control)
}

/// Converts a data set to AnnData: dense `X` (also stored in `layers[cols.layer]` when a layer is
/// named), `obs` with the perturbation label, context and intervention value columns (categoricals
/// for labels), `var` indexed by gene name, and `uns["cellshift"]` recording the control label and the
/// detected expression scale.
pub fn perturbation_data_to_anndata(
    data: &PerturbationData,
    cols: &PerturbationColumns,
) -> AnnData {
    let ann = data.annotations();
    let mut obs = DataFrame::from_index(data.cell_names.clone());
    obs.columns.push((
        cols.perturbation.clone(),
        Column::categorical_from_labels(&ann.treatment_labels),
    ));
    let context_name = cols
        .context
        .clone()
        .unwrap_or_else(|| "context".to_string());
    if context_name != cols.perturbation {
        obs.columns
            .push((context_name, Column::categorical_from_labels(&ann.contexts)));
    }
    if cols.value != cols.perturbation && obs.column(&cols.value).is_none() {
        obs.columns
            .push((cols.value.clone(), Column::F32(data.cell_value.clone())));
    }
    let var = DataFrame::from_index(data.genes.clone());
    let mut layers = BTreeMap::new();
    if let Some(layer) = &cols.layer {
        layers.insert(layer.clone(), data.x.to_matrix());
    }
    let mut info = BTreeMap::new();
    info.insert(
        "control_label".to_string(),
        UnsValue::Str(data.control_label.clone()),
    );
    info.insert(
        "expression_scale".to_string(),
        UnsValue::Str(format!("{:?}", data.scale)),
    );
    let mut uns = BTreeMap::new();
    uns.insert("cellshift".to_string(), UnsValue::Dict(info));
    AnnData {
        x: Some(data.x.to_matrix()),
        obs,
        var,
        layers,
        obsm: BTreeMap::new(),
        uns,
    }
}

/// Writes a data set as an `.h5ad` file (see [`perturbation_data_to_anndata`]), atomically.
pub fn write_perturbation_data(
    path: &Path,
    data: &PerturbationData,
    cols: &PerturbationColumns,
    opts: &WriteOptions,
) -> Result<(), DataError> {
    write_h5ad(path, &perturbation_data_to_anndata(data, cols), opts)
}
