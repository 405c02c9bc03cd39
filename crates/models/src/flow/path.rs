//! Conditional flow matching on the straight (linear/affine Gaussian) path (spec §3.1):
//! `x_t = (1 − t)·x0 + t·x1`, target velocity `u = x1 − x0`, `x0 ~ N(0, I)`, `t ~ LogitNormal(0, 1)`.

use rand::Rng;
use rand_distr::StandardNormal;
use tch::Tensor;

/// Draws one time from LogitNormal(0, 1): `t = sigmoid(ξ)`, `ξ ~ N(0, 1)`.
pub fn sample_logit_normal_time<R: Rng>(rng: &mut R) -> f32 {
    let xi: f64 = rng.sample(StandardNormal);
    (1.0 / (1.0 + (-xi).exp())) as f32
}

/// The point `x_t = (1 − t)·x0 + t·x1` on the straight path; `t` broadcasts against `x0` (e.g. `[B, 1, 1]`).
pub fn interpolate(x0: &Tensor, x1: &Tensor, t: &Tensor) -> Tensor {
    x0 * (t.ones_like() - t) + x1 * t
}

/// The regression target of the straight path, `u = x1 − x0` (independent of `t`).
pub fn target_velocity(x0: &Tensor, x1: &Tensor) -> Tensor {
    x1 - x0
}

/// The flow-matching loss: mean over all elements of `(v − u)²`.
pub fn flow_matching_loss(predicted: &Tensor, target: &Tensor) -> Tensor {
    (predicted - target).square().mean(None)
}
