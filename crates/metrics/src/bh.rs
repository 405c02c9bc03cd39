//! Benjamini–Hochberg false-discovery-rate adjustment, in the two floating-point spellings the
//! reference stacks use (statsmodels `fdr_bh`: p / (k/n); scipy `false_discovery_control`: p · (n/k)).
//! Both: sort ascending, scale, running minimum from the largest p downwards, clip to [0, 1].

/// Which arithmetic the adjustment mimics (they differ only in the last bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BhFlavor {
    /// statsmodels `multipletests(method="fdr_bh")` (used by scanpy): p_(k) / (k/n).
    Statsmodels,
    /// scipy `stats.false_discovery_control` (used by the cell-eval formulas): p_(k) · (n/k).
    Scipy,
}

/// Benjamini–Hochberg adjusted p-values, returned in the input order. NaN inputs propagate.
pub fn benjamini_hochberg(p: &[f64], flavor: BhFlavor) -> Vec<f64> {
    let n = p.len();
    if n == 0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
    let nf = n as f64;
    let mut adj: Vec<f64> = order
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let kf = (k + 1) as f64;
            match flavor {
                BhFlavor::Statsmodels => p[i] / (kf / nf),
                BhFlavor::Scipy => p[i] * (nf / kf),
            }
        })
        .collect();
    for k in (0..n.saturating_sub(1)).rev() {
        if adj[k + 1] < adj[k] {
            adj[k] = adj[k + 1];
        }
    }
    let mut out = vec![0.0; n];
    for (k, &i) in order.iter().enumerate() {
        out[i] = adj[k].clamp(0.0, 1.0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_example() {
        // p = (0.01, 0.04, 0.03, 0.005) → sorted 0.005,0.01,0.03,0.04 → ×4/k = 0.02,0.02,0.04,0.04
        let p = [0.01, 0.04, 0.03, 0.005];
        for f in [BhFlavor::Statsmodels, BhFlavor::Scipy] {
            let a = benjamini_hochberg(&p, f);
            let want = [0.02, 0.04, 0.04, 0.02];
            for (x, y) in a.iter().zip(want) {
                assert!((x - y).abs() < 1e-15, "{a:?}");
            }
        }
        assert_eq!(
            benjamini_hochberg(&[0.9, 0.95], BhFlavor::Scipy),
            vec![0.95, 0.95]
        );
    }
}
