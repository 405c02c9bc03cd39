//! Maximum mean discrepancy with RBF kernels (MapPFN's `multiscale_mmd`): biased V-statistic
//! MMD²_γ = mean K_xx + mean K_yy − 2 mean K_xy with k_γ(x,y) = exp(−γ‖x−y‖²), averaged over γ.

use crate::kernels::sum_exp;
use crate::pairwise::{cross_products_ordered, expanded_sq_dists, same_matrix, sq_dists, sq_norms};
use ndarray::{Array2, ArrayView2};

/// MapPFN's bandwidths γ ∈ {10, 1, 0.1, 0.01, 0.001} (`jnp.logspace(1, -3, 5)`).
pub const MAPPFN_GAMMAS: [f64; 5] = [10.0, 1.0, 0.1, 0.01, 0.001];

fn kernel_means(d2: &[f64], gammas: &[f64]) -> Vec<f64> {
    let n = d2.len() as f64;
    gammas.iter().map(|&g| sum_exp(d2, -g) / n).collect()
}

/// Biased squared MMD between x and y, averaged over `gammas`, in float64 with squared distances as
/// accurate as direct differences ([`crate::pairwise`]; the oracle's `mmd`). Both matrices must share the number of columns.
pub fn mmd_rbf(x: ArrayView2<f64>, y: ArrayView2<f64>, gammas: &[f64]) -> f64 {
    mmd_rbf_of_sq_dists(&sq_dists(x, x), &sq_dists(y, y), &sq_dists(x, y), gammas)
}

/// [`mmd_rbf`] from the squared distances x–x, y–y and x–y (`pairwise::sq_dists` in that orientation),
/// for callers that share them with other metrics.
pub(crate) fn mmd_rbf_of_sq_dists(dxx: &[f64], dyy: &[f64], dxy: &[f64], gammas: &[f64]) -> f64 {
    let kxx = kernel_means(dxx, gammas);
    let kyy = kernel_means(dyy, gammas);
    let kxy = kernel_means(dxy, gammas);
    let vals: Vec<f64> = (0..gammas.len())
        .map(|g| kxx[g] + kyy[g] - 2.0 * kxy[g])
        .collect();
    vals.iter().sum::<f64>() / vals.len() as f64
}

/// MapPFN's `multiscale_mmd` as written (float32, squared distances by the ‖x‖² + ‖y‖² − 2xy
/// expansion without clipping, γ rounded to float32) — the oracle's `mmd_mappfn_f32`.
pub fn mmd_mappfn_f32(x: ArrayView2<f64>, y: ArrayView2<f64>) -> f64 {
    let xf: Array2<f32> = x.mapv(|v| v as f32);
    let yf: Array2<f32> = if same_matrix(x, y) {
        xf.clone()
    } else {
        y.mapv(|v| v as f32)
    };
    let (xn, yn) = (sq_norms(xf.view()), sq_norms(yf.view()));
    // products in gene order without fused multiply-adds, like the float32 formula written out
    let dot =
        |a: &Array2<f32>, b: &Array2<f32>, sym| cross_products_ordered(a.view(), b.view(), sym);
    let dxx = expanded_sq_dists(dot(&xf, &xf, true), &xn, &xn);
    let dyy = expanded_sq_dists(dot(&yf, &yf, true), &yn, &yn);
    let dxy = expanded_sq_dists(dot(&xf, &yf, false), &xn, &yn);
    let mut vals = Vec::with_capacity(MAPPFN_GAMMAS.len());
    for &g in &MAPPFN_GAMMAS {
        let g = g as f32;
        let mean = |v: &[f32]| sum_exp(v, -g) / v.len() as f32;
        vals.push(mean(&dxx) + mean(&dyy) - 2.0 * mean(&dxy));
    }
    (vals.iter().sum::<f32>() / vals.len() as f32) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn two_single_points_closed_form() {
        // MMD²_γ = 1 + 1 − 2 exp(−γ‖x−y‖²)
        let x = array![[0.0, 0.0]];
        let y = array![[1.0, 1.0]];
        let want: f64 = MAPPFN_GAMMAS
            .iter()
            .map(|g| 2.0 - 2.0 * (-g * 2.0).exp())
            .sum::<f64>()
            / 5.0;
        assert!((mmd_rbf(x.view(), y.view(), &MAPPFN_GAMMAS) - want).abs() < 1e-15);
        assert!((mmd_mappfn_f32(x.view(), y.view()) - want).abs() < 1e-6);
        assert_eq!(mmd_rbf(x.view(), x.view(), &MAPPFN_GAMMAS), 0.0);
    }
}
