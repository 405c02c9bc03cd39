//! PerturBench (Wu et al., NeurIPS 2025 D&B) default metrics: RMSE on the `average` aggregation
//! (per-gene mean expression) and cosine similarity on the `logfc` aggregation
//! (log2(mean_p + 0.1) − log2(mean_ctrl + 0.1)), each with its rank metric.
//!
//! Rank metric (reference-centric): M[i,j] = metric(pred_i, true_j); for each true j, rank_j = number of
//! predictions i ranked before pred_j (better similarity / smaller distance) divided by N. PerturBench
//! breaks ties by a random shuffle; here a tie counts ½ (the expectation of that shuffle), so the
//! result is deterministic.

use ndarray::{Array2, ArrayView1};

/// Pseudo-count of PerturBench's `logfc` aggregation.
pub const LOGFC_PSEUDOCOUNT: f64 = 0.1;

/// log2(mean + 0.1) − log2(ctrl + 0.1) per gene.
pub fn logfc(mean: ArrayView1<f64>, ctrl: ArrayView1<f64>) -> Vec<f64> {
    mean.iter()
        .zip(ctrl.iter())
        .map(|(&m, &c)| (m + LOGFC_PSEUDOCOUNT).log2() - (c + LOGFC_PSEUDOCOUNT).log2())
        .collect()
}

/// Root mean squared error of two vectors.
pub fn rmse(a: &[f64], b: &[f64]) -> f64 {
    (a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / a.len() as f64).sqrt()
}

/// Cosine similarity (NaN if a vector is zero).
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let ab: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    ab / (na * nb)
}

/// Rank metric over the P × P matrix `m[i][j] = metric(pred_i, true_j)`: per true j, the normalised
/// position of pred_j (0 best, ≈ 0.5 random), ties counted ½. `higher_is_better` for similarities.
pub fn rank_metric(m: &Array2<f64>, higher_is_better: bool) -> Vec<f64> {
    let p = m.nrows();
    (0..p)
        .map(|j| {
            let own = m[[j, j]];
            let (mut better, mut ties) = (0.0, 0.0);
            for i in 0..p {
                if i == j {
                    continue;
                }
                let v = m[[i, j]];
                let is_better = if higher_is_better { v > own } else { v < own };
                if is_better {
                    better += 1.0;
                } else if v == own {
                    ties += 1.0;
                }
            }
            (better + 0.5 * ties) / p as f64
        })
        .collect()
}

/// Per-perturbation PerturBench metrics.
#[derive(Debug, Clone)]
pub struct PerturbenchMetrics {
    /// RMSE between predicted and true mean expression.
    pub rmse_average: Vec<f64>,
    /// Rank of the matching true profile among all by RMSE.
    pub rmse_rank_average: Vec<f64>,
    /// Cosine similarity of predicted and true logfc vectors.
    pub cosine_logfc: Vec<f64>,
    /// Rank of the matching profile by cosine on logfc.
    pub cosine_rank_logfc: Vec<f64>,
}

/// Computes [`PerturbenchMetrics`] from true means `mt`, predicted means `mp` (P × d) and the control
/// mean `ctrl`.
pub fn perturbench_metrics(
    mt: &Array2<f64>,
    mp: &Array2<f64>,
    ctrl: ArrayView1<f64>,
) -> PerturbenchMetrics {
    let p = mt.nrows();
    let lt: Vec<Vec<f64>> = (0..p).map(|i| logfc(mt.row(i), ctrl)).collect();
    let lp: Vec<Vec<f64>> = (0..p).map(|i| logfc(mp.row(i), ctrl)).collect();
    let at: Vec<Vec<f64>> = (0..p).map(|i| mt.row(i).to_vec()).collect();
    let ap: Vec<Vec<f64>> = (0..p).map(|i| mp.row(i).to_vec()).collect();
    let rm = Array2::from_shape_fn((p, p), |(i, j)| rmse(&ap[i], &at[j]));
    let cm = Array2::from_shape_fn((p, p), |(i, j)| cosine(&lp[i], &lt[j]));
    PerturbenchMetrics {
        rmse_average: (0..p).map(|i| rm[[i, i]]).collect(),
        rmse_rank_average: rank_metric(&rm, false),
        cosine_logfc: (0..p).map(|i| cm[[i, i]]).collect(),
        cosine_rank_logfc: rank_metric(&cm, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn perfect_reversed_and_tied() {
        let mt = array![[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]];
        let ctrl = array![0.5, 0.5];
        let m = perturbench_metrics(&mt, &mt, ctrl.view());
        assert_eq!(m.rmse_average, vec![0.0; 3]);
        assert_eq!(m.rmse_rank_average, vec![0.0; 3]);
        assert!(m.cosine_logfc.iter().all(|&c| (c - 1.0).abs() < 1e-15));
        assert_eq!(m.cosine_rank_logfc, vec![0.0; 3]);
        // hand example: logfc of mean 0.9 vs ctrl 0.1 = log2(1.0/0.2) = log2 5
        assert!((logfc(array![0.9].view(), array![0.1].view())[0] - 5f64.log2()).abs() < 1e-15);
        // identical predictions for all: every other pred ties with the own one → rank (P−1)/2/P
        let same = array![[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]];
        let m = perturbench_metrics(&mt, &same, ctrl.view());
        assert!(m
            .rmse_rank_average
            .iter()
            .all(|&r| (r - 1.0 / 3.0).abs() < 1e-15));
    }
}
