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

/// A reference group prepared once for many rank tests against it (every perturbation is tested against
/// the same control cells): each gene's values sorted and its tie term Σ(c³ − c). A group's rank sum is
/// then found by binary search instead of sorting the pooled column again — the same blocks, ranks and
/// sums in the same order as [`rank_sum_with_ties`], so the results are identical.
pub struct SortedReference {
    sorted: Vec<Vec<f64>>,
    ties: Vec<f64>,
}

impl SortedReference {
    /// Sorts every column of `reference` (cells × genes).
    pub fn new(reference: ArrayView2<f64>) -> SortedReference {
        let sorted: Vec<Vec<f64>> = (0..reference.ncols())
            .map(|j| {
                let mut v = reference.column(j).to_vec();
                v.sort_by(f64::total_cmp);
                v
            })
            .collect();
        let ties = sorted.iter().map(|v| tie_term(v)).collect();
        SortedReference { sorted, ties }
    }

    /// Cells of the reference.
    pub fn n(&self) -> usize {
        self.sorted.first().map_or(0, Vec::len)
    }

    /// As [`rank_sum_with_ties`] of `group`'s column `j` against this reference.
    pub(crate) fn rank_sum_with_ties(
        &self,
        group: ArrayView2<f64>,
        j: usize,
        buf: &mut Vec<f64>,
    ) -> (f64, f64) {
        let reference = &self.sorted[j];
        buf.clear();
        buf.extend(group.column(j).iter().copied());
        buf.sort_by(f64::total_cmp);
        let (mut r1, mut ties) = (0.0, self.ties[j]);
        let mut below_in_group = 0usize;
        let mut k = 0;
        while k < buf.len() {
            let v = buf[k];
            let mut l = k + 1;
            while l < buf.len() && buf[l] == v {
                l += 1;
            }
            let in_group = l - k;
            let below = reference.partition_point(|&x| x.total_cmp(&v).is_lt());
            let equal = reference[below..].partition_point(|&x| x == v);
            // The pooled block of v starts after every smaller value of both groups.
            let start = below + below_in_group;
            let t = in_group + equal;
            let rank = (start + 1 + start + t) as f64 / 2.0;
            r1 += rank * in_group as f64;
            let (t, e) = (t as f64, equal as f64);
            ties += (t * t * t - t) - (e * e * e - e);
            below_in_group = l;
            k = l;
        }
        (r1, ties)
    }
}

/// Σ(t³ − t) over the tie blocks of sorted values.
fn tie_term(sorted: &[f64]) -> f64 {
    let mut ties = 0.0;
    let mut k = 0;
    while k < sorted.len() {
        let mut l = k + 1;
        while l < sorted.len() && sorted[l] == sorted[k] {
            l += 1;
        }
        let t = (l - k) as f64;
        ties += t * t * t - t;
        k = l;
    }
    ties
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn the_sorted_reference_gives_the_pooled_sort_rank_sums_exactly() {
        // Values on a coarse grid, so that ties within and across the groups are frequent (zeros most).
        let cell = |i: usize, j: usize, salt: usize| {
            ((i * 7 + j * 13 + salt) % 11).saturating_sub(5) as f64 * 0.5
        };
        let reference = Array2::from_shape_fn((300, 6), |(i, j)| cell(i, j, 0));
        let group = Array2::from_shape_fn((40, 6), |(i, j)| cell(i * 3, j, 4));
        let sorted = SortedReference::new(reference.view());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for j in 0..6 {
            let pooled = rank_sum_with_ties(group.view(), reference.view(), j, &mut a);
            let fast = sorted.rank_sum_with_ties(group.view(), j, &mut b);
            assert_eq!(pooled, fast, "gene {j}");
        }
        assert_eq!(sorted.n(), 300);
    }
}
