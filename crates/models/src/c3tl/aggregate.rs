//! The aggregations of C3TL as scatter operations over all entries at once (peers.md §1.4, "efficient
//! training"): per-group sums and counts with `index_add`, group means, and the leave-one-out means
//! `(sum − own)/(n − 1)` that keep an entry's own encoding out of the latents that predict it.

use tch::{Kind, Tensor};

/// Per-group sums `[n_groups, q]` of `values` `[n, q]` and the group sizes `[n_groups]` (float), where
/// entry `i` belongs to group `groups[i]` (int64 `[n]`).
pub fn group_sums(values: &Tensor, groups: &Tensor, n_groups: i64) -> (Tensor, Tensor) {
    let q = values.size()[1];
    let device = values.device();
    let sums = Tensor::zeros([n_groups, q], (values.kind(), device)).index_add(0, groups, values);
    let ones = Tensor::ones([groups.size()[0]], (Kind::Float, device));
    let counts = Tensor::zeros([n_groups], (Kind::Float, device)).index_add(0, groups, &ones);
    (sums, counts)
}

/// Per-group means `[n_groups, q]`; empty groups are zero.
pub fn group_means(values: &Tensor, groups: &Tensor, n_groups: i64) -> Tensor {
    let (sums, counts) = group_sums(values, groups, n_groups);
    sums / counts.clamp_min(1.0).unsqueeze(1)
}

/// Leave-one-out group means per entry, `[n, q]`: the mean of the other members of the entry's group,
/// and a boolean `[n]` that is false where the entry is alone in its group (its mean is then zero and
/// carries no information).
pub fn leave_one_out_means(values: &Tensor, groups: &Tensor, n_groups: i64) -> (Tensor, Tensor) {
    let (sums, counts) = group_sums(values, groups, n_groups);
    let others = counts.index_select(0, groups) - 1.0;
    let valid = others.gt(0.5);
    let means = (sums.index_select(0, groups) - values) / others.clamp_min(1.0).unsqueeze(1);
    (means, valid)
}

