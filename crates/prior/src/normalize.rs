//! The normalisation the model sees (MapPFN spec §6.8), a separate step after simulation: per-cell
//! total-count normalisation to the median total of all cells with a non-zero total (over the *whole*
//! data set at once), then natural `ln(1 + x)`. Cells with zero total stay zero.

use cellshift_data::preprocess::NormalizeTarget;
use ndarray::Array2;

use cellshift_data::PerturbationData;

use crate::error::PriorError;

/// Median of the non-zero per-row totals of `x` (numpy median: mean of the two middle values for an
/// even count); `None` when every row sums to zero.
pub fn median_nonzero_total(x: &Array2<f32>) -> Option<f64> {
    let mut totals: Vec<f64> = x
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|&v| f64::from(v)).sum::<f64>())
        .filter(|&t| t > 0.0)
        .collect();
    if totals.is_empty() {
        return None;
    }
    totals.sort_by(f64::total_cmp);
    let m = totals.len();
    Some(if m % 2 == 1 {
        totals[m / 2]
    } else {
        0.5 * (totals[m / 2 - 1] + totals[m / 2])
    })
}

/// Normalises every row of `x` to total `target` and applies `ln(1 + ·)`, in place (arithmetic in f64).
pub fn normalize_total_log1p_to(x: &mut Array2<f32>, target: f64) {
    for mut row in x.rows_mut() {
        let total: f64 = row.iter().map(|&v| f64::from(v)).sum();
        if total > 0.0 {
            let s = target / total;
            row.mapv_inplace(|v| (f64::from(v) * s).ln_1p() as f32);
        }
    }
}

/// Dataset-level normalisation: median of the non-zero cell totals, then [`normalize_total_log1p_to`].
/// Returns the median used (`None` if all cells are zero; then `x` is unchanged).
pub fn normalize_total_log1p(x: &mut Array2<f32>) -> Option<f64> {
    let m = median_nonzero_total(x)?;
    normalize_total_log1p_to(x, m);
    Some(m)
}

/// Returns a normalised copy of `data` (genes, cells and annotations unchanged).
pub fn normalize_dataset(
    data: &PerturbationData,
    target: Option<NormalizeTarget>,
) -> Result<PerturbationData, PriorError> {
    let mut x = data.x.to_dense();
    match target {
        None => return Ok(data.clone()),
        Some(NormalizeTarget::MedianOfTotals) => {
            normalize_total_log1p(&mut x);
        }
        Some(NormalizeTarget::Sum(m)) => {
            crate::error::check_positive(
                "normalization target",
                f64::from(m),
                "use a positive median total (e.g. 100)",
            )?;
            normalize_total_log1p_to(&mut x, f64::from(m));
        }
    }
    Ok(PerturbationData::new(
        data.genes.clone(),
        x,
        data.annotations(),
        &data.control_label,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_uses_the_median_of_nonzero_totals() {
        // Totals 2, 4, 10, 0 → median of {2, 4, 10} = 4.
        let mut x = ndarray::array![[1.0f32, 1.0], [4.0, 0.0], [5.0, 5.0], [0.0, 0.0]];
        let m = normalize_total_log1p(&mut x).unwrap();
        assert_eq!(m, 4.0);
        let expect = [
            [3.0f64.ln(), 3.0f64.ln()],
            [5.0f64.ln(), 0.0],
            [3.0f64.ln(), 3.0f64.ln()],
            [0.0, 0.0],
        ];
        for i in 0..4 {
            for j in 0..2 {
                assert!(
                    (f64::from(x[[i, j]]) - expect[i][j]).abs() < 1e-6,
                    "({i},{j})"
                );
            }
        }
        // Even count: mean of the two middle totals.
        let y = ndarray::array![[1.0f32], [3.0], [5.0], [9.0]];
        assert_eq!(median_nonzero_total(&y), Some(4.0));
    }
}
