//! Exponential moving average of the parameters (spec §3.4): `θ_ema ← d·θ_ema + (1 − d)·θ` after every
//! micro-batch. The reference initialises `θ_ema` to zeros and reads it without bias correction; the
//! debiased read-out `θ_ema / (1 − d^count)` and a copy-initialised EMA are available as options.

use serde::{Deserialize, Serialize};
use tch::Tensor;

/// How the EMA starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmaInit {
    /// Zeros (reference code).
    Zeros,
    /// A copy of the initial parameters (the usual choice).
    Copy,
}

/// EMA settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmaConfig {
    /// Decay `d` per micro-batch.
    pub decay: f64,
    /// Initial value.
    pub init: EmaInit,
    /// Read out `θ_ema / (1 − d^count)` (only meaningful with zero initialisation).
    pub debias: bool,
}

impl EmaConfig {
    /// The reference semantics: decay 0.999, zero-initialised, not debiased.
    pub fn reference() -> EmaConfig {
        EmaConfig {
            decay: 0.999,
            init: EmaInit::Zeros,
            debias: false,
        }
    }
}

/// EMA state over an ordered list of parameters.
#[derive(Debug)]
pub struct Ema {
    /// Settings.
    pub config: EmaConfig,
    /// Averaged parameters.
    pub shadow: Vec<Tensor>,
    /// Updates made.
    pub count: u64,
}

impl Ema {
    /// Fresh EMA of `params`.
    pub fn new(config: EmaConfig, params: &[Tensor]) -> Ema {
        let shadow = tch::no_grad(|| {
            params
                .iter()
                .map(|p| match config.init {
                    EmaInit::Zeros => p.zeros_like(),
                    EmaInit::Copy => p.detach().copy(),
                })
                .collect()
        });
        Ema {
            config,
            shadow,
            count: 0,
        }
    }

    /// One EMA update toward `params`.
    pub fn update(&mut self, params: &[Tensor]) {
        let d = self.config.decay;
        tch::no_grad(|| {
            for (s, p) in self.shadow.iter_mut().zip(params) {
                let _ = s.g_mul_scalar_(d).g_add_(&(p * (1.0 - d)));
            }
        });
        self.count += 1;
    }

    /// The weights to use for inference (debiased when configured).
    pub fn readout(&self) -> Vec<Tensor> {
        let correct = self.config.debias && self.config.init == EmaInit::Zeros && self.count > 0;
        let factor = if correct {
            1.0 / (1.0
                - self
                    .config
                    .decay
                    .powi(self.count.min(i32::MAX as u64) as i32))
        } else {
            1.0
        };
        tch::no_grad(|| self.shadow.iter().map(|s| s * factor).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_initialised_ema_is_biased_and_debiasing_recovers_the_parameters() {
        let theta = Tensor::from_slice(&[2.0f32, -4.0]);
        let params = [theta.shallow_clone()];
        let mut reference = Ema::new(EmaConfig::reference(), &params);
        let mut debiased = Ema::new(
            EmaConfig {
                debias: true,
                ..EmaConfig::reference()
            },
            &params,
        );
        let mut copy = Ema::new(
            EmaConfig {
                init: EmaInit::Copy,
                ..EmaConfig::reference()
            },
            &params,
        );
        assert_eq!(
            reference.readout()[0]
                .abs()
                .sum(tch::Kind::Float)
                .double_value(&[]),
            0.0
        );
        for _ in 0..10 {
            reference.update(&params);
            debiased.update(&params);
            copy.update(&params);
        }
        let bias = 1.0 - 0.999f64.powi(10);
        let r = reference.readout()[0].shallow_clone();
        assert!(
            (r.double_value(&[0]) - 2.0 * bias).abs() < 1e-6,
            "reference EMA after 10 steps = (1 − 0.999¹⁰)·θ"
        );
        assert!((debiased.readout()[0].double_value(&[1]) + 4.0).abs() < 1e-4);
        assert!((copy.readout()[0].double_value(&[0]) - 2.0).abs() < 1e-6);
        assert_eq!(reference.count, 10);
    }

    #[test]
    fn ema_tracks_a_moving_parameter() {
        let mut p = Tensor::from_slice(&[0.0f32]);
        let mut ema = Ema::new(
            EmaConfig {
                decay: 0.5,
                init: EmaInit::Copy,
                debias: false,
            },
            &[p.shallow_clone()],
        );
        let _ = p.fill_(1.0);
        ema.update(&[p.shallow_clone()]);
        assert!((ema.readout()[0].double_value(&[0]) - 0.5).abs() < 1e-7);
        ema.update(&[p.shallow_clone()]);
        assert!((ema.readout()[0].double_value(&[0]) - 0.75).abs() < 1e-7);
    }
}
