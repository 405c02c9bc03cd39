//! AdamW with decoupled weight decay applied to every parameter (spec §3.2):
//! `θ ← θ − lr·(m̂/(√v̂ + ε) + λ·θ)` with bias-corrected moments. It works on a flat parameter buffer
//! (see [`super::flat`]); its state (moments and update count) is plain tensors so it can be checkpointed
//! and restored exactly.

use serde::{Deserialize, Serialize};
use tch::Tensor;

/// AdamW hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    /// First-moment decay β1.
    pub beta1: f64,
    /// Second-moment decay β2.
    pub beta2: f64,
    /// ε added to √v̂.
    pub eps: f64,
    /// Decoupled weight decay λ (multiplied by the learning rate).
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    /// The reference values: β = (0.9, 0.995), ε = 1e-8, λ = 1e-5.
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.995,
            eps: 1e-8,
            weight_decay: 1e-5,
        }
    }
}

/// AdamW state for one flat parameter buffer.
#[derive(Debug)]
pub struct AdamW {
    /// Hyper-parameters.
    pub config: AdamWConfig,
    /// First moments (flat).
    pub m: Tensor,
    /// Second moments (flat).
    pub v: Tensor,
    /// Updates applied so far.
    pub updates: u64,
}

impl AdamW {
    /// Fresh state (zero moments) for a flat parameter buffer like `flat`.
    pub fn new(config: AdamWConfig, flat: &Tensor) -> AdamW {
        let zeros = || tch::no_grad(|| flat.zeros_like());
        AdamW {
            config,
            m: zeros(),
            v: zeros(),
            updates: 0,
        }
    }

    /// Applies one update to the flat parameters `param` (in place) with gradient `grad` and learning
    /// rate `lr`: `θ ← θ·(1 − lr·λ) − (lr/(1 − β1ᶜ))·m / (√v/√(1 − β2ᶜ) + ε)`, which equals the formula above.
    pub fn step(&mut self, param: &Tensor, grad: &Tensor, lr: f64) {
        let c = self.config;
        let count = (self.updates + 1).min(i32::MAX as u64) as i32;
        let bc1 = 1.0 - c.beta1.powi(count);
        let bc2 = 1.0 - c.beta2.powi(count);
        tch::no_grad(|| {
            let _ = self.m.lerp_(grad, 1.0 - c.beta1);
            let _ = self.v.lerp_(&grad.square(), 1.0 - c.beta2);
            let mut denom = self.v.sqrt();
            let _ = denom.g_div_scalar_(bc2.sqrt()).g_add_scalar_(c.eps);
            let mut step = &self.m / denom;
            let _ = step.g_mul_scalar_(-lr / bc1);
            let mut p = param.shallow_clone();
            if c.weight_decay != 0.0 {
                let _ = p.g_mul_scalar_(1.0 - lr * c.weight_decay);
            }
            let _ = p.g_add_(&step);
        });
        self.updates += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adamw_matches_the_formula() {
        let cfg = AdamWConfig {
            beta1: 0.9,
            beta2: 0.995,
            eps: 1e-8,
            weight_decay: 0.1,
        };
        let p = Tensor::from_slice(&[1.0f64, -2.0]);
        let mut opt = AdamW::new(cfg, &p);
        let grads = [[0.5f64, -1.0], [0.25, 3.0]];
        let lrs = [0.1, 0.05];
        let (mut theta, mut m, mut v) = ([1.0f64, -2.0], [0.0f64; 2], [0.0f64; 2]);
        for (step, (g, lr)) in grads.iter().zip(lrs).enumerate() {
            opt.step(&p, &Tensor::from_slice(g), lr);
            let c = (step + 1) as i32;
            for i in 0..2 {
                m[i] = 0.9 * m[i] + 0.1 * g[i];
                v[i] = 0.995 * v[i] + 0.005 * g[i] * g[i];
                let mh = m[i] / (1.0 - 0.9f64.powi(c));
                let vh = v[i] / (1.0 - 0.995f64.powi(c));
                theta[i] -= lr * (mh / (vh.sqrt() + 1e-8) + 0.1 * theta[i]);
            }
        }
        for (i, expected) in theta.iter().enumerate() {
            assert!(
                (p.double_value(&[i as i64]) - expected).abs() < 1e-12,
                "parameter {i}"
            );
        }
        assert_eq!(opt.updates, 2);
    }
}
