//! AdamW with decoupled weight decay applied to every parameter (spec §3.2):
//! `θ ← θ − lr·(m̂/(√v̂ + ε) + λ·θ)` with bias-corrected moments. Its state (moments and update count)
//! is plain tensors so it can be checkpointed and restored exactly.

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

/// AdamW state over an ordered list of parameters.
#[derive(Debug)]
pub struct AdamW {
    /// Hyper-parameters.
    pub config: AdamWConfig,
    /// First moments, one per parameter.
    pub m: Vec<Tensor>,
    /// Second moments, one per parameter.
    pub v: Vec<Tensor>,
    /// Updates applied so far.
    pub updates: u64,
}

impl AdamW {
    /// Fresh state (zero moments) for `params`.
    pub fn new(config: AdamWConfig, params: &[Tensor]) -> AdamW {
        let zeros = |p: &Tensor| p.zeros_like().set_requires_grad(false);
        AdamW {
            config,
            m: params.iter().map(zeros).collect(),
            v: params.iter().map(zeros).collect(),
            updates: 0,
        }
    }

    /// Applies one update with gradients `grads` (same order as the parameters) and learning rate `lr`.
    pub fn step(&mut self, params: &[Tensor], grads: &[Tensor], lr: f64) {
        let c = self.config;
        let count = (self.updates + 1) as i32;
        let bc1 = 1.0 - c.beta1.powi(count);
        let bc2 = 1.0 - c.beta2.powi(count);
        tch::no_grad(|| {
            for ((p, g), (m, v)) in params
                .iter()
                .zip(grads)
                .zip(self.m.iter_mut().zip(self.v.iter_mut()))
            {
                let _ = m.g_mul_scalar_(c.beta1).g_add_(&(g * (1.0 - c.beta1)));
                let _ = v
                    .g_mul_scalar_(c.beta2)
                    .g_add_(&(g.square() * (1.0 - c.beta2)));
                let denom = (&*v / bc2).sqrt() + c.eps;
                let update = &*m / bc1 / denom + p * c.weight_decay;
                let mut p = p.shallow_clone();
                let _ = p.g_add_(&(update * -lr));
            }
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
        let p = Tensor::from_slice(&[1.0f64, -2.0]).set_requires_grad(true);
        let mut opt = AdamW::new(cfg, &[p.shallow_clone()]);
        let grads = [[0.5f64, -1.0], [0.25, 3.0]];
        let lrs = [0.1, 0.05];
        let (mut theta, mut m, mut v) = ([1.0f64, -2.0], [0.0f64; 2], [0.0f64; 2]);
        for (step, (g, lr)) in grads.iter().zip(lrs).enumerate() {
            opt.step(&[p.shallow_clone()], &[Tensor::from_slice(g)], lr);
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
