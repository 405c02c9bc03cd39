//! scanpy 1.11 `rank_genes_groups(method="wilcoxon", reference=...)` for one group, restated:
//! z = (R₁ − n₁(n₁+n₂+1)/2) / sqrt(n₁n₂(n₁+n₂+1)/12) with average ranks and **no** tie or continuity
//! correction (NaN → 0), p = 2·Φ̄(|z|), BH (statsmodels) across genes, and the log fold change
//! log2((expm1(mean_g) + 1e-9)/(expm1(mean_ref) + 1e-9)) stored as float32.

use super::SortedReference;
use crate::bh::{benjamini_hochberg, BhFlavor};
use crate::stats::{col_means, normal_sf};
use ndarray::ArrayView2;

/// Per-gene Wilcoxon results of one group against the reference.
#[derive(Debug, Clone)]
pub struct WilcoxonResult {
    /// z-scores (float64, before scanpy's float32 storage).
    pub z: Vec<f64>,
    /// Two-sided p-values.
    pub pvals: Vec<f64>,
    /// Benjamini–Hochberg adjusted p-values.
    pub pvals_adj: Vec<f64>,
    /// log2 fold changes, rounded to float32 (NaN where the ratio is negative).
    pub lfc: Vec<f64>,
}

/// scanpy's log fold change with its 1e-9 pseudo-count, rounded to float32 (returned as f64).
pub fn scanpy_lfc(mean_group: f64, mean_ref: f64) -> f64 {
    let r = (mean_group.exp_m1() + 1e-9) / (mean_ref.exp_m1() + 1e-9);
    (r.log2() as f32) as f64
}

/// Runs the test for every gene of `group` (cells × genes) against `reference` (cells × genes).
pub fn wilcoxon_scanpy(group: ArrayView2<f64>, reference: ArrayView2<f64>) -> WilcoxonResult {
    wilcoxon_scanpy_against(group, reference, &SortedReference::new(reference))
}

/// As [`wilcoxon_scanpy`] with the reference's columns sorted once by the caller (`sorted` must be
/// `SortedReference::new(reference)`), for many groups tested against one reference.
pub fn wilcoxon_scanpy_against(
    group: ArrayView2<f64>,
    reference: ArrayView2<f64>,
    sorted: &SortedReference,
) -> WilcoxonResult {
    let (n1, n2, d) = (
        group.nrows() as f64,
        reference.nrows() as f64,
        group.ncols(),
    );
    let std = (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt();
    let mut buf = Vec::with_capacity(group.nrows());
    let mut z = Vec::with_capacity(d);
    for j in 0..d {
        let (r1, _) = sorted.rank_sum_with_ties(group, j, &mut buf);
        let s = (r1 - n1 * (n1 + n2 + 1.0) / 2.0) / std;
        z.push(if s.is_nan() { 0.0 } else { s });
    }
    let pvals: Vec<f64> = z.iter().map(|&s| 2.0 * normal_sf(s.abs())).collect();
    let pvals_adj = benjamini_hochberg(&pvals, BhFlavor::Statsmodels);
    let (mg, mr) = (col_means(group), col_means(reference));
    let lfc = mg
        .iter()
        .zip(mr.iter())
        .map(|(&a, &b)| scanpy_lfc(a, b))
        .collect();
    WilcoxonResult {
        z,
        pvals,
        pvals_adj,
        lfc,
    }
}

/// Independent O(n₁n₂) cross-check of the z-scores: U counted pairwise (ties ½) gives R₁ = U + n₁(n₁+1)/2.
/// Used for the oracle-style `deg_impl_check_max_abs_diff` self-check.
pub fn wilcoxon_z_pairwise(group: ArrayView2<f64>, reference: ArrayView2<f64>) -> Vec<f64> {
    let (n1, n2) = (group.nrows() as f64, reference.nrows() as f64);
    let std = (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt();
    (0..group.ncols())
        .map(|j| {
            let mut u = 0.0;
            for &x in group.column(j) {
                for &y in reference.column(j) {
                    if x > y {
                        u += 1.0;
                    } else if x == y {
                        u += 0.5;
                    }
                }
            }
            let r1 = u + n1 * (n1 + 1.0) / 2.0;
            let s = (r1 - n1 * (n1 + n2 + 1.0) / 2.0) / std;
            if s.is_nan() {
                0.0
            } else {
                s
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn hand_computed_z() {
        // group {3,4}, reference {1,2}: ranks 3,4 → R1 = 7, mean 5, sd sqrt(2·2·5/12)
        let g = array![[3.0], [4.0]];
        let r = array![[1.0], [2.0]];
        let res = wilcoxon_scanpy(g.view(), r.view());
        let want = 2.0 / (20.0f64 / 12.0).sqrt();
        assert!((res.z[0] - want).abs() < 1e-15);
        assert!((wilcoxon_z_pairwise(g.view(), r.view())[0] - want).abs() < 1e-15);
        assert!((res.pvals[0] - 2.0 * normal_sf(want)).abs() < 1e-15);
    }
}
