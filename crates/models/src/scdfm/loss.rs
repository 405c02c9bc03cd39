//! The scDFM training loss (their `train_step`, `predict_y`): conditional flow matching on the affine
//! CondOT path from Gaussian noise plus γ·MMD² between the one-step endpoint estimates and the real
//! perturbed cells, with the median-heuristic bandwidths of `median_sigmas` (torch's lower median).

use tch::{Kind, Tensor};

/// Squared Euclidean distances `[m, n]` between the rows of `x` `[m, G]` and `y` `[n, G]` (exact
/// differences, so the diagonal of `D(x, x)` is 0).
pub fn pairwise_sq_dists(x: &Tensor, y: &Tensor) -> Tensor {
    (x.unsqueeze(1) - y.unsqueeze(0))
        .square()
        .sum_dim_intlist(-1, false, Kind::Float)
}

/// Median heuristic of their `median_sigmas`: the lower median `m` of the off-diagonal squared distances
/// of `y` (each pair counted twice), clamped ≥ 1e-12, and `σ_s = sqrt(s·m)` in float32. Returns `(σ, m)`.
pub fn median_sigmas(y: &Tensor, scales: &[f64]) -> (Vec<f64>, f64) {
    let _guard = tch::no_grad_guard();
    let n = y.size()[0];
    let d = pairwise_sq_dists(y, y);
    let off = Tensor::ones([n, n], (Kind::Bool, y.device()))
        .logical_xor(&Tensor::eye(n, (Kind::Bool, y.device())));
    let vals = d.masked_select(&off);
    let count = vals.numel() as i64;
    let med = if count == 0 {
        0.0f32
    } else {
        let (sorted, _) = vals.sort(0, false);
        sorted.double_value(&[(count - 1) / 2]) as f32
    };
    let med = med.max(1e-12);
    let sigmas = scales
        .iter()
        .map(|&s| ((s as f32) * med).sqrt() as f64)
        .collect();
    (sigmas, med as f64)
}

/// Unbiased MMD² with one Gaussian kernel `exp(−β·D)`, `β = 1/(2σ² + 1e-12)`; the diagonals of
/// `K(x, x)` and `K(y, y)` are excluded and the denominators are `m(m−1) + 1e-12`.
pub fn mmd2_unbiased(x: &Tensor, y: &Tensor, sigma: f64) -> Tensor {
    let beta = 1.0 / (2.0 * sigma * sigma + 1e-12);
    let (m, n) = (x.size()[0], y.size()[0]);
    let off = |k: i64| {
        Tensor::ones([k, k], (Kind::Float, x.device())) - Tensor::eye(k, (Kind::Float, x.device()))
    };
    let kxx = (pairwise_sq_dists(x, x) * (-beta)).exp() * off(m);
    let kyy = (pairwise_sq_dists(y, y) * (-beta)).exp() * off(n);
    let kxy = (pairwise_sq_dists(x, y) * (-beta)).exp();
    let (mf, nf) = (m as f64, n as f64);
    kxx.sum(Kind::Float) / (mf * (mf - 1.0) + 1e-12)
        + kyy.sum(Kind::Float) / (nf * (nf - 1.0) + 1e-12)
        - kxy.mean(Kind::Float) * 2.0
}

/// Mean over `sigmas` of [`mmd2_unbiased`] (their `mmd2_unbiased_multi_sigma`).
pub fn mmd2_multi_sigma(x: &Tensor, y: &Tensor, sigmas: &[f64]) -> Tensor {
    let mut total = Tensor::zeros([], (Kind::Float, x.device()));
    for &s in sigmas {
        total = total + mmd2_unbiased(x, y, s);
    }
    total / sigmas.len() as f64
}

/// The pieces of one training loss.
#[derive(Debug)]
pub struct LossParts {
    /// `mean((v − (x₁ − x₀))²)`.
    pub cfm: Tensor,
    /// MMD² between `x̂₁ = x_t + (1 − t)·v` and `x₁` (zero tensor when γ = 0).
    pub mmd: Tensor,
    /// `cfm + γ·mmd`.
    pub total: Tensor,
    /// The model output.
    pub velocity: Tensor,
    /// Bandwidths used.
    pub sigmas: Vec<f64>,
    /// Lower median of the target's squared distances.
    pub median_sq_dist: f64,
}

/// Given the velocity `v` at `x_t = (1−t)x₀ + t·x₁`, the scDFM loss.
pub fn flow_loss(
    velocity: Tensor,
    x0: &Tensor,
    x1: &Tensor,
    x_t: &Tensor,
    t: &Tensor,
    gamma: f64,
    scales: &[f64],
) -> LossParts {
    let cfm = (&velocity - (x1 - x0)).square().mean(Kind::Float);
    let (sigmas, median_sq_dist) = median_sigmas(x1, scales);
    let (mmd, total) = if gamma > 0.0 {
        let x1_hat: Tensor = x_t + &velocity * (-t + 1.0).unsqueeze(-1);
        let mmd = mmd2_multi_sigma(&x1_hat, x1, &sigmas);
        let total = &cfm + &mmd * gamma;
        (mmd, total)
    } else {
        (
            Tensor::zeros([], (Kind::Float, x0.device())),
            cfm.shallow_clone(),
        )
    };
    LossParts {
        cfm,
        mmd,
        total,
        velocity,
        sigmas,
        median_sq_dist,
    }
}
