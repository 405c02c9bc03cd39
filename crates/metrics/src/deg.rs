//! MapPFN's DEG recovery AUPRC: per perturbation, ground-truth DEG labels from scanpy Wilcoxon of the
//! true cells vs control (padj < 0.01 ∧ |lfc| > 0.2) and prediction scores |lfc_pred|·[padj_pred < 0.01]
//! from the predicted cells vs control; average precision on the concatenation over perturbations.

use crate::ap::average_precision;
use crate::de::wilcoxon::{wilcoxon_scanpy, wilcoxon_scanpy_against, wilcoxon_z_pairwise};
use crate::de::SortedReference;
use ndarray::ArrayView2;

/// Adjusted p-value threshold (−log10 p > 2).
pub const PVAL_THRESHOLD: f64 = 0.01;
/// |log2 fold change| threshold.
pub const LFC_THRESHOLD: f64 = 0.2;

/// DEG labels and prediction scores of one perturbation (gene order).
#[derive(Debug, Clone)]
pub struct DegLabelsScores {
    /// Ground-truth DEG flags.
    pub labels: Vec<bool>,
    /// Prediction scores |lfc_pred|·[padj_pred < 0.01] (NaN → 0).
    pub scores: Vec<f64>,
}

/// Computes labels from (true vs control) and scores from (pred vs control).
pub fn deg_labels_scores(
    obs: ArrayView2<f64>,
    truth: ArrayView2<f64>,
    pred: ArrayView2<f64>,
) -> DegLabelsScores {
    deg_labels_scores_against(obs, &SortedReference::new(obs), truth, pred)
}

/// As [`deg_labels_scores`] with the control's columns sorted once by the caller (`sorted` must be
/// `SortedReference::new(obs)`).
pub fn deg_labels_scores_against(
    obs: ArrayView2<f64>,
    sorted: &SortedReference,
    truth: ArrayView2<f64>,
    pred: ArrayView2<f64>,
) -> DegLabelsScores {
    let wt = wilcoxon_scanpy_against(truth, obs, sorted);
    let wp = wilcoxon_scanpy_against(pred, obs, sorted);
    let labels = wt
        .pvals_adj
        .iter()
        .zip(&wt.lfc)
        .map(|(&p, &l)| p < PVAL_THRESHOLD && l.abs() > LFC_THRESHOLD)
        .collect();
    let scores = wp
        .pvals_adj
        .iter()
        .zip(&wp.lfc)
        .map(|(&p, &l)| {
            let (p, l) = if p.is_nan() || l.is_nan() {
                (1.0, 0.0)
            } else {
                (p, l)
            };
            if p < PVAL_THRESHOLD {
                l.abs()
            } else {
                0.0
            }
        })
        .collect();
    DegLabelsScores { labels, scores }
}

/// MapPFN `deg_auprc` for one perturbation (NaN if it has no true DEG).
pub fn deg_auprc(obs: ArrayView2<f64>, truth: ArrayView2<f64>, pred: ArrayView2<f64>) -> f64 {
    let ls = deg_labels_scores(obs, truth, pred);
    average_precision(&ls.labels, &ls.scores)
}

/// Pooled (micro-averaged) AUPRC over several perturbations' labels and scores (MapPFN's reported value).
pub fn pooled_auprc(items: &[DegLabelsScores]) -> f64 {
    let labels: Vec<bool> = items
        .iter()
        .flat_map(|d| d.labels.iter().copied())
        .collect();
    let scores: Vec<f64> = items
        .iter()
        .flat_map(|d| d.scores.iter().copied())
        .collect();
    average_precision(&labels, &scores)
}

/// Self-check of the Wilcoxon implementation: max |z_rank-sum − z_pairwise| over genes for true and
/// predicted cells of one perturbation (should be ~1e-15).
pub fn wilcoxon_self_check(
    obs: ArrayView2<f64>,
    truth: ArrayView2<f64>,
    pred: ArrayView2<f64>,
) -> f64 {
    let mut worst: f64 = 0.0;
    for m in [truth, pred] {
        let a = wilcoxon_scanpy(m, obs).z;
        let b = wilcoxon_z_pairwise(m, obs);
        for (x, y) in a.iter().zip(&b) {
            worst = worst.max((x - y).abs());
        }
    }
    worst
}

