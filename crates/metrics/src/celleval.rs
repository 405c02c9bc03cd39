//! cell-eval 0.8 metrics (Virtual Cell Challenge; also used by scDFM and CellTarNet), restated from
//! their definitions: pseudobulk errors and Pearson delta, the discrimination score (PDS), DE-based
//! metrics on pdex-style Mann–Whitney DE, the energy-distance Pearson, and the GEARS-style Pearson delta
//! on the top-20 t-test DE genes.
//!
//! Conventions: pseudobulk μ = per-gene mean; control c = mean of `obs` (the same control cells serve
//! real and predicted data); effects e = μ − c. Perturbations are visited in sorted-name order where
//! the reference does so (discrimination-score ties).

use crate::ap::{average_precision, roc_auc};
use crate::de::mannwhitney::PdexResult;
use crate::de::ttest::top_de_genes_ttest;
use crate::stats::{pearson, spearman};
use ndarray::{Array2, ArrayView1, ArrayView2};
use rayon::prelude::*;

/// FDR threshold of cell-eval's DE metrics.
pub const CE_FDR: f64 = 0.05;

/// Pseudobulk error metrics of one perturbation.
#[derive(Debug, Clone, Copy)]
pub struct PseudobulkMetrics {
    /// mean_g (μ̂ − μ)².
    pub mse: f64,
    /// mean_g |μ̂ − μ|.
    pub mae: f64,
    /// mean_g ((μ̂ − c) − (μ − c))².
    pub mse_delta: f64,
    /// mean_g |(μ̂ − c) − (μ − c)|.
    pub mae_delta: f64,
    /// Pearson(μ̂ − c, μ − c).
    pub pearson_delta: f64,
}

/// Computes [`PseudobulkMetrics`] from the true mean `mt`, predicted mean `mp` and control mean `c`.
pub fn pseudobulk_metrics(
    mt: ArrayView1<f64>,
    mp: ArrayView1<f64>,
    c: ArrayView1<f64>,
) -> PseudobulkMetrics {
    let d = mt.len() as f64;
    let re: Vec<f64> = mt.iter().zip(c.iter()).map(|(a, b)| a - b).collect();
    let pe: Vec<f64> = mp.iter().zip(c.iter()).map(|(a, b)| a - b).collect();
    let mse = mp
        .iter()
        .zip(mt.iter())
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        / d;
    let mae = mp
        .iter()
        .zip(mt.iter())
        .map(|(a, b)| (a - b).abs())
        .sum::<f64>()
        / d;
    let mse_delta = pe
        .iter()
        .zip(&re)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        / d;
    let mae_delta = pe.iter().zip(&re).map(|(a, b)| (a - b).abs()).sum::<f64>() / d;
    PseudobulkMetrics {
        mse,
        mae,
        mse_delta,
        mae_delta,
        pearson_delta: pearson(&pe, &re),
    }
}

/// GEARS-style Pearson delta on the top-`k` DE genes of (true vs control) by scanpy t-test |score|.
/// Returns the score and the gene indices used.
pub fn pearson_delta_top_de(
    truth: ArrayView2<f64>,
    obs: ArrayView2<f64>,
    mt: ArrayView1<f64>,
    mp: ArrayView1<f64>,
    c: ArrayView1<f64>,
    k: usize,
) -> (f64, Vec<usize>) {
    let top = top_de_genes_ttest(truth, obs, k);
    let pe: Vec<f64> = top.iter().map(|&g| mp[g] - c[g]).collect();
    let re: Vec<f64> = top.iter().map(|&g| mt[g] - c[g]).collect();
    (pearson(&pe, &re), top)
}

/// Distance used by the discrimination score (sklearn `pairwise_distances` metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscriminationMetric {
    /// Manhattan distance.
    L1,
    /// Euclidean distance (sklearn's ‖x‖² − 2xy + ‖y‖² expansion, clipped at 0).
    L2,
    /// Cosine distance 1 − cos, zero vectors have similarity 0, clipped to [0, 2].
    Cosine,
}

