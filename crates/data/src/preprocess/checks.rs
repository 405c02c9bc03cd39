//! Input checks shared by the preprocessing steps: counts must be finite and non-negative, two data sets
//! must have the same genes, and the expression scale (raw counts vs log-normalised) is detected and
//! reported in a sentence, never guessed silently.

use crate::error::DataError;
use crate::expression::Expression;
use crate::model::{ExpressionScale, PerturbationData};

/// Errors on the first NaN/Inf or negative value of a matrix that must hold counts.
/// `what` names the input in the message (e.g. "normalize_total input").
pub fn check_counts(x: &Expression, what: &str) -> Result<(), DataError> {
    match x.first_where(|v| !(0.0..f32::INFINITY).contains(&v)) {
        None => Ok(()),
        Some((row, col, v)) if !v.is_finite() => Err(DataError::NonFinite {
            what: what.to_string(),
            row,
            col,
            value: v as f64,
        }),
        Some((row, col, v)) => Err(DataError::Negative {
            what: what.to_string(),
            row,
            col,
            value: v as f64,
        }),
    }
}

/// True for a finite whole number (fast: no libm call). Every f32 with |v| ≥ 2^24 is a whole number.
pub(crate) fn is_integer(v: f32) -> bool {
    v.abs() >= 16_777_216.0 || (v as i32) as f32 == v
}

/// Errors on the first non-integer value (after [`check_counts`]); for steps defined on raw UMI counts.
pub fn check_integer_counts(x: &Expression, what: &str) -> Result<(), DataError> {
    check_counts(x, what)?;
    if let Some((row, col, v)) = x.first_where(|v| !is_integer(v)) {
        return Err(DataError::Invalid(format!(
            "{what} has the non-integer value {v} at row {row}, column {col}, but raw counts are expected; \
             give the raw UMI counts (e.g. a `counts` layer) instead of normalised or log-transformed values"
        )));
    }
    Ok(())
}

/// Errors if two gene lists differ, naming the first differing position and both genes.
pub fn check_same_gene_lists(
    a: &[String],
    b: &[String],
    a_name: &str,
    b_name: &str,
) -> Result<(), DataError> {
    if let Some(pos) = (0..a.len().min(b.len())).find(|&i| a[i] != b[i]) {
        return Err(DataError::GenesDiffer {
            detail: format!(
                "first difference at position {pos}: `{}` in {a_name}, `{}` in {b_name} ({} vs {} genes)",
                a[pos],
                b[pos],
                a.len(),
                b.len()
            ),
        });
    }
    if a.len() != b.len() {
        let (longer, name) = if a.len() > b.len() {
            (a, a_name)
        } else {
            (b, b_name)
        };
        let pos = a.len().min(b.len());
        return Err(DataError::GenesDiffer {
            detail: format!(
                "{a_name} has {} genes and {b_name} {}; the first {pos} agree, then {name} continues with `{}`",
                a.len(),
                b.len(),
                longer[pos]
            ),
        });
    }
    Ok(())
}

/// Errors if two data sets do not have the same genes in the same order (see [`check_same_gene_lists`]).
pub fn check_same_genes(a: &PerturbationData, b: &PerturbationData) -> Result<(), DataError> {
    check_same_gene_lists(
        &a.genes,
        &b.genes,
        "the first data set",
        "the second data set",
    )
}

/// The detected expression scale of a matrix with the facts behind it and a sentence for the user.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ScaleReport {
    /// The detected scale.
    pub scale: ExpressionScale,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Share of exact zeros.
    pub zero_fraction: f64,
    /// For log-normalised data: the median over cells of `Σ expm1(x)` (the implied normalisation target),
    /// and the relative spread (max−min)/median of those totals over cells with a non-zero total.
    pub implied_target_sum: Option<(f64, f64)>,
    /// One human-readable sentence: what was found and what it means.
    pub sentence: String,
}

/// Detects whether a matrix holds raw counts, log-normalised values or something else, and says so.
pub fn detect_expression_scale(x: &Expression) -> ScaleReport {
    let values = x.stored_values();
    let scale = ExpressionScale::detect(values);
    let (n_rows, n_cols) = x.shape();
    let n = (n_rows * n_cols).max(1) as f64;
    let implicit_zeros = n_rows * n_cols - values.len();
    let (mut min, mut max, mut zeros) = (f64::INFINITY, f64::NEG_INFINITY, implicit_zeros);
    for &v in values {
        min = min.min(v as f64);
        max = max.max(v as f64);
        zeros += (v == 0.0) as usize;
    }
    if implicit_zeros > 0 {
        min = min.min(0.0);
        max = max.max(0.0);
    }
    if values.is_empty() {
        min = 0.0;
        max = 0.0;
    }
    let zero_fraction = zeros as f64 / n;
    let implied_target_sum = if scale == ExpressionScale::LogNormalized {
        let mut totals: Vec<f64> = (0..n_rows)
            .map(|i| {
                let row = x.row_entries(i);
                row.values()
                    .iter()
                    .map(|&v| (v as f64).exp_m1())
                    .sum::<f64>()
            })
            .filter(|&t| t > 0.0)
            .collect();
        totals.sort_by(f64::total_cmp);
        if totals.is_empty() {
            None
        } else {
            let median = super::normalize::median_sorted(&totals);
            let spread = (totals[totals.len() - 1] - totals[0]) / median;
            Some((median, spread))
        }
    } else {
        None
    };
    let sentence = match scale {
        ExpressionScale::RawCounts => format!(
            "values are non-negative integers (max {max}, {:.1}% zeros): raw counts; normalise them \
             (normalize_total + log1p) before modelling",
            100.0 * zero_fraction
        ),
        ExpressionScale::LogNormalized => match implied_target_sum {
            Some((t, spread)) if spread < 1e-3 => format!(
                "values are non-negative non-integers up to {max:.3}: log-normalised; every cell's \
                 expm1 total is {t:.4}, as after normalize_total(target_sum={t:.4}) + log1p; used as given"
            ),
            Some((t, spread)) => format!(
                "values are non-negative non-integers up to {max:.3}: log-normalised (per-cell expm1 totals \
                 vary, median {t:.4}, relative spread {spread:.3}, so not a plain normalize_total + log1p, \
                 e.g. a gene subset or another transform); used as given"
            ),
            None => format!("values are non-negative non-integers up to {max:.3}: log-normalised; used as given"),
        },
        ExpressionScale::Other if min < 0.0 => format!(
            "values include negatives (min {min:.4}, max {max:.4}): scaled or centred data, neither counts nor \
             log1p values; used as given, but count-based steps (normalize_total, seurat_v3 HVG) refuse it"
        ),
        ExpressionScale::Other => format!(
            "values are non-integers up to {max:.4}, too large for log1p data: probably normalised but not \
             log-transformed; apply log1p, or give raw counts"
        ),
    };
    ScaleReport {
        scale,
        min,
        max,
        zero_fraction,
        implied_target_sum,
        sentence,
    }
}

/// [`detect_expression_scale`] for a data set.
pub fn detect_scale(data: &PerturbationData) -> ScaleReport {
    detect_expression_scale(&data.x)
}