/// Leave-one-out means over a kept subset: entry `i`'s mean is over the *kept* other members of its group
/// (`keep` `[n]`, 1.0 kept / 0.0 dropped), `(Σ_kept − keep_i·v_i)/(n_kept − keep_i)`, `[n, q]`. With every
/// entry kept this is [`leave_one_out_means`]. The caller keeps at least one other member of every group
/// whose entries it scores (the denominator is floored at 1 otherwise, giving a mean of zero).
pub fn subset_leave_one_out_means(
    values: &Tensor,
    groups: &Tensor,
    n_groups: i64,
    keep: &Tensor,
) -> Tensor {
    let kept = values * keep.unsqueeze(1);
    let (sums, _) = group_sums(&kept, groups, n_groups);
    let counts =
        Tensor::zeros([n_groups], (Kind::Float, values.device())).index_add(0, groups, keep);
    let others = (counts.index_select(0, groups) - keep).clamp_min(1.0);
    (sums.index_select(0, groups) - kept) / others.unsqueeze(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loop_means(
        values: &[Vec<f32>],
        groups: &[i64],
        leave_out: Option<usize>,
        g: i64,
    ) -> Vec<f32> {
        let q = values[0].len();
        let mut acc = vec![0f32; q];
        let mut n = 0;
        for (i, (v, &gi)) in values.iter().zip(groups).enumerate() {
            if gi == g && Some(i) != leave_out {
                n += 1;
                for (a, x) in acc.iter_mut().zip(v) {
                    *a += x;
                }
            }
        }
        acc.iter()
            .map(|a| if n == 0 { 0.0 } else { a / n as f32 })
            .collect()
    }

    fn tensor(values: &[Vec<f32>]) -> Tensor {
        let flat: Vec<f32> = values.iter().flatten().copied().collect();
        Tensor::from_slice(&flat).reshape([values.len() as i64, values[0].len() as i64])
    }

    fn rows(t: &Tensor) -> Vec<Vec<f32>> {
        let n = t.size()[0];
        (0..n)
            .map(|i| Vec::<f32>::try_from(t.get(i)).unwrap())
            .collect()
    }

    #[test]
    fn scatter_means_equal_a_loop() {
        let values: Vec<Vec<f32>> = (0..7)
            .map(|i| (0..3).map(|j| (i * 3 + j) as f32 * 0.37 - 2.0).collect())
            .collect();
        let groups = [0i64, 2, 2, 0, 1, 2, 4];
        let g = Tensor::from_slice(&groups);
        let means = rows(&group_means(&tensor(&values), &g, 5));
        for k in 0..5 {
            let expect = loop_means(&values, &groups, None, k);
            for (a, b) in means[k as usize].iter().zip(&expect) {
                assert!((a - b).abs() < 1e-5, "group {k}: {a} vs {b}");
            }
        }
        let (loo, valid) = leave_one_out_means(&tensor(&values), &g, 5);
        let (loo, valid) = (rows(&loo), Vec::<bool>::try_from(valid).unwrap());
        for (i, &gi) in groups.iter().enumerate() {
            let expect = loop_means(&values, &groups, Some(i), gi);
            for (a, b) in loo[i].iter().zip(&expect) {
                assert!((a - b).abs() < 1e-5, "entry {i}: {a} vs {b}");
            }
        }
        // Groups 1 and 4 have one member: no leave-one-out information.
        assert_eq!(valid, vec![true, true, true, true, false, true, false]);
    }

    #[test]
    fn subset_means_average_the_kept_others_only() {
        let values: Vec<Vec<f32>> = (0..6)
            .map(|i| vec![i as f32, (i * i) as f32 - 3.0])
            .collect();
        let groups = [0i64, 0, 0, 0, 1, 1];
        let keep = [1.0f32, 0.0, 1.0, 1.0, 1.0, 1.0];
        let g = Tensor::from_slice(&groups);
        let means = rows(&subset_leave_one_out_means(
            &tensor(&values),
            &g,
            2,
            &Tensor::from_slice(&keep),
        ));
        // Entry 1 (dropped) averages the kept 0, 2, 3; entry 0 (kept) averages 2 and 3; group 1 is
        // plain leave-one-out.
        let mean = |ids: &[usize]| -> Vec<f32> {
            (0..2)
                .map(|j| ids.iter().map(|&i| values[i][j]).sum::<f32>() / ids.len() as f32)
                .collect()
        };
        for (i, expect) in [
            mean(&[2, 3]),
            mean(&[0, 2, 3]),
            mean(&[0, 3]),
            mean(&[0, 2]),
            mean(&[5]),
            mean(&[4]),
        ]
        .iter()
        .enumerate()
        {
            for (a, b) in means[i].iter().zip(expect) {
                assert!((a - b).abs() < 1e-5, "entry {i}: {a} vs {b}");
            }
        }
        // Keeping everyone is the plain leave-one-out mean.
        let all = rows(&subset_leave_one_out_means(
            &tensor(&values),
            &g,
            2,
            &Tensor::ones([6], (Kind::Float, tch::Device::Cpu)),
        ));
        assert_eq!(all, rows(&leave_one_out_means(&tensor(&values), &g, 2).0));
    }

    #[test]
    fn leave_one_out_mean_does_not_depend_on_the_entry_itself() {
        let mut values: Vec<Vec<f32>> = vec![vec![1.0, 2.0], vec![3.0, -1.0], vec![0.5, 0.5]];
        let g = Tensor::from_slice(&[0i64, 0, 0]);
        let before = rows(&leave_one_out_means(&tensor(&values), &g, 1).0);
        values[1] = vec![100.0, -100.0];
        let after = rows(&leave_one_out_means(&tensor(&values), &g, 1).0);
        assert_eq!(before[1], after[1]);
        assert_ne!(before[0], after[0]);
    }
}
