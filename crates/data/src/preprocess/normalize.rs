//! Per-cell total-count normalisation and the log1p transform, with scanpy 1.11 semantics.
//!
//! `normalize_total`: total_i = Σ_g x_ig (summed in f64, stored as f32 like scanpy's CSR path); target =
//! the median of the non-zero totals (scanpy's dense-path rule and MapPFN spec §6.8) or a given sum;
//! factor_i = total_i / target in f32; x_ig / factor_i in f32. Cells with a zero total stay zero (scanpy
//! divides them by 1). Note: scanpy's *sparse* path takes the median over all cells, zeros included; the
//! two agree whenever no cell has a zero total (true for the Papalexi data).
//!
//! `log1p`: `ln(1+x)` in f32; for base b the f32 result is divided by `ln b` in f64 and rounded back,
//! as numpy does for `np.divide(X, np.log(base), out=X)`.

use ndarray::{Array2, ArrayView2, Axis};

use super::checks::check_counts;
use crate::error::DataError;
use crate::model::{ExpressionScale, PerturbationData};

/// What each cell's total is scaled to.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum NormalizeTarget {
    /// The median of the per-cell totals over cells with a non-zero total (scanpy default, MapPFN).
    MedianOfTotals,
    /// A fixed sum, e.g. 1e4 (CP10k) or 1e6 (CPM).
    Sum(f32),
}

/// Facts about one normalisation, for logs and reports.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NormalizeReport {
    /// The target each cell now sums to.
    pub target_sum: f32,
    /// Per-cell totals before normalisation.
    pub totals: Vec<f32>,
    /// Cells whose total was zero (left as zeros).
    pub zero_total_cells: usize,
}

/// Base of the log1p transform.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum LogBase {
    /// Natural logarithm (scanpy default, MapPFN code).
    Natural,
    /// Base 2 (MapPFN paper, Eq. 5).
    Two,
    /// Base 10.
    Ten,
}

impl LogBase {
    fn divisor(&self) -> Option<f64> {
        match self {
            LogBase::Natural => None,
            LogBase::Two => Some(std::f64::consts::LN_2),
            LogBase::Ten => Some(std::f64::consts::LN_10),
        }
    }
}

/// Median of an ascending, non-empty slice (mean of the two middle values for even lengths).
pub(crate) fn median_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Per-cell totals (f64 sums rounded to f32).
pub fn cell_totals(x: ArrayView2<'_, f32>) -> Vec<f32> {
    x.axis_iter(Axis(0))
        .map(|row| row.iter().map(|&v| v as f64).sum::<f64>() as f32)
        .collect()
}

/// Scales every cell (row) of a counts matrix to the same total; returns the new matrix and a report.
/// Errors on NaN/Inf or negative values, and when every cell has a zero total.
pub fn normalize_total_matrix(
    x: ArrayView2<'_, f32>,
    target: NormalizeTarget,
) -> Result<(Array2<f32>, NormalizeReport), DataError> {
    check_counts(x, "normalize_total input")?;
    let totals = cell_totals(x);
    let mut nonzero: Vec<f64> = totals
        .iter()
        .filter(|&&t| t > 0.0)
        .map(|&t| t as f64)
        .collect();
    let zero_total_cells = totals.len() - nonzero.len();
    let target_sum = match target {
        NormalizeTarget::Sum(s) => {
            if !(s.is_finite() && s > 0.0) {
                return Err(DataError::Invalid(format!(
                    "normalize_total target sum {s} must be a positive number, e.g. 10000"
                )));
            }
            s
        }
        NormalizeTarget::MedianOfTotals => {
            if nonzero.is_empty() {
                return Err(DataError::Invalid(
                    "normalize_total: every cell has a total of zero, so there is no median to scale to; check \
                     that the matrix holds counts (and the right layer was read)"
                        .into(),
                ));
            }
            nonzero.sort_by(f64::total_cmp);
            median_sorted(&nonzero) as f32
        }
    };
    let mut out = x.to_owned();
    for (mut row, &total) in out.axis_iter_mut(Axis(0)).zip(&totals) {
        let factor = total / target_sum;
        if factor != 0.0 {
            row.mapv_inplace(|v| v / factor);
        }
    }
    Ok((
        out,
        NormalizeReport {
            target_sum,
            totals,
            zero_total_cells,
        },
    ))
}

/// `ln(1+x)` (or `log_b(1+x)`) of every value; errors on NaN/Inf and on values ≤ −1.
pub fn log1p_matrix(x: ArrayView2<'_, f32>, base: LogBase) -> Result<Array2<f32>, DataError> {
    for ((row, col), &v) in x.indexed_iter() {
        if !v.is_finite() {
            return Err(DataError::NonFinite {
                what: "log1p input".into(),
                row,
                col,
                value: v as f64,
            });
        }
        if v <= -1.0 {
            return Err(DataError::Invalid(format!(
                "log1p input has the value {v} at row {row}, column {col}; log1p needs values above -1 \
                 (normalised counts are non-negative); give normalised counts"
            )));
        }
    }
    let divisor = base.divisor();
    Ok(x.mapv(|v| {
        if v == 0.0 {
            return v; // log1p(±0) = ±0; sparse data are mostly zeros
        }
        let l = v.ln_1p();
        match divisor {
            None => l,
            Some(d) => (l as f64 / d) as f32,
        }
    }))
}

fn with_matrix(data: &PerturbationData, x: Array2<f32>) -> PerturbationData {
    let mut out = data.clone();
    out.scale = ExpressionScale::detect(x.iter());
    out.x = x;
    out
}

/// [`normalize_total_matrix`] on a data set; the input is not modified.
pub fn normalize_total(
    data: &PerturbationData,
    target: NormalizeTarget,
) -> Result<(PerturbationData, NormalizeReport), DataError> {
    let (x, report) = normalize_total_matrix(data.view(), target)?;
    Ok((with_matrix(data, x), report))
}

/// [`log1p_matrix`] on a data set; the input is not modified.
pub fn log1p(data: &PerturbationData, base: LogBase) -> Result<PerturbationData, DataError> {
    let x = log1p_matrix(data.view(), base)?;
    Ok(with_matrix(data, x))
}