/// Prediction scores |lfc|·[padj < 0.01] when each gene has its own pool of predicted values (test-time
/// augmentation pools the cells predicted for a gene across the gene subsets that contain it, so pools
/// differ in size). Gene `g` is tested with scanpy's Wilcoxon (no tie correction) of `pooled[g]` against
/// column `g` of `obs`; p-values are Benjamini–Hochberg adjusted across all genes. A gene with an empty
/// pool was not predicted: its p-value is 1 and its score 0.
pub fn deg_scores_pooled(obs: ArrayView2<f64>, pooled: &[Vec<f64>]) -> Vec<f64> {
    use crate::bh::{benjamini_hochberg, BhFlavor};
    use crate::de::rank_sum_with_ties;
    use crate::de::wilcoxon::scanpy_lfc;
    use crate::stats::normal_sf;
    let d = pooled.len().min(obs.ncols());
    let n2 = obs.nrows() as f64;
    let mut buf = Vec::new();
    let mut pvals = Vec::with_capacity(d);
    let mut lfcs = Vec::with_capacity(d);
    for (g, values) in pooled.iter().enumerate().take(d) {
        if values.is_empty() || obs.nrows() == 0 {
            pvals.push(1.0);
            lfcs.push(0.0);
            continue;
        }
        let n1 = values.len() as f64;
        let group = ndarray::ArrayView2::from_shape((values.len(), 1), values)
            .expect("a vector is a one-column matrix");
        let reference = obs.slice(ndarray::s![.., g..g + 1]);
        let (r1, _) = rank_sum_with_ties(group, reference, 0, &mut buf);
        let z = (r1 - n1 * (n1 + n2 + 1.0) / 2.0) / (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt();
        let z = if z.is_nan() { 0.0 } else { z };
        pvals.push(2.0 * normal_sf(z.abs()));
        let mean_group = values.iter().sum::<f64>() / n1;
        let mean_ref = reference.iter().sum::<f64>() / n2;
        lfcs.push(scanpy_lfc(mean_group, mean_ref));
    }
    let adjusted = benjamini_hochberg(&pvals, BhFlavor::Statsmodels);
    adjusted
        .iter()
        .zip(&lfcs)
        .map(|(&p, &l)| {
            if p.is_nan() || l.is_nan() || p >= PVAL_THRESHOLD {
                0.0
            } else {
                l.abs()
            }
        })
        .collect()
}

#[cfg(test)]
mod pooled_tests {
    use super::*;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};

    fn matrix(rows: usize, cols: usize, shift: &[f64], seed: u64) -> Array2<f64> {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
        Array2::from_shape_fn((rows, cols), |(_, j)| rng.gen::<f64>() + shift[j])
    }

    #[test]
    fn pooled_scores_equal_the_matrix_scores_when_every_pool_is_a_column() {
        let shift = [1.0, 1.8, 1.0, 0.4, 1.05];
        let obs = matrix(120, 5, &[1.0; 5], 1);
        let pred = matrix(90, 5, &shift, 2);
        let pooled: Vec<Vec<f64>> = (0..5).map(|g| pred.column(g).to_vec()).collect();
        let expected = deg_labels_scores(obs.view(), obs.view(), pred.view()).scores;
        let got = deg_scores_pooled(obs.view(), &pooled);
        for (a, b) in got.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-6, "{got:?} vs {expected:?}");
        }
        assert!(got[1] > 0.0 && got[3] > 0.0 && got[0] == 0.0);
    }

    #[test]
    fn an_unpredicted_gene_scores_zero_and_pool_sizes_may_differ() {
        let obs = matrix(100, 3, &[0.0; 3], 3);
        let big = matrix(400, 1, &[1.0], 4).column(0).to_vec();
        let small = matrix(50, 1, &[1.0], 5).column(0).to_vec();
        let got = deg_scores_pooled(obs.view(), &[big, Vec::new(), small]);
        assert!(got[0] > 0.0 && got[2] > 0.0, "{got:?}");
        assert_eq!(got[1], 0.0);
    }
}
