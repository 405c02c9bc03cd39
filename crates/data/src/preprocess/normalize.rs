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

use ndarray::parallel::prelude::*;
use ndarray::{Array2, ArrayView2};

use super::checks::check_counts;
use crate::error::DataError;
use crate::expression::Expression;
use crate::model::{ExpressionScale, PerturbationData};

/// What each cell's total is scaled to: the one total-count normalisation type of the workspace (used by
/// preprocessing, the synthetic priors and the checkpoints' preprocessing records).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum NormalizeTarget {
    /// The median of the per-cell totals over cells with a non-zero total (scanpy default, MapPFN).
    #[serde(alias = "median")]
    MedianOfTotals,
    /// A fixed sum, e.g. 1e4 (CP10k) or 1e6 (CPM).
    #[serde(alias = "fixed")]
    Sum(f32),
}

impl NormalizeTarget {
    /// A target as the command line and the Python package spell it: `median`, a positive number such as
    /// 10000, or `none` (no normalisation, `Some(None)`); `None` when the text is none of these.
    pub fn parse_choice(text: &str) -> Option<Option<NormalizeTarget>> {
        match text {
            "none" => Some(None),
            "median" => Some(Some(NormalizeTarget::MedianOfTotals)),
            other => match other.parse::<f32>() {
                Ok(v) if v > 0.0 && v.is_finite() => Some(Some(NormalizeTarget::Sum(v))),
                _ => None,
            },
        }
    }
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
    /// A base as the command line and the Python package spell it: `e`, `2`, `10`, or `none` (no log1p,
    /// `Some(None)`); `None` when the text is none of these.
    pub fn parse_choice(text: &str) -> Option<Option<LogBase>> {
        match text {
            "none" => Some(None),
            "e" => Some(Some(LogBase::Natural)),
            "2" => Some(Some(LogBase::Two)),
            "10" => Some(Some(LogBase::Ten)),
            _ => None,
        }
    }

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

/// Per-cell totals (f64 sums rounded to f32); rows in parallel.
pub fn cell_totals(x: &Expression) -> Vec<f32> {
    x.row_sums_f64().into_iter().map(|t| t as f32).collect()
}

/// Per-row (total, all stored values finite and ≥ 0) in one parallel pass; implicit zeros of sparse
/// storage add nothing to a total, so dense and sparse storage give the same totals.
fn totals_and_validity(x: &Expression) -> (Vec<f32>, bool) {
    let per_row: Vec<(f32, bool)> = (0..x.nrows())
        .into_par_iter()
        .map(|i| {
            let mut sum = 0.0f64;
            let mut ok = true;
            for &v in x.row_entries(i).values() {
                ok &= (0.0..f32::INFINITY).contains(&v);
                sum += v as f64;
            }
            (sum as f32, ok)
        })
        .collect();
    let ok = per_row.iter().all(|r| r.1);
    (per_row.into_iter().map(|r| r.0).collect(), ok)
}

/// The total every cell is scaled to.
fn target_sum(totals: &[f32], target: NormalizeTarget) -> Result<f32, DataError> {
    match target {
        NormalizeTarget::Sum(s) => {
            if !(s.is_finite() && s > 0.0) {
                return Err(DataError::Invalid(format!(
                    "normalize_total target sum {s} must be a positive number, e.g. 10000"
                )));
            }
            Ok(s)
        }
        NormalizeTarget::MedianOfTotals => {
            let mut nonzero: Vec<f64> = totals
                .iter()
                .filter(|&&t| t > 0.0)
                .map(|&t| t as f64)
                .collect();
            if nonzero.is_empty() {
                return Err(DataError::Invalid(
                    "normalize_total: every cell has a total of zero, so there is no median to scale to; check \
                     that the matrix holds counts (and the right layer was read)"
                        .into(),
                ));
            }
            nonzero.sort_by(f64::total_cmp);
            Ok(median_sorted(&nonzero) as f32)
        }
    }
}

/// Scales every cell (row) of a counts matrix, in place, to the same total; see the module docs. Sparse
/// storage stays sparse (only stored values change). Errors on NaN/Inf or negative values (the matrix
/// is then unchanged) and when every cell has a zero total.
pub fn normalize_total_inplace(
    x: &mut Expression,
    target: NormalizeTarget,
) -> Result<NormalizeReport, DataError> {
    let (totals, valid) = totals_and_validity(x);
    if !valid {
        check_counts(x, "normalize_total input")?;
    }
    let zero_total_cells = totals.iter().filter(|&&t| t <= 0.0).count();
    let target_sum = target_sum(&totals, target)?;
    x.rows_values_mut()
        .into_par_iter()
        .zip(totals.par_iter())
        .for_each(|(row, &total)| {
            let factor = total / target_sum;
            if factor != 0.0 {
                row.iter_mut().for_each(|v| *v /= factor);
            }
        });
    Ok(NormalizeReport {
        target_sum,
        totals,
        zero_total_cells,
    })
}

/// [`normalize_total_inplace`] on a dense copy of `x`.
pub fn normalize_total_matrix(
    x: ArrayView2<'_, f32>,
    target: NormalizeTarget,
) -> Result<(Array2<f32>, NormalizeReport), DataError> {
    let mut out = Expression::from(x.to_owned());
    let report = normalize_total_inplace(&mut out, target)?;
    Ok((out.to_dense(), report))
}

/// `ln(1+x)` (or `log_b(1+x)`) of every value, in place (sparse storage stays sparse: log1p(0) = 0);
/// errors on NaN/Inf and on values ≤ −1 (the matrix is then unchanged).
pub fn log1p_inplace(x: &mut Expression, base: LogBase) -> Result<(), DataError> {
    if let Some((row, col, v)) = x.first_where(|v| !(v > -1.0 && v < f32::INFINITY)) {
        if !v.is_finite() {
            return Err(DataError::NonFinite {
                what: "log1p input".into(),
                row,
                col,
                value: v as f64,
            });
        }
        return Err(DataError::Invalid(format!(
            "log1p input has the value {v} at row {row}, column {col}; log1p needs values above -1 \
             (normalised counts are non-negative); give normalised counts"
        )));
    }
    let divisor = base.divisor();
    x.rows_values_mut().into_par_iter().for_each(|row| {
        for v in row.iter_mut() {
            if *v == 0.0 {
                continue; // log1p(±0) = ±0; sparse data are mostly zeros
            }
            let l = v.ln_1p();
            *v = match divisor {
                None => l,
                Some(d) => (l as f64 / d) as f32,
            };
        }
    });
    Ok(())
}

/// [`log1p_inplace`] on a dense copy of `x`.
pub fn log1p_matrix(x: ArrayView2<'_, f32>, base: LogBase) -> Result<Array2<f32>, DataError> {
    let mut out = Expression::from(x.to_owned());
    log1p_inplace(&mut out, base)?;
    Ok(out.to_dense())
}

/// A copy of `data` whose matrix is transformed in place by `step` (one copy of the matrix, not two).
fn transformed<R>(
    data: &PerturbationData,
    step: impl FnOnce(&mut Expression) -> Result<R, DataError>,
) -> Result<(PerturbationData, R), DataError> {
    let mut out = data.clone();
    let r = step(&mut out.x)?;
    out.scale = ExpressionScale::detect(out.x.stored_values());
    Ok((out, r))
}

/// [`normalize_total_inplace`] on a copy of a data set; the input is not modified.
pub fn normalize_total(
    data: &PerturbationData,
    target: NormalizeTarget,
) -> Result<(PerturbationData, NormalizeReport), DataError> {
    transformed(data, |x| normalize_total_inplace(x, target))
}

/// [`log1p_inplace`] on a copy of a data set; the input is not modified.
pub fn log1p(data: &PerturbationData, base: LogBase) -> Result<PerturbationData, DataError> {
    transformed(data, |x| log1p_inplace(x, base)).map(|(d, ())| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_the_front_end_spellings() {
        assert_eq!(
            NormalizeTarget::parse_choice("median"),
            Some(Some(NormalizeTarget::MedianOfTotals))
        );
        assert_eq!(
            NormalizeTarget::parse_choice("1e4"),
            Some(Some(NormalizeTarget::Sum(10_000.0)))
        );
        assert_eq!(NormalizeTarget::parse_choice("none"), Some(None));
        assert_eq!(NormalizeTarget::parse_choice("-1"), None);
        assert_eq!(NormalizeTarget::parse_choice("inf"), None);
        assert_eq!(NormalizeTarget::parse_choice("lots"), None);
        assert_eq!(LogBase::parse_choice("e"), Some(Some(LogBase::Natural)));
        assert_eq!(LogBase::parse_choice("10"), Some(Some(LogBase::Ten)));
        assert_eq!(LogBase::parse_choice("none"), Some(None));
        assert_eq!(LogBase::parse_choice("3"), None);
    }
}
