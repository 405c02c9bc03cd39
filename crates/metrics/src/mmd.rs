//! Maximum mean discrepancy with RBF kernels (MapPFN's `multiscale_mmd`): biased V-statistic
//! MMD²_γ = mean K_xx + mean K_yy − 2 mean K_xy with k_γ(x,y) = exp(−γ‖x−y‖²), averaged over γ.

use ndarray::ArrayView2;

/// MapPFN's bandwidths γ ∈ {10, 1, 0.1, 0.01, 0.001} (`jnp.logspace(1, -3, 5)`).
pub const MAPPFN_GAMMAS: [f64; 5] = [10.0, 1.0, 0.1, 0.01, 0.001];

fn sq_dists(x: ArrayView2<f64>, y: ArrayView2<f64>) -> Vec<f64> {
    let (n, m, d) = (x.nrows(), y.nrows(), x.ncols());
    let mut out = Vec::with_capacity(n * m);
    for i in 0..n {
        let xi = x.row(i);
        for j in 0..m {
            let yj = y.row(j);
            let mut s = 0.0;
            for k in 0..d {
                let t = xi[k] - yj[k];
                s += t * t;
            }
            out.push(s.max(0.0));
        }
    }
    out
}

fn kernel_means(d2: &[f64], gammas: &[f64]) -> Vec<f64> {
    let n = d2.len() as f64;
    gammas.iter().map(|&g| d2.iter().map(|&v| crate::kernels::exp_f64(-g * v)).sum::<f64>() / n).collect()
}

/// Biased squared MMD between x and y, averaged over `gammas`, in float64 with direct squared
/// distances (the oracle's `mmd`). Both matrices must share the number of columns.
pub fn mmd_rbf(x: ArrayView2<f64>, y: ArrayView2<f64>, gammas: &[f64]) -> f64 {
    let kxx = kernel_means(&sq_dists(x, x), gammas);
    let kyy = kernel_means(&sq_dists(y, y), gammas);
    let kxy = kernel_means(&sq_dists(x, y), gammas);
    let vals: Vec<f64> = (0..gammas.len()).map(|g| kxx[g] + kyy[g] - 2.0 * kxy[g]).collect();
    vals.iter().sum::<f64>() / vals.len() as f64
}

/// MapPFN's `multiscale_mmd` as written (float32, squared distances by the ‖x‖² + ‖y‖² − 2xy
/// expansion without clipping, γ rounded to float32) — the oracle's `mmd_mappfn_f32`.
pub fn mmd_mappfn_f32(x: ArrayView2<f64>, y: ArrayView2<f64>) -> f64 {
    let to32 = |m: ArrayView2<f64>| -> (Vec<f32>, Vec<f32>, usize) {
        let data: Vec<f32> = m.iter().map(|&v| v as f32).collect();
        let d = m.ncols();
        let norms = (0..m.nrows()).map(|i| data[i * d..(i + 1) * d].iter().map(|v| v * v).sum::<f32>()).collect();
        (data, norms, m.nrows())
    };
    let (xd, xn, nx) = to32(x);
    let (yd, yn, ny) = to32(y);
    let d = x.ncols();
    let psd = |a: &[f32], an: &[f32], na: usize, b: &[f32], bn: &[f32], nb: usize| -> Vec<f32> {
        let mut out = Vec::with_capacity(na * nb);
        for i in 0..na {
            for j in 0..nb {
                let mut dot = 0.0f32;
                for k in 0..d {
                    dot += a[i * d + k] * b[j * d + k];
                }
                out.push(an[i] + bn[j] - 2.0 * dot);
            }
        }
        out
    };
    let dxx = psd(&xd, &xn, nx, &xd, &xn, nx);
    let dyy = psd(&yd, &yn, ny, &yd, &yn, ny);
    let dxy = psd(&xd, &xn, nx, &yd, &yn, ny);
    let mean32 = |d2: &[f32], g: f32| -> f32 {
        // pairwise-style accumulation in f64 lanes would hide f32 effects; XLA reduces in f32
        let mut acc = [0.0f32; 8];
        for (k, &v) in d2.iter().enumerate() {
            acc[k % 8] += crate::kernels::exp_f32(-g * v);
        }
        acc.iter().sum::<f32>() / d2.len() as f32
    };
    let mut vals = Vec::with_capacity(MAPPFN_GAMMAS.len());
    for &g in &MAPPFN_GAMMAS {
        let g = g as f32;
        vals.push(mean32(&dxx, g) + mean32(&dyy, g) - 2.0 * mean32(&dxy, g));
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
        let want: f64 = MAPPFN_GAMMAS.iter().map(|g| 2.0 - 2.0 * (-g * 2.0).exp()).sum::<f64>() / 5.0;
        assert!((mmd_rbf(x.view(), y.view(), &MAPPFN_GAMMAS) - want).abs() < 1e-15);
        assert!((mmd_mappfn_f32(x.view(), y.view()) - want).abs() < 1e-6);
        assert_eq!(mmd_rbf(x.view(), x.view(), &MAPPFN_GAMMAS), 0.0);
    }
}