impl DiscriminationMetric {
    /// Name suffix used in metric keys (`l1`, `l2`, `cosine`).
    pub fn name(self) -> &'static str {
        match self {
            DiscriminationMetric::L1 => "l1",
            DiscriminationMetric::L2 => "l2",
            DiscriminationMetric::Cosine => "cosine",
        }
    }

    fn distance(self, x: &[f64], y: &[f64]) -> f64 {
        match self {
            DiscriminationMetric::L1 => x.iter().zip(y).map(|(a, b)| (a - b).abs()).sum(),
            DiscriminationMetric::L2 => {
                let xx: f64 = x.iter().map(|a| a * a).sum();
                let yy: f64 = y.iter().map(|a| a * a).sum();
                let xy: f64 = x.iter().zip(y).map(|(a, b)| a * b).sum();
                let d2 = -2.0 * xy + xx + yy;
                d2.max(0.0).sqrt()
            }
            DiscriminationMetric::Cosine => {
                let nx = x.iter().map(|a| a * a).sum::<f64>().sqrt();
                let ny = y.iter().map(|a| a * a).sum::<f64>().sqrt();
                let nx = if nx == 0.0 { 1.0 } else { nx };
                let ny = if ny == 0.0 { 1.0 } else { ny };
                let sim: f64 = x.iter().zip(y).map(|(a, b)| (a / nx) * (b / ny)).sum();
                (1.0 - sim).clamp(0.0, 2.0)
            }
        }
    }
}

/// cell-eval discrimination scores (best 1) for every perturbation: with real effects e_q and predicted
/// effect ê_p (genes named like perturbation p excluded), rank = position of p among all q sorted by
/// dist(e_q, ê_p), perturbations visited in sorted-name order with ties kept in that order (numpy's
/// argsort on ≤ 16 items); score = 1 − rank/P. Also returns the tie-free variant 1 − #{q: d_q < d_p}/P.
/// `real_eff`, `pred_eff` are P × d in case order.
pub fn discrimination_scores(
    real_eff: &Array2<f64>,
    pred_eff: &Array2<f64>,
    names: &[String],
    gene_names: &[String],
    metric: DiscriminationMetric,
) -> (Vec<f64>, Vec<f64>) {
    let p = real_eff.nrows();
    let mut sorted: Vec<usize> = (0..p).collect();
    sorted.sort_by(|&a, &b| names[a].cmp(&names[b]));
    // Perturbations in parallel: each one's ranks depend only on the inputs.
    let scores: Vec<(f64, f64)> = (0..p)
        .into_par_iter()
        .map(|i| {
            let mask: Vec<usize> = (0..gene_names.len())
                .filter(|&g| gene_names[g] != names[i])
                .collect();
            let pe: Vec<f64> = mask.iter().map(|&g| pred_eff[[i, g]]).collect();
            let dists: Vec<f64> = sorted
                .iter()
                .map(|&q| {
                    let re: Vec<f64> = mask.iter().map(|&g| real_eff[[q, g]]).collect();
                    metric.distance(&re, &pe)
                })
                .collect();
            let pos = sorted.iter().position(|&q| q == i).unwrap_or(0);
            let dp = dists[pos];
            let strict = dists.iter().filter(|&&d| d < dp).count();
            let tied_before = dists[..pos].iter().filter(|&&d| d == dp).count();
            (
                1.0 - (strict + tied_before) as f64 / p as f64,
                1.0 - strict as f64 / p as f64,
            )
        })
        .collect();
    let (with_ties, tie_free): (Vec<f64>, Vec<f64>) = scores.into_iter().unzip();
    (with_ties, tie_free)
}

/// DE-based cell-eval metrics of one perturbation.
#[derive(Debug, Clone)]
pub struct DeMetrics {
    /// Number of real-significant genes (FDR < 0.05).
    pub nsig_real: usize,
    /// Number of predicted-significant genes.
    pub nsig_pred: usize,
    /// Spearman of lfc over real-significant genes (NaN if none).
    pub spearman_lfc_sig: f64,
    /// Fraction of real-significant genes with matching lfc sign (NaN if none).
    pub direction_match: f64,
    /// |R ∩ P| / |R| (NaN if R empty).
    pub sig_genes_recall: f64,
    /// Average precision of −log10 clip(fdr_pred) for real-significant labels (NaN if one class).
    pub pr_auc: f64,
    /// ROC AUC of the same (NaN if one class).
    pub roc_auc: f64,
    /// overlap_at_N, then at 50, 100, 200, 500.
    pub overlap_at: [f64; 5],
    /// precision_at_N, then at 50, 100, 200, 500.
    pub precision_at: [f64; 5],
}

