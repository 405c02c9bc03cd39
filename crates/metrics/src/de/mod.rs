//! Differential-expression tests of one group of cells against a reference group, per gene, as the
//! reference tools run them: scanpy's Wilcoxon (MapPFN's DEG AUPRC), pdex's Mann–Whitney U (cell-eval)
//! and scanpy's Welch t-test (GEARS-style top-20 DE genes).

pub mod mannwhitney;
pub mod ttest;
pub mod wilcoxon;

use ndarray::ArrayView2;

/// Rank sum of the group's cells in the pooled (group ∪ reference) column `j`, with average ranks for
/// ties, plus the tie term Σ(t³ − t) over tie groups.
pub(crate) fn rank_sum_with_ties(
    group: ArrayView2<f64>,
    reference: ArrayView2<f64>,
    j: usize,
    buf: &mut Vec<(f64, bool)>,
) -> (f64, f64) {
    buf.clear();
    buf.extend(group.column(j).iter().map(|&v| (v, true)));
    buf.extend(reference.column(j).iter().map(|&v| (v, false)));
    buf.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = buf.len();
    let (mut r1, mut ties) = (0.0, 0.0);
    let mut k = 0;
    while k < n {
        let mut l = k + 1;
        while l < n && buf[l].0 == buf[k].0 {
            l += 1;
        }
        let t = (l - k) as f64;
        let rank = (k + 1 + l) as f64 / 2.0;
        let in_group = buf[k..l].iter().filter(|e| e.1).count() as f64;
        r1 += rank * in_group;
        ties += t * t * t - t;
        k = l;
    }
    (r1, ties)
}
