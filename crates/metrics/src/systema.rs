//! Systema (Viñas Torné et al., Nat Biotech 2025) metrics: centroid accuracy and Pearson deltas
//! referenced to the perturbed mean μ_pert (the average of perturbation centroids) instead of control,
//! which removes systematic perturbation-vs-control variation.

use crate::stats::pearson;
use ndarray::{Array1, Array2, ArrayView1};

/// Centroid accuracy per perturbation p: fraction of other true centroids q ≠ p farther (Euclidean)
/// from the predicted centroid than the matching one, #{q ≠ p : D_pq > D_pp}/(P − 1). 1 perfect,
/// ≈ 0.5 random; NaN if P < 2.
pub fn centroid_accuracy(mt: &Array2<f64>, mp: &Array2<f64>) -> Vec<f64> {
    let p = mt.nrows();
    if p < 2 {
        return vec![f64::NAN; p];
    }
    let dist = |i: usize, q: usize| {
        mp.row(i)
            .iter()
            .zip(mt.row(q).iter())
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt()
    };
    (0..p)
        .map(|i| {
            let own = dist(i, i);
            (0..p).filter(|&q| q != i && dist(i, q) > own).count() as f64 / (p - 1) as f64
        })
        .collect()
}

/// Perturbed reference μ_pert: the mean over perturbations of their centroids (rows of `centroids`).
pub fn perturbed_mean(centroids: &Array2<f64>) -> Array1<f64> {
    centroids
        .mean_axis(ndarray::Axis(0))
        .unwrap_or_else(|| Array1::zeros(centroids.ncols()))
}

/// Systema `corr_all_allpert`: Pearson(x_true − μ_pert, x_pred − μ_pert) over all genes.
pub fn pearson_delta_pert(
    mt: ArrayView1<f64>,
    mp: ArrayView1<f64>,
    mu_pert: ArrayView1<f64>,
) -> f64 {
    let a: Vec<f64> = mt.iter().zip(mu_pert.iter()).map(|(x, m)| x - m).collect();
    let b: Vec<f64> = mp.iter().zip(mu_pert.iter()).map(|(x, m)| x - m).collect();
    pearson(&a, &b)
}

/// Systema's top-k DE helper: the k genes with the largest |μ_true − μ_ctrl| (ties by gene index).
pub fn top_k_abs_shift(mt: ArrayView1<f64>, ctrl: ArrayView1<f64>, k: usize) -> Vec<usize> {
    let shift: Vec<f64> = mt
        .iter()
        .zip(ctrl.iter())
        .map(|(a, b)| (a - b).abs())
        .collect();
    let mut idx: Vec<usize> = (0..shift.len()).collect();
    idx.sort_by(|&a, &b| shift[b].total_cmp(&shift[a]).then(a.cmp(&b)));
    idx.truncate(k.min(shift.len()));
    idx
}

/// Systema `corr_20de_allpert`: the same Pearson restricted to `genes`.
pub fn pearson_delta_pert_on(
    mt: ArrayView1<f64>,
    mp: ArrayView1<f64>,
    mu_pert: ArrayView1<f64>,
    genes: &[usize],
) -> f64 {
    let a: Vec<f64> = genes.iter().map(|&g| mt[g] - mu_pert[g]).collect();
    let b: Vec<f64> = genes.iter().map(|&g| mp[g] - mu_pert[g]).collect();
    pearson(&a, &b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn centroid_accuracy_cases() {
        let mt = array![[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]];
        assert_eq!(centroid_accuracy(&mt, &mt), vec![1.0; 3]);
        // pred 0 sits on true 1: own distance 4; true 1 is closer (0), true 2 farther (√32) → 1/2
        let mp = array![[4.0, 0.0], [4.0, 0.0], [0.0, 4.0]];
        assert_eq!(centroid_accuracy(&mt, &mp), vec![0.5, 1.0, 1.0]);
        let mu = perturbed_mean(&mt);
        assert_eq!(mu.to_vec(), vec![4.0 / 3.0, 4.0 / 3.0]);
        // prediction = μ_pert + 2·(true − μ_pert) → Pearson 1; reversed deviations → −1
        let (t, m) = (array![1.0, 2.0, 4.0], array![0.0, 0.0, 1.0]);
        assert!(
            (pearson_delta_pert(t.view(), array![2.0, 4.0, 7.0].view(), m.view()) - 1.0).abs()
                < 1e-12
        );
        assert!(
            (pearson_delta_pert(t.view(), array![-1.0, -2.0, -2.0].view(), m.view()) + 1.0).abs()
                < 1e-12
        );
        assert!(
            (pearson_delta_pert_on(t.view(), array![2.0, 4.0, 0.0].view(), m.view(), &[0, 1])
                - 1.0)
                .abs()
                < 1e-12
        );
        assert_eq!(
            top_k_abs_shift(
                array![1.0, -3.0, 2.0].view(),
                array![0.0, 0.0, 0.0].view(),
                2
            ),
            vec![1, 2]
        );
    }
}
