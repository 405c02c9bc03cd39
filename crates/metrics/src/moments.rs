//! Moment metrics of MapPFN: RMSE between per-gene means / variances and the Pearson correlation of
//! them (`mean_r2`, `var_r2` are Pearson r, not R², as in MapPFN's code).

use crate::stats::{col_means, col_vars, pearson};
use ndarray::ArrayView2;

/// The four moment metrics of one perturbation.
#[derive(Debug, Clone, Copy)]
pub struct MomentMetrics {
    /// sqrt(mean_g (mean(true)_g − mean(pred)_g)²).
    pub mean_rmse: f64,
    /// The same on population variances (ddof = 0).
    pub var_rmse: f64,
    /// Pearson r between per-gene means.
    pub mean_r2: f64,
    /// Pearson r between per-gene variances.
    pub var_r2: f64,
}

/// Computes [`MomentMetrics`] for real cells `t` and predicted cells `p` (same genes).
pub fn moment_metrics(t: ArrayView2<f64>, p: ArrayView2<f64>) -> MomentMetrics {
    let (mt, mp) = (col_means(t), col_means(p));
    let (vt, vp) = (col_vars(t, mt.view()), col_vars(p, mp.view()));
    let rmse = |a: &[f64], b: &[f64]| {
        (a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / a.len() as f64).sqrt()
    };
    let (mt, mp, vt, vp) = (mt.to_vec(), mp.to_vec(), vt.to_vec(), vp.to_vec());
    MomentMetrics {
        mean_rmse: rmse(&mt, &mp),
        var_rmse: rmse(&vt, &vp),
        mean_r2: pearson(&mt, &mp),
        var_r2: pearson(&vt, &vp),
    }
}

/// Root mean squared error between two mean vectors.
pub fn mean_rmse(t: ArrayView2<f64>, p: ArrayView2<f64>) -> f64 {
    moment_metrics(t, p).mean_rmse
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn hand_computed() {
        let t = array![[0.0, 0.0], [2.0, 4.0]]; // means (1,2), vars (1,4)
        let p = array![[1.0, 2.0], [1.0, 4.0]]; // means (1,3), vars (0,1)
        let m = moment_metrics(t.view(), p.view());
        assert!((m.mean_rmse - (0.5f64).sqrt()).abs() < 1e-15);
        assert!((m.var_rmse - (5.0f64).sqrt()).abs() < 1e-15);
        assert!((m.mean_r2 - 1.0).abs() < 1e-15);
        assert!((m.var_r2 - 1.0).abs() < 1e-15);
    }
}
