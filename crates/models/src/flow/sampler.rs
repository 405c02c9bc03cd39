//! Sampler settings of flow-matching methods: the ODE solver and the classifier-free guidance weight.

use serde::{Deserialize, Serialize};

use super::OdeSolver;
use crate::error::{ModelError, Result};

/// How predictions are sampled: ODE solver and classifier-free guidance weight ω.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplerConfig {
    /// ODE solver (default: the reference's fixed-step Dopri5, dt = 0.01).
    pub solver: OdeSolver,
    /// Guidance weight ω in `ω·v_cond − (ω − 1)·v_uncond` (default 2; 1 = no guidance).
    pub guidance: f64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            solver: OdeSolver::default(),
            guidance: 2.0,
        }
    }
}

impl SamplerConfig {
    /// Checks the configuration, naming the problem.
    pub fn validate(&self) -> Result<()> {
        if !self.guidance.is_finite() || self.guidance < 0.0 {
            return Err(ModelError::Config(format!(
                "guidance weight {} must be a finite number ≥ 0 (default 2)",
                self.guidance
            )));
        }
        self.solver.validate()
    }
}