/// The k values of `overlap_at_*` / `precision_at_*` after N.
pub const OVERLAP_KS: [usize; 4] = [50, 100, 200, 500];

fn top_significant(lfc: &[f64], fdr: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..fdr.len()).filter(|&g| fdr[g] < CE_FDR).collect();
    idx.sort_by(|&a, &b| lfc[b].abs().total_cmp(&lfc[a].abs())); // stable: ties keep gene order
    idx
}

fn overlap(rt: &[usize], pt: &[usize], k: usize) -> f64 {
    if k == 0 {
        return 0.0;
    }
    let r = &rt[..k.min(rt.len())];
    let p = &pt[..k.min(pt.len())];
    let inter = r.iter().filter(|g| p.contains(g)).count();
    inter as f64 / k as f64
}

/// Computes [`DeMetrics`] from the real and predicted pdex results of one perturbation.
pub fn de_metrics(real: &PdexResult, pred: &PdexResult) -> DeMetrics {
    let d = real.fdr.len();
    let sr: Vec<bool> = real.fdr.iter().map(|&q| q < CE_FDR).collect();
    let sp: Vec<bool> = pred.fdr.iter().map(|&q| q < CE_FDR).collect();
    let nsig_real = sr.iter().filter(|&&b| b).count();
    let nsig_pred = sp.iter().filter(|&&b| b).count();
    let (spearman_lfc_sig, direction_match, sig_genes_recall) = if nsig_real > 0 {
        let idx: Vec<usize> = (0..d).filter(|&g| sr[g]).collect();
        let lr: Vec<f64> = idx.iter().map(|&g| real.lfc[g]).collect();
        let lp: Vec<f64> = idx.iter().map(|&g| pred.lfc[g]).collect();
        let sign = |v: f64| {
            if v > 0.0 {
                1
            } else if v < 0.0 {
                -1
            } else {
                0
            }
        };
        let dm = idx
            .iter()
            .filter(|&&g| sign(real.lfc[g]) == sign(pred.lfc[g]))
            .count() as f64
            / nsig_real as f64;
        let rec = idx.iter().filter(|&&g| sp[g]).count() as f64 / nsig_real as f64;
        (spearman(&lr, &lp), dm, rec)
    } else {
        (f64::NAN, f64::NAN, f64::NAN)
    };
    let (pr_auc, roc) = if nsig_real > 0 && nsig_real < d {
        let score: Vec<f64> = pred
            .fdr
            .iter()
            .map(|&q| -(q.clamp(1e-10, 1.0)).log10())
            .collect();
        (average_precision(&sr, &score), roc_auc(&sr, &score))
    } else {
        (f64::NAN, f64::NAN)
    };
    let rt = top_significant(&real.lfc, &real.fdr);
    let pt = top_significant(&pred.lfc, &pred.fdr);
    let mut overlap_at = [0.0; 5];
    let mut precision_at = [0.0; 5];
    overlap_at[0] = overlap(&rt, &pt, rt.len());
    precision_at[0] = overlap(&rt, &pt, pt.len());
    for (k, &kk) in OVERLAP_KS.iter().enumerate() {
        overlap_at[k + 1] = overlap(&rt, &pt, kk.min(rt.len()));
        precision_at[k + 1] = overlap(&rt, &pt, kk.min(pt.len()));
    }
    DeMetrics {
        nsig_real,
        nsig_pred,
        spearman_lfc_sig,
        direction_match,
        sig_genes_recall,
        pr_auc,
        roc_auc: roc,
        overlap_at,
        precision_at,
    }
}

