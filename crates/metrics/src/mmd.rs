//! Maximum mean discrepancy with RBF kernels (MapPFN's `multiscale_mmd`): biased V-statistic
//! MMD²_γ = mean K_xx + mean K_yy − 2 mean K_xy with k_γ(x,y) = exp(−γ‖x−y‖²), averaged over γ.

use crate::kernels::sum_exp;
use ndarray::ArrayView2;

/// MapPFN's bandwidths γ ∈ {10, 1, 0.1, 0.01, 0.001} (`jnp.logspace(1, -3, 5)`).
pub const MAPPFN_GAMMAS: [f64; 5] = [10.0, 1.0, 0.1, 0.01, 0.001];

/// Squared Euclidean distances between the rows of x (n × d) and y (m × d), row-major n × m, from
/// direct differences accumulated over genes in order (vectorised across the rows of y).
pub(crate) fn sq_dists(x: ArrayView2<f64>, y: ArrayView2<f64>) -> Vec<f64> {
    let (n, m, d) = (x.nrows(), y.nrows(), x.ncols());
    let yt: Vec<f64> = (0..d).flat_map(|k| y.column(k).to_vec()).collect(); // d × m
    let mut out = vec![0.0f64; n * m];
    for i in 0..n {
        let acc = &mut out[i * m..(i + 1) * m];
        for k in 0..d {
            let xik = x[[i, k]];
            for (a, &v) in acc.iter_mut().zip(&yt[k * m..(k + 1) * m]) {
                let t = xik - v;
                *a += t * t;
            }
        }
    }
    out
}

fn kernel_means(d2: &[f64], gammas: &[f64]) -> Vec<f64> {
    let n = d2.len() as f64;
    gammas.iter().map(|&g| sum_exp(d2, -g) / n).collect()
}

/// Biased squared MMD between x and y, averaged over `gammas`, in float64 with direct squared
/// distances (the oracle's `mmd`). Both matrices must share the number of columns.
pub fn mmd_rbf(x: ArrayView2<f64>, y: ArrayView2<f64>, gammas: &[f64]) -> f64 {
    let kxx = kernel_means(&sq_dists(x, x), gammas);
    let kyy = kernel_means(&sq_dists(y, y), gammas);
    let kxy = kernel_means(&sq_dists(x, y), gammas);
    let vals: Vec<f64> = (0..gammas.len())
        .map(|g| kxx[g] + kyy[g] - 2.0 * kxy[g])
        .collect();
    vals.iter().sum::<f64>() / vals.len() as f64
}

/// MapPFN's `multiscale_mmd` as written (float32, squared distances by the ‖x‖² + ‖y‖² − 2xy
/// expansion without clipping, γ rounded to float32) — the oracle's `mmd_mappfn_f32`.
pub fn mmd_mappfn_f32(x: ArrayView2<f64>, y: ArrayView2<f64>) -> f64 {
    let d = x.ncols();
    let prep = |m: ArrayView2<f64>| -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let data: Vec<f32> = m.iter().map(|&v| v as f32).collect();
        let norms = (0..m.nrows())
            .map(|i| data[i * d..(i + 1) * d].iter().map(|v| v * v).sum::<f32>())
            .collect();
        let t: Vec<f32> = (0..d)
            .flat_map(|k| m.column(k).iter().map(|&v| v as f32).collect::<Vec<_>>())
            .collect();
        (data, norms, t)
    };
    let (xd, xn, _) = prep(x);
    let (_, yn, yt) = prep(y);
    let (_, _, xt) = prep(x);
    let (yd, _, _) = prep(y);
    let psd = |a: &[f32], an: &[f32], bt: &[f32], bn: &[f32]| -> Vec<f32> {
        let (na, nb) = (an.len(), bn.len());
        let mut out = vec![0.0f32; na * nb];
        for i in 0..na {
            let acc = &mut out[i * nb..(i + 1) * nb];
            for k in 0..d {
                let aik = a[i * d + k];
                for (o, &v) in acc.iter_mut().zip(&bt[k * nb..(k + 1) * nb]) {
                    *o += aik * v;
                }
            }
            for (o, &b) in acc.iter_mut().zip(bn) {
                *o = an[i] + b - 2.0 * *o;
            }
        }
        out
    };
    let dxx = psd(&xd, &xn, &xt, &xn);
    let dyy = psd(&yd, &yn, &yt, &yn);
    let dxy = psd(&xd, &xn, &yt, &yn);
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
