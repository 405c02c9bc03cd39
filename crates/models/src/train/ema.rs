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

/// EMA state of a flat parameter buffer.
#[derive(Debug)]
pub struct Ema {
    /// Settings.
    pub config: EmaConfig,
    /// Averaged parameters (flat).
    pub shadow: Tensor,
    /// Updates made.
    pub count: u64,
}

impl Ema {
    /// Fresh EMA of the flat parameters `flat`.
    pub fn new(config: EmaConfig, flat: &Tensor) -> Ema {
        let shadow = tch::no_grad(|| match config.init {
            EmaInit::Zeros => flat.zeros_like(),
            EmaInit::Copy => flat.detach().copy(),
        });
        Ema {
            config,
            shadow,
            count: 0,
        }
    }

    /// One EMA update toward `flat`: `θ_ema ← θ_ema + (1 − d)·(θ − θ_ema)` (= `d·θ_ema + (1 − d)·θ`).
    pub fn update(&mut self, flat: &Tensor) {
        let d = self.config.decay;
        tch::no_grad(|| {
            let _ = self.shadow.lerp_(flat, 1.0 - d);
        });
        self.count += 1;
    }

    /// Factor applied at read-out: `1/(1 − d^count)` when debiasing a zero-initialised EMA, else 1.
    pub fn readout_factor(config: &EmaConfig, count: u64) -> f64 {
        if config.debias && config.init == EmaInit::Zeros && count > 0 {
            1.0 / (1.0 - config.decay.powf(count as f64))
        } else {
            1.0
        }
    }

    /// The weights to use for inference (debiased when configured), flat.
    pub fn readout(&self) -> Tensor {
        let factor = Ema::readout_factor(&self.config, self.count);
        tch::no_grad(|| &self.shadow * factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_initialised_ema_is_biased_and_debiasing_recovers_the_parameters() {
        let theta = Tensor::from_slice(&[2.0f32, -4.0]);
        let mut reference = Ema::new(EmaConfig::reference(), &theta);
        let mut debiased = Ema::new(
            EmaConfig {
                debias: true,
                ..EmaConfig::reference()
            },
            &theta,
        );
        let mut copy = Ema::new(
            EmaConfig {
                init: EmaInit::Copy,
                ..EmaConfig::reference()
            },
            &theta,
        );
        assert_eq!(
            reference
                .readout()
                .abs()
                .sum(tch::Kind::Float)
                .double_value(&[]),
            0.0
        );
        for _ in 0..10 {
            reference.update(&theta);
            debiased.update(&theta);
            copy.update(&theta);
        }
        let bias = 1.0 - 0.999f64.powi(10);
        let r = reference.readout().shallow_clone();
        assert!(
            (r.double_value(&[0]) - 2.0 * bias).abs() < 1e-6,
            "reference EMA after 10 steps = (1 − 0.999¹⁰)·θ"
        );
        assert!((debiased.readout().double_value(&[1]) + 4.0).abs() < 1e-4);
        assert!((copy.readout().double_value(&[0]) - 2.0).abs() < 1e-6);
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
            &p,
        );
        let _ = p.fill_(1.0);
        ema.update(&p);
        assert!((ema.readout().double_value(&[0]) - 0.5).abs() < 1e-7);
        ema.update(&p);
        assert!((ema.readout().double_value(&[0]) - 0.75).abs() < 1e-7);
    }
}