/// cell-eval's global `de_spearman_sig`: Spearman across perturbations with ≥ 1 real-significant gene
/// of (#sig real, #sig pred); 1.0 if there is no such perturbation.
pub fn de_spearman_sig(items: &[DeMetrics]) -> f64 {
    let (r, p): (Vec<f64>, Vec<f64>) = items
        .iter()
        .filter(|m| m.nsig_real > 0)
        .map(|m| (m.nsig_real as f64, m.nsig_pred as f64))
        .unzip();
    if r.is_empty() {
        1.0
    } else {
        spearman(&r, &p)
    }
}

/// Mean pairwise Euclidean distance between the rows of x and y (zero diagonal included when x = y).
pub fn mean_pairwise_euclidean(x: ArrayView2<f64>, y: ArrayView2<f64>) -> f64 {
    mean_euclidean_of_sq_dists(&crate::pairwise::sq_dists(x, y))
}

/// Mean Euclidean distance over all pairs, from their squared distances.
pub(crate) fn mean_euclidean_of_sq_dists(d2: &[f64]) -> f64 {
    d2.iter().map(|v| v.sqrt()).sum::<f64>() / d2.len() as f64
}

/// cell-eval's energy distance of a perturbation to control: 2·mean d(x,y) − mean d(x,x′) − mean d(y,y′)
/// (Euclidean, means over all pairs including the zero diagonal). `sigma_ctrl` = mean d(y,y′) if known.
pub fn celleval_edistance(
    x: ArrayView2<f64>,
    ctrl: ArrayView2<f64>,
    sigma_ctrl: Option<f64>,
) -> f64 {
    let sx = mean_pairwise_euclidean(x, x);
    let sy = sigma_ctrl.unwrap_or_else(|| mean_pairwise_euclidean(ctrl, ctrl));
    2.0 * mean_pairwise_euclidean(x, ctrl) - sx - sy
}

/// cell-eval `pearson_edistance`: Pearson across perturbations of the energy distances to control of the
/// real and of the predicted cells.
pub fn pearson_edistance(real: &[f64], pred: &[f64]) -> f64 {
    pearson(real, pred)
}

/// cell-eval's input check (`guess_is_lognorm`): its native run requires non-negative values that are
/// either integers or all below 15.
pub fn celleval_input_ok(blocks: &[ArrayView2<f64>]) -> bool {
    let mut min = f64::INFINITY;
    let mut max = f64::NEG_INFINITY;
    let mut fractional = false;
    for b in blocks {
        for &v in b.iter() {
            min = min.min(v);
            max = max.max(v);
            if v - v.floor() > 1e-3 {
                fractional = true;
            }
        }
    }
    min >= 0.0 && (!fractional || max < 15.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn discrimination_perfect_and_ties() {
        let real = array![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]];
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let genes: Vec<String> = ["g0", "g1"].iter().map(|s| s.to_string()).collect();
        for m in [
            DiscriminationMetric::L1,
            DiscriminationMetric::L2,
            DiscriminationMetric::Cosine,
        ] {
            let (s, t) = discrimination_scores(&real, &real, &names, &genes, m);
            assert_eq!(s, vec![1.0; 3], "{m:?}");
            assert_eq!(t, vec![1.0; 3]);
        }
        // all-zero predictions: cosine distance 1 everywhere → ties resolved by sorted order
        let zero = Array2::<f64>::zeros((3, 2));
        let (s, t) =
            discrimination_scores(&real, &zero, &names, &genes, DiscriminationMetric::Cosine);
        assert_eq!(s, vec![1.0, 1.0 - 1.0 / 3.0, 1.0 - 2.0 / 3.0]);
        assert_eq!(t, vec![1.0; 3]);
    }

    #[test]
    fn edistance_of_identical_sets_is_zero() {
        let x = array![[0.0, 1.0], [2.0, 3.0]];
        assert!(celleval_edistance(x.view(), x.view(), None).abs() < 1e-15);
        // two single points at distance 5: 2·5 − 0 − 0
        let a = array![[0.0, 0.0]];
        let b = array![[3.0, 4.0]];
        assert!((celleval_edistance(a.view(), b.view(), None) - 10.0).abs() < 1e-15);
    }
}
