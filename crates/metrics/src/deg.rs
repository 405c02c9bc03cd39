//! MapPFN's DEG recovery AUPRC: per perturbation, ground-truth DEG labels from scanpy Wilcoxon of the
//! true cells vs control (padj < 0.01 ∧ |lfc| > 0.2) and prediction scores |lfc_pred|·[padj_pred < 0.01]
//! from the predicted cells vs control; average precision on the concatenation over perturbations.

use crate::ap::average_precision;
use crate::de::wilcoxon::{wilcoxon_scanpy, wilcoxon_z_pairwise};
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
    let wt = wilcoxon_scanpy(truth, obs);
    let wp = wilcoxon_scanpy(pred, obs);
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
