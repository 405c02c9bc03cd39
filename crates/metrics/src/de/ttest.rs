//! scanpy `rank_genes_groups(method="t-test", rankby_abs=True)` for one group against a reference, used
//! to pick GEARS-style top DE genes: Welch t = (m₁ − m₂)/sqrt(s₁²/n₁ + s₂²/n₂) with scanpy's variances
//! (mean(x²) − mean², times n/(n−1)), NaN → 0; genes ordered by |t| descending.

use ndarray::ArrayView2;

/// scanpy's mean and unbiased variance: var = (E[x²] − E[x]²)·n/(n−1).
fn scanpy_mean_var(x: ArrayView2<f64>) -> (Vec<f64>, Vec<f64>) {
    let (n, d) = x.dim();
    let mut s = vec![0.0; d];
    let mut s2 = vec![0.0; d];
    for row in x.rows() {
        for j in 0..d {
            s[j] += row[j];
            s2[j] += row[j] * row[j];
        }
    }
    let nf = n as f64;
    let mean: Vec<f64> = s.iter().map(|v| v / nf).collect();
    let var = (0..d)
        .map(|j| {
            let v = s2[j] / nf - mean[j] * mean[j];
            if n != 1 {
                v * (nf / (nf - 1.0))
            } else {
                v
            }
        })
        .collect();
    (mean, var)
}

/// Welch t-scores of `group` vs `reference` per gene (NaN → 0).
pub fn welch_scores(group: ArrayView2<f64>, reference: ArrayView2<f64>) -> Vec<f64> {
    let (m1, v1) = scanpy_mean_var(group);
    let (m2, v2) = scanpy_mean_var(reference);
    let (n1, n2) = (group.nrows() as f64, reference.nrows() as f64);
    (0..m1.len())
        .map(|j| {
            // scipy ttest_ind_from_stats receives std = sqrt(var) and squares it again
            let (sd1, sd2) = (v1[j].sqrt(), v2[j].sqrt());
            let denom = (sd1 * sd1 / n1 + sd2 * sd2 / n2).sqrt();
            let t = (m1[j] - m2[j]) / denom;
            if t.is_nan() {
                0.0
            } else {
                t
            }
        })
        .collect()
}

/// Indices of the `k` genes with the largest |t| (descending; ties by gene index), min(k, d) of them.
pub fn top_de_genes_ttest(
    group: ArrayView2<f64>,
    reference: ArrayView2<f64>,
    k: usize,
) -> Vec<usize> {
    let t = welch_scores(group, reference);
    let mut idx: Vec<usize> = (0..t.len()).collect();
    idx.sort_by(|&a, &b| t[b].abs().total_cmp(&t[a].abs()).then(a.cmp(&b)));
    idx.truncate(k.min(t.len()));
    idx
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn welch_hand_computed() {
        // group col0 {1,3}: mean 2, var 2; ref col0 {0,0,0}: mean 0, var 0 → t = 2/sqrt(2/2) = 2
        let g = array![[1.0, 5.0], [3.0, 5.0]];
        let r = array![[0.0, 5.0], [0.0, 5.0], [0.0, 5.0]];
        let t = welch_scores(g.view(), r.view());
        assert!((t[0] - 2.0).abs() < 1e-15);
        assert_eq!(t[1], 0.0); // 0/0 → NaN → 0
        assert_eq!(top_de_genes_ttest(g.view(), r.view(), 20), vec![0, 1]);
    }
}
